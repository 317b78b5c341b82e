/**
 * The fake Kubernetes API server as a process of its own, for kubectl and for suites that are
 * given a cluster only as a kubeconfig (`CAIRN_TEST_KUBECONFIG`): prints `kubeconfig <path>` once
 * it listens, serves until SIGINT or SIGTERM, then removes its directory.
 *
 * @example
 * node --import tsx test/kube-apiserver-fake/serve.ts --preset csi-hostpath
 * # kubeconfig /tmp/cairn-kube-x1y2/kubeconfig.yaml
 * kubectl --kubeconfig /tmp/cairn-kube-x1y2/kubeconfig.yaml get storageclass
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startFakeKube } from './index.js';

const USAGE = 'usage: serve.ts [--preset csi-hostpath] [--snapshot-delay-ms N]';

function options(): { preset?: 'csi-hostpath'; snapshotDelayMs: number } {
  try {
    const { values } = parseArgs({
      options: { preset: { type: 'string' }, 'snapshot-delay-ms': { type: 'string', default: '50' } },
      strict: true,
      allowPositionals: false,
    });
    if (values.preset !== undefined && values.preset !== 'csi-hostpath')
      throw new Error(`--preset must be csi-hostpath, not ${JSON.stringify(values.preset)}`);
    const delay = Number(values['snapshot-delay-ms']);
    if (!Number.isInteger(delay) || delay < 0 || delay > 600_000)
      throw new Error(
        `--snapshot-delay-ms must be a whole number of milliseconds (0-600000), not ${values['snapshot-delay-ms']}`,
      );
    return { ...(values.preset ? { preset: 'csi-hostpath' as const } : {}), snapshotDelayMs: delay };
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
}

const opts = options();
const dir = await mkdtemp(join(tmpdir(), 'cairn-kube-'));
const kube = await startFakeKube({ dir, ...opts });
process.stdout.write(`kubeconfig ${kube.kubeconfigPath}\n`);
const stop = async () => {
  await kube.close();
  await rm(dir, { recursive: true, force: true });
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
