import fs from 'node:fs';

/**
 * SQLite serves one control-plane process: its dispatcher, scheduler and leases assume they are
 * alone on the file (replicas need MySQL/MariaDB). A control plane on SQLite holds
 * `<database file>.owner`, which names its pid and its start time; a second one on the same file
 * finds a live owner and refuses to start, naming it. The file of a process that is gone (killed
 * with -9, a crash) is taken over: its pid no longer runs, or runs another program (pid reuse,
 * told by the start time where `/proc` has it).
 */
export class SqliteOwnedError extends Error {
  constructor(
    readonly file: string,
    readonly pid: number,
  ) {
    super(
      `the SQLite database ${file} is in use by another control plane (pid ${pid}): SQLite serves one process; stop that one first, or run replicas on MySQL/MariaDB (CAIRN_DATABASE_URL=mysql://...)`,
    );
  }
}

interface Owner {
  pid: number;
  /** The process's start time in clock ticks since boot (`/proc/<pid>/stat`), where known. */
  startedAt: string | null;
}

/** A process's start time as `/proc` tells it; null off Linux or when it is gone. */
function startTimeOf(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22, counted after the command name (which may hold spaces) in parentheses.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function runs(owner: Owner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    // EPERM: the pid runs, as another user.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = startTimeOf(owner.pid);
  return owner.startedAt === null || now === null || now === owner.startedAt;
}

function read(path: string): Owner | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(path, 'utf8')) as Partial<Owner>;
    if (typeof parsed.pid !== 'number') return undefined;
    return { pid: parsed.pid, startedAt: typeof parsed.startedAt === 'string' ? parsed.startedAt : null };
  } catch {
    return undefined;
  }
}

/** Writes the owner file unless one exists (false then). */
function write(path: string, me: Owner): boolean {
  try {
    fs.writeFileSync(path, `${JSON.stringify(me)}\n`, { flag: 'wx', mode: 0o644 });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/**
 * Makes this process the owner of the SQLite database `file`; throws {@link SqliteOwnedError}
 * while another live process is. `release()` gives it up (on shutdown).
 */
export function claimSqliteFile(file: string): { release(): void } {
  const path = `${file}.owner`;
  const me: Owner = { pid: process.pid, startedAt: startTimeOf(process.pid) };
  for (let tries = 0; !write(path, me); tries++) {
    const owner = read(path);
    if (owner && owner.pid !== process.pid && runs(owner)) throw new SqliteOwnedError(file, owner.pid);
    if (tries === 2) throw new Error(`could not take ${path}: another process keeps writing it`);
    // Gone, unreadable (a write cut short) or ours: taken over.
    fs.rmSync(path, { force: true });
  }
  return {
    release() {
      const owner = read(path);
      if (owner?.pid === process.pid) fs.rmSync(path, { force: true });
    },
  };
}
