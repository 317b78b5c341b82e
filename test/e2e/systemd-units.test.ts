import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root, tempDir } from '@cairn/test-harness/processes';
import { hasSystemdAnalyze, verifyUnit } from '@cairn/test-harness/systemd';

const UNITS_DIR = path.join(root, 'deploy/systemd');
const UNITS = ['cairn-control-plane.service', 'cairn-agent.service'] as const;

/** The shipped paths: Debian's Node.js and the checkout installed in /opt/cairn. */
const SHIPPED_NODE = '/usr/bin/node';
const SHIPPED_ROOT = '/opt/cairn';

/** A unit's settings as key → values (a key may repeat), comments left out. */
function settings(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

/**
 * The agent unit's commented root variant made real: its `#Key=value` lines replace the lines of
 * the same keys, as the comment tells an operator to do.
 */
function rootVariant(text: string): string {
  const variant = [...text.matchAll(/^#((User|Group|AmbientCapabilities|CapabilityBoundingSet)=.*)$/gm)].map(
    (m) => m[1]!,
  );
  const keys = new Set(variant.map((line) => line.slice(0, line.indexOf('='))));
  const kept = text.split('\n').filter((line) => !keys.has(line.slice(0, line.indexOf('='))));
  const at = kept.indexOf('[Service]') + 1;
  return [...kept.slice(0, at), ...variant, ...kept.slice(at)].join('\n');
}

describe('the shipped systemd units', () => {
  it.each(UNITS)('%s is hardened: no new privileges, a read-only system but its state dir, private /tmp', (unit) => {
    const s = settings(fs.readFileSync(path.join(UNITS_DIR, unit), 'utf8'));
    const state = `/var/lib/${s.get('StateDirectory')?.[0]}`;
    expect(s.get('NoNewPrivileges')).toEqual(['yes']);
    expect(s.get('ProtectSystem')).toEqual(['strict']);
    expect(s.get('ReadWritePaths')).toEqual([state]);
    expect(s.get('PrivateTmp')).toEqual(['yes']);
    expect(s.get('ExecStart')?.[0]).toMatch(
      new RegExp(`^${SHIPPED_NODE} ${SHIPPED_ROOT}/packages/[a-z-]+/dist/main\\.js`),
    );
    expect(s.get('RestartPreventExitStatus')).toEqual(['2']);
  });

  it('runs the control plane as its own user, with no capability and no access to home directories', () => {
    const s = settings(fs.readFileSync(path.join(UNITS_DIR, 'cairn-control-plane.service'), 'utf8'));
    expect([s.get('User'), s.get('Group'), s.get('ProtectHome'), s.get('CapabilityBoundingSet')]).toEqual([
      ['cairn'],
      ['cairn'],
      ['yes'],
      [''],
    ]);
    expect(s.get('Environment')).toContain('CAIRN_CONFIG=/etc/cairn/control-plane.toml');
  });

  it('runs the agent as its own user that may read every file, with a root variant for restores', () => {
    const text = fs.readFileSync(path.join(UNITS_DIR, 'cairn-agent.service'), 'utf8');
    const s = settings(text);
    expect([s.get('User'), s.get('AmbientCapabilities'), s.get('CapabilityBoundingSet'), s.get('ProtectHome')]).toEqual(
      [['cairn-agent'], ['CAP_DAC_READ_SEARCH'], ['CAP_DAC_READ_SEARCH'], ['read-only']],
    );
    expect(s.get('Environment')).toContain('CAIRN_AGENT_CONFIG=/etc/cairn/agent.toml');
    const root = settings(rootVariant(text));
    expect(root.get('User')).toEqual(['root']);
    expect(root.get('CapabilityBoundingSet')?.[0]).toContain('CAP_CHOWN');
  });
});

describe.skipIf(!hasSystemdAnalyze)('systemd-analyze verify on the units', () => {
  let dir: string;
  /** A copy of a unit that runs this checkout with this Node.js, so that the paths it names exist. */
  const here = (text: string) => text.replaceAll(SHIPPED_NODE, process.execPath).replaceAll(SHIPPED_ROOT, root);
  const write = (unit: string, text: string) => {
    const sub = fs.mkdtempSync(path.join(dir, 'unit-'));
    const file = path.join(sub, unit);
    fs.writeFileSync(file, text);
    return file;
  };

  beforeAll(() => (dir = tempDir('units')));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each(UNITS)('%s, pointed at this checkout, passes without a word', (unit) => {
    const file = write(unit, here(fs.readFileSync(path.join(UNITS_DIR, unit), 'utf8')));
    const script = settings(fs.readFileSync(file, 'utf8')).get('ExecStart')![0]!.split(' ')[1]!;
    expect(fs.existsSync(script), `${script} (run the suite after a build)`).toBe(true);
    expect(verifyUnit(file)).toEqual({ status: 0, problems: [] });
  });

  it("the agent's root variant passes too", () => {
    const text = here(fs.readFileSync(path.join(UNITS_DIR, 'cairn-agent.service'), 'utf8'));
    expect(verifyUnit(write('cairn-agent.service', rootVariant(text)))).toEqual({ status: 0, problems: [] });
  });

  it('catches a broken unit: a mistyped directive, a missing program', () => {
    const text = here(fs.readFileSync(path.join(UNITS_DIR, 'cairn-control-plane.service'), 'utf8'));
    const typo = verifyUnit(write('cairn-control-plane.service', text.replace('NoNewPrivileges=', 'NoNewPrivilege=')));
    expect(typo.problems).toEqual([expect.stringMatching(/Unknown key.*NoNewPrivilege/)]);
    const missing = verifyUnit(
      write(
        'cairn-control-plane.service',
        text.replace(`ExecStart=${process.execPath}`, 'ExecStart=/nonexistent/node'),
      ),
    );
    expect(missing.status).not.toBe(0);
    expect(missing.problems).toEqual([expect.stringMatching(/\/nonexistent\/node is not executable/)]);
  });
});
