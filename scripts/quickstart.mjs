#!/usr/bin/env node
// Quick start: one control plane on embedded SQLite (./data), one local agent with the dummy
// plugin, a demo provider connection, offering and instance; then the curl lines for a first
// backup. Ctrl-C stops both processes. Logs go to ./data/logs/.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setUpDemo } from './quickstart-demo.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = path.resolve(process.env.CAIRN_DATA_DIR ?? path.join(root, 'data'));
const port = process.env.CAIRN_PORT ?? '8080';
const host = process.env.CAIRN_HOST ?? '127.0.0.1';
const url = `http://${host}:${port}`;
const logDir = path.join(dataDir, 'logs');
fs.mkdirSync(logDir, { recursive: true });

// The quick start keeps its admin token beside the database so a second start finds it again.
const tokenFile = path.join(dataDir, 'quickstart-admin-token');
let adminToken = process.env.CAIRN_ADMIN_TOKEN;
if (!adminToken) {
  if (!fs.existsSync(tokenFile))
    fs.writeFileSync(tokenFile, `cairn_${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  adminToken = fs.readFileSync(tokenFile, 'utf8').trim();
}

const children = [];
function start(name, args, env = {}) {
  const log = fs.openSync(path.join(logDir, `${name}.log`), 'a');
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', log, log] });
  children.push(child);
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`${name} exited (${signal ?? code}); see ${path.join(logDir, `${name}.log`)}`);
      stop(1);
    }
  });
  return child;
}

let stopping = false;
function stop(code = 0) {
  stopping = true;
  for (const c of children) c.kill('SIGTERM');
  setTimeout(() => process.exit(code), 500).unref();
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

async function api(method, p, body) {
  const res = await fetch(`${url}${p}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const json = res.status === 204 ? null : await res.json();
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${json?.detail ?? ''}`);
  return json;
}

async function waitReady() {
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`control plane did not become ready at ${url}; see ${path.join(logDir, 'control-plane.log')}`);
}

async function main() {
  start('control-plane', [path.join(root, 'packages/control-plane/dist/main.js')], {
    CAIRN_DATA_DIR: dataDir,
    CAIRN_PORT: port,
    CAIRN_HOST: host,
    CAIRN_ADMIN_TOKEN: adminToken,
  });
  await waitReady();

  const zone = 'local';
  const agentDir = path.join(dataDir, 'agent');
  const agentBin = path.join(root, 'packages/agent/dist/main.js');
  if (!fs.existsSync(path.join(agentDir, 'agent.json'))) {
    const { token } = await api('POST', '/v1/agent-enrollments', { zone });
    const enroll = spawn(
      process.execPath,
      [agentBin, 'enroll', '--server', url, '--token', token, '--state-dir', agentDir, '--name', 'local-agent'],
      {
        stdio: 'inherit',
      },
    );
    const code = await new Promise((r) => enroll.on('exit', r));
    if (code !== 0) throw new Error('agent enrollment failed');
  }
  start('agent', [agentBin, 'run', '--state-dir', agentDir, '--plugins', '@cairn/plugin-dummy']);

  const { offering, instance } = await setUpDemo(api, { zone, dataDir });

  const auth = `-H "Authorization: Bearer ${adminToken}"`;
  console.log(`
Cairn is running: control plane ${url} (SQLite in ${dataDir}), one local agent with @cairn/plugin-dummy.
Logs: ${logDir}

sp-admin token: ${adminToken}
Web console: ${url}/ui (log in with the token above; docs/console.md)

First backup (a demo instance "${instance.name}" is protected by offering "${offering.name}"):
  curl -s -X POST ${auth} ${url}/v1/instances/${instance.id}/backups
Follow it (use the task id from the answer):
  curl -s ${auth} ${url}/v1/tasks/<task id>
  curl -s ${auth} ${url}/v1/tasks/<task id>/progress
Restore points:
  curl -s ${auth} "${url}/v1/backups?instanceId=${instance.id}"
Restore one:
  curl -s -X POST ${auth} ${url}/v1/backups/<backup id>/restore

The same with the cairn CLI (docs/cli.md; login saves a context in ~/.config/cairn/config.yaml):
  node packages/cli/dist/main.js login --url ${url} --token ${adminToken} --context quickstart
  node packages/cli/dist/main.js backup create ${instance.id} --wait
  node packages/cli/dist/main.js backup list --instance ${instance.id}

Ctrl-C stops Cairn.`);
}

main().catch((err) => {
  console.error(`quick start failed: ${err.message}`);
  stop(1);
});
