import http from 'node:http';

/**
 * Figures of request latencies measured while a test loads the control plane.
 *
 * A test on a shared machine may not bound the tail: the slowest few requests measure how the
 * machine's cores were shared at that moment (other test files, other processes), not the
 * control plane. The freeze such tests guard against (the process blocked, so every request
 * waits seconds) moves the median, which scheduling hiccups do not. So a test asserts the median
 * and that every request answered, and prints the tail as a figure; bounds on the tail belong in
 * the benchmarks, which run alone.
 */
export interface LatencyFigures {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** The p-th percentile of ascending `sorted` (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new Error('no latencies were measured');
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

/** Count, median, 99th percentile and maximum of `latencies` (ms, rounded to 0.1). */
export function latencyFigures(latencies: readonly number[]): LatencyFigures {
  const sorted = [...latencies].sort((a, b) => a - b);
  const round = (ms: number) => Math.round(ms * 10) / 10;
  return {
    count: sorted.length,
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1]!),
  };
}

/**
 * The median a test allows before it calls the control plane frozen: far above what a loaded
 * 2-core machine measures (under 10 ms with every core busy elsewhere), far below what a frozen
 * process gives (seconds for every request).
 */
export const FROZEN_MEDIAN_MS = 1000;

/**
 * A GET over a connection of its own (no keep-alive): how a load balancer's probe asks. A pooled
 * keep-alive socket can meet the server closing it as idle at the moment a request goes out (a
 * reset the client did nothing to earn), more often the more loaded the machine; a probe that
 * opens its own connection never does. Resolves with the status, the body and the milliseconds
 * from asking to the last byte.
 */
export function probe(url: string, timeoutMs = 30_000): Promise<{ status: number; body: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8'),
          ms: performance.now() - started,
        }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}
