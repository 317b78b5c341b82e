import { readFile } from 'node:fs/promises';
import type { ProviderConnection } from '@cairn/plugin-sdk';
import { z } from 'zod';
import { issues } from './outputs.js';
import { ConformanceUsageError, type ConformanceOptions, type WorkDirs } from './run.js';

/**
 * The command's config file (JSON). Strings may hold placeholders the kit fills in for each
 * run: `{dir}` the directory of sample data, `{scratch}` an empty directory the plugin may use
 * (e.g. as a repository), `{target}` the empty directory a restore goes to.
 *
 * @example
 * {
 *   "connection": { "config": { "repository": "{scratch}/repo" }, "credentials": { "password": "test" } },
 *   "locator": { "paths": ["{dir}"] },
 *   "restoreTarget": { "path": "{target}" },
 *   "restoredDir": "{target}{dir}"
 * }
 */
const Connection = z.strictObject({
  endpoint: z.string().nullable().optional(),
  config: z.record(z.string(), z.json()).optional(),
  credentials: z.record(z.string(), z.json()).optional(),
});

export const ConfigFileSchema = z
  .strictObject({
    /** The provider connection, as an SP admin would set it. */
    connection: Connection.optional(),
    /**
     * For a plugin that declares `repository-identity`: a connection to a repository that does
     * not exist (e.g. `{"endpoint": "{scratch}/absent"}`); what it leaves out is taken from
     * `connection`. Without it the `repository absent` check is skipped.
     */
    absentConnection: Connection.optional(),
    /** The instance locator of the sample data: must name `{dir}`. */
    locator: z.json().optional(),
    /** A restore's `target`. Default `{"path": "{target}"}`. */
    restoreTarget: z.json().optional(),
    /** Where a restore puts the copy of `{dir}`. Default `{target}`. */
    restoredDir: z.string().min(1).optional(),
    instance: z.strictObject({ id: z.string().min(1).max(255), name: z.string().min(1).max(255) }).optional(),
    /** How long a cancelled backup may take to stop. Default 5000. */
    cancelGraceMs: z.number().int().nonnegative().max(600_000).optional(),
    /** Each operation's timeout. Default 600000 (10 minutes). */
    timeoutMs: z
      .number()
      .int()
      .positive()
      .max(2 ** 31 - 1)
      .optional(),
  })
  .superRefine((c, ctx) => {
    if (c.locator === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['locator'],
        message: 'required: the instance locator of the sample data, e.g. {"paths": ["{dir}"]}',
      });
  });

export type ConfigFile = z.infer<typeof ConfigFileSchema>;

/** What a config file sets of {@link ConformanceOptions}: everything but the plugin. */
export type ConfigOptions = Omit<ConformanceOptions, 'plugin' | 'packageName' | 'cwd' | 'onCheck'>;

/** `value` with every placeholder of `vars` filled in, in every string however deep. */
export function fill(value: unknown, vars: Record<string, string>): unknown {
  if (typeof value === 'string') return Object.entries(vars).reduce((s, [k, v]) => s.replaceAll(`{${k}}`, v), value);
  if (Array.isArray(value)) return value.map((v) => fill(v, vars));
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fill(v, vars)]));
  return value;
}

/**
 * Turns a parsed config file into the kit's options.
 *
 * @throws ConformanceUsageError naming every problem (`locator: required: …`, `connection: unknown field x`).
 */
export function optionsFromConfig(raw: unknown): ConfigOptions {
  const parsed = ConfigFileSchema.safeParse(raw);
  if (!parsed.success) throw new ConformanceUsageError(issues(parsed.error).join('; '));
  const c = parsed.data;
  if (!JSON.stringify(c.locator).includes('{dir}'))
    throw new ConformanceUsageError('locator: must name the sample data directory as {dir}, e.g. {"paths": ["{dir}"]}');
  const dirVars = (dirs: WorkDirs) => ({ dir: dirs.data, scratch: dirs.scratch });
  return {
    connection: (dirs) => fill(c.connection ?? {}, dirVars(dirs)) as Partial<ProviderConnection>,
    ...(c.absentConnection
      ? { absentConnection: (dirs: WorkDirs) => fill(c.absentConnection, dirVars(dirs)) as Partial<ProviderConnection> }
      : {}),
    locatorFor: (dir, dirs) => fill(c.locator, { ...dirVars(dirs), dir }),
    // Left to the kit's defaults when not given: given both, restores are read back without restore-to-path.
    ...(c.restoreTarget === undefined
      ? {}
      : { restoreTargetFor: (target: string, dirs: WorkDirs) => fill(c.restoreTarget, { ...dirVars(dirs), target }) }),
    ...(c.restoredDir === undefined
      ? {}
      : {
          restoredDirFor: (target: string, dirs: WorkDirs) =>
            fill(c.restoredDir, { ...dirVars(dirs), target }) as string,
        }),
    ...(c.instance ? { instance: c.instance } : {}),
    ...(c.cancelGraceMs === undefined ? {} : { cancelGraceMs: c.cancelGraceMs }),
    ...(c.timeoutMs === undefined ? {} : { timeoutMs: c.timeoutMs }),
  };
}

/**
 * Reads and checks a config file.
 *
 * @throws ConformanceUsageError starting with the file's name: it cannot be read, is not JSON, or is not a valid config.
 */
export async function readConfigFile(file: string): Promise<ConfigOptions> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConformanceUsageError(
      `${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConformanceUsageError(`${file}: is not JSON (${(err as Error).message})`);
  }
  try {
    return optionsFromConfig(raw);
  } catch (err) {
    throw new ConformanceUsageError(`${file}: ${(err as Error).message}`);
  }
}
