import { hasRestic } from './restic.js';

/** Checks what the suite needs before any file runs, and says what is skipped. */
export default function setup(): void {
  if (!hasRestic) {
    if (process.env['CI'] === 'true')
      throw new Error('CI=true but restic does not run here: the restic plugin tests cannot be skipped in CI');
    process.stdout.write(
      '\n[cairn] restic is not installed: the restic plugin tests are skipped.\n' +
        '        Install it (Debian/Ubuntu: apt-get install restic; 0.14 or newer) to run them.\n',
    );
  }
  if (!process.env['CAIRN_TEST_MYSQL_URL']) {
    if (process.env['CI'] === 'true') {
      throw new Error(
        'CI=true but CAIRN_TEST_MYSQL_URL is not set: the MySQL half of the suite cannot be skipped in CI',
      );
    }
    process.stdout.write(
      '\n[cairn] CAIRN_TEST_MYSQL_URL is not set: store and end-to-end tests run on SQLite only; MySQL runs are skipped.\n' +
        '        Set it (e.g. mysql://root@127.0.0.1:3306) to run them on MySQL/MariaDB too.\n\n',
    );
  }
}
