/**
 * B7 wire: the agent protocol's frames encoded with the real `@cairn/proto` codec (protobuf)
 * against the same frames as JSON (`JSON.stringify` to UTF-8 bytes, `JSON.parse` back): bytes on
 * the wire, encode and decode ns per frame. Pure in-process. Every measurement runs three times
 * (the A/A band); the headline is protobuf ÷ JSON per frame kind.
 */
import { performance } from 'node:perf_hooks';
import { decodeFrame, encodeFrame, type wire } from '@cairn/proto';
import { band, bandText, disturbance, log, writeResults, type Band } from './common.js';
import { cpuWindow } from './cpu.js';

export interface WireOptions {
  /** Operations per timed measurement. */
  ops: number;
}

const REPEATS = 3;

/** What the control plane sends and agents report for a restic backup of a VM's disks. */
const FRAMES: Record<string, wire.IEnvelope> = {
  assign: {
    assign: {
      taskId: 'tsk_01JD6Q3X8N2V4B7C9D1E3F5G7H',
      attempt: 1,
      operation: 'backup',
      plugin: '@cairn/plugin-restic',
      providerConfigJson: JSON.stringify({
        endpoint: 's3:https://s3.eu-central-1.example.com/cairn-backups-prod/zone-fra1',
        config: {
          repositoryPrefix: 'tenants/{tenant}',
          compression: 'auto',
          packSizeMiB: 16,
          excludes: ['/proc', '/sys', '/dev', '/run', '/tmp', '/var/cache', '*.swp'],
          readConcurrency: 4,
          uploadLimitKiB: 0,
        },
        credentials: {
          AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
          AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
          RESTIC_PASSWORD: 'correct-horse-battery-staple-0123456789',
        },
        identity: 'repo_5f0c1a9b7e2d4c3a',
      }),
      paramsJson: JSON.stringify({
        instanceId: 'ins_01JD6Q2ZV1M3K5P7R9T1W3Y5A7',
        instanceName: 'web-frontend-03.prod.fra1',
        locator: { vm: 'web-frontend-03', host: 'hv-fra1-17', paths: ['/', '/var/lib/postgresql'] },
        mode: 'INCREMENT',
        parentExternalId: '8f3c2a1b9d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a',
        tags: { tenant: 'acme', schedule: 'nightly' },
      }),
      tenantId: 'ten_acme',
    },
  },
  progress: {
    progress: {
      spoolSeq: 184_467,
      taskId: 'tsk_01JD6Q3X8N2V4B7C9D1E3F5G7H',
      attempt: 1,
      percent: 42.7,
      bytesDone: 45_812_345_678,
      bytesTotal: 107_374_182_400,
      message: 'backup: 19366 files, 42.7 GiB of 100 GiB, ETA 4m12s',
      atMs: 1_764_740_000_123,
    },
  },
  result: {
    result: {
      spoolSeq: 184_512,
      taskId: 'tsk_01JD6Q3X8N2V4B7C9D1E3F5G7H',
      attempt: 1,
      atMs: 1_764_740_301_456,
      ok: {
        backup: {
          externalId: '2b7d9e4f6a8c0e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f',
          sizeBytes: 107_374_182_400,
          addedBytes: 1_288_490_188,
          mode: 'INCREMENT',
          parentExternalId: '8f3c2a1b9d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a',
          extraJson: JSON.stringify({
            filesNew: 212,
            filesChanged: 1304,
            filesUnmodified: 178_220,
            dataBlobs: 5120,
            treeBlobs: 611,
            durationS: 301.3,
            resticVersion: '0.17.3',
          }),
        },
      },
    },
  },
};

interface Codec {
  encode: (f: wire.IEnvelope) => Uint8Array;
  decode: (b: Uint8Array) => unknown;
}

const CODECS: Record<'protobuf' | 'json', Codec> = {
  protobuf: { encode: encodeFrame, decode: (b) => decodeFrame(b) },
  json: {
    encode: (f) => Buffer.from(JSON.stringify(f)),
    decode: (b) => JSON.parse(Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8')) as unknown,
  },
};

/** ns per call of `fn`, over `ops` calls; the result is kept so the work cannot be optimised away. */
function nsPerOp(ops: number, fn: () => unknown): number {
  let sink = 0;
  const t0 = performance.now();
  for (let i = 0; i < ops; i++) sink += fn() === undefined ? 0 : 1;
  const ns = ((performance.now() - t0) * 1e6) / ops;
  if (sink !== ops) throw new Error('a codec returned nothing');
  return ns;
}

interface Measured {
  frame: string;
  codec: string;
  bytes: number;
  encodeNs: Band;
  decodeNs: Band;
}

export async function runWireBench(opts: WireOptions): Promise<void> {
  const startedAt = new Date();
  const cpu = cpuWindow({ bench: [process.pid] });
  const results: Measured[] = [];
  for (const [frame, body] of Object.entries(FRAMES))
    for (const [codec, c] of Object.entries(CODECS)) {
      const bytes = c.encode(body);
      // Both codecs must carry the frame whole, or the comparison is meaningless.
      const again = c.encode(c.decode(bytes) as wire.IEnvelope);
      if (Buffer.compare(Buffer.from(again), Buffer.from(bytes)) !== 0)
        throw new Error(`${codec} does not round-trip the ${frame} frame`);
      nsPerOp(opts.ops, () => c.decode(c.encode(body))); // warm-up: the JIT settles first
      const enc: number[] = [];
      const dec: number[] = [];
      for (let r = 0; r < REPEATS; r++) {
        enc.push(nsPerOp(opts.ops, () => c.encode(body)));
        dec.push(nsPerOp(opts.ops, () => c.decode(bytes)));
      }
      results.push({ frame, codec, bytes: bytes.byteLength, encodeNs: band(enc), decodeNs: band(dec) });
      log(`${frame} ${codec}: ${bytes.byteLength} B`);
    }
  const { foreignPct, disturbed } = disturbance([cpu()]);
  const ratios = Object.keys(FRAMES).map((frame) => {
    const pb = results.find((r) => r.frame === frame && r.codec === 'protobuf')!;
    const js = results.find((r) => r.frame === frame && r.codec === 'json')!;
    return {
      frame,
      bytes: pb.bytes / js.bytes,
      encode: pb.encodeNs.median / js.encodeNs.median,
      decode: pb.decodeNs.median / js.decodeNs.median,
    };
  });
  await writeResults({
    benchmark: 'wire',
    startedAt,
    title: `wire: protobuf (@cairn/proto) vs JSON, ${opts.ops} ops per measurement, ${REPEATS} measurements each`,
    options: { ...opts },
    head: ['frame', 'codec', 'bytes', 'encode ns/op', 'decode ns/op'],
    rows: [
      ...results.map((r) => [r.frame, r.codec, String(r.bytes), bandText(r.encodeNs), bandText(r.decodeNs)]),
      ...ratios.map((r) => [r.frame, 'protobuf ÷ JSON', r.bytes.toFixed(2), r.encode.toFixed(2), r.decode.toFixed(2)]),
    ],
    notes: [
      'each ns/op cell: median of the measurements (each measurement in brackets, spread = (max − min) ÷ median: differences below it are noise)',
      'JSON = JSON.stringify of the same envelope to UTF-8 bytes, decoded with JSON.parse; protobuf = encodeFrame/decodeFrame',
      'the JSON strings inside (provider config, params, extra) are the same in both: only the framing differs',
    ],
    figures: { results, ratios },
    disturbed,
    foreignPct,
  });
}
