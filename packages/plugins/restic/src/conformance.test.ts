/**
 * The conformance kit on the restic plugin, against the real restic binary: sample data backed up
 * into a fresh repository, an increment, each point restored and compared byte for byte, a cancel
 * midway, a delete.
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
      // As an operator would: `restic init` first. (A sync of a repository that does not exist
      // fails REPOSITORY_NOT_FOUND rather than listing nothing, so that a wrong or unmounted path
      // never reads as "every backup vanished".) The kit asks for the connection more than once.
      if (!existsSync(`${repo}/config`))
        execFileSync('restic', ['init', '--repo', repo], {
          env: { ...process.env, RESTIC_PASSWORD: PASSWORD },
          stdio: 'ignore',
        });
      return { endpoint: repo, config: {}, credentials: { password: PASSWORD } };
    },
    locatorFor: (dir) => ({ paths: [dir] }),
    // restic restores each path at its absolute path below the target.
    restoredDirFor: (target, dirs) => `${target}${dirs.data}`,
  });
});
