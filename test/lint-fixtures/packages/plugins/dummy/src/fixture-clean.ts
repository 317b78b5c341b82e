// expect: clean
import { randomUUID } from 'node:crypto';
import { PluginError } from '@cairn/plugin-sdk';
import { MockTaskEnvironment } from '@cairn/plugin-sdk/testing';

export const used = [randomUUID, PluginError, MockTaskEnvironment];
