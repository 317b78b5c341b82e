import { writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../clock.js';
import { tempDir } from '../testing/wait.js';
import {
  DEFAULT_DRAIN_MESSAGE,
  DrainState,
  drainPath,
  effectiveDrain,
  readDrain,
  readServerDrain,
  serverDrainPath,
  writeDrain,
} from './drain.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

describe('the two drains on disk', () => {
  it('keeps the operator drain and the control plane drain in separate files', () => {
    writeDrain(dir, { enabled: true, message: 'host patching', source: 'local' }, systemClock);
    writeDrain(dir, { enabled: false, message: '', source: 'server' }, systemClock);
    expect(readDrain(dir)).toMatchObject({ enabled: true, message: 'host patching', source: 'local' });
    expect(readServerDrain(dir)).toMatchObject({ enabled: false, source: 'server' });
  });

  it("reads an older agent's control plane drain (kept in drain.json) as the control plane's", () => {
    writeFileSync(drainPath(dir), JSON.stringify({ enabled: true, message: 'window', source: 'server' }));
    expect(readDrain(dir).enabled).toBe(false);
    expect(readServerDrain(dir)).toMatchObject({ enabled: true, message: 'window', source: 'server' });
    // Once the control plane has pushed again, its own file wins.
    writeDrain(dir, { enabled: false, message: '', source: 'server' }, systemClock);
    expect(readServerDrain(dir).enabled).toBe(false);
  });

  it('reads a damaged file as draining with the default message, either file', () => {
    writeFileSync(drainPath(dir), '{"enabled": tru');
    writeFileSync(serverDrainPath(dir), '[]');
    expect(readDrain(dir)).toMatchObject({ enabled: true, message: DEFAULT_DRAIN_MESSAGE });
    expect(readServerDrain(dir)).toMatchObject({ enabled: true, message: DEFAULT_DRAIN_MESSAGE, source: 'server' });
  });

  it.each([
    { local: false, server: false, applies: 'none' },
    { local: true, server: false, applies: 'local' },
    { local: false, server: true, applies: 'server' },
    { local: true, server: true, applies: 'local' },
  ])('local $local, control plane $server: the $applies drain applies', ({ local, server, applies }) => {
    const l = { enabled: local, message: 'l', source: 'local' as const, updatedAt: '' };
    const s = { enabled: server, message: 's', source: 'server' as const, updatedAt: '' };
    const e = effectiveDrain(l, s);
    expect(e.enabled ? e.source : 'none').toBe(applies);
  });

  it('DrainState persists the control plane drain before adopting it; a new state reads it back', () => {
    const at = Date.parse('2027-01-15T08:00:00Z');
    const state = new DrainState(dir, { now: () => at });
    state.setServer({ enabled: true, message: 'storage upgrade' });
    expect(state.current).toMatchObject({
      enabled: true,
      message: 'storage upgrade',
      source: 'server',
      updatedAt: '2027-01-15T08:00:00.000Z', // dated by the clock it was given
    });
    expect(new DrainState(dir, systemClock).current).toMatchObject({ enabled: true, message: 'storage upgrade' });
    writeDrain(dir, { enabled: true, message: 'mine', source: 'local' }, systemClock);
    expect(state.refresh()).toBe(true);
    expect(state.current).toMatchObject({ message: 'mine', source: 'local' });
  });
});
