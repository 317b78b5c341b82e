/**
 * The import boundaries of docs/architecture.md are kept by eslint.config.js. This proves each
 * rule bites: every file under test/lint-fixtures/ is linted with the repository's own config, as
 * if it stood at the same path without the `test/lint-fixtures/` prefix (so the per-folder rules
 * apply to it), and must draw exactly the messages its `// expect: <rule> <message>` lines name.
 * `// expect: clean` fixtures must draw none, so a rule that fires on everything fails too.
 * Fixtures under `in-place/` (a cycle needs two real files) are linted where they are.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ESLint, type Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const fixtures = path.join(root, 'test/lint-fixtures');

interface Fixture {
  /** Where the fixture is stored, relative to the repository. */
  stored: string;
  /** Where it is linted as if it stood. */
  linted: string;
  text: string;
  expected: { ruleId: string; message: string }[];
}

function listFixtures(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? listFixtures(full) : entry.name.endsWith('.ts') ? [full] : [];
  });
}

const all: Fixture[] = listFixtures(fixtures).map((file) => {
  const text = fs.readFileSync(file, 'utf8');
  const rel = path.relative(fixtures, file);
  const expects = [...text.matchAll(/^\/\/ expect: (\S+)(?: (.*))?$/gm)].map((m) => ({
    ruleId: m[1]!,
    message: m[2] ?? '',
  }));
  if (expects.length === 0) throw new Error(`${rel}: no "// expect:" line`);
  const clean = expects.length === 1 && expects[0]!.ruleId === 'clean';
  return {
    stored: path.relative(root, file),
    linted: rel.startsWith(`in-place${path.sep}`) ? file : path.join(root, rel),
    text,
    expected: clean ? [] : expects,
  };
});

let eslint: ESLint;
beforeAll(() => {
  eslint = new ESLint({
    cwd: root,
    overrideConfigFile: path.join(root, 'eslint.config.js'),
    // The fixtures are ignored by the normal run, and are not in tsconfig.json: lint them
    // without type information (no boundary rule needs it).
    ignore: false,
    overrideConfig: tseslint.configs.disableTypeChecked as Linter.Config,
  });
});

async function lint(f: Fixture): Promise<Linter.LintMessage[]> {
  const [result] =
    f.linted === path.join(root, f.stored)
      ? await eslint.lintFiles([f.linted])
      : await eslint.lintText(f.text, { filePath: f.linted });
  return result!.messages;
}

const show = (ms: Linter.LintMessage[]) => ms.map((m) => `${m.line}: ${m.ruleId ?? 'fatal'}: ${m.message}`);

describe('import boundaries (eslint.config.js)', () => {
  it('has a breach and a clean fixture for every boundary rule', () => {
    const breached = new Set(all.flatMap((f) => f.expected.map((e) => e.ruleId)));
    for (const rule of [
      '@typescript-eslint/no-restricted-imports',
      'import-x/no-restricted-paths',
      'import-x/no-relative-packages',
      'import-x/no-cycle',
      'no-restricted-syntax',
      'no-restricted-imports',
    ]) {
      expect(breached, rule).toContain(rule);
    }
    expect(all.filter((f) => f.expected.length === 0).length).toBeGreaterThanOrEqual(10);
  });

  it.each(all.map((f) => [f.stored, f] as const))('%s', async (_name, f) => {
    const messages = await lint(f);
    const got = show(messages);
    expect(
      messages.filter((m) => m.fatal),
      got.join('\n'),
    ).toEqual([]);
    expect(messages.length, got.join('\n')).toBe(f.expected.length);
    // Each expectation consumes one message of its rule whose text contains the fragment.
    const left = [...messages];
    for (const e of f.expected) {
      const i = left.findIndex((m) => m.ruleId === e.ruleId && m.message.includes(e.message));
      expect(i, `no ${e.ruleId} message containing "${e.message}" in:\n${got.join('\n')}`).toBeGreaterThanOrEqual(0);
      left.splice(i, 1);
    }
  });
});

describe('package dependencies', () => {
  it('no package under packages/plugins depends on the agent (the arrow runs from the agent to the plugin side)', () => {
    const dir = path.join(root, 'packages/plugins');
    const offenders = fs.readdirSync(dir).flatMap((name) => {
      const file = path.join(dir, name, 'package.json');
      if (!fs.existsSync(file)) return [];
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
      return ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies']
        .filter((field) => Object.hasOwn((pkg[field] ?? {}) as object, '@cairn/agent'))
        .map((field) => `packages/plugins/${name}/package.json ${field}`);
    });
    expect(offenders).toEqual([]);
  });
});
