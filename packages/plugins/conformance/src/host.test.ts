import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ageAccessTimes,
  fingerprint,
  fingerprintChanges,
  hostPlaces,
  keepsAccessTimes,
  plantLinks,
  readSinceAged,
  writeHostFixtures,
  type HostDirs,
} from './host.js';

let dirs: HostDirs;
beforeAll(async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'conformance-host-'));
  dirs = {
    root,
    tenant: path.join(root, 'tenant'),
    state: path.join(root, 'tenant', 'agent-state'),
    outside: path.join(root, 'outside'),
  };
  await mkdir(dirs.tenant);
  await writeHostFixtures(dirs);
});
afterAll(() => rm(dirs.root, { recursive: true, force: true }));

describe('the host a conformance run plays the agent on', () => {
  it('puts canaries outside the root and links to them inside it', async () => {
    const at = hostPlaces(dirs);
    expect((await readdir(dirs.tenant)).sort()).toEqual(['agent-state', 'link-out', 'link-target']);
    expect(await readFile(path.join(at.linkToSecret, 'canary.txt'), 'utf8')).toContain('never read');
  });

  it('sees a change of bytes, mode, a removed and an added entry outside, naming each path', async () => {
    const before = await fingerprint(dirs.outside);
    const at = hostPlaces(dirs);
    const leaf = path.join(at.plantedDir, 'deeper', 'leaf.txt');
    const kept = await readFile(leaf);
    await writeFile(leaf, 'overwritten');
    await writeFile(path.join(at.secret, 'new.txt'), 'x');
    const after = await fingerprint(dirs.outside);
    const changes = fingerprintChanges(before, after);
    expect(changes).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^planted-dir\/deeper\/leaf\.txt: was file sha256 \w+, mode 644, 30 bytes, .* now file sha256 \w+, mode 644, 11 bytes/,
        ),
        expect.stringMatching(/^secret\/new\.txt: added \(file sha256 \w+, mode 644, 1 bytes/),
      ]),
    );
    expect(fingerprintChanges(after, before)).toContain('secret/new.txt: removed');
    await writeFile(leaf, kept);
    await rm(path.join(at.secret, 'new.txt'));
  });

  it('plants links in a copy of the sample: nested and hello.txt lead out of the roots', async () => {
    const copy = path.join(dirs.tenant, 'copy');
    await mkdir(path.join(copy, 'nested'), { recursive: true });
    await writeFile(path.join(copy, 'hello.txt'), 'hi');
    await plantLinks(copy, dirs);
    expect(await readFile(path.join(copy, 'nested', 'deeper', 'leaf.txt'), 'utf8')).toContain('root-owned');
    expect(await readFile(path.join(copy, 'hello.txt'), 'utf8')).toContain('ssh-ed25519');
    await rm(copy, { recursive: true });
  });

  it('sees a read in access times where the file system keeps them', async () => {
    const keeps = await keepsAccessTimes(dirs.root);
    const file = path.join(hostPlaces(dirs).secret, 'canary.txt');
    await ageAccessTimes([file]);
    expect(await readSinceAged([file])).toEqual([]);
    await readFile(file);
    expect(await readSinceAged([file])).toEqual(keeps ? [file] : []);
  });
});
