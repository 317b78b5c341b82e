import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hasChromium } from './browser.js';
import { hasRestic } from './restic.js';
import { hasSystemdAnalyze } from './systemd.js';

/** What the suite needs but may do without: in CI its absence is an error, elsewhere a notice of what is skipped. */
function optional(present: boolean, missing: string, notice: string): void {
  if (present) return;
  if (process.env['CI'] === 'true') throw new Error(`CI=true but ${missing}`);
  process.stdout.write(notice);
}

/**
 * Checks what the suite needs before any file runs, and says what is skipped. Makes the run's own
 * temporary directory, where the harness's `tempDir` puts every directory a test asks for, and
 * removes it when the run ends: a test that leaves its directories (or a run stopped half-way
 * through a file) leaves nothing in the system's temporary directory after the run.
 */
export default function setup(): () => void {
  optional(
    hasRestic,
    'restic does not run here: the restic plugin tests cannot be skipped in CI',
    '\n[cairn] restic is not installed: the restic plugin tests are skipped.\n' +
      '        Install it (Debian/Ubuntu: apt-get install restic; 0.14 or newer) to run them.\n',
  );
  optional(
    hasSystemdAnalyze,
    'systemd-analyze does not run here: the systemd unit checks cannot be skipped in CI',
    '\n[cairn] systemd-analyze is not installed: `systemd-analyze verify` of deploy/systemd/ is skipped.\n' +
      '        Install it (Debian/Ubuntu: apt-get install systemd) to run it.\n',
  );
  optional(
    hasChromium,
    '/usr/bin/chromium is missing: the web console browser tests cannot be skipped in CI',
    '\n[cairn] chromium is not installed: the web console browser tests are skipped.\n' +
      '        Install it (Debian: apt-get install chromium) to run them.\n',
  );
  optional(
    Boolean(process.env['CAIRN_TEST_MYSQL_URL']),
    'CAIRN_TEST_MYSQL_URL is not set: the MySQL half of the suite cannot be skipped in CI',
    '\n[cairn] CAIRN_TEST_MYSQL_URL is not set: store and end-to-end tests run on SQLite only; MySQL runs are skipped.\n' +
      '        Set it (e.g. mysql://root@127.0.0.1:3306) to run them on MySQL/MariaDB too.\n\n',
  );
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-run-'));
  process.env['CAIRN_TEST_TMPDIR'] = runDir;
  return () => fs.rmSync(runDir, { recursive: true, force: true });
}
