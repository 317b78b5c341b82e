// expect: clean
import { migrate, openStore } from '@cairn/control-plane';
import { Api } from '@cairn/test-harness/api';

export const used = [migrate, openStore, Api];
