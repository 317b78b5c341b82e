import { spawnSync } from 'node:child_process';

/**
 * Whether `systemd-analyze` runs here. The unit files' tests use it; without it (a laptop
 * without systemd) they are skipped with a notice, outside CI.
 */
export const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0;

/**
 * What `systemd-analyze verify` says about a unit file: every line it prints that names the unit
 * (its file or its name), and its exit code. Lines about other units are none of the file's doing.
 */
export function verifyUnit(file: string): { status: number | null; problems: string[] } {
  const run = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8' });
  const name = file.slice(file.lastIndexOf('/') + 1);
  const problems = `${run.stdout}\n${run.stderr}`
    .split('\n')
    .filter((line) => line.includes(name) || line.includes(file));
  return { status: run.status, problems };
}
