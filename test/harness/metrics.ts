import type { ControlPlaneProc } from './processes.js';

/**
 * The value of one series of a control plane's `/metrics`: `name` with exactly the labels given
 * (none: the unlabelled series); undefined when it is absent.
 *
 * @example await metricValue(cp, 'cairn_duty_held', { duty: 'rpo-watch' }) // → 1
 */
export async function metricValue(
  cp: ControlPlaneProc,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const text = await (await cp.fetch(`${cp.url}/metrics`)).text();
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
  const series = want === '' ? name : `${name}{${want}}`;
  for (const line of text.split('\n')) {
    const space = line.lastIndexOf(' ');
    if (space > 0 && line.slice(0, space) === series) return Number(line.slice(space + 1));
  }
  return undefined;
}
