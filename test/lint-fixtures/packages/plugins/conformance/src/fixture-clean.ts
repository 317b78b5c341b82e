// expect: clean
import { mkdtemp } from 'node:fs/promises';
import { PluginError } from '@cairn/plugin-sdk';
import { loadPlugin } from '@cairn/plugin-sdk/host';
import { MockTaskEnvironment } from '@cairn/plugin-sdk/testing';
import { Command } from 'commander';
import { describe } from 'vitest';
import { z } from 'zod';

export const used = [mkdtemp, loadPlugin, PluginError, MockTaskEnvironment, Command, describe, z];
