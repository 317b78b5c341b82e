import { loadPlugin, PluginRegistry } from '@cairn/plugin-sdk/host';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AGENT_PACKAGES } from './plugins.js';
import { tempDir } from './testing/wait.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

describe("the agent's plugins", () => {
  it("loads the dummy plugin from the agent's own packages and negotiates API version 1", async () => {
    const dummy = await loadPlugin('@cairn/plugin-dummy', { cwd: dir, fallback: AGENT_PACKAGES });
    expect(dummy.apiVersion).toBe(1);
    expect(dummy.manifest.name).toBe('@cairn/plugin-dummy');
    expect(new PluginRegistry([dummy]).infos()).toEqual([
      {
        name: '@cairn/plugin-dummy',
        version: dummy.manifest.version,
        apiVersion: 1,
        capabilities: dummy.manifest.capabilities,
      },
    ]);
  });

  it('says where it looked for a plugin it cannot find', async () => {
    await expect(loadPlugin('cairn-plugin-nowhere', { cwd: dir, fallback: AGENT_PACKAGES })).rejects.toThrow(
      `plugin cairn-plugin-nowhere: cannot be found (looked from ${dir} and from the agent's own packages)`,
    );
  });
});
