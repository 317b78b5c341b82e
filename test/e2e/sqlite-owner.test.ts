/**
 * SQLite serves one control-plane process: a second one started on the same database file refuses
 * to start, naming the first; one killed with -9 leaves nothing that stops the next start.
 */
import { describe, expect, it } from 'vitest';
import { runControlPlaneCommand } from '@cairn/test-harness/processes';
import { withStack } from '@cairn/test-harness/stack';

describe('one control plane per SQLite database', () => {
  const stack = withStack('sqlite');

  it('refuses a second control plane on the same file, and starts again after a kill -9', async () => {
    const before = (await stack.admin.expect(200, 'GET', '/v1/tenants')).items.length;
    const second = await runControlPlaneCommand({
      CAIRN_DATABASE_URL: stack.db.url,
      CAIRN_DATA_DIR: stack.db.dataDir,
      CAIRN_PORT: '0',
      CAIRN_HOST: '127.0.0.1',
    });
    expect(second.exitCode).toBe(1);
    const said = second.stderr.join('\n');
    expect(said).toContain('is in use by another control plane');
    expect(said).toContain('MySQL/MariaDB');
    // The first one goes on serving.
    expect((await stack.admin.expect(200, 'GET', '/v1/tenants')).items.length).toBe(before);

    const { port } = stack.cp;
    await stack.cp.proc.kill9();
    const again = await stack.controlPlane({ port });
    expect((await stack.adminOf(again).expect(200, 'GET', '/v1/tenants')).items.length).toBe(before);
  });
});
