// expect: clean
import { randomUUID } from 'node:crypto';
import { PluginError } from '@cairn/plugin-sdk';
import { confinePath } from '@cairn/plugin-sdk/paths';
import { MockTaskEnvironment } from '@cairn/plugin-sdk/testing';

export const used = [randomUUID, PluginError, confinePath, MockTaskEnvironment];
