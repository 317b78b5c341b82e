/** The command tree of `cairn`: every command group, the global flags, and `completion`. */
import { Argument, Command } from '@commander-js/extra-typings';
import { addGlobalOptions, type App } from './app.js';
import { CLI_VERSION } from './client.js';
import { eventCommands } from './commands/events.js';
import { jobCommands } from './commands/jobs.js';
import { providerCommands } from './commands/providers.js';
import { maintenanceCommands } from './commands/maintenance.js';
import { resourceCommands } from './commands/resources.js';
import { sessionCommands } from './commands/session.js';
import { taskCommands } from './commands/tasks.js';
import { completionTree, SHELLS } from './completion.js';

export function buildProgram(app: App) {
  const program = addGlobalOptions(
    new Command('cairn')
      .description('Manage a Cairn backup control plane through its HTTP API.')
      .version(CLI_VERSION)
      .exitOverride()
      // A usage error is one line that names the problem and where the usage is, never a page
      // of help (the subcommands inherit both settings).
      .showHelpAfterError(false)
      .configureOutput({ outputError: (text, write) => write(`${text.trimEnd()} (see --help)\n`) })
      .configureHelp({ showGlobalOptions: true }),
  );
  app.bind(program);
  const root = program as unknown as Command;
  sessionCommands(root, app);
  resourceCommands(root, app);
  taskCommands(root, app);
  eventCommands(root, app);
  maintenanceCommands(root, app);
  providerCommands(root, app);
  jobCommands(root, app);
  program
    .command('completion')
    .description('print the shell completion script: source <(cairn completion bash), see docs/cli.md')
    .addArgument(new Argument('<shell>').choices(Object.keys(SHELLS) as (keyof typeof SHELLS)[]))
    .action((shell) => {
      process.stdout.write(SHELLS[shell](completionTree(root as never)));
    });
  return program;
}
