import { describe, expect, it } from 'vitest';
import { CliError, EXIT } from '../exit.js';
import { readJobFile } from './jobs.js';
import { quotaLimit } from './resources.js';

const usage = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).code).toBe(EXIT.usage);
    return (err as CliError).message;
  }
  throw new Error('no error');
};

describe('job files', () => {
  it('reads YAML, and JSON by its extension; only the syntax is checked', () => {
    expect(readJobFile('job.yaml', 'name: nightly\ninstanceIds: [ins_1]\nmode: FULL\n')).toEqual({
      name: 'nightly',
      instanceIds: ['ins_1'],
      mode: 'FULL',
    });
    expect(readJobFile('job.json', '{"name": "n", "bogus": 1}')).toEqual({ name: 'n', bogus: 1 });
  });

  it('names the file and the line of a syntax error, and refuses what is no mapping', () => {
    expect(usage(() => readJobFile('job.yaml', 'name: a\n  mode: [FULL\n'))).toMatch(
      /^job\.yaml: line \d+: not valid YAML/,
    );
    expect(usage(() => readJobFile('job.json', '{"name": '))).toMatch(/^job\.json: not valid JSON/);
    expect(usage(() => readJobFile('job.yaml', '- a\n- b\n'))).toMatch(/^job\.yaml: must be a mapping/);
  });
});

describe('quota limits', () => {
  it('takes name=N and name=default (null), refuses anything else', () => {
    expect(quotaLimit('instances=50')).toEqual(['instances', 50]);
    expect(quotaLimit('jobs=default')).toEqual(['jobs', null]);
    for (const bad of ['instances', 'instances=-1', 'instances=1.5', '=3', 'jobs=lots'])
      expect(usage(() => quotaLimit(bad))).toContain('name=N');
  });
});
