// The quick start's demo: a provider connection of the dummy plugin, an offering and an
// instance in `zone`. The connection keeps its restore points in `storeDir` (a directory on the
// agent's host, which is this host), so its periodic sync has a store to read and succeeds.
import path from 'node:path';

/**
 * Creates what is missing of the demo (found again by name on a second start) and returns it.
 * `api(method, path, body?)` calls the control plane as the sp-admin and throws unless it answers 2xx.
 */
export async function setUpDemo(api, { zone, dataDir }) {
  const storeDir = path.join(dataDir, 'demo-store');
  const config = { durationMs: 3000, storeDir };
  let provider = (await api('GET', `/v1/zones/${zone}/providers`)).items.find((p) => p.name === 'demo');
  provider ??= await api('POST', `/v1/zones/${zone}/providers`, {
    name: 'demo',
    plugin: '@cairn/plugin-dummy',
    config,
    // The dummy's locators name nothing on any host: tenants may set their own.
    tenantLocators: 'any',
  });
  // A demo made by an earlier quick start without a store: its syncs failed NO_STORE.
  if (!provider.config?.storeDir)
    provider = await api('PATCH', `/v1/zones/${zone}/providers/${provider.id}`, { config });
  let offering = (await api('GET', '/v1/offerings')).items.find((o) => o.name === 'demo-daily');
  offering ??= await api('POST', '/v1/offerings', {
    name: 'demo-daily',
    zone,
    providerId: provider.id,
    allowAdhoc: true,
    allowUserSchedules: true,
    sla: { cron: '0 2 * * *', keepLast: 7 },
  });
  let instance = (await api('GET', '/v1/instances')).items.find((i) => i.name === 'demo-vm');
  if (!instance) {
    instance = await api('POST', '/v1/instances', { name: 'demo-vm', zone, locator: { vm: 'demo-vm' } });
    await api('PUT', `/v1/instances/${instance.id}/offering`, { offeringId: offering.id });
  }
  return { provider, offering, instance };
}
