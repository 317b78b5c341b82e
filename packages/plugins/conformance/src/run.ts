import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  FailureCodes,
  OPERATION_METHODS,
  OPERATIONS,
  REPOSITORY_CHANGED,
  REPOSITORY_IDENTITY_EVENT,
  REPOSITORY_NOT_FOUND,
  TRAITS,
  type BackupRequest,
  type Capability,
  type HostAccess,
  type Operation,
  type PluginManifest,
  type ProviderConnection,
  type ProviderPlugin,
  type Trait,
} from '@cairn/plugin-sdk';
import { PATH_NOT_ALLOWED } from '@cairn/plugin-sdk/paths';
import {
  DEFAULT_ABORT_GRACE_MS,
  inspectPlugin,
  loadPlugin,
  PluginLoadError,
  type BackupRecord,
  type LoadedPlugin,
} from '@cairn/plugin-sdk/host';
import {
  MockTaskEnvironment,
  type MockRun,
  type MockTaskOptions,
  type OperationTypes,
  type RecordedProgress,
} from '@cairn/plugin-sdk/testing';
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
import { OUTPUTS, outputProblem, type ReadOnlyOperation } from './outputs.js';
import {
  deletionVictim,
  missingForTrait,
  PLUGIN_NAME,
  progressProblem,
  summarize,
  undeclaredHostUse,
} from './rules.js';
import { changeSample, compareTree, sample, writeSample } from './sample.js';
import { withProvider } from './wrap.js';

/** Every check the kit runs, in the order it runs them. */
export const CHECK_NAMES: readonly string[] = [
  'manifest',
  ...OPERATIONS.map((op) => `capability ${op}`),
  ...TRAITS.map((trait) => `capability ${trait}`),
  'backup',
  'second backup',
  'restore first point',
  'restore second point',
  'cancel',
  'delete',
  'identity reported',
  'repository changed',
  'repository absent',
  'host paths declared',
  'locator outside roots',
  'restore target outside roots',
  'links planted before restore',
];

export type CheckStatus = 'pass' | 'fail' | 'skip';

export interface CheckResult {
  /** One of {@link CHECK_NAMES}. */
  name: string;
  status: CheckStatus;
  /** What passed, why it failed (naming the file, offset, values…), or why it was skipped. */
  reason: string;
  durationMs: number;
}

export interface ConformanceReport {
  /** The plugin's manifest name and version; absent when the agent would not load it. */
  plugin?: { name: string; version: string };
  /** True when no check failed. */
  ok: boolean;
  counts: Record<CheckStatus, number>;
  checks: CheckResult[];
}

/** The directories of one run, made fresh and removed at its end. */
export interface WorkDirs {
  /** The sample data the kit backs up. */
  data: string;
  /** An empty directory the plugin may use, e.g. as the store of a file-based backup system. */
  scratch: string;
}

export interface ConformanceOptions {
  /** The plugin to check (its default export). Give this or `packageName`. */
  plugin?: ProviderPlugin;
  /**
   * The plugin's npm package name or directory, loaded as the agent loads it (its package.json
   * `"cairn"` field first). Give this or `plugin`.
   */
  packageName?: string;
  /** Where `packageName` is resolved from. Default `process.cwd()`. */
  cwd?: string;
  /** The provider connection (`endpoint`, `config`, `credentials`), or a function of the run's directories. */
  connection?: Partial<ProviderConnection> | ((dirs: WorkDirs) => Partial<ProviderConnection>);
  /**
   * A connection like `connection` but to a repository that does not exist (e.g. a path in
   * `scratch` nothing was made at), for the `repository absent` check of a plugin that declares
   * `repository-identity`; what it leaves out is taken from `connection`.
   */
  absentConnection?: Partial<ProviderConnection> | ((dirs: WorkDirs) => Partial<ProviderConnection>);
  /** The instance locator that names the directory `dir` of sample data. */
  locatorFor: (dir: string, dirs: WorkDirs) => unknown;
  /**
   * For a plugin whose data is not a directory of the agent's host (a volume of a test cluster, a
   * test machine's disk): makes the place the sample data lives and answers its directory, empty,
   * which the kit fills with the sample. `locatorFor` then names that place by its own means.
   * Default: a fresh directory of the run's tenant root.
   */
  dataDirFor?: (dirs: Pick<WorkDirs, 'scratch'>) => string | Promise<string>;
  /**
   * A restore's `target` for the empty directory `target`. Default `{path: target}`
   * (restore-to-path). A plugin that restores off the host (into a new namespace of a test
   * cluster) makes that place here; with `restoredDirFor` the restore checks then run without
   * `restore-to-path`.
   */
  restoreTargetFor?: (target: string, dirs: WorkDirs) => unknown;
  /** Where a restore into `target` puts the copy of the sample directory. Default `target` itself. */
  restoredDirFor?: (target: string, dirs: WorkDirs) => string | Promise<string>;
  /** The instance the requests name. Default `{id: 'conformance-instance', name: 'conformance'}`. */
  instance?: { id: string; name: string };
  /** How long a cancelled backup may take to stop, as the agent's abort grace. Default 5,000 ms. */
  cancelGraceMs?: number;
  /** Each operation's timeout (PLUGIN_TIMEOUT past it). Default 10 minutes. */
  timeoutMs?: number;
  /** Where the run's directories are made. Default the OS temporary directory. */
  workDir?: string;
  /** Keep the run's directories (their path is in the `manifest` check's reason). */
  keepWorkDir?: boolean;
  /** Called with each check as it ends. */
  onCheck?: (check: CheckResult) => void;
}

/** A check's options or the plugin cannot be used at all (the command exits 2). */
export class ConformanceUsageError extends Error {
  override readonly name = 'ConformanceUsageError';
}

/** Ends a check as failed. */
class CheckFailed extends Error {}
/** Ends a check as skipped. */
class CheckSkipped extends Error {}

const fail = (reason: string): never => {
  throw new CheckFailed(reason);
};
const skip = (reason: string): never => {
  throw new CheckSkipped(reason);
};

interface Point {
  externalId: string;
  parentExternalId?: string | undefined;
  /** The sample version it holds. */
  version: 1 | 2;
}

const CANCEL_REASON = 'the conformance kit cancels this backup midway';

const TRAIT_MEANING: Record<Trait, string> = {
  'handles-chains': 'the delete check removes the oldest point even when an increment builds on it',
  'restore-requires-stopped': 'in-place restores ask power-state first (the kit restores only to a path)',
  'provider-schedules': 'configure-schedule may take an SLA over (the kit does not run schedules)',
  incremental: 'the second backup must be an INCREMENT on the first',
  'restore-to-path': 'restores are compared byte for byte with the sample data',
  'host-paths': 'locators and restore targets are host paths, confined to the roots the kit grants',
  'repository-identity':
    'operations check the connection identity (REPOSITORY_CHANGED on another), report it when there is none, and never create a repository',
  'sp-locators':
    "locators name the service provider's resources: the control plane refuses tenantLocators any on its connections",
};

/** A connection as the options of a task environment. */
const connectionOptions = (c: Partial<ProviderConnection>): Partial<MockTaskOptions> => ({
  ...(c.config === undefined ? {} : { config: c.config }),
  ...(c.credentials === undefined ? {} : { credentials: c.credentials }),
  ...(c.endpoint === undefined ? {} : { endpoint: c.endpoint }),
  ...(c.identity === undefined ? {} : { identity: c.identity }),
});

/** Which check runs an operation that changes things, for the capability check's reason. */
const RUN_BY: Partial<Record<Operation, string>> = {
  backup: 'the backup checks run it',
  restore: 'the restore checks run it (with restore-to-path)',
  'delete-backup': 'the delete check runs it',
  prune: 'the delete check runs it after the delete',
};

const failureText = (f: { code: string; message: string }) => `${f.code}: ${f.message}`;

/** What a plugin that lets a refused path through must do. */
const CONFINE = 'check every host path yourself with confinePath(path, ctx.host, …) before touching it';

class Session {
  private plugin!: ProviderPlugin;
  private manifest!: PluginManifest;
  private dirs!: WorkDirs & HostDirs;
  private readonly points: Point[] = [];
  /** The sample version the data directory holds now. */
  private dataVersion: 1 | 2 = 1;
  /** Whether this file system shows reads in access times. */
  private atimes = false;
  /** Whether the first backup read the sample (undefined: the kit cannot see reads). */
  private backupRead: boolean | undefined;
  /** Whether a restore wrote the sample back into a directory of the host. */
  private restoredOnHost = false;
  /** Restore points the kit made without keeping them (a cancelled backup that finished anyway). */
  private readonly strays: string[] = [];
  private tasks = 0;
  /** The repository identity the `identity reported` check found. */
  private identity: string | undefined;

  constructor(private readonly opts: ConformanceOptions) {}

  private has(capability: Capability): boolean {
    return this.manifest.capabilities.includes(capability);
  }

  private connection(): Partial<ProviderConnection> {
    const c = this.opts.connection;
    return (typeof c === 'function' ? c(this.dirs) : c) ?? {};
  }

  private env(plugin = this.plugin, extra: Partial<MockTaskOptions> = {}): MockTaskEnvironment {
    return new MockTaskEnvironment(plugin, {
      ...connectionOptions(this.connection()),
      taskId: `conformance-${++this.tasks}`,
      timeoutMs: this.opts.timeoutMs ?? 10 * 60_000,
      abortGraceMs: this.grace,
      host: this.host,
      ...extra,
    });
  }

  /** What the kit's agent lets tasks touch: the tenant directory (sample, restores), never its own state. */
  private get host(): HostAccess {
    return { roots: [this.dirs.tenant], denied: [this.dirs.state] };
  }

  /**
   * The plugin run two ways: as the agent runs it (its check of host paths first), and as if the
   * agent did not check (the manifest without `host-paths`), so that only the plugin's own check
   * stands between a refused path and the plugin's work.
   */
  private ways(): [string, ProviderPlugin][] {
    const { manifest } = this;
    const unchecked: ProviderPlugin = {
      manifest: { ...manifest, capabilities: manifest.capabilities.filter((c) => c !== 'host-paths') },
      createProvider: (connection) => this.plugin.createProvider(connection),
    };
    return [
      ['as the agent runs it', this.plugin],
      ["called without the agent's check", unchecked],
    ];
  }

  private get grace(): number {
    return this.opts.cancelGraceMs ?? DEFAULT_ABORT_GRACE_MS;
  }

  /**
   * Whether the kit can read a restore back: with `restore-to-path`, or when the options say where
   * a restore off the host lands (`restoreTargetFor` and `restoredDirFor`).
   */
  private readsRestores(): boolean {
    if (!this.has('restore')) return false;
    return this.has('restore-to-path') || (!!this.opts.restoreTargetFor && !!this.opts.restoredDirFor);
  }

  private get locator(): unknown {
    return this.opts.locatorFor(this.dirs.data, this.dirs);
  }

  private get instance(): { id: string; name: string } {
    return this.opts.instance ?? { id: 'conformance-instance', name: 'conformance' };
  }

  private run<Op extends Operation>(op: Op, request: OperationTypes[Op]['request']): Promise<MockRun<Op>> {
    return this.env().run(op as 'backup', request as never) as unknown as Promise<MockRun<Op>>;
  }

  /** A run's reports: progress never going back (and ending at 100 % with `complete`), nothing the agent would adjust. */
  private reports(what: string, run: { progress: RecordedProgress[]; notes: string[] }, complete: boolean): void {
    const problem = progressProblem(
      run.progress.map((p) => p.percent),
      { complete },
    );
    if (problem) fail(`${what}: ${problem}`);
    if (run.notes.length > 0) fail(`${what}: the agent would have adjusted its reports: ${summarize(run.notes)}`);
  }

  private backupRequest(parent: Point | undefined): BackupRequest {
    const incremental = parent !== undefined && this.has('incremental');
    return {
      instanceId: this.instance.id,
      instanceName: this.instance.name,
      locator: this.locator,
      mode: incremental ? 'INCREMENT' : 'FULL',
      ...(incremental ? { parentExternalId: parent.externalId } : {}),
    };
  }

  /** One backup that must succeed with valid reports and a new external id; kept as a point of `version`. */
  private async backupOnce(what: string, req: BackupRequest, version: 1 | 2): Promise<BackupRecord> {
    const run = await this.run('backup', req);
    if (!run.ok) return fail(`${what} failed: ${failureText(run.failure)}`);
    const b = run.backup;
    if (this.points.some((p) => p.externalId === b.externalId))
      fail(`${what} answered the external id ${b.externalId} of an earlier point`);
    this.points.push({ externalId: b.externalId, parentExternalId: b.parentExternalId || undefined, version });
    this.reports(what, run, true);
    const asked = req.mode === 'INCREMENT' ? `an INCREMENT on ${req.parentExternalId}` : 'a FULL';
    if (req.mode === 'FULL' && b.mode !== 'FULL') fail(`${what}: asked for a FULL backup, answered ${b.mode}`);
    if (req.mode === 'INCREMENT' && (b.mode !== 'INCREMENT' || b.parentExternalId !== req.parentExternalId))
      fail(
        `${what}: declares incremental, but answered ${asked} with ${b.mode}${b.parentExternalId ? ` on ${b.parentExternalId}` : ''}`,
      );
    return b;
  }

  private async listedIds(): Promise<Set<string>> {
    const run = await this.run('sync', {});
    if (!run.ok) return fail(`sync failed: ${failureText(run.failure)}`);
    const problem = outputProblem('sync', run.value);
    if (problem) fail(`sync: ${problem}`);
    return new Set(OUTPUTS.sync.parse(run.value).map((p) => p.externalId));
  }

  /** Restores `point` into a fresh directory and compares it with the sample version it holds. */
  private async restoreAndCompare(point: Point, what: string): Promise<number> {
    const target = await mkdtemp(path.join(this.dirs.tenant, 'restore-'));
    const run = await this.run('restore', {
      instanceId: this.instance.id,
      locator: this.locator,
      backupExternalId: point.externalId,
      target: this.opts.restoreTargetFor ? await this.opts.restoreTargetFor(target, this.dirs) : { path: target },
    });
    if (!run.ok) return fail(`${what} failed: ${failureText(run.failure)}`);
    this.reports(what, run, false);
    const restored = this.opts.restoredDirFor ? await this.opts.restoredDirFor(target, this.dirs) : target;
    const expected = sample(point.version);
    const problems = await compareTree(restored, expected);
    const data = point.version === 1 ? 'the first data' : 'the changed data';
    if (problems.length > 0) fail(`${what} (${point.externalId}) differs from ${data}: ${summarize(problems)}`);
    this.restoredOnHost = true;
    await rm(target, { recursive: true, force: true });
    return expected.length;
  }

  // ---- the checks ----

  private async manifestCheck(): Promise<string> {
    const { packageName, plugin } = this.opts;
    const cwd = this.opts.cwd ?? process.cwd();
    let loaded: LoadedPlugin;
    try {
      loaded = packageName
        ? await loadPlugin(resolveSpec(packageName, cwd), { cwd })
        : inspectPlugin('(given as an object)', { default: plugin });
    } catch (err) {
      // The agent refuses it at start, with this message.
      return fail(err instanceof PluginLoadError ? err.message : `cannot be loaded: ${(err as Error).message}`);
    }
    this.plugin = loaded.plugin;
    this.manifest = loaded.manifest;
    const { name, version } = loaded.manifest;
    const notes = [
      ...(packageName
        ? []
        : ['the package.json "cairn" field is checked only when the kit loads the plugin by package name']),
      ...(PLUGIN_NAME.test(name) ? [] : [`the name ${name} is not cairn-plugin-<id> or @scope/cairn-plugin-<id>`]),
    ];
    return `the agent would load ${name} ${version} (SDK API version ${loaded.apiVersion})${notes.length ? `; note: ${notes.join('; ')}` : ''}`;
  }

  private async operationCheck(op: Operation): Promise<string> {
    if (!this.has(op)) return skip('not declared in capabilities');
    const method = OPERATION_METHODS[op];
    let provider: unknown;
    try {
      provider = this.plugin.createProvider({ endpoint: null, config: {}, credentials: {}, ...this.connection() });
    } catch (err) {
      return fail(`createProvider() threw: ${(err as Error).message}`);
    }
    if (typeof (provider as Record<string, unknown> | null)?.[method] !== 'function')
      fail(
        `declares ${op} but the provider has no ${method}() (its tasks would fail ${FailureCodes.UNSUPPORTED_OPERATION})`,
      );
    if (!(op in OUTPUTS)) return `implements ${method}()${RUN_BY[op] ? `; ${RUN_BY[op]}` : ''}`;
    const requests: Record<ReadOnlyOperation, unknown> = {
      sync: {},
      'list-offerings': {},
      preflight: { locator: this.locator },
      'power-state': { instanceId: this.instance.id, locator: this.locator },
    };
    const run = await this.run(op, requests[op as ReadOnlyOperation] as never);
    if (!run.ok) return fail(`${op} failed: ${failureText(run.failure)}`);
    const problem = outputProblem(op as ReadOnlyOperation, run.value);
    if (problem) fail(`${op}: ${problem}`);
    return `${method}() answers as the control plane expects: ${JSON.stringify(run.value).slice(0, 120)}`;
  }

  private traitCheck(trait: Trait): string {
    if (!this.has(trait)) return skip('not declared in capabilities');
    const missing = missingForTrait(trait, this.manifest.capabilities);
    if (missing.length > 0) fail(`declares ${trait} but not ${missing.join(', ')}`);
    return TRAIT_MEANING[trait];
  }

  private needBackup(): void {
    if (!this.has('backup')) skip('the plugin does not declare backup');
  }

  private async firstBackup(): Promise<string> {
    this.needBackup();
    // Whether the backup reads the sample, for the host paths declared check.
    const watched = [path.join(this.dirs.data, 'hello.txt')];
    if (this.atimes) await ageAccessTimes(watched);
    const b = await this.backupOnce('the backup', this.backupRequest(undefined), 1);
    if (this.atimes) this.backupRead = (await readSinceAged(watched)).length > 0;
    return `FULL ${b.externalId}, ${b.sizeBytes} bytes, progress up to 100 %`;
  }

  private async secondBackup(): Promise<string> {
    this.needBackup();
    const first = this.points[0];
    if (!first) return skip('needs the point of the backup check, which failed');
    await changeSample(this.dirs.data);
    this.dataVersion = 2;
    const b = await this.backupOnce('the second backup', this.backupRequest(first), 2);
    return b.mode === 'INCREMENT'
      ? `INCREMENT ${b.externalId} on ${first.externalId}, ${b.addedBytes} of ${b.sizeBytes} bytes added`
      : `FULL ${b.externalId} (the plugin does not declare incremental)`;
  }

  private async restoreCheck(index: 0 | 1): Promise<string> {
    if (!this.has('restore')) return skip('the plugin does not declare restore');
    if (!this.readsRestores())
      return skip(
        'the plugin does not declare restore-to-path (nor do the options say where a restore lands, restoreTargetFor and restoredDirFor), so the kit cannot read a restore back to compare it',
      );
    const point = this.points[index];
    if (!point) return skip(`needs the point of the ${index === 0 ? 'backup' : 'second backup'} check, which failed`);
    const what = index === 0 ? 'the restore of the first point' : 'the restore of the second point';
    const entries = await this.restoreAndCompare(point, what);
    return `${point.externalId} restored into a fresh ${this.has('restore-to-path') ? 'directory' : 'place'}: all ${entries} entries match (content, size, mode, symlink targets)`;
  }

  private async cancelCheck(): Promise<string> {
    this.needBackup();
    const before = this.has('sync') ? await this.listedIds() : undefined;
    const settled: { outcome?: 'resolved' | 'rejected'; atMs?: number; externalId?: string } = {};
    const watched = withProvider(this.plugin, (p) => ({
      backup: async (req, ctx) => {
        try {
          const value = await p.backup!(req, ctx);
          Object.assign(settled, { outcome: 'resolved', atMs: performance.now(), externalId: value?.externalId });
          return value;
        } catch (err) {
          Object.assign(settled, { outcome: 'rejected', atMs: performance.now() });
          throw err;
        }
      },
    }));
    let cancelledAt: number | undefined;
    let firstPercent = 0;
    const env: MockTaskEnvironment = this.env(watched, {
      onProgress: (report) => {
        if (cancelledAt !== undefined) return;
        cancelledAt = performance.now();
        firstPercent = report.percent;
        env.cancel(CANCEL_REASON);
      },
    });
    const run = await env.run('backup', this.backupRequest(this.points.at(-1)));
    if (settled.outcome === 'resolved' && typeof settled.externalId === 'string') this.strays.push(settled.externalId);
    if (cancelledAt === undefined)
      fail(
        run.ok
          ? 'the backup finished without a progress report, so it could not be cancelled midway'
          : `the backup failed before its first progress report: ${failureText(run.failure)}`,
      );
    if (firstPercent >= 100)
      fail(
        'the first progress report was already 100 %: report progress as the backup goes, so a cancel can stop it midway',
      );
    if (run.abandoned) fail(`did not stop within ${this.grace} ms after cancel`);
    if (run.ok || run.failure.code !== FailureCodes.CANCELLED)
      fail(`the cancelled backup ended ${run.ok ? 'ok' : failureText(run.failure)}, not ${FailureCodes.CANCELLED}`);
    if (settled.outcome === 'resolved')
      fail(`finished the backup (${settled.externalId ?? 'no external id'}) instead of stopping after cancel`);
    const stoppedMs = Math.round((settled.atMs ?? performance.now()) - cancelledAt!);
    if (before) {
      const left = [...(await this.listedIds())].filter((id) => !before.has(id));
      if (left.length > 0) fail(`the cancelled backup left ${left.join(', ')} in the sync listing`);
    }
    const next = await this.backupOnce('the backup after the cancel', this.backupRequest(this.points.at(-1)), 2);
    return `stopped ${stoppedMs} ms after the cancel at ${firstPercent} %${before ? ', leaving no point in the listing' : ''}; the next backup succeeded (${next.externalId})`;
  }

  private async deleteCheck(): Promise<string> {
    if (!this.has('delete-backup')) return skip('the plugin does not declare delete-backup');
    if (this.points.length < 2) return skip('needs two restore points from the backup checks, which failed');
    const victim = deletionVictim(this.points, this.has('handles-chains'))!;
    const run = await this.run('delete-backup', {
      backupExternalId: victim.externalId,
      locator: this.locator,
      instanceId: this.instance.id,
    });
    if (!run.ok) return fail(`delete-backup of ${victim.externalId} failed: ${failureText(run.failure)}`);
    this.points.splice(this.points.indexOf(victim), 1);
    const done = [`deleted ${victim.externalId}`];
    if (this.has('prune')) {
      // The control plane prunes on its own schedule, after deletes: what a delete left must prune.
      const pruned = await this.run('prune', {});
      if (!pruned.ok) return fail(`prune after deleting ${victim.externalId} failed: ${failureText(pruned.failure)}`);
      done.push('pruned');
    }
    if (this.has('sync')) {
      const listed = await this.listedIds();
      if (listed.has(victim.externalId)) fail(`${victim.externalId} is still listed by sync after delete-backup`);
      const gone = this.points.filter((p) => !listed.has(p.externalId)).map((p) => p.externalId);
      if (gone.length > 0) fail(`deleting ${victim.externalId} also took ${gone.join(', ')} from the sync listing`);
      done.push(`sync lists it no more and still lists the other ${this.points.length}`);
    } else done.push('the plugin does not declare sync, so the listing was not checked');
    const newest = this.points.at(-1)!;
    if (this.readsRestores()) {
      await this.restoreAndCompare(newest, `after deleting ${victim.externalId}, the restore of ${newest.externalId}`);
      done.push(`${newest.externalId} still restores the changed data`);
    }
    return done.join('; ');
  }

  // ---- repository identity ----

  private needIdentity(): void {
    if (!this.has('repository-identity')) skip('the plugin does not declare repository-identity');
  }

  /** The identity a run reported (`repository.identity` events), the last one if several. */
  private static reported(run: { events: { type: string; data?: Record<string, unknown> }[] }): unknown[] {
    return run.events.filter((e) => e.type === REPOSITORY_IDENTITY_EVENT).map((e) => e.data?.['identity']);
  }

  private async identityReportedCheck(): Promise<string> {
    this.needIdentity();
    const op: Operation = this.has('sync') ? 'sync' : 'preflight';
    const req = op === 'sync' ? {} : { locator: this.locator };
    const bare = { ...this.connection() };
    delete bare.identity;
    const run = await this.env(this.plugin, { ...connectionOptions(bare), identity: '' }).run(op as 'sync', req);
    if (!run.ok) return fail(`${op} through a connection with no identity failed: ${failureText(run.failure)}`);
    const ids = Session.reported(run);
    if (ids.length === 0)
      fail(
        `${op} through a connection with no identity emitted no ${REPOSITORY_IDENTITY_EVENT} event: report the repository's identity with reportIdentity(ctx, id) (checkRepositoryIdentity does)`,
      );
    const id = ids.at(-1);
    if (typeof id !== 'string' || id === '')
      fail(
        `the ${REPOSITORY_IDENTITY_EVENT} event carries ${JSON.stringify(id)}, not data.identity as a non-empty string`,
      );
    this.identity = id as string;
    const again = await this.env(this.plugin, { identity: this.identity }).run(op as 'sync', req);
    if (!again.ok)
      fail(`${op} through a connection that records identity ${this.identity} failed: ${failureText(again.failure)}`);
    if (Session.reported(again).length > 0)
      fail(`${op} through a connection that records identity ${this.identity} reported it again`);
    return `${op} through a connection with no identity reported ${this.identity}; with it recorded, ${op} succeeds and reports nothing`;
  }

  private async repositoryChangedCheck(): Promise<string> {
    this.needIdentity();
    this.needBackup();
    const recorded = `${this.identity ?? 'conformance'}-not-this-repository`;
    const before = this.has('sync') ? await this.listedIds() : undefined;
    const run = await this.env(this.plugin, { identity: recorded }).run('backup', this.backupRequest(undefined));
    if (run.ok) {
      this.strays.push(run.backup.externalId);
      return fail(
        `a backup through a connection that records identity ${recorded} succeeded (${run.backup.externalId}): check the repository's identity with checkRepositoryIdentity before changing anything`,
      );
    }
    if (run.failure.code !== REPOSITORY_CHANGED)
      fail(
        `a backup through a connection that records identity ${recorded} failed ${failureText(run.failure)}, not ${REPOSITORY_CHANGED}`,
      );
    if (before) {
      const after = await this.listedIds();
      const made = [...after].filter((id) => !before.has(id));
      const lost = [...before].filter((id) => !after.has(id));
      if (made.length + lost.length > 0)
        fail(
          `the refused backup changed the sync listing: ${[...made.map((id) => `added ${id}`), ...lost.map((id) => `took ${id}`)].join(', ')}`,
        );
    }
    return `a backup through a connection recording another identity failed ${REPOSITORY_CHANGED}${before ? ', and sync lists the same points' : ''}`;
  }

  private async repositoryAbsentCheck(): Promise<string> {
    this.needIdentity();
    this.needBackup();
    const absent = this.opts.absentConnection;
    if (absent === undefined)
      return skip('give absentConnection (a connection to a repository that does not exist) to run it');
    const options = connectionOptions(typeof absent === 'function' ? absent(this.dirs) : absent);
    const run = await this.env(this.plugin, options).run('backup', this.backupRequest(undefined));
    if (run.ok) {
      return fail(
        `a backup to a repository that does not exist succeeded (${run.backup.externalId}): no operation but a preflight asked to initialise may create a repository`,
      );
    }
    if (run.failure.code !== REPOSITORY_NOT_FOUND)
      fail(`a backup to a repository that does not exist failed ${failureText(run.failure)}, not REPOSITORY_NOT_FOUND`);
    const check = await this.env(this.plugin, options).run('preflight', { locator: this.locator });
    if (!check.ok) fail(`the preflight after it failed: ${failureText(check.failure)}`);
    if (check.ok && check.value.ok)
      fail(
        'after the refused backup, a preflight of the absent repository passes: the backup created a repository (or the preflight does not report a missing one)',
      );
    return 'a backup to a repository that does not exist failed REPOSITORY_NOT_FOUND, and a preflight still finds it missing';
  }

  // ---- host paths: the plugin's own confinement ----

  private needHostPaths(): void {
    if (!this.has('host-paths')) skip('the plugin does not declare host-paths');
  }

  private hostPathsDeclaredCheck(): string {
    if (this.has('host-paths'))
      return "declares host-paths: the agent checks its locators and restore targets against the agent's roots, and the next checks try the plugin's own checks";
    const locatorNamesDir = JSON.stringify(this.locator ?? null).includes(JSON.stringify(this.dirs.data).slice(1, -1));
    const use = { locatorNamesDir, backupRead: this.backupRead, restoredOnHost: this.restoredOnHost };
    const problem = undeclaredHostUse(use);
    if (problem) fail(problem);
    if (!locatorNamesDir) return skip('does not declare host-paths, and its locator names no path on the host');
    return skip(
      `does not declare host-paths; its locator names the sample directory, but the kit saw it restore nothing onto the host${
        this.backupRead === undefined
          ? ' (and this file system keeps no access times to show reads)'
          : ' nor read the sample'
      }`,
    );
  }

  private async locatorOutsideCheck(): Promise<string> {
    this.needHostPaths();
    this.needBackup();
    const at = hostPlaces(this.dirs);
    const cases: [string, string][] = [
      ['a directory outside the roots', at.secret],
      ['a link in the root to a directory outside', at.linkToSecret],
      ["the agent's own state", this.dirs.state],
    ];
    const before = this.has('sync') ? await this.listedIds() : undefined;
    const watched = [at.secret, path.join(at.secret, 'canary.txt'), this.dirs.state, at.credential];
    if (this.atimes) await ageAccessTimes(watched);
    for (const [what, where] of cases) {
      for (const [way, plugin] of this.ways()) {
        const req = { ...this.backupRequest(undefined), locator: this.opts.locatorFor(where, this.dirs) };
        const run = await this.env(plugin).run('backup', req);
        if (run.ok) {
          this.strays.push(run.backup.externalId);
          return fail(`${way}, a backup of ${what} (${where}) succeeded (${run.backup.externalId}): ${CONFINE}`);
        }
        if (run.failure.code !== PATH_NOT_ALLOWED)
          fail(`${way}, a backup of ${what} (${where}) failed ${failureText(run.failure)}, not ${PATH_NOT_ALLOWED}`);
        const read = this.atimes ? await readSinceAged(watched) : [];
        if (read.length > 0)
          fail(`${way}, the refused backup of ${what} still read ${read.join(', ')} (access time moved): ${CONFINE}`);
      }
    }
    if (before) {
      const made = [...(await this.listedIds())].filter((id) => !before.has(id));
      if (made.length > 0) fail(`the refused backups left ${made.join(', ')} in the sync listing`);
    }
    return `${cases.map(([what]) => what).join(', ')}: each refused ${PATH_NOT_ALLOWED} as the agent runs the plugin and without the agent's check; ${
      this.atimes
        ? 'nothing there was read (access times kept)'
        : 'this file system keeps no access times, so reads were not watched'
    }${before ? ', and no point was made' : ''}`;
  }

  private async restoreTargetOutsideCheck(): Promise<string> {
    this.needHostPaths();
    if (!this.has('restore')) return skip('the plugin does not declare restore');
    const point = this.points.at(-1) ?? skip('needs a restore point from the backup checks, which failed');
    const at = hostPlaces(this.dirs);
    const target = async (dir: string) =>
      this.opts.restoreTargetFor ? await this.opts.restoreTargetFor(dir, this.dirs) : { path: dir };
    const cases: (readonly [string, string, { locator?: unknown; target?: unknown }])[] = [
      [
        'in place, with a locator outside the roots',
        at.secret,
        { locator: this.opts.locatorFor(at.secret, this.dirs) },
      ],
      ...(this.has('restore-to-path')
        ? [
            ['to a target outside the roots', at.foreignTarget, { target: await target(at.foreignTarget) }] as const,
            [
              'to a target through a link out of the roots',
              at.linkToTarget,
              { target: await target(at.linkToTarget) },
            ] as const,
          ]
        : []),
    ];
    const before = await fingerprint(this.dirs.outside);
    for (const [what, where, req] of cases) {
      for (const [way, plugin] of this.ways()) {
        const run = await this.env(plugin).run('restore', {
          instanceId: this.instance.id,
          locator: req.locator ?? this.locator,
          backupExternalId: point.externalId,
          ...(req.target === undefined ? {} : { target: req.target }),
        });
        const changes = fingerprintChanges(before, await fingerprint(this.dirs.outside));
        if (changes.length > 0)
          fail(`${way}, the restore ${what} (${where}) changed what lies outside the roots: ${summarize(changes)}`);
        if (run.ok) return fail(`${way}, the restore ${what} (${where}) succeeded: ${CONFINE}`);
        if (run.failure.code !== PATH_NOT_ALLOWED)
          fail(`${way}, the restore ${what} (${where}) failed ${failureText(run.failure)}, not ${PATH_NOT_ALLOWED}`);
      }
    }
    return `restores ${cases.map(([what]) => what).join('; ')}: each refused ${PATH_NOT_ALLOWED} as the agent runs the plugin and without the agent's check, and nothing outside the roots changed${
      this.has('restore-to-path') ? '' : ' (without restore-to-path, targets were not tried)'
    }`;
  }

  private async linksPlantedCheck(): Promise<string> {
    this.needHostPaths();
    if (!this.has('restore')) return skip('the plugin does not declare restore');
    const point =
      this.points.findLast((p) => p.version === this.dataVersion) ??
      skip('needs a restore point of the data as it is now, from the backup checks, which failed');
    const expected = sample(point.version);
    const before = await fingerprint(this.dirs.outside);
    const restoreOver = async (what: string, dir: string, target: unknown): Promise<void> => {
      await plantLinks(dir, this.dirs);
      const run = await this.run('restore', {
        instanceId: this.instance.id,
        locator: this.locator,
        backupExternalId: point.externalId,
        ...(target === undefined ? {} : { target }),
      });
      const changes = fingerprintChanges(before, await fingerprint(this.dirs.outside));
      if (changes.length > 0)
        fail(
          `the restore ${what} wrote through links planted since the backup (nested and hello.txt of ${dir} swapped for links out of the roots), changing ${summarize(changes)}: restore into makeStaging() and move it with placeRestored()`,
        );
      if (!run.ok) fail(`the restore ${what} over links planted since the backup failed: ${failureText(run.failure)}`);
      const problems = await compareTree(dir, expected);
      if (problems.length > 0)
        fail(
          `after the restore ${what} over planted links, ${dir} differs from ${point.externalId}: ${summarize(problems)}`,
        );
    };
    await restoreOver('in place', this.dirs.data, undefined);
    const done = ['in place'];
    if (this.has('restore-to-path')) {
      const target = await mkdtemp(path.join(this.dirs.tenant, 'restore-'));
      const restored = this.opts.restoredDirFor ? await this.opts.restoredDirFor(target, this.dirs) : target;
      await restoreOver(
        'to a path',
        restored,
        this.opts.restoreTargetFor ? await this.opts.restoreTargetFor(target, this.dirs) : { path: target },
      );
      await rm(target, { recursive: true, force: true });
      done.push('to a path');
    }
    return `restored ${point.externalId} ${done.join(' and ')} over a directory and a file swapped for links out of the roots: the links were replaced, nothing outside the roots changed, and the restored data matches the point`;
  }

  // ---- the run ----

  async execute(): Promise<ConformanceReport> {
    const checks: CheckResult[] = [];
    const record = async (name: string, check: () => Promise<string> | string): Promise<void> => {
      const started = performance.now();
      let status: CheckStatus = 'pass';
      let reason: string;
      try {
        reason = await check();
      } catch (err) {
        status = err instanceof CheckSkipped ? 'skip' : 'fail';
        reason =
          err instanceof CheckFailed || err instanceof CheckSkipped
            ? err.message
            : `the check could not run: ${err instanceof Error ? err.message : String(err)}`;
      }
      const result: CheckResult = { name, status, reason, durationMs: Math.round(performance.now() - started) };
      checks.push(result);
      this.opts.onCheck?.(result);
    };

    const root = await mkdtemp(path.join(this.opts.workDir ?? os.tmpdir(), 'cairn-conformance-'));
    const tenant = path.join(root, 'tenant');
    this.dirs = {
      root,
      tenant,
      state: path.join(tenant, 'agent-state'),
      outside: path.join(root, 'outside'),
      data: path.join(tenant, 'data'),
      scratch: path.join(root, 'scratch'),
    };
    try {
      await mkdir(this.dirs.tenant);
      await mkdir(this.dirs.scratch);
      if (this.opts.dataDirFor) this.dirs.data = await this.opts.dataDirFor({ scratch: this.dirs.scratch });
      await mkdir(this.dirs.data, { recursive: true });
      await writeSample(this.dirs.data);
      await writeHostFixtures(this.dirs);
      this.atimes = await keepsAccessTimes(root);
      await record('manifest', async () => {
        const loaded = await this.manifestCheck();
        return this.opts.keepWorkDir ? `${loaded}; work directory ${root}` : loaded;
      });
      if (checks[0]!.status !== 'pass') {
        for (const name of CHECK_NAMES.slice(1)) await record(name, () => skip('the agent would not load the plugin'));
        return report(checks, undefined);
      }
      for (const op of OPERATIONS) await record(`capability ${op}`, () => this.operationCheck(op));
      for (const trait of TRAITS) await record(`capability ${trait}`, () => this.traitCheck(trait));
      await record('backup', () => this.firstBackup());
      await record('second backup', () => this.secondBackup());
      await record('restore first point', () => this.restoreCheck(0));
      await record('restore second point', () => this.restoreCheck(1));
      await record('cancel', () => this.cancelCheck());
      await record('delete', () => this.deleteCheck());
      await record('identity reported', () => this.identityReportedCheck());
      await record('repository changed', () => this.repositoryChangedCheck());
      await record('repository absent', () => this.repositoryAbsentCheck());
      await record('host paths declared', () => this.hostPathsDeclaredCheck());
      await record('locator outside roots', () => this.locatorOutsideCheck());
      await record('restore target outside roots', () => this.restoreTargetOutsideCheck());
      await record('links planted before restore', () => this.linksPlantedCheck());
    } finally {
      await this.cleanUp();
    }
    return report(checks, this.manifest);
  }

  /** Deletes what the run made, newest first (so no increment outlives its base), then its directories. */
  private async cleanUp(): Promise<void> {
    if (this.manifest && this.has('delete-backup')) {
      const ids = [...this.strays, ...this.points.map((p) => p.externalId).reverse()];
      for (const id of ids)
        await this.run('delete-backup', { backupExternalId: id, locator: this.locator }).catch(() => undefined);
    }
    if (!this.opts.keepWorkDir) await rm(this.dirs.root, { recursive: true, force: true });
  }
}

function report(checks: CheckResult[], manifest: PluginManifest | undefined): ConformanceReport {
  const counts: Record<CheckStatus, number> = { pass: 0, fail: 0, skip: 0 };
  for (const c of checks) counts[c.status]++;
  return {
    ...(manifest ? { plugin: { name: manifest.name, version: manifest.version } } : {}),
    ok: counts.fail === 0,
    counts,
    checks,
  };
}

/** A package spec as the agent's loader takes it: a relative path made absolute, a package name as it is. */
function resolveSpec(spec: string, cwd: string): string {
  return spec.startsWith('.') || path.isAbsolute(spec) ? path.resolve(cwd, spec) : spec;
}

/**
 * Runs every check on a plugin, through the SDK host the way the agent runs operations (its
 * guard, result and report rules, `@cairn/plugin-sdk/testing`), and reports each as passed,
 * failed or skipped with the reason. Never throws for anything the plugin does.
 *
 * @example
 * const report = await runConformance({
 *   packageName: 'cairn-plugin-acme',
 *   connection: ({ scratch }) => ({ config: { repository: `${scratch}/repo` } }),
 *   locatorFor: (dir) => ({ paths: [dir] }),
 * });
 * if (!report.ok) console.log(report.checks.filter((c) => c.status === 'fail'));
 *
 * @throws ConformanceUsageError when neither or both of `plugin` and `packageName` are given.
 */
export async function runConformance(options: ConformanceOptions): Promise<ConformanceReport> {
  if ((options.plugin === undefined) === (options.packageName === undefined))
    throw new ConformanceUsageError(
      'give the plugin to check as either `plugin` or `packageName`, not both or neither',
    );
  if (typeof options.locatorFor !== 'function') throw new ConformanceUsageError('`locatorFor(dir)` must be a function');
  return new Session(options).execute();
}
