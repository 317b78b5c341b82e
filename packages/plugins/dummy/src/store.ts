import { mkdir, readFile, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PluginError } from '@cairn/plugin-sdk';

/** One restore point as the dummy keeps it: one JSON file per point, named `<id>.json`. */
export interface RestorePoint {
  id: string;
  instance: string;
  mode: 'FULL' | 'INCREMENT';
  /** The id of the point this increment builds on; null for a full. */
  parent: string | null;
  size: number;
  createdAt: string;
  /** When the point expires (ISO 8601); absent: never. Only files written behind the dummy's back carry one. */
  expiresAt?: string;
}

// Ids come from the control plane's records; anything else must never name a path outside the store.
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;

const fileOf = (dir: string, id: string) => join(dir, `${id}.json`);

/** A schedule the dummy "backup system" runs for one instance (what configure-schedule was given). */
export interface ScheduleFile {
  instanceId: string;
  offeringExternalId: string | null;
  sla: { cron: string; timezone: string; keepLast: number };
  configuredAt: string;
}

/**
 * The schedules the dummy keeps, `<storeDir>/schedules/<instanceId>.json`: a test reads them to
 * see what Cairn configured. The dummy runs no clock of its own between tasks; a test that plays
 * the provider's schedule writes a restore point file into the store itself.
 */
export class ScheduleStore {
  private readonly dir: string;
  constructor(storeDir: string) {
    this.dir = join(storeDir, 'schedules');
  }

  private file(instanceId: string): string {
    if (!SAFE_ID.test(instanceId))
      throw new PluginError('BAD_INSTANCE', `dummy: ${JSON.stringify(instanceId)} cannot name a schedule`);
    return fileOf(this.dir, instanceId);
  }

  async put(schedule: ScheduleFile): Promise<void> {
    const file = this.file(schedule.instanceId);
    await mkdir(this.dir, { recursive: true });
    const tmp = join(this.dir, `.${schedule.instanceId}.tmp`);
    await writeFile(tmp, JSON.stringify(schedule, null, 2));
    await rename(tmp, file);
  }

  /** Removes the instance's schedule; one already gone is fine. */
  async delete(instanceId: string): Promise<void> {
    try {
      await unlink(this.file(instanceId));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/** The file of points kept many to a file: one JSON point a line. */
export const CATALOGUE = 'catalogue.jsonl';

/**
 * The restore points of a dummy "backup system": a directory a test may change behind the
 * control plane's back (add a file, delete one), as an operator could on a real system. Besides
 * one file a point, the store may hold points many to a file, `<storeDir>/catalogue.jsonl` (one
 * point a line, as a system with a catalogue keeps them): a test that needs 100,000 points writes
 * them there at once instead of running 100,000 backups. The dummy lists, restores and deletes
 * those as any other.
 */
export class PointStore {
  constructor(private readonly dir: string) {}

  async get(id: string): Promise<RestorePoint | undefined> {
    if (!SAFE_ID.test(id)) return undefined;
    try {
      return JSON.parse(await readFile(fileOf(this.dir, id), 'utf8')) as RestorePoint;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return (await this.catalogue()).find((p) => p.id === id);
  }

  /** The points of the catalogue file (none without one). */
  private async catalogue(): Promise<RestorePoint[]> {
    let text: string;
    try {
      text = await readFile(join(this.dir, CATALOGUE), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as RestorePoint);
  }

  async list(): Promise<RestorePoint[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const points: RestorePoint[] = [];
    for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
      const point = await this.get(name.slice(0, -'.json'.length));
      if (point) points.push(point);
    }
    for (const point of await this.catalogue()) points.push(point);
    return points.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  /** Written to a temporary name first, so a reader never sees half a point. */
  async put(point: RestorePoint): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = join(this.dir, `.${point.id}.tmp`);
    await writeFile(tmp, JSON.stringify(point, null, 2));
    await rename(tmp, fileOf(this.dir, point.id));
  }

  /** Deletes one point; refuses a missing one and one an increment still builds on. */
  async delete(id: string): Promise<void> {
    const point = await this.get(id);
    if (!point) throw new PluginError('BACKUP_NOT_FOUND', `dummy: no restore point ${id} in the store`);
    const children = (await this.list()).filter((p) => p.parent === id);
    if (children.length > 0) {
      throw new PluginError(
        'BACKUP_HAS_DEPENDENTS',
        `dummy: restore point ${id} is the parent of ${children.map((c) => c.id).join(', ')}`,
      );
    }
    try {
      await unlink(fileOf(this.dir, id));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      const rest = (await this.catalogue()).filter((p) => p.id !== id);
      const tmp = join(this.dir, `.${CATALOGUE}.tmp`);
      await writeFile(tmp, rest.map((p) => `${JSON.stringify(p)}\n`).join(''));
      await rename(tmp, join(this.dir, CATALOGUE));
    }
  }
}

/**
 * An instance's power state: `<storeDir>/power/<instanceId>` holds `running` or `stopped` (a test
 * writes it, as an operator powers a VM on or off); without such a file, the configured default.
 */
export async function powerStateOf(
  opts: { storeDir?: string; powerState: 'running' | 'stopped' },
  instanceId: string,
): Promise<'running' | 'stopped'> {
  if (!opts.storeDir || !SAFE_ID.test(instanceId)) return opts.powerState;
  try {
    const text = (await readFile(join(opts.storeDir, 'power', instanceId), 'utf8')).trim();
    return text === 'running' || text === 'stopped' ? text : opts.powerState;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return opts.powerState;
    throw err;
  }
}
