/**
 * F1 with the restic plugin: agents killed with -9 at random moments while real restic backups
 * write into one repository. 100 backups (300 with `CAIRN_TEST_FAULTS=long`) of small directory
 * trees on two agents, and a killer that takes one agent down every 0.5-2 s and starts it again on
 * the same state directory, so kills land inside restic's own writes (packs, index, snapshot) as
 * well as in the agent's. The checker: every task ends exactly once (succeeded, or failed
 * AGENT_INTERRUPTED); a success has one record whose snapshot is in the repository; no progress
 * report or event stored twice; `restic check` finds the repository sound; and a sync afterwards
 * accounts for every snapshot a killed attempt left behind (adopted, so that the repository holds
 * nothing Cairn has no record of). The seed is printed: `CAIRN_TEST_FAULTS_SEED=<n>` replays it.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { backends } from '@cairn/test-harness/databases';
import { backupHistory, backupsUnderAgentKills, historyFigures } from '@cairn/test-harness/fault-checks';
import { allPages } from '@cairn/test-harness/lists';
import { hasRestic, initialiseRepository, resticCli, resticProcessesOn } from '@cairn/test-harness/restic';
import { seededRandom } from '@cairn/test-harness/random';
import { assignOffering, ENDED, waitForTask } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const LONG = process.env['CAIRN_TEST_FAULTS'] === 'long';
const BACKUPS = LONG ? 300 : 100;
const PASSWORD = 'f1-restic-password-2c9e-41ab';
const PLUGIN = '@cairn/plugin-restic';
const SLOTS = 2;

describe.runIf(hasRestic).each(backends)('F1 with restic: agents killed -9 mid-backup (%s)', (backend) => {
  const stack = withStack(backend);
  const work = stack.tempDir('f1-restic');
  const repo = path.join(work, 'repo');

  it(
    `${BACKUPS} restic backups: each ends once, every record's snapshot in a sound repository, nothing left unaccounted`,
    { timeout: LONG ? 1_800_000 : 400_000 },
    async () => {
      const seed = Number(process.env['CAIRN_TEST_FAULTS_SEED'] ?? Date.now() % 1_000_000);
      const rand = seededRandom(seed);
      const api = stack.admin;
      const agentArgs = { plugins: PLUGIN, slots: SLOTS, args: ['--roots', work] };
      const agents = [
        await stack.addAgent({ name: 'restic-1', plugins: PLUGIN, slots: SLOTS, roots: [work] }),
        await stack.addAgent({ name: 'restic-2', plugins: PLUGIN, slots: SLOTS, roots: [work] }),
      ];
      const provider = await api.expect(201, 'POST', '/v1/zones/zone-a/providers', {
        name: 'restic-f1',
        plugin: PLUGIN,
        endpoint: repo,
        config: {},
        credentials: { password: PASSWORD },
      });
      await initialiseRepository(api, 'zone-a', provider.id);
      const offering = await api.expect(201, 'POST', '/v1/offerings', {
        name: 'f1-restic',
        zone: 'zone-a',
        providerId: provider.id,
        allowAdhoc: true,
        allowUserSchedules: false,
      });

      // Each instance a small tree on one agent: a few files of random sizes (restic's own work
      // takes a fraction of a second, so kills land inside it as often as outside).
      const instances: string[] = [];
      for (let i = 0; i < BACKUPS; i++) {
        const dir = path.join(work, 'data', `vm-${i}`);
        fs.mkdirSync(dir, { recursive: true });
        for (let f = 0; f < 4; f++)
          fs.writeFileSync(path.join(dir, `f${f}.bin`), randomBytes(1000 + Math.floor(rand() * 400_000)));
        const instance = await api.expect(201, 'POST', '/v1/instances', {
          name: `vm-${i}`,
          zone: 'zone-a',
          locator: { paths: [dir] },
          agentId: agents[i % agents.length]!.agentId,
        });
        await assignOffering(api, instance.id, offering.id);
        instances.push(instance.id as string);
      }

      const run = await backupsUnderAgentKills(api, {
        instanceIds: instances,
        agents: agents.map((a) => a.proc),
        restart: (i) => stack.runAgent(agents[i]!.stateDir, agentArgs),
        rand,
        timeoutMs: LONG ? 900_000 : 300_000,
        label: `F1 restic (${backend}, seed ${seed})`,
      });
      const { ended, succeeded } = run;
      let figures = run.figures;
      expect(run.other, `${figures}: ${JSON.stringify(run.other)}`).toEqual([]);
      expect(run.kills, figures).toBeGreaterThan(0);

      const history = await backupHistory(api, ended, null);
      figures += `; ${historyFigures(history)}`;
      expect(history.recordsOff, figures).toEqual([]);
      expect(history.records, figures).toBe(succeeded.length);
      expect(history.progressDoubled, figures).toBe(0);
      expect(history.eventIdsDoubled, figures).toBe(0);
      expect(history.endsOff, figures).toEqual([]);
      expect(history.startedOff, figures).toEqual([]);

      // A restic that a killed agent had started runs on, orphaned, until it ends by itself: wait
      // for those (their number is a figure), then the repository must be sound.
      const lingering = resticProcessesOn(repo);
      await waitFor(
        async () => resticProcessesOn(repo).length === 0,
        'restic processes of killed agents to end',
        120_000,
      );
      figures += `; restic processes still running after the last task ended ${lingering.length}`;
      // Killed restics left stale locks; a prune through Cairn needs the whole repository, and
      // runs (the plugin removes locks of restics gone from the host, never a live one's).
      // Whole lock files (restic writes each under a `-tmp-` name first, then renames it).
      const locks = () => fs.readdirSync(path.join(repo, 'locks')).filter((f) => !f.includes('-tmp-')).length;
      const locksLeft = locks();
      const prune = await api.expect(202, 'POST', `/v1/zones/zone-a/providers/${provider.id}/prune`);
      const pruned = await waitForTask(api, prune.id as string, ENDED, 120_000);
      expect(pruned.state, `${figures}: ${JSON.stringify(pruned.error)}`).toBe('succeeded');
      figures += `; stale locks left by killed restics ${locksLeft}, after a prune through Cairn ${locks()}`;
      expect(locks(), figures).toBe(0);
      // The repository: sound after the kills, and every record's snapshot in it.
      const check = resticCli(repo, PASSWORD, ['check']);
      expect(check, figures).toContain('no errors were found');
      const snapshots = () =>
        (JSON.parse(resticCli(repo, PASSWORD, ['snapshots', '--json'])) as { id: string; short_id: string }[]).map(
          (s) => s.id,
        );
      const records = () => allPages<{ externalId: string; taskId: string | null }>(api, '/v1/backups');
      const inRepo = new Set(snapshots());
      const recorded = await records();
      const missing = recorded.filter((r) => ![...inRepo].some((id) => id.startsWith(r.externalId)));
      expect(missing, figures).toEqual([]);
      const leftBehind = inRepo.size - recorded.length;
      figures += `; snapshots ${inRepo.size}, left behind by killed attempts ${leftBehind}`;

      // A sync accounts for what killed attempts left: each adopted by its instance, once.
      const sync = await api.expect(202, 'POST', `/v1/zones/zone-a/providers/${provider.id}/sync`);
      const synced = await waitForTask(api, sync.id as string, ENDED, 120_000);
      expect(synced.state, JSON.stringify(synced.error)).toBe('succeeded');
      const after = await records();
      const unrecorded = snapshots().filter((id) => !after.some((r) => id.startsWith(r.externalId)));
      const doubled = after.length - new Set(after.map((r) => r.externalId)).size;
      figures += `; after a sync: ${after.length - recorded.length} adopted, ${unrecorded.length} unrecorded, ${doubled} recorded twice`;
      console.info(figures);
      expect(unrecorded, figures).toEqual([]);
      expect(doubled, figures).toBe(0);

      await waitFor(async () => {
        const list = await allPages<{ state: string }>(api, '/v1/agents');
        return list.length === 2 && list.every((a) => a.state === 'connected');
      }, 'both agents connected again');
    },
  );
});
