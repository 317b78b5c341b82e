/**
 * Paged sync: a dummy provider holding 100,000 restore points (kept many to a file in its
 * catalogue, as a system with a catalogue keeps them) syncs in pages; one sync cut off midway (the
 * agent killed -9 while its pages go out) marks nothing vanished, and the next one completes and
 * marks exactly the points taken away. Figures per sync: points, pages, time, peak RSS (VmHWM) of
 * the agent and the control plane. `CAIRN_TEST_PAGED_SYNC_POINTS` sets another size.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { tempDir } from '@cairn/test-harness/processes';
import { ENDED, protectInstance, waitForTask } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const POINTS = Number(process.env['CAIRN_TEST_PAGED_SYNC_POINTS'] ?? 100_000);
/** Points of the protected instance (adopted by the first sync); the rest name no instance of Cairn's. */
const OWNED = 50;
const TAKEN = 5;

/** The most RSS a process has had (kB in /proc, here in MiB). */
function peakMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

/**
 * The dummy's catalogue: one point a line. Written in slices, letting the event loop go between
 * them: a test process blocked for seconds would reuse an HTTP connection the control plane has
 * closed meanwhile (its keep-alive ends after 5 s).
 */
async function writeCatalogue(dir: string, instanceId: string, skip: Set<string> = new Set()): Promise<void> {
  const file = path.join(dir, 'catalogue.jsonl');
  fs.writeFileSync(file, '');
  for (let from = 0; from < POINTS; from += 5000) {
    const lines: string[] = [];
    for (let i = from; i < Math.min(POINTS, from + 5000); i++) {
      const id = `seed-${String(i).padStart(6, '0')}`;
      if (skip.has(id)) continue;
      const instance = i < OWNED ? instanceId : 'ins_elsewhere';
      const createdAt = new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
      lines.push(`${JSON.stringify({ id, instance, mode: 'FULL', parent: null, size: 7, createdAt })}\n`);
    }
    fs.appendFileSync(file, lines.join(''));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe.each(backends)('paged sync of %s', (backend) => {
  const stack = withStack(backend, {
    // Pages are bytes: the default budget (128 KiB/s) would take minutes over 20 MB.
    env: { CAIRN_AGENT_BYTE_RATE: String(64 * 1024 * 1024) },
    agents: [{ name: 'host-1' }],
  });

  async function requestSync(api: Api, providerId: string): Promise<string> {
    const r = await api.call('POST', `/v1/zones/zone-a/providers/${providerId}/sync`);
    expect(r.status).toBe(202);
    return r.body.id as string;
  }

  it(
    `${POINTS} restore points sync in pages; a sync cut off midway marks nothing vanished`,
    { timeout: 300_000 },
    async () => {
      const api = stack.admin;
      const storeDir = tempDir('dummy-store');
      const p = await protectInstance(api, 'zone-a', { config: { durationMs: 50, steps: 1, storeDir } });
      await writeCatalogue(storeDir, p.instanceId);
      const store = await stack.store();
      const pagesOf = async (taskId: string) =>
        Number(
          (
            await store.db
              .selectFrom('syncPages')
              .select((eb) => eb.fn.countAll<number | string>().as('n'))
              .where('taskId', '=', taskId)
              .executeTakeFirstOrThrow()
          ).n,
        );
      const outputOf = async (taskId: string) =>
        (await store.db.selectFrom('tasks').select('output').where('id', '=', taskId).executeTakeFirstOrThrow()).output;
      const records = async () =>
        (await api.expect(200, 'GET', `/v1/backups?instanceId=${p.instanceId}&limit=500`)).items as {
          externalId: string;
          vanishedAt: string | null;
        }[];
      const drift = () => api.expect(200, 'GET', `/v1/zones/zone-a/providers/${p.providerId}/drift`);
      // 1: the whole listing, in pages.
      let t0 = Date.now();
      const first = await waitForTask(api, await requestSync(api, p.providerId), ENDED, 240_000);
      const firstMs = Date.now() - t0;
      expect(first.state).toBe('succeeded');
      const paged = JSON.parse((await outputOf(first.id)) ?? 'null') as { cairnPages: number; points: number };
      expect(paged.points).toBe(POINTS);
      expect(await pagesOf(first.id)).toBe(0); // the pages go with the task's end
      const report = await drift();
      expect(report.taskId).toBe(first.id);
      expect(report.counts).toMatchObject({ known: 0, adopted: OWNED, vanished: 0, orphaned: POINTS - OWNED });
      console.log(
        `paged sync ${backend}: ${POINTS} points in ${paged.cairnPages} pages, ${(firstMs / 1000).toFixed(1)} s; peak RSS agent ${peakMiB(stack.agent.proc.child.pid!)} MiB, control plane ${peakMiB(stack.cp.proc.child.pid!)} MiB`,
      );

      // 2: a sync cut off midway, with points taken away meanwhile: the agent is killed -9 while
      // its pages go out and started again at once. Its spool sends the pages it still held, its
      // journal ends the attempt AGENT_INTERRUPTED: the sync fails and marks nothing vanished.
      const taken = new Set(Array.from({ length: TAKEN }, (_, i) => `seed-${String(i * 7).padStart(6, '0')}`));
      await writeCatalogue(storeDir, p.instanceId, taken);
      t0 = Date.now();
      const cut = await requestSync(api, p.providerId);
      await waitFor(async () => (await pagesOf(cut)) > 0, 'a first page of the sync stored', 120_000);
      await stack.agent.proc.kill9();
      const storedAtKill = await pagesOf(cut);
      stack.agents[0]!.proc = await stack.runAgent(stack.agent.stateDir);
      const ended = await waitForTask(api, cut, ENDED, 60_000);
      expect(ended.state).not.toBe('succeeded');
      expect(storedAtKill).toBeLessThan(paged.cairnPages);
      expect(await pagesOf(cut)).toBe(0);
      expect((await records()).filter((r) => r.vanishedAt !== null)).toEqual([]);
      expect((await drift()).taskId).toBe(first.id);
      console.log(
        `paged sync ${backend}: cut off after ${storedAtKill} of ${paged.cairnPages} pages: ${ended.state} (${ended.error?.code ?? ''}) after ${((Date.now() - t0) / 1000).toFixed(1)} s, 0 marked vanished`,
      );

      // 3: a sync again: it completes and marks exactly the points taken away.
      t0 = Date.now();
      const again = await waitForTask(api, await requestSync(api, p.providerId), ENDED, 240_000);
      expect(again.state).toBe('succeeded');
      const after = await records();
      expect(
        after
          .filter((r) => r.vanishedAt !== null)
          .map((r) => r.externalId)
          .sort(),
      ).toEqual([...taken].sort());
      expect((await drift()).counts).toMatchObject({
        known: OWNED - TAKEN,
        adopted: 0,
        vanished: TAKEN,
        orphaned: POINTS - OWNED,
      });
      console.log(
        `paged sync ${backend}: retried sync ${POINTS - TAKEN} points in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${TAKEN} vanished, ${OWNED - TAKEN} known`,
      );
    },
  );
});
