/**
 * The conformance kit on the restic plugin, against the real restic binary: sample data backed up
 * into a fresh repository, an increment, each point restored and compared byte for byte, a cancel
 * midway, a delete, the repository's identity checked, no repository created by a backup.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describeConformance } from '@cairn/plugin-conformance/vitest';
import { hasRestic } from '@cairn/test-harness/restic';
import { describe } from 'vitest';

const PASSWORD = 'conformance-password';

describe.runIf(hasRestic)('restic', () => {
  describeConformance('@cairn/plugin-restic conformance', {
    // The built package, loaded as the agent loads it (the package.json "cairn" field included).
    packageName: fileURLToPath(new URL('..', import.meta.url)),
    connection: ({ scratch }) => {
      const repo = `${scratch}/repo`;
      // As an operator would: `restic init` first (no operation but a preflight asked to
      // initialise creates a repository, so that a wrong or unmounted path never forks the
      // catalogue). The kit asks for the connection more than once.
      if (!existsSync(`${repo}/config`))
        execFileSync('restic', ['init', '--repo', repo], {
          env: { ...process.env, RESTIC_PASSWORD: PASSWORD },
          stdio: 'ignore',
        });
      return { endpoint: repo, config: {}, credentials: { password: PASSWORD } };
    },
    // Nothing is ever made there: the kit checks that a backup to it fails REPOSITORY_NOT_FOUND.
    absentConnection: ({ scratch }) => ({ endpoint: `${scratch}/absent` }),
    locatorFor: (dir) => ({ paths: [dir] }),
    // restic restores each path at its absolute path below the target.
    restoredDirFor: (target, dirs) => `${target}${dirs.data}`,
  });
});
