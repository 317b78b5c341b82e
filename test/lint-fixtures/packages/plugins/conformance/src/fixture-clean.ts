// expect: clean
import { mkdtemp } from 'node:fs/promises';
import { loadPlugin } from '@cairn/agent';
import { PluginError } from '@cairn/plugin-sdk';
import { MockTaskEnvironment } from '@cairn/plugin-sdk/testing';
import { Command } from 'commander';
import { describe } from 'vitest';
import { z } from 'zod';

export const used = [mkdtemp, loadPlugin, PluginError, MockTaskEnvironment, Command, describe, z];
