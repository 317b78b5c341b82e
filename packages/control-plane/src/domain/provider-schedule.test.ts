import { describe, expect, it } from 'vitest';
import {
  cairnFiresSla,
  managedByProvider,
  providerMayRun,
  scheduleEnd,
  type InstanceSchedule,
} from './provider-schedule.js';

const s = (owner: InstanceSchedule['owner'], state: InstanceSchedule['state'], taskId: string | null = 't1') => ({
  owner,
  state,
  taskId,
});

describe('provider-side schedule rules', () => {
  it.each([
    ['no provider asked', s(null, null, null), true],
    ['the provider left the clock to Cairn', s('cairn', 'configured'), true],
    ['the provider runs it', s('provider', 'configured'), false],
    ['the assignment waits for the provider', s(null, 'configuring'), false],
    ['an SLA change waits, Cairn owns the clock', s('cairn', 'reconfiguring'), true],
    ['an SLA change waits, the provider owns the clock', s('provider', 'reconfiguring'), false],
    ['the last request failed, Cairn owns the clock', s('cairn', 'failed'), true],
  ])('Cairn fires the SLA when %s: %s', (_what, schedule, fires) => {
    expect(cairnFiresSla(schedule)).toBe(fires);
  });

  it.each([
    ['no provider asked', s(null, null, null), false],
    ['the provider left the clock to Cairn', s('cairn', 'configured'), false],
    ['the provider runs it', s('provider', 'configured'), true],
    ['the assignment waits for the provider', s(null, 'configuring'), true],
    ['an SLA change waits, Cairn owns the clock', s('cairn', 'reconfiguring'), true],
    ['a removal is under way', s(null, 'deconfiguring'), false],
    ['the last request failed, Cairn owns the clock', s('cairn', 'failed'), false],
  ])('a removal must undo the provider schedule when %s: %s', (_what, schedule, may) => {
    expect(providerMayRun(schedule)).toBe(may);
  });

  it.each([
    ['{"managed":true}', true],
    ['{"managed":false}', false],
    ['{"managed":"yes"}', false],
    ['{}', false],
    ['null', false],
    ['not json', false],
    [null, false],
  ])('reads %s as managed=%s', (output, managed) => {
    expect(managedByProvider(output)).toBe(managed);
  });

  const configure = (state: string, output: string | null = null) => ({
    id: 't1',
    kind: 'configure-schedule',
    state,
    output,
  });
  const deconfigure = (state: string) => ({ id: 't1', kind: 'deconfigure-schedule', state, output: null });
  it.each([
    [
      'an assignment the provider took over',
      s(null, 'configuring'),
      configure('succeeded', '{"managed":true}'),
      { action: 'configured', owner: 'provider' },
    ],
    [
      'an assignment left to Cairn',
      s(null, 'configuring'),
      configure('succeeded', '{"managed":false}'),
      { action: 'configured', owner: 'cairn' },
    ],
    ['a failed assignment', s(null, 'configuring'), configure('failed'), { action: 'roll-back' }],
    ['a lost assignment', s(null, 'configuring'), configure('lost'), { action: 'roll-back' }],
    ['a cancelled assignment', s(null, 'configuring'), configure('cancelled'), { action: 'roll-back' }],
    ['a failed SLA change', s('provider', 'reconfiguring'), configure('failed'), { action: 'failed' }],
    [
      'an SLA change now left to Cairn',
      s('provider', 'reconfiguring'),
      configure('succeeded', '{}'),
      { action: 'configured', owner: 'cairn' },
    ],
    ['a removal done', s(null, 'deconfiguring'), deconfigure('succeeded'), { action: 'cleared' }],
    ['a removal failed', s(null, 'deconfiguring'), deconfigure('failed'), { action: 'failed' }],
    ['a task a newer request superseded', s(null, 'configuring', 't2'), configure('failed'), { action: 'none' }],
    ['a gone instance', undefined, configure('succeeded', '{"managed":true}'), { action: 'none' }],
  ])('settles %s', (_what, current, task, want) => {
    expect(scheduleEnd(current, task)).toEqual(want);
  });
});
