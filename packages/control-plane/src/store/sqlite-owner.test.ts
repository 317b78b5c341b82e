import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { claimSqliteFile, SqliteOwnedError } from './sqlite-owner.js';

let dir: string;
let file: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-owner-'));
  file = path.join(dir, 'cairn.db');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The pid of a process that ran and is gone. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

describe('the owner of a SQLite database', () => {
  it('is this process once claimed, and nobody after release', () => {
    const owner = claimSqliteFile(file);
    expect(JSON.parse(fs.readFileSync(`${file}.owner`, 'utf8'))).toMatchObject({ pid: process.pid });
    owner.release();
    expect(fs.existsSync(`${file}.owner`)).toBe(false);
  });

  it('refuses a claim while another live process holds it, naming the pid and the way out', () => {
    // The test runner's parent process stands for another control plane: alive, not us.
    fs.writeFileSync(`${file}.owner`, JSON.stringify({ pid: process.ppid, startedAt: null }));
    const claim = () => claimSqliteFile(file);
    expect(claim).toThrow(SqliteOwnedError);
    expect(claim).toThrow(`in use by another control plane (pid ${process.ppid})`);
    expect(claim).toThrow('MySQL/MariaDB');
    // Nothing changed: the other process still owns it.
    expect(JSON.parse(fs.readFileSync(`${file}.owner`, 'utf8'))).toMatchObject({ pid: process.ppid });
  });

  it('takes over the file of a process that is gone, or of a pid now running another program', () => {
    fs.writeFileSync(`${file}.owner`, JSON.stringify({ pid: deadPid(), startedAt: null }));
    claimSqliteFile(file).release();
    if (fs.existsSync(`/proc/${process.ppid}/stat`)) {
      // The parent's pid with another start time: the pid was reused since.
      fs.writeFileSync(`${file}.owner`, JSON.stringify({ pid: process.ppid, startedAt: '1' }));
      claimSqliteFile(file).release();
    }
    // A file cut short by a crash while it was written.
    fs.writeFileSync(`${file}.owner`, '{"pi');
    claimSqliteFile(file).release();
  });
});
