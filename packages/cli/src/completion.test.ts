import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { App } from './app.js';
import { completionTree, FILES, SHELLS } from './completion.js';
import { buildProgram } from './program.js';

const tree = completionTree(buildProgram(new App({})) as never);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-completion-'));
const script = (shell: keyof typeof SHELLS) => {
  const file = path.join(dir, `cairn.${shell}`);
  fs.writeFileSync(file, SHELLS[shell](tree));
  return file;
};

/** Whether a shell is installed; the tests of a missing one are skipped with a notice. */
function has(shell: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${shell}`], { stdio: 'ignore' });
    return true;
  } catch {
    console.warn(`${shell} is not installed: its completion tests are skipped`);
    return false;
  }
}

/** What the bash script offers for the words typed (the last one is at the cursor). */
function bashComplete(words: string[]): string[] {
  const file = script('bash');
  const arr = words.map((w) => `'${w}'`).join(' ');
  const out = execFileSync(
    'bash',
    [
      '-c',
      `source ${file}; COMP_WORDS=(cairn ${arr}); COMP_CWORD=${words.length}; _cairn; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ],
    { encoding: 'utf8' },
  );
  return out.split('\n').filter((l) => l !== '');
}

describe('the completion tree', () => {
  it('holds every command path with its subcommands, flags, the flags taking values and their choices', () => {
    const at = (p: string) => tree.find((n) => n.path === p)!;
    expect(at('').subcommands).toEqual(expect.arrayContaining(['provider', 'offering', 'job', 'quota', 'completion']));
    expect(at('job schedule').subcommands).toEqual(['add', 'update', 'delete']);
    expect(at('provider preflight').flags).toEqual(expect.arrayContaining(['--zone', '--initialise', '-o', '--help']));
    expect(at('provider preflight').takes).toEqual(expect.arrayContaining(['--zone', '--locator', '-o', '--output']));
    expect(at('provider preflight').takes).not.toContain('--initialise');
    expect(at('provider create').values['--tenant-locators']).toEqual(['sp-only', 'granted-roots', 'any']);
    expect(at('job create').values['-f']).toEqual([FILES]);
    expect(at('task list').values['-o']).toEqual(['table', 'wide', 'json', 'yaml']);
  });
});

describe('completion scripts', () => {
  it.skipIf(!has('bash'))('bash: the script parses, and completes commands, flags and their values', () => {
    execFileSync('bash', ['-n', script('bash')]);
    expect(bashComplete(['prov'])).toEqual(['provider']);
    expect(bashComplete(['provider', 'pr'])).toEqual(['preflight', 'prune']);
    // Flags and their values are skipped on the way to the command path.
    expect(bashComplete(['-o', 'json', '--context', 'prod', 'job', 'schedule', ''])).toEqual([
      'add',
      'update',
      'delete',
    ]);
    expect(bashComplete(['provider', 'create', '--tenant-locators', ''])).toEqual(['sp-only', 'granted-roots', 'any']);
    expect(bashComplete(['backup', 'restore', '--ta'])).toEqual(['--target-path', '--target-namespace']);
    expect(bashComplete(['task', 'list', '-o', 'y'])).toEqual(['yaml']);
    const file = script('bash');
    expect(bashComplete(['job', 'create', '-f', file.slice(0, -2)])).toEqual([file]);
  });

  it.skipIf(!has('zsh'))('zsh: the script parses, and its candidates are those of bash', () => {
    execFileSync('zsh', ['-n', script('zsh')]);
    const out = execFileSync(
      'zsh',
      [
        '-fc',
        `autoload -U compinit; compinit -u -D; source ${script('zsh')}; _cairn_candidates '' -o json job schedule`,
      ],
      { encoding: 'utf8' },
    );
    expect(out.trim()).toBe('add update delete');
  });

  it.skipIf(!has('fish'))('fish: the script parses, and completes a subcommand', () => {
    execFileSync('fish', ['-n', script('fish')]);
    const out = execFileSync(
      'fish',
      ['-c', `source ${script('fish')}; complete -C 'cairn prov'; complete -C 'cairn job schedule '`],
      { encoding: 'utf8' },
    );
    expect(out.split('\n').filter((l) => l !== '')).toEqual(['provider', 'add', 'delete', 'update']);
  });
});
