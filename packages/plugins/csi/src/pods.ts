import type { V1Container, V1Pod } from '@kubernetes/client-node';

/**
 * A pod that runs one container once (`restartPolicy: Never`) with one claim mounted at
 * `mountPath` (the volume is named `data`).
 */
export function oneShotPod(
  meta: { name: string; namespace: string; labels: Record<string, string> },
  claim: string,
  mountPath: string,
  container: Omit<V1Container, 'volumeMounts'>,
): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: meta,
    spec: {
      restartPolicy: 'Never',
      containers: [{ ...container, volumeMounts: [{ name: 'data', mountPath }] }],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: claim } }],
    },
  };
}
