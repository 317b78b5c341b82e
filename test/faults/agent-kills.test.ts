/**
 * F1, agents killed with -9 at random moments while backups run: 100 backups (the dummy plugin, a
 * few steps each) on two agents, and a killer that takes one agent down at a random moment, every
 * 0.5-2 s, and starts it again on the same state directory. The checker reads what the API holds
 * at the end and counts what was lost, doubled or stuck: every task ends exactly once; a backup
 * that succeeded has exactly one record and every one of its progress reports once; an
 * interrupted one has no record; no task event is doubled. `CAIRN_TEST_FAULTS=long` runs 500
 * backups. The seed is printed: `CAIRN_TEST_FAULTS_SEED=<n>` replays a run's kill schedule.
 */
import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { backupHistory, backupsUnderAgentKills, historyFigures } from '@cairn/test-harness/fault-checks';
import { allPages } from '@cairn/test-harness/lists';
import { assignOffering, offerDummy } from '@cairn/test-harness/scenario';
import { seededRandom } from '@cairn/test-harness/random';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const LONG = process.env['CAIRN_TEST_FAULTS'] === 'long';
const BACKUPS = LONG ? 500 : 100;
const STEPS = 4;

describe.each(backends)('F1: agents killed -9 at random moments (%s)', (backend) => {
  const stack = withStack(backend, {
    agents: [
      { name: 'host-1', slots: 4 },
      { name: 'host-2', slots: 4 },
    ],
  });

  it(
    `${BACKUPS} backups: each ends once, nothing lost or doubled`,
    { timeout: LONG ? 1_800_000 : 300_000 },
    async () => {
      const seed = Number(process.env['CAIRN_TEST_FAULTS_SEED'] ?? Date.now() % 1_000_000);
      const rand = seededRandom(seed);
      const api = stack.admin;
      const { offeringId } = await offerDummy(api, 'zone-a', { provider: 'dummy', offering: 'f1' });

      const instances: string[] = [];
      for (let i = 0; i < BACKUPS; i++) {
        const durationMs = 200 + Math.floor(rand() * 1300);
        const instance = await api.expect(201, 'POST', '/v1/instances', {
          name: `vm-${i}`,
          zone: 'zone-a',
          locator: { dummy: { durationMs, steps: STEPS, sizeBytes: 1000 + i } },
        });
        await assignOffering(api, instance.id, offeringId);
        instances.push(instance.id as string);
      }

      // The killer: while backups run, one agent at a time dies with -9 and comes back on its state.
      const run = await backupsUnderAgentKills(api, {
        instanceIds: instances,
        agents: stack.agents.map((a) => a.proc),
        restart: (i) => stack.runAgent(stack.agents[i]!.stateDir),
        rand,
        timeoutMs: LONG ? 600_000 : 180_000,
        label: `F1 (${backend}, seed ${seed})`,
      });
      const { ended, succeeded, figures } = run;
      // Every task ended as succeeded, or failed because its agent was killed under it: nothing else.
      expect(run.other, `${figures}: ${JSON.stringify(run.other)}`).toEqual([]);
      expect(run.kills, figures).toBeGreaterThan(0);

      const history = await backupHistory(api, ended, STEPS);
      console.info(`${figures}; ${historyFigures(history)}`);
      expect(history.recordsOff, figures).toEqual([]);
      expect(history.records, figures).toBe(succeeded.length);
      expect(history.progressLost, figures).toBe(0);
      expect(history.progressDoubled, figures).toBe(0);
      expect(history.eventIdsDoubled, figures).toBe(0);
      expect(history.endsOff, figures).toEqual([]);
      expect(history.startedOff, figures).toEqual([]);

      // And both agents are up and connected at the end.
      await waitFor(async () => {
        const agents = await allPages<{ state: string }>(api, '/v1/agents');
        return agents.length === 2 && agents.every((a) => a.state === 'connected');
      }, 'both agents connected again');
    },
  );
});
