import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import type { Api } from './api.js';
import { assignOffering } from './scenario.js';

/**
 * Whether a restic binary runs here. The restic plugin's tests use the real one; without it they
 * are skipped with a notice (outside CI), as the MySQL half is without a database.
 */
export const hasRestic = spawnSync('restic', ['version'], { stdio: 'ignore' }).status === 0;

/** restic run directly on `repo` with `password`, as an operator would: its stdout. */
export function resticCli(repo: string, password: string, args: string[]): string {
  return execFileSync('restic', args, {
    encoding: 'utf8',
    env: { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: password },
    stdio: 'pipe',
  });
}

/** Processes running restic on `repo` (by their command line or environment), as /proc shows them. */
export function resticProcessesOn(repo: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (!cmdline.split('\0')[0]!.endsWith('restic')) continue;
      const environ = fs.readFileSync(`/proc/${entry}/environ`, 'utf8');
      if (cmdline.includes(repo) || environ.includes(`RESTIC_REPOSITORY=${repo}`)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return pids;
}

/** What the harness needs of an API client (test/harness/api.ts). */
interface Caller {
  expect<T = any>(status: number, method: string, path: string, body?: unknown): Promise<T>;
}

/**
 * Creates the repository of a restic provider connection as an SP admin does: the connection's
 * preflight with `initialise` (no backup ever creates one). Fails unless every check passed;
 * answers the preflight report.
 */
export async function initialiseRepository(
  admin: Caller,
  zone: string,
  providerId: string,
): Promise<{ ok: boolean; checks: { name: string; ok: boolean; message: string }[] }> {
  const report = await admin.expect(200, 'POST', `/v1/zones/${zone}/providers/${providerId}/preflight`, {
    initialise: true,
  });
  if (!report.ok) throw new Error(`the preflight with initialise failed: ${JSON.stringify(report.checks)}`);
  return report;
}

/**
 * Through the API: an offering on the restic connection `providerId` that allows ad-hoc backups,
 * and an instance backing up `paths` on the agent `agentId`, assigned to it (set by the sp-admin,
 * as a restic locator is unless the connection grants roots).
 */
export async function protectPaths(
  admin: Api,
  opts: { zone: string; providerId: string; agentId: string; name: string; paths: string[] },
): Promise<{ offeringId: string; instanceId: string }> {
  const offering = await admin.expect(201, 'POST', '/v1/offerings', {
    name: opts.name,
    zone: opts.zone,
    providerId: opts.providerId,
    allowAdhoc: true,
    allowUserSchedules: false,
  });
  const instance = await admin.expect(201, 'POST', '/v1/instances', {
    name: opts.name,
    zone: opts.zone,
    locator: { paths: opts.paths },
    agentId: opts.agentId,
  });
  await assignOffering(admin, instance.id, offering.id);
  return { offeringId: offering.id, instanceId: instance.id };
}
