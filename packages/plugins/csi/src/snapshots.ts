/**
 * Removing what the plugin made, and waiting on the cluster; shared by backup, restore and delete.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { PluginError } from '@cairn/plugin-sdk';
import type { Kube, SnapshotObject } from './client.js';

/**
 * Deletes a VolumeSnapshot and every content bound to it, storage snapshot included: each content
 * is switched to `deletionPolicy: Delete` first (it was made through a Retain clone). The snapshot
 * goes first, so no controller binds a new content to it meanwhile.
 */
export async function destroySnapshot(kube: Kube, namespace: string, name: string): Promise<void> {
  await kube.remove('volumesnapshots', name, namespace);
  const contents = (await kube.list('volumesnapshotcontents')).filter((c) => refersTo(c, namespace, name));
  for (const content of contents) await destroyContent(kube, content);
}

/** Deletes a content and, through `deletionPolicy: Delete`, its storage snapshot. */
export async function destroyContent(kube: Kube, content: SnapshotObject): Promise<void> {
  let current: SnapshotObject | undefined = content;
  for (let attempt = 0; current && current.spec?.['deletionPolicy'] !== 'Delete'; attempt++) {
    try {
      current = await kube.replace('volumesnapshotcontents', {
        ...current,
        spec: { ...current.spec, deletionPolicy: 'Delete' },
      });
    } catch (err) {
      if ((err as { status?: number }).status !== 409 || attempt >= 5) throw err;
      current = await kube.get('volumesnapshotcontents', content.metadata.name);
    }
  }
  if (current) await kube.remove('volumesnapshotcontents', current.metadata.name);
}

/**
 * Deletes a restore's stand-in snapshot and its `Retain` content; the storage snapshot, which the
 * backup's own content still names, stays.
 */
export async function dropReplica(kube: Kube, namespace: string, snapshot: string, content: string): Promise<void> {
  await kube.remove('volumesnapshots', snapshot, namespace);
  const current = await kube.get('volumesnapshotcontents', content);
  if (!current) return;
  if (current.spec?.['deletionPolicy'] !== 'Retain')
    throw new PluginError(
      'REPLICA_NOT_RETAIN',
      `VolumeSnapshotContent ${content} is not Retain: left in place so as not to delete the backup's snapshot`,
    );
  await kube.remove('volumesnapshotcontents', content);
}

export function refersTo(content: SnapshotObject, namespace: string, name: string): boolean {
  const ref = content.spec?.['volumeSnapshotRef'] as { namespace?: string; name?: string } | undefined;
  return ref?.namespace === namespace && ref.name === name;
}

/**
 * Calls `check` every `intervalMs` until it answers true; fails on abort or after `timeoutMs`
 * with `timeoutMessage()`.
 */
export async function waitFor(
  check: () => Promise<boolean>,
  opts: { intervalMs: number; timeoutMs: number; signal: AbortSignal; timeoutMessage: () => string; now: () => number },
): Promise<void> {
  const deadline = opts.now() + opts.timeoutMs;
  for (;;) {
    opts.signal.throwIfAborted();
    // A cancel that came while it looked (e.g. on the progress it reported) wins over a done wait.
    if (await check()) return opts.signal.throwIfAborted();
    if (opts.now() >= deadline) throw new PluginError('TIMEOUT_WAITING', opts.timeoutMessage(), { retryable: true });
    await sleep(opts.intervalMs, undefined, { signal: opts.signal });
  }
}
