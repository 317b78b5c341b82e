// One linter for the whole repo; type-aware rules catch floating promises, and the import rules below
// keep the table of docs/architecture.md ("Packages and what they may import"). Each boundary rule
// has a breaching fixture in test/lint-fixtures/ that test/lint/boundaries.test.ts proves it catches.
import path from 'node:path';
import js from '@eslint/js';
import globals from 'globals';
import importX, { createNodeResolver } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

const root = import.meta.dirname;
const cp = 'packages/control-plane/src';
const agent = 'packages/agent/src';
/** An absolute glob: import-x matches resolved files against these. */
const abs = (p) => path.join(root, p);

// Test files and test-support folders may reach anything of their own package.
const notProduct = ['**/*.test.ts', '**/testing/**'];

/** A task written out by hand (its `pinnedAgentId` gives it away) instead of by the task factory. */
const taskLiteral = {
  selector: "ObjectExpression > Property[key.name='pinnedAgentId']",
  message: 'tasks are made by domain/task-factory.ts (instanceTask, backupTask, providerTask), never written out.',
};

/**
 * Reading the time (a call of Date.now, or passing it on; a `new Date()` of no argument). Product
 * code asks the one injected Clock instead, so a test's clock moves everything; only the module
 * that defines the clock reads the real one. Converting a given time (`new Date(ms)`) is fine.
 */
const readsTheClock = [
  {
    selector: "MemberExpression[object.name='Date'][property.name='now']",
    message: 'the time is read through the injected Clock (clock.ts), never Date.now(): a test clock must move it too.',
  },
  {
    selector: "NewExpression[callee.name='Date'][arguments.length=0]",
    message:
      'the time is read through the injected Clock (clock.ts): `new Date(clock.now())`, never `new Date()`: a test clock must move it too.',
  },
];

/** A constructor of many positional parameters: callers name what they pass instead. */
const longConstructor = {
  selector: "MethodDefinition[kind='constructor'] > FunctionExpression[params.length>4]",
  message:
    'a constructor of more than 4 parameters takes one options object (named fields; a …Deps or …Options interface beside the class).',
};

// `no-restricted-imports` patterns for every file; a later block replaces a rule's options, so each repeats them.
const everywhere = [
  {
    regex: '^@cairn/[^/]+/(src|dist)(/|$)',
    message: 'import a workspace package by its name and its exports, never its src/ or dist/ files.',
  },
];
const productOnly = [
  ...everywhere,
  {
    regex: '^@cairn/test-harness(/|$)',
    message: 'the test harness is for tests, testing/ folders and bench/ only; product code never depends on it.',
  },
];
const notTheAgentSide = {
  regex: '^@cairn/(agent|plugin-[^/]+)(/|$)',
  message:
    'the control plane never imports the agent, the SDK or a plugin: it speaks to them over the wire (@cairn/proto).',
};
const noPluginByName = {
  regex: '^@cairn/plugin-(?!sdk(/|$))',
  message: 'plugins are loaded by npm name at run time (@cairn/plugin-sdk/host loadPlugins), never imported.',
};
const restrict = (files, patterns, extra = {}) => ({
  files,
  ignores: notProduct,
  rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns }] },
  ...extra,
});

// Kysely's query entry points: a module that may not run SQL may not start a query on any handle.
const queryBuilders = 'selectFrom|selectNoFrom|insertInto|replaceInto|updateTable|deleteFrom|mergeInto|executeQuery';

/**
 * Who may import whom inside a package, by resolved path (so `../../x` and `./x` are judged alike).
 * `target` files may import nothing from `from` except `except`.
 */
const zone = (target, allowed, message, from = `${cp}/**`) => ({
  target: abs(target),
  from: abs(from),
  except: allowed.map(abs),
  message,
});
const cpLeaves = [`${cp}/{config,logger,clock}.ts`, `${cp}/observability/**`];
const zones = [
  zone(`${cp}/domain/**`, [`${cp}/domain/**`], 'domain/ holds pure rules: it imports only other domain/ files.'),
  zone(
    `${cp}/store/**`,
    // `@(clock)`: a glob for one file (import-x takes globs only, beside a glob `from`).
    [`${cp}/domain/**`, `${cp}/store/**`, `${cp}/@(clock).ts`],
    'store/ may import only domain/ and clock.ts.',
  ),
  zone(
    `${cp}/lifecycle/**`,
    [`${cp}/domain/**`, `${cp}/store/**`, `${cp}/lifecycle/**`, ...cpLeaves],
    'lifecycle/ may import only domain/, store/ and the leaves (config, logger, clock, observability).',
  ),
  zone(
    `${cp}/service/**`,
    [`${cp}/domain/**`, `${cp}/store/**`, `${cp}/lifecycle/**`, `${cp}/service/**`, ...cpLeaves],
    'service/ may import only domain/, store/, lifecycle/ and the leaves (config, logger, clock, observability).',
  ),
  zone(
    `${cp}/dispatch/**`,
    [`${cp}/domain/**`, `${cp}/store/**`, `${cp}/lifecycle/**`, `${cp}/dispatch/**`, ...cpLeaves],
    'dispatch/ may import only domain/, store/, lifecycle/ and the leaves (config, logger, clock, observability).',
  ),
  zone(
    `${cp}/scheduler/**`,
    [`${cp}/domain/**`, `${cp}/store/**`, `${cp}/lifecycle/**`, `${cp}/service/**`, `${cp}/scheduler/**`, ...cpLeaves],
    'scheduler/ may import only domain/, store/, lifecycle/, service/ and the leaves (config, logger, clock, observability).',
  ),
  zone(
    `${cp}/api/**`,
    [`${cp}/domain/**`, `${cp}/store/**`, `${cp}/lifecycle/**`, `${cp}/service/**`, `${cp}/api/**`, ...cpLeaves],
    'api/ may import only domain/, store/, lifecycle/, service/ and the leaves (config, logger, clock, observability).',
  ),
  zone(
    `${cp}/{config,logger,clock}.ts`,
    [`${cp}/domain/**`],
    'config.ts, logger.ts and clock.ts are leaves: they import only domain/.',
  ),
  zone(
    `${cp}/observability/**`,
    [`${cp}/domain/**`, `${cp}/observability/**`],
    'observability/ is a leaf: it imports only domain/.',
  ),
  // The agent: the socket, the plugins (hosted through @cairn/plugin-sdk/host) and the disk meet
  // only in executor/ and agent.ts.
  zone(`${agent}/session/**`, [], 'session/ speaks the wire: it never runs tasks (executor/).', `${agent}/executor/**`),
  zone(
    `${agent}/executor/**`,
    [],
    'executor/ writes reports to the spool; only session/ talks to the control plane.',
    `${agent}/session/**`,
  ),
  zone(
    `${agent}/{spool,state}/**`,
    [`${agent}/spool/**`, `${agent}/state/**`, `${agent}/clock.{ts,js}`],
    'spool/ and state/ keep files on disk: they import only each other and the clock (clock.ts).',
    `${agent}/**`,
  ),
  zone(`${agent}/clock.ts`, [], "clock.ts is a leaf: it imports nothing of the agent's.", `${agent}/**`),
];

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      'proto/gen/**',
      'data/**',
      'coverage/**',
      '**/test-fixtures/**',
      // Deliberate breaches; test/lint/boundaries.test.ts lints them on purpose.
      'test/lint-fixtures/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: {
        project: ['./tsconfig.json'],
        tsconfigRootDir: root,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-namespace': 'off',
      '@typescript-eslint/no-import-type-side-effects': 'error',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: globals.node },
  },
  // The web console runs in a browser and compiles JSX for Preact: its own tsconfig (DOM, JSX).
  {
    files: ['packages/console/**/*.{ts,tsx}'],
    languageOptions: {
      globals: globals.browser,
      parserOptions: { project: ['./packages/console/tsconfig.json'], tsconfigRootDir: root },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': [
        'error',
        { checksVoidReturn: { arguments: false, attributes: false } },
      ],
    },
  },

  // ---- Import boundaries (docs/architecture.md) ----
  {
    files: ['**/*.ts', '**/*.js', '**/*.mjs'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.mts', '.js', '.mjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.mts'] },
      // NodeNext style: `./x.js` in source names `./x.ts`.
      'import-x/resolver-next': [
        createNodeResolver({
          extensions: ['.ts', '.mts', '.js', '.mjs', '.json', '.node'],
          extensionAlias: { '.js': ['.ts', '.js'], '.mjs': ['.mts', '.mjs'] },
          conditionNames: ['types', 'import', 'default'],
        }),
      ],
    },
    rules: {
      // Cycles cannot run through third-party packages; not parsing them keeps lint quick.
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-relative-packages': 'error',
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: everywhere }],
    },
  },
  {
    files: ['packages/**/src/**/*.ts', 'proto/src/**/*.ts'],
    ignores: notProduct,
    rules: {
      'import-x/no-restricted-paths': ['error', { basePath: root, zones }],
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: productOnly }],
    },
  },
  restrict([`${cp}/**/*.ts`], [...productOnly, notTheAgentSide]),
  restrict(
    [`${cp}/domain/**/*.ts`],
    [
      ...productOnly,
      {
        regex: '^(?!\\.|@cairn/proto(/vocabulary)?$)',
        message:
          'domain/ holds pure rules: no node:* and no packages but @cairn/proto (I/O belongs in store/, dispatch/, api/).',
      },
    ],
  ),
  restrict(
    [`${cp}/api/routes/**/*.ts`],
    [
      ...productOnly,
      notTheAgentSide,
      {
        regex: '^(kysely|mysql2|better-sqlite3)(/|$)',
        allowTypeImports: true,
        message: 'routes run no SQL: call the operation (service/) you are handed (types may be imported).',
      },
      {
        regex: '(^|/)store/(?!(page|db)\\.js$)',
        allowTypeImports: true,
        message:
          'routes run no SQL: from store/ they import repository and row types only (values: page.ts, storeReady).',
      },
      {
        regex: '(^|/)store/db\\.js$',
        allowTypeImports: true,
        allowImportNames: ['storeReady'],
        message: 'routes run no SQL: from store/db.ts they import only storeReady (the readiness probe) and types.',
      },
    ],
  ),
  // store/ is row access: no file of it imports a repository, not even as a type (no repository
  // calls another; what spans repositories is lifecycle/'s), and none makes a task (the task
  // factory's values are for lifecycle/ and service/; store/ maps a made task to its row). A
  // helper two repositories share lives in a store module that is none.
  restrict(
    [`${cp}/store/**/*.ts`],
    [
      ...productOnly,
      notTheAgentSide,
      {
        regex: '(^|/)[\\w-]+-repository\\.js$',
        message:
          'store/ imports no repository, not even its type: a repository does not call another; what spans repositories lives in lifecycle/.',
      },
      {
        regex: '(^|/)domain/task-factory\\.js$',
        allowTypeImports: true,
        message: 'store/ makes no task: lifecycle/ or service/ makes it with domain/task-factory.ts and hands it over.',
      },
    ],
    { ignores: notProduct },
  ),
  restrict([`${agent}/**/*.ts`], [...productOnly, noPluginByName]),
  restrict(
    [`${agent}/session/**/*.ts`],
    [
      ...productOnly,
      noPluginByName,
      { regex: '^@cairn/plugin-sdk(/|$)', message: 'session/ speaks the wire: it never touches the plugin contract.' },
    ],
  ),
  restrict(
    [`${agent}/executor/**/*.ts`],
    [
      ...productOnly,
      noPluginByName,
      { regex: '^ws$', message: 'only session/ holds the socket to the control plane.' },
    ],
  ),
  restrict(
    ['packages/plugins/sdk/src/**/*.ts'],
    [
      ...productOnly,
      {
        regex: '^@cairn/proto$',
        allowTypeImports: true,
        message: 'the SDK imports nothing at run time: wire types only (`import type`).',
      },
      {
        regex: '^(?!\\.|@cairn/proto$|@cairn/proto/vocabulary$)',
        message:
          'the SDK imports nothing at run time but the wire vocabulary: no node:* and no packages (plugins must load anywhere).',
      },
    ],
    { ignores: [...notProduct, 'packages/plugins/sdk/src/{paths,host}/**'] },
  ),
  // The plugin host (`@cairn/plugin-sdk/host`: loader, worker threads, guard) is what the agent and
  // the conformance kit share; it reads package files and starts threads, so node:* too.
  restrict(
    ['packages/plugins/sdk/src/host/**/*.ts'],
    [
      ...productOnly,
      {
        regex: '^@cairn/proto$',
        allowTypeImports: true,
        message: 'the plugin host imports no wire code: wire types only (`import type`).',
      },
      {
        regex: '^(?!\\.|node:|@cairn/proto$)',
        message:
          '@cairn/plugin-sdk/host imports node:* and the SDK itself only: it hosts plugins for the agent, and never reaches it.',
      },
    ],
  ),
  // The one file-system corner of the SDK (`@cairn/plugin-sdk/paths`, for host-path plugins): node:* too.
  restrict(
    ['packages/plugins/sdk/src/paths/**/*.ts'],
    [
      ...productOnly,
      {
        regex: '^(?!\\.|node:)',
        message: '@cairn/plugin-sdk/paths imports node:* and the SDK itself only.',
      },
    ],
  ),
  restrict(
    ['packages/plugins/*/src/**/*.ts'],
    [
      ...productOnly,
      {
        regex: '^(?!\\.|node:|@cairn/plugin-sdk(/paths|/testing)?$)',
        message: 'a plugin imports the SDK only, and not its host (@cairn/plugin-sdk/host is for the agent).',
      },
    ],
    { ignores: [...notProduct, 'packages/plugins/{sdk,conformance}/**'] },
  ),
  restrict(
    ['packages/plugins/csi/src/**/*.ts'],
    [
      ...productOnly,
      {
        regex: '^(?!\\.|node:|@cairn/plugin-sdk(/paths|/testing)?$|@kubernetes/client-node$)',
        message: 'the CSI plugin imports the SDK, node:* and @kubernetes/client-node only.',
      },
    ],
    { ignores: notProduct },
  ),
  restrict(
    ['packages/plugins/conformance/src/**/*.ts'],
    [
      ...productOnly,
      {
        regex: '^(?!\\.|node:|@cairn/plugin-sdk(/|$)|commander$|zod$|vitest$)',
        message:
          'the conformance kit imports the SDK (its host loads plugins as the agent does), node:*, commander, zod and vitest only; it loads plugins by name at run time.',
      },
    ],
  ),
  // The one arrow that must never run back up: the agent depends on the plugin side (the SDK and
  // its host, the plugins it ships), never the other way. Its own rule, so that no later block
  // replaces it and tests, testing/ folders and scripts are held to it too.
  {
    files: ['packages/plugins/**/*.{ts,js,mjs}'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^@cairn/agent(/|$)',
              message:
                'nothing under packages/plugins imports the agent: plugins are hosted through @cairn/plugin-sdk/host, which the agent imports.',
            },
          ],
        },
      ],
    },
  },
  restrict(
    ['proto/src/**/*.ts'],
    [...productOnly, { regex: '^(?!\\.|protobufjs(/|$))', message: '@cairn/proto imports protobufjs only.' }],
  ),
  // One task factory: a task is built only by domain/task-factory.ts (the store maps it to a row).
  // One clock: only clock.ts reads the time. No constructor takes more than 4 positional
  // parameters. A later block replaces this rule's options for the files it names, so each block
  // lists every selector that still applies there.
  {
    files: [`${cp}/**/*.ts`],
    ignores: [...notProduct, `${cp}/domain/task-factory.ts`, `${cp}/store/task-repository.ts`],
    rules: { 'no-restricted-syntax': ['error', taskLiteral, ...readsTheClock, longConstructor] },
  },
  {
    files: [`${cp}/domain/task-factory.ts`, `${cp}/store/task-repository.ts`],
    rules: { 'no-restricted-syntax': ['error', ...readsTheClock, longConstructor] },
  },
  {
    files: [`${cp}/clock.ts`],
    rules: { 'no-restricted-syntax': ['error', taskLiteral, longConstructor] },
  },
  // One clock in the agent: its parts read the time from the Clock main.ts hands them (clock.ts).
  {
    files: [`${agent}/**/*.ts`],
    ignores: [...notProduct, `${agent}/clock.ts`],
    rules: { 'no-restricted-syntax': ['error', ...readsTheClock] },
  },
  {
    files: [`${cp}/api/routes/**/*.ts`],
    ignores: notProduct,
    rules: {
      'no-restricted-syntax': [
        'error',
        taskLiteral,
        ...readsTheClock,
        longConstructor,
        {
          selector: `CallExpression[callee.property.name=/^(${queryBuilders})$/]`,
          message: 'routes run no SQL: call the operation (service/) you are handed.',
        },
        { selector: "TaggedTemplateExpression[tag.name='sql']", message: 'routes run no SQL: no sql`` templates.' },
      ],
    },
  },
);
