// expect: clean
import { PluginError } from '@cairn/plugin-sdk';
import { checkResult, PluginRegistry } from '@cairn/plugin-sdk/host';
import { encodeFrame } from '@cairn/proto';
import { Spool } from '../spool/spool.js';
import { TaskJournal } from '../state/journal.js';
import { Executor } from './executor.js';

export const used = [PluginError, checkResult, encodeFrame, PluginRegistry, Spool, TaskJournal, Executor];
