/** `cairn login` and `cairn context list|use|delete`: the config file's contexts. */
import type { Command } from '@commander-js/extra-typings';
import { Client } from '../client.js';
import { checkContextName, normaliseUrl, writeConfig, type Config } from '../config.js';
import { CONTEXT } from '../columns.js';
import { CliError, EXIT } from '../exit.js';
import type { App } from '../app.js';

function contextRows(config: Config) {
  return Object.entries(config.contexts).map(([name, c]) => ({
    name,
    url: c.url,
    current: name === config.currentContext,
  }));
}

export function sessionCommands(program: Command, app: App): void {
  program
    .command('login')
    .description(
      'check a server URL and API token (the global --url and --token, else CAIRN_URL and CAIRN_TOKEN) and save them as a context (--context, default "default"), made current',
    )
    .action(async () => {
      const g = app.globals;
      const rawUrl = g.url ?? (app.env['CAIRN_URL'] || undefined);
      const token = g.token ?? (app.env['CAIRN_TOKEN'] || undefined);
      if (rawUrl === undefined) throw new CliError(EXIT.usage, 'login needs --url URL (or CAIRN_URL)');
      if (token === undefined || token.trim() === '')
        throw new CliError(EXIT.usage, 'login needs --token TOKEN (or CAIRN_TOKEN)');
      let url: string;
      try {
        url = normaliseUrl(rawUrl);
      } catch (err) {
        throw new CliError(EXIT.usage, `--url: ${(err as Error).message}`);
      }
      const name = checkContextName(g.context ?? 'default');
      const file = app.configFile;
      const config = app.readConfig();
      // Any role may read the global maintenance state: a cheap proof that URL and token work.
      await new Client({ url, token, context: null }).get('/v1/maintenance');
      config.contexts[name] = { url, token };
      config.currentContext = name;
      writeConfig(file, config);
      const out = app.out();
      out.note(`logged in to ${url}; context "${name}" saved in ${file} and made current`);
      out.one({ name, url, current: true }, CONTEXT);
    });

  const context = program.command('context').description('the contexts (server and token) of the config file');

  context
    .command('list')
    .description('list the contexts; * marks the current one')
    .action(() => {
      app.out().list({ items: contextRows(app.readConfig()), nextCursor: null }, CONTEXT);
    });

  const named = (config: Config, name: string) => {
    if (!(name in config.contexts))
      throw new CliError(
        EXIT.notFound,
        `no context named ${JSON.stringify(name)} in ${app.configFile} (known: ${Object.keys(config.contexts).join(', ') || 'none'})`,
      );
  };

  context
    .command('use')
    .description('make a context the current one')
    .argument('<name>')
    .action((name) => {
      const config = app.readConfig();
      named(config, name);
      config.currentContext = name;
      writeConfig(app.configFile, config);
      const out = app.out();
      out.note(`current context: ${name}`);
      out.one(
        contextRows(config).find((r) => r.name === name),
        CONTEXT,
      );
    });

  context
    .command('delete')
    .description('remove a context (and its token) from the config file')
    .argument('<name>')
    .action((name) => {
      const config = app.readConfig();
      named(config, name);
      const gone = { name, url: config.contexts[name]!.url, current: false };
      delete config.contexts[name];
      if (config.currentContext === name) config.currentContext = null;
      writeConfig(app.configFile, config);
      const out = app.out();
      out.note(`context ${name} deleted${config.currentContext === null ? '; no context is current now' : ''}`);
      out.one(gone, CONTEXT);
    });
}
