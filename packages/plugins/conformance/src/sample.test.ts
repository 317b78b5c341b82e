import { chmod, lstat, mkdtemp, open, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { changeSample, compareTree, sample, SPARSE_SIZE, writeSample } from './sample.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'conformance-sample-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function flip(file: string, offset: number): Promise<{ was: number; now: number }> {
  const handle = await open(file, 'r+');
  const byte = Buffer.alloc(1);
  await handle.read(byte, 0, 1, offset);
  const was = byte[0]!;
  byte[0] = was ^ 0xff;
  await handle.write(byte, 0, 1, offset);
  await handle.close();
  return { was, now: byte[0] };
}

const hex = (n: number) => `0x${n.toString(16).padStart(2, '0')}`;

describe('the sample data', () => {
  it('has what the kit promises: several files, a sparse file, spaces and unicode, nesting, symlinks, modes', async () => {
    await writeSample(dir);
    expect(await compareTree(dir, sample(1))).toEqual([]);
    const paths = sample(1).map((e) => e.path);
    expect(paths).toEqual(
      expect.arrayContaining(['name with spaces.txt', 'ünïcødé 日本語 ✓.txt', 'nested/deeper/leaf.txt']),
    );
    expect(sample(1).filter((e) => e.kind === 'symlink')).toHaveLength(2);
    const sparse = await lstat(path.join(dir, 'sparse.img'));
    expect(sparse.size).toBe(SPARSE_SIZE);
    // Only the written blocks take room on disk: the file is sparse.
    expect(sparse.blocks * 512).toBeLessThan(SPARSE_SIZE / 8);
    expect((await lstat(path.join(dir, 'secret.key'))).mode & 0o777).toBe(0o600);
  });

  it('changes in place into exactly version 2', async () => {
    await writeSample(dir);
    await changeSample(dir);
    expect(await compareTree(dir, sample(2))).toEqual([]);
    expect((await compareTree(dir, sample(1))).length).toBeGreaterThanOrEqual(5);
  });
});

describe('compareTree', () => {
  it('names the file and the offset of a flipped byte, with both values', async () => {
    await writeSample(dir);
    const { was, now } = await flip(path.join(dir, 'random.bin'), 1000);
    expect(await compareTree(dir, sample(1))).toEqual([
      `random.bin: byte 1000 differs (restored ${hex(now)}, expected ${hex(was)})`,
    ]);
  });

  it('finds a byte written into a hole of the sparse file', async () => {
    await writeSample(dir);
    await flip(path.join(dir, 'sparse.img'), 30 * 1024 * 1024 + 7);
    expect(await compareTree(dir, sample(1))).toEqual([
      `sparse.img: byte ${30 * 1024 * 1024 + 7} differs (restored 0xff, expected 0x00)`,
    ]);
  });

  it('reports modes, sizes, symlink targets, missing and unexpected entries', async () => {
    await writeSample(dir);
    await chmod(path.join(dir, 'run.sh'), 0o644);
    await chmod(path.join(dir, 'nested/deeper'), 0o755);
    await writeFile(path.join(dir, 'hello.txt'), 'hello\n');
    await unlink(path.join(dir, 'link-to-hello'));
    await symlink('/etc/hostname', path.join(dir, 'link-to-hello'));
    await unlink(path.join(dir, 'empty.txt'));
    await writeFile(path.join(dir, 'stray.txt'), 'x');
    expect(await compareTree(dir, sample(1))).toEqual([
      'hello.txt: 6 bytes, expected 13',
      'empty.txt: missing',
      'run.sh: mode 0644, expected 0755',
      'nested/deeper: mode 0755, expected 0750',
      'link-to-hello: symlink to "/etc/hostname", expected "hello.txt"',
      'stray.txt: unexpected file',
    ]);
  });

  it('reports an entry of the wrong kind, and a tree it cannot read', async () => {
    await writeSample(dir);
    await rm(path.join(dir, 'nested/empty dir'), { recursive: true });
    await writeFile(path.join(dir, 'nested/empty dir'), '');
    expect(await compareTree(dir, sample(1))).toEqual(['nested/empty dir: is a file, expected a dir']);
    expect(await compareTree(path.join(dir, 'nowhere'), sample(1))).toEqual([
      expect.stringMatching(/^cannot read .*nowhere: ENOENT/),
    ]);
  });
});
