import fs from 'node:fs';
import type { Api } from './api.js';
import type { ControlPlaneProc } from './processes.js';
import { waitFor } from './wait.js';

/*
 * The scheduler in real processes under the test-only clock: a test writes the time into the
 * clock file, then waits until the control plane's scheduler has completed a tick at that time
 * (its /metrics gauge) before it looks: no sleeping, no dependence on the machine's speed.
 */

const SECRET_KEY = 'b'.repeat(64);

export function clockEnv(file: string): Record<string, string> {
  return { NODE_ENV: 'test', CAIRN_TEST_CLOCK_FILE: file, CAIRN_SCHEDULER_TICK_MS: '50', CAIRN_SECRET_KEY: SECRET_KEY };
}

export function setClock(file: string, iso: string): void {
  fs.writeFileSync(`${file}.tmp`, iso);
  fs.renameSync(`${file}.tmp`, file);
}

/** Resolves once `cp`'s scheduler finished a tick whose clock read `iso` or later. */
export async function tickedAt(cp: Pick<ControlPlaneProc, 'url'>, iso: string): Promise<void> {
  const want = Date.parse(iso) / 1000;
  await waitFor(async () => {
    const text = await (await fetch(`${cp.url}/metrics`)).text();
    const m = /^cairn_scheduler_tick_clock_seconds (\S+)$/m.exec(text);
    return m !== null && Number(m[1]) >= want;
  }, `a scheduler tick at ${iso}`);
}

export async function backupTasks(api: Api, instanceId: string): Promise<{ id: string; state: string }[]> {
  return (await api.expect(200, 'GET', `/v1/tasks?kind=backup&instanceId=${instanceId}&limit=500`)).items;
}

/** Every event `api` may see that `keep` accepts, oldest first (pages through the whole stream). */
export async function eventsWhere(api: Api, keep: (event: any) => boolean): Promise<any[]> {
  const all: any[] = [];
  let after = 0;
  for (;;) {
    const page = (await api.expect(200, 'GET', `/v1/events?after=${after}&limit=500`)).items as any[];
    if (page.length === 0) return all.filter(keep);
    all.push(...page);
    after = page[page.length - 1].id;
  }
}

/** The events of one type about one instance. */
export async function eventsOf(api: Api, type: string, instanceId: string): Promise<any[]> {
  return eventsWhere(api, (e) => e.type === type && e.instanceId === instanceId);
}
