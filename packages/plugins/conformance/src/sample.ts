import { chmod, lstat, mkdir, open, readdir, readlink, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** A run of bytes of a file; the rest of the file is zeros (holes, in a sparse file). */
export interface Block {
  offset: number;
  data: Buffer;
}

export type SampleEntry =
  | { kind: 'dir'; path: string; mode: number }
  /** Blocks later in the list overwrite earlier ones where they overlap. */
  | { kind: 'file'; path: string; mode: number; size: number; blocks: Block[] }
  | { kind: 'symlink'; path: string; target: string };

const MiB = 1024 * 1024;
/** The size of the sparse file: large, with only a few blocks written. */
export const SPARSE_SIZE = 64 * MiB;

/** Deterministic bytes (mulberry32), so every run of the kit writes the same data. */
function bytes(seed: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  let a = seed >>> 0;
  for (let i = 0; i < length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return out;
}

const text = (filePath: string, content: string, mode = 0o644): SampleEntry => {
  const data = Buffer.from(content, 'utf8');
  return { kind: 'file', path: filePath, mode, size: data.length, blocks: [{ offset: 0, data }] };
};

/** What version 2 changes in place, as blocks written over version 1's files. */
const RANDOM_PATCH: Block = { offset: 100_000, data: bytes(7, 16) };
const SPARSE_PATCH: Block = { offset: 20 * MiB, data: bytes(8, 4096) };
const HELLO_MORE = 'changed in version 2\n';

/**
 * The sample data the kit backs up, in two versions: several files, a 64 MiB sparse file with a
 * few written blocks, names with spaces and unicode, nested and empty directories, modes other
 * than 0644, and symlinks. Version 2 changes bytes in place (same size), appends, writes into a
 * hole, adds and removes a file, changes a mode only, and points a symlink elsewhere. Directories
 * come before what they hold.
 */
export function sample(version: 1 | 2): SampleEntry[] {
  const v2 = version === 2;
  const random: SampleEntry = {
    kind: 'file',
    path: 'random.bin',
    mode: 0o644,
    size: 256 * 1024,
    blocks: [{ offset: 0, data: bytes(1, 256 * 1024) }, ...(v2 ? [RANDOM_PATCH] : [])],
  };
  const sparse: SampleEntry = {
    kind: 'file',
    path: 'sparse.img',
    mode: 0o644,
    size: SPARSE_SIZE,
    blocks: [
      { offset: 0, data: bytes(3, 4096) },
      { offset: 8 * MiB, data: bytes(4, 4096) },
      { offset: 40 * MiB + 123, data: bytes(5, 1000) },
      { offset: SPARSE_SIZE - 4096, data: bytes(6, 4096) },
      ...(v2 ? [SPARSE_PATCH] : []),
    ],
  };
  return [
    text('hello.txt', `hello, cairn\n${v2 ? HELLO_MORE : ''}`),
    random,
    ...(v2 ? [] : [text('empty.txt', '')]),
    ...(v2 ? [text('added.txt', 'a file version 2 adds\n')] : []),
    text('name with spaces.txt', 'spaces in the name\n'),
    text('ünïcødé 日本語 ✓.txt', 'unicode in the name: ✓\n'),
    text('run.sh', '#!/bin/sh\necho conformance\n', v2 ? 0o700 : 0o755),
    { kind: 'file', path: 'secret.key', mode: 0o600, size: 1000, blocks: [{ offset: 0, data: bytes(2, 1000) }] },
    sparse,
    { kind: 'dir', path: 'nested', mode: 0o755 },
    { kind: 'dir', path: 'nested/deeper', mode: 0o750 },
    text('nested/deeper/leaf.txt', 'a leaf two levels down\n', 0o640),
    { kind: 'dir', path: 'nested/empty dir', mode: 0o755 },
    { kind: 'symlink', path: 'nested/link-up', target: '../random.bin' },
    { kind: 'symlink', path: 'link-to-hello', target: v2 ? 'added.txt' : 'hello.txt' },
  ];
}

async function writeBlocks(file: string, size: number, blocks: Block[], flags: 'w' | 'r+'): Promise<void> {
  const handle = await open(file, flags);
  try {
    if (flags === 'w') await handle.truncate(size);
    for (const b of blocks) await handle.write(b.data, 0, b.data.length, b.offset);
  } finally {
    await handle.close();
  }
}

/** Directory modes last, deepest first, so a restrictive mode never stands in the way. */
async function chmodDirs(root: string, entries: SampleEntry[]): Promise<void> {
  for (const e of entries.filter((x) => x.kind === 'dir').reverse()) await chmod(path.join(root, e.path), e.mode);
}

/** Writes version 1 of the sample into `root` (an empty directory). */
export async function writeSample(root: string): Promise<void> {
  const entries = sample(1);
  for (const e of entries) {
    const at = path.join(root, e.path);
    if (e.kind === 'dir') await mkdir(at);
    else if (e.kind === 'symlink') await symlink(e.target, at);
    else {
      await writeBlocks(at, e.size, e.blocks, 'w');
      await chmod(at, e.mode);
    }
  }
  await chmodDirs(root, entries);
}

/** Turns version 1 in `root` into version 2, in place (as a user would edit the files). */
export async function changeSample(root: string): Promise<void> {
  const at = (p: string) => path.join(root, p);
  await writeBlocks(at('random.bin'), 0, [RANDOM_PATCH], 'r+');
  await writeBlocks(at('sparse.img'), 0, [SPARSE_PATCH], 'r+');
  await writeFile(at('hello.txt'), HELLO_MORE, { flag: 'a' });
  await unlink(at('empty.txt'));
  const added = sample(2).find((e) => e.path === 'added.txt');
  if (added?.kind === 'file') {
    await writeBlocks(at('added.txt'), added.size, added.blocks, 'w');
    await chmod(at('added.txt'), added.mode);
  }
  await chmod(at('run.sh'), 0o700);
  await rm(at('link-to-hello'));
  await symlink('added.txt', at('link-to-hello'));
}

const CHUNK = MiB;
const hex = (byte: number | undefined) => `0x${(byte ?? 0).toString(16).padStart(2, '0')}`;
const octal = (mode: number) => mode.toString(8).padStart(4, '0');
const kindOf = (st: { isDirectory(): boolean; isSymbolicLink(): boolean; isFile(): boolean }) =>
  st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'special file';

/** The expected bytes of `file` from `start`, `length` long. */
function expectedChunk(file: Extract<SampleEntry, { kind: 'file' }>, start: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (const b of file.blocks) {
    const from = Math.max(start, b.offset);
    const to = Math.min(start + length, b.offset + b.data.length);
    if (from < to) b.data.copy(out, from - start, from - b.offset, to - b.offset);
  }
  return out;
}

/** Where the content of `actual` first differs from the expected file, if it does. */
async function firstDifference(
  actual: string,
  file: Extract<SampleEntry, { kind: 'file' }>,
): Promise<string | undefined> {
  const handle = await open(actual, 'r');
  try {
    const got = Buffer.alloc(CHUNK);
    for (let start = 0; start < file.size; start += CHUNK) {
      const length = Math.min(CHUNK, file.size - start);
      const { bytesRead } = await handle.read(got, 0, length, start);
      const want = expectedChunk(file, start, length);
      if (bytesRead === length && got.subarray(0, length).equals(want)) continue;
      for (let i = 0; i < length; i++) {
        if (i >= bytesRead) return `ends at byte ${start + i}, expected ${file.size} bytes`;
        if (got[i] !== want[i]) return `byte ${start + i} differs (restored ${hex(got[i])}, expected ${hex(want[i])})`;
      }
    }
    return undefined;
  } finally {
    await handle.close();
  }
}

async function listTree(root: string, rel = '', out = new Map<string, string>()): Promise<Map<string, string>> {
  for (const name of (await readdir(path.join(root, rel))).sort()) {
    const relPath = rel === '' ? name : `${rel}/${name}`;
    const st = await lstat(path.join(root, relPath));
    out.set(relPath, kindOf(st));
    if (st.isDirectory()) await listTree(root, relPath, out);
  }
  return out;
}

/**
 * Compares the tree under `root` with a version of the sample: the same entries and nothing
 * else, each of the same kind, files with the same size, mode and bytes, directories with the
 * same mode, symlinks with the same target. Returns one line per problem, naming the path (and
 * for content the first differing byte's offset); empty when they match.
 */
export async function compareTree(root: string, expected: SampleEntry[]): Promise<string[]> {
  const problems: string[] = [];
  let found: Map<string, string>;
  try {
    found = await listTree(root);
  } catch (err) {
    return [`cannot read ${root}: ${(err as Error).message}`];
  }
  for (const e of expected) {
    const kind = found.get(e.path);
    found.delete(e.path);
    if (kind === undefined) {
      problems.push(`${e.path}: missing`);
      continue;
    }
    if (kind !== e.kind) {
      problems.push(`${e.path}: is a ${kind}, expected a ${e.kind}`);
      continue;
    }
    const at = path.join(root, e.path);
    if (e.kind === 'symlink') {
      const target = await readlink(at);
      if (target !== e.target)
        problems.push(`${e.path}: symlink to ${JSON.stringify(target)}, expected ${JSON.stringify(e.target)}`);
      continue;
    }
    const st = await lstat(at);
    if ((st.mode & 0o7777) !== e.mode)
      problems.push(`${e.path}: mode ${octal(st.mode & 0o7777)}, expected ${octal(e.mode)}`);
    if (e.kind === 'dir') continue;
    if (st.size !== e.size) {
      problems.push(`${e.path}: ${st.size} bytes, expected ${e.size}`);
      continue;
    }
    const difference = await firstDifference(at, e);
    if (difference) problems.push(`${e.path}: ${difference}`);
  }
  for (const [extra, kind] of found) problems.push(`${extra}: unexpected ${kind}`);
  return problems;
}
