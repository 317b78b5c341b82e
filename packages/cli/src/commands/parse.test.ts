import { Command, CommanderError, InvalidArgumentError } from '@commander-js/extra-typings';
import { describe, expect, it } from 'vitest';
import { CliError, EXIT } from '../exit.js';
import { given, jsonArg, JSON_NULL } from './common.js';
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

describe('JSON flags', () => {
  const refused = (parse: (v: string) => unknown, value: string) => {
    try {
      parse(value);
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidArgumentError);
      return (err as Error).message;
    }
    throw new Error(`${value} was taken`);
  };

  it('takes the shape the API takes: an object, or any value; null only where it clears a field', () => {
    const object = jsonArg({ shape: 'object' });
    const clearable = jsonArg({ shape: 'object', nullable: true });
    const value = jsonArg({ shape: 'value' });
    expect(object('{}')).toEqual({});
    expect(object('{"a":{"b":[1,null]}}')).toEqual({ a: { b: [1, null] } });
    expect(clearable('null')).toBe(JSON_NULL);
    for (const v of ['"web-1"', '5', 'true', '[1]', '{"vm":"web-1"}']) expect(value(v)).toEqual(JSON.parse(v));
    for (const v of ['5', '1.5', 'true', '"s"', '[]']) {
      expect(refused(object, v)).toMatch(/^not a JSON object: write a JSON object/);
      expect(refused(clearable, v)).toMatch(/, or null to clear it$/);
    }
    expect(refused(object, 'null')).toMatch(/^null is not taken here: write a JSON object/);
    expect(refused(value, 'null')).toBe('null is not taken here: write any JSON value but null');
    for (const parse of [object, clearable, value])
      for (const v of ['{vm: 1}', "{'a':1}", '', 'nul', '{"a":1']) expect(refused(parse, v)).toMatch(/^not JSON \(/);
  });

  /** The body a PATCH of `args` sends: the flags through commander, then `given`. */
  const bodyOf = (args: string[]) => {
    const cmd = new Command('update')
      .exitOverride()
      .configureOutput({ writeErr: () => {} })
      .option('--sla <json>', 'the SLA', jsonArg({ shape: 'object', nullable: true }))
      .option('--config <json>', 'settings', jsonArg({ shape: 'object' }));
    cmd.parse(args, { from: 'user' });
    return given(cmd.opts(), { sla: 'sla', config: 'config' });
  };

  it("sends a flag's null as JSON null, not as the empty string commander would store", () => {
    expect(bodyOf(['--sla', 'null'])).toEqual({ sla: null });
    expect(bodyOf(['--sla', '{"cron":"0 2 * * *","keepLast":3}', '--config', '{}'])).toEqual({
      sla: { cron: '0 2 * * *', keepLast: 3 },
      config: {},
    });
    expect(bodyOf([])).toEqual({});
  });

  it('refuses a bad value as a usage error naming the flag', () => {
    for (const [args, flag] of [
      [['--config', 'null'], '--config <json>'],
      [['--sla', '{"cron":'], '--sla <json>'],
    ] as const) {
      let error: unknown;
      try {
        bodyOf([...args]);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(CommanderError);
      expect((error as CommanderError).code).toBe('commander.invalidArgument');
      expect((error as CommanderError).message).toContain(`option '${flag}' argument`);
    }
  });
});
