// expect: @typescript-eslint/no-restricted-imports import a workspace package by its name and its exports
import { openStore } from '@cairn/control-plane/dist/store/db.js';

export const used = openStore;
