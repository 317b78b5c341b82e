/** `cairn job`: backup jobs, their runs and schedules; `run --wait` follows a run to its end. */
import fs from 'node:fs';
import { Option, type Command, type OptionValues } from '@commander-js/extra-typings';
import { parseDocument } from 'yaml';
import { intArg, paging, pagingOptions, seg, type App } from '../app.js';
import type { Page } from '../client.js';
import { JOB, JOB_MEMBER, JOB_RUN, JOB_SCHEDULE } from '../columns.js';
import { CliError, EXIT } from '../exit.js';
import { watch } from '../wait.js';
import { given, printDeleted, waitOptions, timeoutOption } from './common.js';

interface Member {
  instanceId: string;
  set: 'OUTDATED' | 'ONGOING' | 'UPDATED' | 'ERROR';
  taskId: string | null;
  error: { code: string; message: string } | null;
}
interface Run {
  id: string;
  state: string;
  members: Member[];
}
interface Job {
  id: string;
  instanceIds: string[];
  sets: Record<'outdated' | 'ongoing' | 'updated' | 'error', string[]>;
  schedules: unknown[];
  lastRun: { id: string } | null;
  progress: { percent: number } | null;
  [key: string]: unknown;
}

const jobPath = (id: string, rest = '') => `/v1/backup-jobs/${seg(id)}${rest}`;
const collect = (value: string, previous: string[] = []) => [...previous, value];

/**
 * A job file (`-f`): the API's job object as YAML or JSON (by its extension; YAML otherwise,
 * of which JSON is a part). Only its syntax is checked here; the server checks the fields.
 */
export function readJobFile(file: string, text: string): Record<string, unknown> {
  let value: unknown;
  if (file.endsWith('.json')) {
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new CliError(EXIT.usage, `${file}: not valid JSON: ${(err as Error).message}`);
    }
  } else {
    const doc = parseDocument(text);
    const e = doc.errors[0];
    if (e)
      throw new CliError(
        EXIT.usage,
        `${file}: line ${e.linePos?.[0].line ?? '?'}: not valid YAML: ${e.message.split('\n')[0]}`,
      );
    value = doc.toJS();
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new CliError(EXIT.usage, `${file}: must be a mapping of the job's fields (name, instanceIds, mode, …)`);
  return value as Record<string, unknown>;
}

function fromFile(file: string | undefined): Record<string, unknown> {
  if (file === undefined) return {};
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(EXIT.usage, `${file}: cannot read: ${(err as Error).message}`);
  }
  return readJobFile(file, text);
}

/** The flags a job is created and changed with; they win over the file's fields. */
function jobFields<A extends unknown[], O extends OptionValues, G extends OptionValues>(cmd: Command<A, O, G>) {
  return cmd
    .option('-f, --file <path>', 'the job as YAML or JSON, the fields of the API (flags win over it)')
    .option('--name <name>', 'its name')
    .option('--instance <id>', 'a member instance, in backup order (repeat the flag)', collect)
    .addOption(new Option('--mode <mode>', 'full backups or increments').choices(['FULL', 'INCREMENT'] as const))
    .addOption(
      new Option('--execution <how>', 'one instance at a time or all at once').choices([
        'SEQUENTIAL',
        'PARALLEL',
      ] as const),
    )
    .option('--keep-last <n>', 'restore points kept per instance after its backups (1-10000)', intArg(1, 10_000))
    .addOption(
      new Option('--fs-freeze <how>', 'file-system freeze while backing up').choices([
        'NONE',
        'AGENT',
        'SUSPEND',
      ] as const),
    )
    .option('--priority <n>', '0-49 for a tenant; 50-99 the service provider’s band', intArg(0, 99))
    .option('--reset', 'the next run starts new chains (every backup FULL)')
    .option('--tenant <id>', 'the tenant the job is (sp-admin)');
}

const JOB_FIELDS = {
  name: 'name',
  instance: 'instanceIds',
  mode: 'mode',
  execution: 'execution',
  keepLast: 'keepLast',
  fsFreeze: 'fsFreeze',
  priority: 'priority',
  reset: 'reset',
  tenant: 'tenantId',
};

/** The flags of a job schedule. */
function scheduleFields<A extends unknown[], O extends OptionValues, G extends OptionValues>(cmd: Command<A, O, G>) {
  return cmd
    .option('--timezone <tz>', 'IANA time zone of the cron expression (default UTC)')
    .addOption(
      new Option('--end-after <runs>', 'end after this many runs it started')
        .argParser(intArg(1, 1_000_000))
        .conflicts('endAt'),
    )
    .addOption(new Option('--end-at <time>', 'end at this ISO time').conflicts('endAfter'))
    .option('--no-end', 'never end');
}

function scheduleBody(opts: { cron?: string; timezone?: string; endAfter?: number; endAt?: string; end?: boolean }) {
  const end =
    opts.endAfter !== undefined
      ? { afterRuns: opts.endAfter }
      : opts.endAt !== undefined
        ? { at: opts.endAt }
        : opts.end === false
          ? null
          : undefined;
  return { ...given(opts, { cron: 'cron', timezone: 'timezone' }), ...(end !== undefined ? { end } : {}) };
}

/** A job in full: its fields, then its members in order with their sets, then its schedules. */
function describeJob(app: App, job: Job): void {
  const out = app.out();
  if (out.structured) return out.data(job);
  const { sets, schedules, instanceIds, ...fields } = job;
  out.detail(fields);
  const setOf = (id: string) =>
    (Object.keys(sets) as (keyof Job['sets'])[]).find((s) => sets[s].includes(id))?.toUpperCase() ?? 'OUTDATED';
  out.streams.stdout.write('\n');
  out.table(
    instanceIds.map((instanceId, i) => ({ position: i + 1, instanceId, set: setOf(instanceId) })),
    JOB_MEMBER,
  );
  if (schedules.length > 0) {
    out.streams.stdout.write('\n');
    out.table(schedules as Record<string, unknown>[], JOB_SCHEDULE);
  }
}

/**
 * Follows a job's run until it ends, then prints it; exit 0 when every member is UPDATED, else 1
 * with the members in ERROR on stderr.
 */
async function waitForRun(app: App, jobId: string, runId: string, timeoutS: number | undefined): Promise<void> {
  const client = app.client();
  const out = app.out();
  const read = async () => {
    const [job, runs] = await Promise.all([
      client.get<Job>(jobPath(jobId)),
      client.get<Page<Run>>(jobPath(jobId, '/runs'), { limit: 20 }),
    ]);
    const run = runs.items.find((r) => r.id === runId);
    if (!run) throw new CliError(EXIT.notFound, `run ${runId} of job ${jobId} is no longer in its history`);
    return { job, run };
  };
  const { run } = await watch(
    out,
    read,
    ({ job, run }) => {
      const done = run.members.filter((m) => m.set === 'UPDATED' || m.set === 'ERROR').length;
      return {
        id: run.id,
        label: `run ${run.id} of job ${jobId}`,
        state: run.state,
        ended: run.state !== 'running',
        percent: job.lastRun?.id === run.id ? job.progress?.percent : undefined,
        message: `${done}/${run.members.length} instances done`,
      };
    },
    { ...waitOptions(app, app.commandLine(`job runs ${jobId}`), timeoutS), client, follow: { jobId } },
  );
  out.one(run, JOB_RUN);
  const failed = run.members.filter((m) => m.set !== 'UPDATED');
  if (failed.length === 0) return;
  const lines = failed.map(
    (m) => `  ${m.instanceId}: ${m.set}${m.error ? ` ${m.error.code}: ${m.error.message}` : ''}`,
  );
  throw new CliError(
    EXIT.failed,
    [
      `run ${run.id} of job ${jobId} ended ${run.state}: ${failed.length} of ${run.members.length} not UPDATED`,
      ...lines,
    ].join('\n'),
  );
}

export function jobCommands(program: Command, app: App): void {
  const job = program.command('job').description('backup jobs: instances backed up in order under one policy');
  jobFields(job.command('create').description('create a backup job from flags, a file (-f), or both')).action(
    async (opts) => {
      const body = { ...fromFile(opts.file), ...given(opts, JOB_FIELDS) };
      app.out().one(await app.client().request('POST', '/v1/backup-jobs', { body }), JOB);
    },
  );
  pagingOptions(
    job
      .command('list')
      .description('list the backup jobs, oldest first')
      .option('--search <text>', 'only those whose name contains the text (ignoring case), or whose id it is'),
  ).action(async (opts) => {
    app.out().list(await app.client().list('/v1/backup-jobs', { q: opts.search }, paging(opts)), JOB);
  });
  job
    .command('describe')
    .description('show a job: its settings, each instance with the set its last run left it in, its schedules')
    .argument('<id>')
    .action(async (id) => describeJob(app, await app.client().get<Job>(jobPath(id))));
  jobFields(
    job
      .command('update')
      .description('change a job from flags, a file (-f), or both; from its next run')
      .argument('<id>'),
  ).action(async (id, opts) => {
    const body = { ...fromFile(opts.file), ...given(opts, JOB_FIELDS) };
    app.out().one(await app.client().request('PATCH', jobPath(id), { body }), JOB);
  });
  job
    .command('priority')
    .description("set a job's priority")
    .argument('<id>')
    .argument('<n>', '0-49 for a tenant; 50-99 the service provider’s band', intArg(0, 99))
    .action(async (id, priority) => {
      app.out().one(await app.client().request('PATCH', jobPath(id), { body: { priority } }), JOB);
    });
  job
    .command('delete')
    .description('delete a job with its schedules and run history (refused while it runs)')
    .argument('<id>')
    .action(async (id) => {
      await app.client().request('DELETE', jobPath(id));
      printDeleted(app, 'job', id);
    });
  for (const [verb, description] of [
    ['run', 'run the job now: every instance'],
    ['retry', 'run again exactly the instances the last run left in ERROR'],
  ] as const)
    job
      .command(verb)
      .description(description)
      .argument('<id>')
      .option('--wait', 'wait for the run to end; exit 0 when every instance is UPDATED, else 1')
      .addOption(timeoutOption().implies({ wait: true }))
      .action(async (id, opts) => {
        const started = await app.client().request<Job>('POST', jobPath(id, `/${verb}`));
        if (!opts.wait || !started.lastRun) return app.out().one(started, JOB);
        await waitForRun(app, id, started.lastRun.id, opts.timeout);
      });
  for (const [verb, description] of [
    ['cancel', 'cancel the running run: queued backups end, running ones are asked to stop'],
    ['lock', 'refuse every change, run and delete until unlocked'],
    ['unlock', 'let the job be changed and run again'],
  ] as const)
    job
      .command(verb)
      .description(description)
      .argument('<id>')
      .action(async (id) => {
        app.out().one(await app.client().request('POST', jobPath(id, `/${verb}`)), JOB);
      });
  pagingOptions(job.command('runs').description("list a job's runs, newest first").argument('<id>')).action(
    async (id, opts) => {
      app.out().list(await app.client().list(jobPath(id, '/runs'), {}, paging(opts)), JOB_RUN);
    },
  );

  const schedule = job.command('schedule').description("a job's schedules");
  scheduleFields(
    schedule
      .command('add')
      .description('add a schedule to a job')
      .argument('<job>')
      .requiredOption('--cron <expr>', 'when: 5 fields, or 6 with seconds first'),
  ).action(async (jobId, opts) => {
    const body = scheduleBody(opts);
    app.out().one(await app.client().request('POST', jobPath(jobId, '/schedules'), { body }), JOB_SCHEDULE);
  });
  scheduleFields(
    schedule
      .command('update')
      .description("change a job's schedule")
      .argument('<job>')
      .argument('<schedule>', 'the schedule id')
      .option('--cron <expr>', 'when: 5 fields, or 6 with seconds first'),
  ).action(async (jobId, sid, opts) => {
    const body = scheduleBody(opts);
    const path = jobPath(jobId, `/schedules/${seg(sid)}`);
    app.out().one(await app.client().request('PATCH', path, { body }), JOB_SCHEDULE);
  });
  schedule
    .command('delete')
    .description("delete a job's schedule")
    .argument('<job>')
    .argument('<schedule>', 'the schedule id')
    .action(async (jobId, sid) => {
      await app.client().request('DELETE', jobPath(jobId, `/schedules/${seg(sid)}`));
      printDeleted(app, 'schedule', sid);
    });
}
