import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import {
  hasChromium,
  launchChromium,
  screenshot,
  seriousViolations,
  type Browser,
  type BrowserContext,
  type Page,
} from '@cairn/test-harness/browser';
import { backends } from '@cairn/test-harness/databases';
import { assignOffering, offerDummy, waitForTask } from '@cairn/test-harness/scenario';
import { withStack, type Tenant } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

/*
 * The web console in a real browser (Debian's chromium, headless) against a real control plane
 * and agent: what a tenant and the service provider see and do, and what a tenant never sees.
 * Without chromium (outside CI) the file is skipped with the notice of the global setup.
 */
const WINDOW = 'Window 42: storage upgrade until 06:00';

describe.runIf(hasChromium || process.env['CI'] === 'true').each(backends)('the web console (%s)', (backend) => {
  const stack = withStack(backend, { agents: [{ slots: 2 }] });
  let browser: Browser;
  let acme: Tenant;
  let bravo: Tenant;
  let acmeVm: string;
  let bravoVm: string;
  /** The offering whose backups take about 3 s in 6 steps. */
  let demoOffering: string;
  /** What each page of the browser said about a Content-Security-Policy or threw. */
  const faults: string[] = [];

  beforeAll(async () => {
    browser = await launchChromium();
    acme = await stack.tenant('acme');
    bravo = await stack.tenant('bravo');
    // Each operation takes about 3 s in 6 steps: a bar has time to move where the test can see it.
    const { offeringId } = await offerDummy(stack.admin, 'zone-a', {
      provider: 'demo',
      offering: 'demo-adhoc',
      config: { durationMs: 3000, steps: 6, sizeBytes: 64 * 1024 * 1024 },
      grants: [acme.id, bravo.id],
    });
    demoOffering = offeringId;
    const instance = async (api: Api, name: string) => {
      const i = await api.expect(201, 'POST', '/v1/instances', { name, zone: 'zone-a', locator: { vm: name } });
      await assignOffering(api, i.id, offeringId);
      return i.id as string;
    };
    acmeVm = await instance(acme.api, 'acme-web');
    bravoVm = await instance(bravo.api, 'bravo-db');
  });

  afterAll(async () => {
    await browser?.close();
    expect(faults).toEqual([]);
  });

  /** A fresh browser context (its own sessionStorage) logged in with `token` through the login form. */
  async function loggedIn(token: string): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
    const page = await context.newPage();
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) faults.push(m.text());
    });
    page.on('pageerror', (e) => faults.push(String(e)));
    await page.goto(`${stack.cp.url}/ui`);
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Home', level: 1 }).waitFor();
    await page.locator('[data-live="true"]').waitFor();
    return { context, page };
  }

  /** A screenshot of the page and its axe-core check: no serious or critical violation. */
  async function check(page: Page, name: string): Promise<void> {
    await screenshot(page, `${backend}-${name}`);
    expect(await seriousViolations(page), name).toEqual([]);
  }

  it('keeps the token in the tab only: not in the URL, not in localStorage; logging out forgets it', async () => {
    const { context, page } = await loggedIn(acme.token);
    expect(page.url()).not.toContain(acme.token);
    // Run in the page (the test's own lib has no DOM: hence strings).
    const stored = (await page.evaluate(
      "({ session: sessionStorage.getItem('cairn.token'), local: JSON.stringify({ ...localStorage }) })",
    )) as { session: string | null; local: string };
    expect(stored.session).toBe(acme.token);
    expect(stored.local).not.toContain(acme.token);
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('API token').waitFor();
    expect(await page.evaluate("sessionStorage.getItem('cairn.token')")).toBeNull();
    // A bad token is refused with the API's words, and kept nowhere.
    await page.getByLabel('API token').fill('not-a-token');
    await page.getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/401/);
    expect(await page.evaluate("sessionStorage.getItem('cairn.token')")).toBeNull();
    await check(page, 'login');
    await context.close();
  });

  it('a tenant starts a backup and sees its bar move to 100 % without a reload, then restores it', async () => {
    const { context, page } = await loggedIn(acme.token);
    await check(page, 'home');
    await page.getByRole('link', { name: 'Instances' }).click();
    await page.getByRole('link', { name: 'acme-web' }).click();
    await page.getByRole('heading', { name: 'Instance acme-web' }).waitFor();
    // Marks this document: a reload would lose it.
    await page.evaluate(`
      window.sameDocument = true;
      window.seen = [];
      setInterval(() => {
        for (const p of document.querySelectorAll('progress[data-task]')) window.seen.push(Number(p.getAttribute('value')));
      }, 50);
    `);
    await page.getByRole('button', { name: 'Back up now' }).click();
    const started = await page.getByRole('status').filter({ hasText: 'Backup task' }).textContent();
    const taskId = /Backup task (\S+) started/.exec(started ?? '')![1]!;
    const row = page.locator(`[data-task-row="${taskId}"]`);
    await row.locator('[data-state]', { hasText: 'succeeded' }).waitFor({ timeout: 30_000 });
    await expect.poll(() => row.locator('progress').getAttribute('value')).toBe('100');
    await expect.poll(() => row.locator('[data-percent]').textContent()).toBe('100 %');
    const { seen, sameDocument } = (await page.evaluate(
      '({ seen: window.seen, sameDocument: window.sameDocument })',
    )) as {
      seen: number[];
      sameDocument: boolean;
    };
    expect(sameDocument).toBe(true);
    // The bar moved through the stream's progress, not only from 0 to 100.
    expect(
      seen.some((v) => v > 0 && v < 100),
      `values seen: ${[...new Set(seen)].join(',')}`,
    ).toBe(true);
    expect((await stack.admin.expect(200, 'GET', `/v1/tasks/${taskId}`)).state).toBe('succeeded');

    const point = page.locator('[data-backup]').first();
    await point.waitFor();
    await expect.poll(() => point.textContent()).toMatch(/FULL.*64 MiB.*full, starts a chain/);
    await check(page, 'instance');
    await point.getByRole('button', { name: /in place$/ }).click();
    const restoreText = await page.getByRole('status').filter({ hasText: 'Restore task' }).textContent();
    const restoreId = /Restore task (\S+) started/.exec(restoreText ?? '')![1]!;
    await page
      .locator(`[data-task-row="${restoreId}"] [data-state]`, { hasText: 'succeeded' })
      .waitFor({ timeout: 30_000 });
    const restore = await waitForTask(acme.api, restoreId, ['succeeded']);
    expect(restore).toMatchObject({ state: 'succeeded' });
    await context.close();
  });

  it("the SP's maintenance window reaches a tenant's open tab within 2 s, and a backup from the console is refused with its message", async () => {
    const { context, page } = await loggedIn(acme.token);
    const sp = await loggedIn(stack.cp.adminToken);
    try {
      await sp.page.getByRole('link', { name: 'Maintenance' }).click();
      await sp.page.getByRole('heading', { name: 'Maintenance', level: 1 }).waitFor();
      await check(sp.page, 'maintenance');
      const global = sp.page.getByRole('form', { name: 'Maintenance of the whole service' });
      await global.getByLabel('Maintenance on').check();
      await global.getByLabel('Message').fill(WINDOW);
      const at = performance.now();
      await global.getByRole('button', { name: 'Save the whole service' }).click();
      await page.locator('[data-banner]', { hasText: WINDOW }).waitFor({ timeout: 2000 });
      expect(performance.now() - at).toBeLessThan(2000);
      await expect
        .poll(() => global.locator('[data-maintenance-state]').textContent())
        .toMatch(/In maintenance · ready/);
      expect((await acme.api.expect(200, 'GET', '/v1/maintenance')).message).toBe(WINDOW);

      await page.getByRole('link', { name: 'Instances' }).click();
      await page.getByRole('link', { name: 'acme-web' }).click();
      await page.getByRole('button', { name: 'Back up now' }).click();
      const refused = page.getByRole('alert').filter({ hasText: WINDOW });
      await refused.waitFor();
      expect(await refused.textContent()).toContain('503 maintenance');
      // The banner holds on every page.
      expect(await page.locator('[data-banner]').textContent()).toContain(WINDOW);
      await check(page, 'instance-maintenance');

      await global.getByLabel('Maintenance on').uncheck();
      await global.getByRole('button', { name: 'Save the whole service' }).click();
      await page.locator('[data-banner]').waitFor({ state: 'detached', timeout: 2000 });
    } finally {
      await sp.context.close();
      await context.close();
    }
  });

  it('the SP runs a 5-instance SEQUENTIAL job from its page and sees the sets move in order, live', async () => {
    const quick = await offerDummy(stack.admin, 'zone-a', {
      provider: 'quick',
      offering: 'quick-adhoc',
      config: { durationMs: 800, steps: 2 },
      grants: [acme.id],
    });
    const members: string[] = [];
    for (let n = 1; n <= 5; n++) {
      const i = await acme.api.expect(201, 'POST', '/v1/instances', {
        name: `acme-q${n}`,
        zone: 'zone-a',
        locator: {},
      });
      await assignOffering(acme.api, i.id, quick.offeringId);
      members.push(i.id);
    }
    const job = await stack.admin.expect(201, 'POST', '/v1/backup-jobs', {
      name: 'nightly-5',
      instanceIds: members,
      mode: 'FULL',
      execution: 'SEQUENTIAL',
      tenantId: acme.id,
    });
    const sp = await loggedIn(stack.cp.adminToken);
    const bravoTab = await loggedIn(bravo.token);
    try {
      const { page } = sp;
      await page.getByRole('link', { name: 'Agents' }).click();
      await page.locator('[data-agent]').first().waitFor();
      expect(await page.locator('[data-agent]').first().textContent()).toMatch(/connected.*of 2.*@cairn\/plugin-dummy/);
      await check(page, 'agents');
      await page.getByRole('link', { name: 'Jobs' }).click();
      await page.getByRole('link', { name: 'nightly-5' }).click();
      await page.getByRole('heading', { name: 'Backup job nightly-5' }).waitFor();
      // Samples the four sets as the page shows them, every 50 ms, in this document.
      await page.evaluate(`
        window.sets = [];
        setInterval(() => {
          const read = (set) => [...document.querySelectorAll('[data-set="' + set + '"] li')].map((li) => li.textContent);
          window.sets.push({ ongoing: read('ongoing'), updated: read('updated'), error: read('error') });
        }, 50);
      `);
      await page.getByRole('button', { name: 'Run', exact: true }).click();
      await page.locator('[data-set="updated"] li').nth(4).waitFor({ timeout: 60_000 });
      const sets = (await page.evaluate('window.sets')) as { ongoing: string[]; updated: string[]; error: string[] }[];
      for (const s of sets) {
        expect(s.error).toEqual([]);
        // One at a time, in the job's order: what is done is always the first ones.
        expect(s.ongoing.length).toBeLessThanOrEqual(1);
        expect([...s.updated].sort()).toEqual(members.slice(0, s.updated.length).sort());
        if (s.ongoing[0]) expect(s.ongoing[0]).toBe(members[s.updated.length]);
      }
      const seenOngoing = new Set(sets.flatMap((s) => s.ongoing));
      expect(seenOngoing.size, 'instances seen ONGOING').toBeGreaterThanOrEqual(3);
      await check(page, 'job');

      // The job is acme's: bravo lists nothing of it and its URL is the API's not-found.
      await bravoTab.page.getByRole('link', { name: 'Jobs' }).click();
      await bravoTab.page.getByRole('heading', { name: 'Backup jobs' }).waitFor();
      await bravoTab.page.getByText('No backup job yet.').waitFor();
      await check(bravoTab.page, 'jobs');
      await bravoTab.page.goto(`${stack.cp.url}/ui/jobs/${job.id}`);
      await expect.poll(() => bravoTab.page.getByRole('alert').textContent()).toMatch(/404 not_found/);
      expect(await bravoTab.page.locator('main').textContent()).not.toContain('nightly-5');
    } finally {
      await sp.context.close();
      await bravoTab.context.close();
    }
  });

  it("a tenant sees nothing of another tenant's: lists, feed, and URLs typed by hand answer the API's not-found", async () => {
    const acmeTask = await stack.backup(acmeVm, { api: acme.api });
    const { context, page } = await loggedIn(bravo.token);
    try {
      // acme backs up while bravo's console is open: nothing of it reaches bravo's page.
      const live = await acme.api.expect(202, 'POST', `/v1/instances/${acmeVm}/backups`);
      await page.getByRole('link', { name: 'Instances' }).click();
      await page.getByRole('link', { name: 'bravo-db' }).waitFor();
      await check(page, 'instances');
      expect(await page.getByRole('link', { name: 'acme-web' }).count()).toBe(0);
      await waitForTask(acme.api, live.id, ['succeeded']);
      await page.getByRole('link', { name: 'Home' }).click();
      await page.getByRole('heading', { name: 'Home', level: 1 }).waitFor();
      const home = (await page.locator('main').textContent()) ?? '';
      for (const secret of [live.id, acmeTask.id, acmeVm, 'acme']) expect(home).not.toContain(secret);

      for (const [url, secret] of [
        [`/ui/instances/${acmeVm}`, 'acme-web'],
        [`/ui/tasks/${acmeTask.id}`, acmeVm],
      ] as const) {
        await page.goto(`${stack.cp.url}${url}`);
        const alert = page.getByRole('alert');
        await alert.waitFor();
        expect(await alert.textContent(), url).toMatch(/404 not_found/);
        expect(await page.locator('main').textContent(), url).not.toContain(secret);
        await check(page, `not-found-${url.split('/')[2]}`);
      }
      // The event feed, from the start of the log: bravo's own events only.
      await stack.backup(bravoVm, { api: bravo.api });
      await page.getByRole('link', { name: 'Events' }).click();
      await page.getByLabel('From the start of the log').check();
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await page.locator('[data-event]').first().waitFor();
      const feed = await page.locator('[data-event]').allTextContents();
      expect(feed.length).toBeGreaterThan(0);
      for (const row of feed) {
        expect(row).toContain(bravo.id);
        for (const secret of [acme.id, acmeVm, live.id, acmeTask.id]) expect(row).not.toContain(secret);
      }
      await check(page, 'events');
      // A malformed filter is the API's 400, said on the page; nothing else is shown.
      await page.getByLabel('Type starts with').fill('NOT A TYPE');
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/type.*\(400\)/);
      expect(await page.locator('[data-event]').count()).toBe(0);
      // acme's instance, typed in as a filter, is the API's not-found: the stream tells nothing of it.
      await page.getByLabel('Type starts with').fill('');
      await page.getByLabel('Instance').fill(acmeVm);
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/\(404\)/);
      expect(await page.locator('[data-event]').count()).toBe(0);
      // bravo's own instance: its events only, filtered by the server.
      await page.getByLabel('Instance').fill(bravoVm);
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await page.locator('[data-event]').first().waitFor();
      expect(await page.getByRole('alert').count()).toBe(0);
      expect(new Set(await page.locator('[data-event-instance]').allTextContents())).toEqual(new Set([bravoVm]));

      // The search: acme's names and ids find nothing, typed in the box or in the URL by hand;
      // bravo's own are found.
      const acmeBackup = (await acme.api.expect(200, 'GET', `/v1/backups?instanceId=${acmeVm}`)).items[0].id as string;
      const bravoTask = (await bravo.api.expect(200, 'GET', '/v1/tasks?limit=1')).items[0].id as string;
      const searchFor = async (q: string) => {
        await page.getByLabel('Search').fill(q);
        await page.getByRole('button', { name: 'Find' }).click();
        await page.getByRole('heading', { name: `Search: ${q}`, level: 1 }).waitFor();
      };
      for (const q of ['acme', acmeVm, acmeTask.id, live.id, acmeBackup]) {
        await searchFor(q);
        await page.locator('[data-nothing-found]').waitFor();
        expect(await page.locator('main a').count(), q).toBe(0);
        expect(await page.getByRole('alert').count(), q).toBe(0);
        expect(await page.locator('main').textContent(), q).not.toContain('acme-web');
      }
      await check(page, 'search-nothing');
      await page.goto(`${stack.cp.url}/ui/search?q=acme-web`);
      await page.locator('[data-nothing-found]').waitFor();
      expect(await page.locator('main a').count()).toBe(0);
      await searchFor('BRAVO');
      await page.getByRole('link', { name: 'bravo-db' }).waitFor();
      await searchFor(bravoTask);
      await page.locator(`[data-found="${bravoTask}"]`).waitFor();
      await check(page, 'search');
      await page.locator(`[data-found="${bravoTask}"] a`).click();
      await page.getByRole('heading', { level: 1 }).filter({ hasText: bravoTask }).waitFor();

      // bravo's own instance, opened by hand, is there.
      await page.goto(`${stack.cp.url}/ui/instances/${bravoVm}`);
      await page.getByRole('heading', { name: 'Instance bravo-db' }).waitFor();
      // And the SP's pages are not offered to a tenant.
      expect(await page.getByRole('link', { name: 'Maintenance' }).count()).toBe(0);
    } finally {
      await context.close();
    }
  });

  it("Home shows instances protected, unprotected and in RPO breach, and the next runs on a timeline: a tenant its own, the SP every tenant's", async () => {
    const charlie = await stack.tenant('charlie');
    const { offeringId } = await offerDummy(stack.admin, 'zone-a', {
      provider: 'charlie-demo',
      offering: 'charlie-adhoc',
      allowUserSchedules: true,
      grants: [charlie.id],
    });
    const covered = await charlie.api.expect(201, 'POST', '/v1/instances', {
      name: 'charlie-app',
      zone: 'zone-a',
      locator: { vm: 'charlie-app' },
    });
    await assignOffering(charlie.api, covered.id, offeringId);
    await charlie.api.expect(201, 'POST', '/v1/instances', {
      name: 'charlie-bare',
      zone: 'zone-a',
      locator: { vm: 'charlie-bare' },
    });
    const job = (api: Api, name: string, instanceId: string, cron: string, timezone: string) =>
      api.expect(201, 'POST', '/v1/backup-jobs', {
        name,
        instanceIds: [instanceId],
        mode: 'FULL',
        execution: 'SEQUENTIAL',
        schedules: [{ cron, timezone }],
      });
    // Yearly and monthly: neither fires while the test runs.
    const yearly = await job(charlie.api, 'charlie-yearly', covered.id, '0 3 1 1 *', 'UTC');
    const monthly = await job(acme.api, 'acme-monthly', acmeVm, '0 4 15 * *', 'Europe/Berlin');
    // Beside the job: the instance's own schedule and the offering's SLA, yearly too.
    await charlie.api.expect(200, 'PUT', `/v1/instances/${covered.id}/schedule`, {
      cron: '0 5 1 6 *',
      timezone: 'UTC',
      keepLast: 1,
    });
    await stack.admin.expect(200, 'PATCH', `/v1/offerings/${offeringId}`, {
      sla: { cron: '0 2 1 2 *', timezone: 'UTC', keepLast: 1 },
    });
    // The scheduler computes a new schedule's next run at its next tick; GET /v1/schedules lists it from then.
    await waitFor(
      async () => (await charlie.api.expect(200, 'GET', '/v1/schedules')).items.length === 3,
      "charlie's three schedules to be listed",
    );
    await waitFor(
      async () => (await acme.api.expect(200, 'GET', '/v1/schedules')).items.length > 0,
      "acme's schedule to be listed",
    );

    const tab = await loggedIn(charlie.token);
    const sp = await loggedIn(stack.cp.adminToken);
    try {
      const figures = (page: Page) =>
        Promise.all(
          ['protectedInstances', 'unprotectedInstances', 'rpoBreachedInstances'].map((k) =>
            page.locator(`[data-protection="${k}"]`).textContent(),
          ),
        );
      await expect.poll(() => figures(tab.page)).toEqual(['1', '1', '0']);
      // charlie's timeline: its job's, its instance's and its offering's SLA next runs, in the API's order (soonest first).
      const shown = (page: Page) =>
        page
          .locator('[data-next-run]')
          .evaluateAll((els) =>
            els.map((e) => [
              e.getAttribute('data-next-kind'),
              e.getAttribute('data-next-run'),
              e.querySelector('time')?.getAttribute('datetime'),
            ]),
          );
      const listed = async (api: Api) =>
        ((await api.expect(200, 'GET', '/v1/schedules?limit=10')).items as Record<string, string>[]).map((r) => [
          r['kind'],
          r['jobId'] ?? r['id'],
          r['nextRunAt'],
        ]);
      const charlieRuns = await listed(charlie.api);
      expect(charlieRuns.map((r) => r.slice(0, 2)).sort()).toEqual(
        [
          ['instance', covered.id],
          ['job', yearly.id],
          ['offering', offeringId],
        ].sort(),
      );
      expect(charlieRuns.find((r) => r[1] === yearly.id)![2]).toBe(yearly.schedules[0].nextRunAt);
      await expect.poll(() => shown(tab.page)).toEqual(charlieRuns);
      expect(await tab.page.locator('main').textContent()).not.toContain('acme-monthly');
      await check(tab.page, 'home-protection');

      // The SP's Home adds up every tenant's figures, as GET /v1/usage gives them.
      const usage = (await stack.admin.expect(200, 'GET', '/v1/usage?limit=500')).items as Record<string, number>[];
      const sum = (k: string) => String(usage.reduce((n, u) => n + u[k]!, 0));
      await expect
        .poll(() => figures(sp.page))
        .toEqual([sum('protectedInstances'), sum('unprotectedInstances'), sum('rpoBreachedInstances')]);
      expect(Number(sum('unprotectedInstances'))).toBeGreaterThanOrEqual(1);
      // Every tenant's, soonest first: acme's monthly run is there too, as the API lists it for the SP.
      const spRuns = await listed(stack.admin);
      expect(spRuns.map((r) => r[1])).toEqual(expect.arrayContaining([monthly.id, yearly.id, covered.id, offeringId]));
      await expect.poll(() => shown(sp.page)).toEqual(spRuns);
      await check(sp.page, 'home-sp');

      // A run on the timeline links to its job.
      await tab.page.getByRole('link', { name: 'charlie-yearly' }).click();
      await tab.page.getByRole('heading', { name: 'Backup job charlie-yearly' }).waitFor();
    } finally {
      await tab.context.close();
      await sp.context.close();
    }
  });

  it('the SP drains an agent from the Agents page with a message, sees its source and the banner, and undrains it', async () => {
    const DRAIN = 'Host firmware update, back at 15:00';
    const sp = await loggedIn(stack.cp.adminToken);
    let agentId: string | null = null;
    try {
      const { page } = sp;
      await page.getByRole('link', { name: 'Agents' }).click();
      const row = page.locator('[data-agent]').first();
      await row.waitFor();
      agentId = await row.getAttribute('data-agent');
      const name = (await stack.admin.expect(200, 'GET', `/v1/agents/${agentId}`)).name as string;
      expect(await row.locator('[data-drain]').textContent()).toBe('not drained');

      // A message the API refuses: its words on the page, and nothing changed.
      await row.getByLabel('Message').fill('x'.repeat(1001));
      await row.getByRole('button', { name: `Drain ${name}`, exact: true }).click();
      await expect.poll(() => row.getByRole('alert').textContent()).toMatch(/message.*\(400 /);
      expect(await stack.admin.expect(200, 'GET', `/v1/agents/${agentId}/maintenance`)).toMatchObject({
        enabled: false,
      });

      await row.getByLabel('Message').fill(DRAIN);
      await row.getByRole('button', { name: `Drain ${name}`, exact: true }).click();
      await expect.poll(() => row.locator('[data-drain]').textContent()).toBe(`drained through the API: ${DRAIN}`);
      await page
        .locator(`[data-banner="agent:${agentId}"]`, { hasText: `Maintenance on agent ${name}: ${DRAIN}` })
        .waitFor({ timeout: 2000 });
      expect(await stack.admin.expect(200, 'GET', `/v1/agents/${agentId}/maintenance`)).toMatchObject({
        enabled: true,
        message: DRAIN,
        source: 'api',
      });
      await check(page, 'agents-drained');

      await row.getByRole('button', { name: `Undrain ${name}`, exact: true }).click();
      await expect.poll(() => row.locator('[data-drain]').textContent()).toBe('not drained');
      await page.locator(`[data-banner="agent:${agentId}"]`).waitFor({ state: 'detached', timeout: 2000 });
      expect((await stack.admin.expect(200, 'GET', `/v1/agents/${agentId}/maintenance`)).enabled).toBe(false);

      // The SP's feed of one tenant, filtered by the server: bravo's events only.
      await page.getByRole('link', { name: 'Events' }).click();
      await page.getByLabel('Tenant').fill(bravo.id);
      await page.getByLabel('From the start of the log').check();
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await page.locator('[data-event]').first().waitFor();
      expect(new Set(await page.locator('[data-event-tenant]').allTextContents())).toEqual(new Set([bravo.id]));
    } finally {
      if (agentId) await stack.admin.expect(200, 'PUT', `/v1/agents/${agentId}/maintenance`, { enabled: false });
      await sp.context.close();
    }
  });

  it("a zone's window shows on the banner of a tenant with an offering there (with or without an instance), live, and not of a tenant without one", async () => {
    const ZONE_WINDOW = 'Zone A: SAN migration tonight';
    const GLOBAL_WINDOW = 'Everything: network change';
    const { context, page } = await loggedIn(bravo.token);
    const delta = await stack.tenant('delta');
    // echo has an offering in zone-a and no instance yet: it sees the zone, and is told of its windows.
    const echo = await stack.tenant('echo');
    await stack.admin.expect(201, 'POST', `/v1/offerings/${demoOffering}/grants`, { tenantId: echo.id });
    const echoTab = await loggedIn(echo.token);
    let deltaTab: { context: BrowserContext; page: Page } | undefined;
    try {
      await stack.admin.expect(200, 'PUT', '/v1/zones/zone-a/maintenance', { enabled: true, message: ZONE_WINDOW });
      await page
        .locator('[data-banner="zone:zone-a"]', { hasText: `Maintenance in zone zone-a: ${ZONE_WINDOW}` })
        .waitFor({ timeout: 2000 });
      await echoTab.page
        .locator('[data-banner="zone:zone-a"]', { hasText: `Maintenance in zone zone-a: ${ZONE_WINDOW}` })
        .waitFor({ timeout: 2000 });
      const echoEvents = (await echo.api.expect(200, 'GET', '/v1/events?limit=500')).items as { type: string }[];
      expect(echoEvents.map((e) => e.type)).toContain('maintenance.enabled');
      expect(await page.locator('[data-banner="global"]').count()).toBe(0);
      await check(page, 'banner-zone');

      // delta has no offering in zone-a: its banner shows the global window and not the zone's.
      await stack.admin.expect(200, 'PUT', '/v1/maintenance', { enabled: true, message: GLOBAL_WINDOW });
      await page.locator('[data-banner="global"]', { hasText: GLOBAL_WINDOW }).waitFor({ timeout: 2000 });
      deltaTab = await loggedIn(delta.token);
      await deltaTab.page.locator('[data-banner="global"]', { hasText: GLOBAL_WINDOW }).waitFor();
      expect(await deltaTab.page.locator('[data-banner]').count()).toBe(1);
      expect(await deltaTab.page.locator('body').textContent()).not.toContain(ZONE_WINDOW);

      await stack.admin.expect(200, 'PUT', '/v1/zones/zone-a/maintenance', { enabled: false });
      await page.locator('[data-banner="zone:zone-a"]').waitFor({ state: 'detached', timeout: 2000 });
    } finally {
      await stack.admin.expect(200, 'PUT', '/v1/zones/zone-a/maintenance', { enabled: false });
      await stack.admin.expect(200, 'PUT', '/v1/maintenance', { enabled: false });
      await deltaTab?.context.close();
      await echoTab.context.close();
      await context.close();
    }
  });

  it("an instance's page shows and changes its offering and own schedule, shows its SLA and jobs, and restores one volume onto another instance", async () => {
    const scheduled = await offerDummy(stack.admin, 'zone-a', {
      provider: 'sched-demo',
      offering: 'sched-daily',
      allowUserSchedules: true,
      grants: [acme.id],
    });
    await stack.admin.expect(200, 'PATCH', `/v1/offerings/${scheduled.offeringId}`, {
      sla: { cron: '0 2 * * *', timezone: 'UTC', keepLast: 14, rpoMinutes: 1440 },
    });
    const own = await acme.api.expect(201, 'POST', '/v1/instances', {
      name: 'acme-sched',
      zone: 'zone-a',
      locator: { vm: 'acme-sched' },
    });
    await assignOffering(acme.api, own.id, scheduled.offeringId);
    const schedule = await acme.api.expect(200, 'PUT', `/v1/instances/${own.id}/schedule`, {
      cron: '0 5 * * *',
      timezone: 'Europe/Berlin',
      keepLast: 7,
    });
    const spare = await acme.api.expect(201, 'POST', '/v1/instances', {
      name: 'acme-spare',
      zone: 'zone-a',
      locator: { vm: 'acme-spare' },
    });
    const held = await acme.api.expect(201, 'POST', '/v1/backup-jobs', {
      name: 'acme-sched-weekly',
      instanceIds: [own.id],
      mode: 'FULL',
      execution: 'SEQUENTIAL',
      schedules: [{ cron: '0 1 * * 0', timezone: 'UTC' }],
    });
    await stack.backup(own.id, { api: acme.api });
    const { context, page } = await loggedIn(acme.token);
    try {
      await page.goto(`${stack.cp.url}/ui/instances/${own.id}`);
      await page.getByRole('heading', { name: 'Instance acme-sched' }).waitFor();
      const offering = page.locator(`[data-offering="${scheduled.offeringId}"]`);
      await offering.waitFor();
      expect(await offering.textContent()).toContain('sched-daily');
      expect(await offering.locator('[data-sla]').textContent()).toBe('0 2 * * * UTC, keeps the last 14, RPO 1440 min');
      await expect
        .poll(() => page.locator('[data-own-schedule]').textContent())
        .toContain('0 5 * * * Europe/Berlin, keeps the last 7');
      expect(await page.locator('[data-own-schedule] time').getAttribute('datetime')).toBe(schedule.nextRunAt);
      const jobRow = page.locator(`[data-instance-job="${held.id}"]`);
      await jobRow.waitFor();
      expect(await jobRow.textContent()).toMatch(/^acme-sched-weekly0 1 \* \* 0 UTC: next /);
      expect(await jobRow.locator('time').getAttribute('datetime')).toBe(held.schedules[0].nextRunAt);
      // Only the jobs that hold it: none of acme's others.
      expect(await page.locator('[data-instance-job]').count()).toBe(1);

      // Its own schedule changed from the page: a cron firing more often than the offering's floor
      // (one fire every 15 minutes) is the API's 400 and changes nothing; a weekly one replaces it.
      const scheduleForm = page.getByRole('form', { name: 'Own schedule' });
      await scheduleForm.getByLabel('Cron').fill('* * * * *');
      await scheduleForm.getByRole('button', { name: 'Save schedule' }).click();
      await expect.poll(() => scheduleForm.getByRole('alert').textContent()).toMatch(/\(400 schedule_too_frequent\)/);
      expect((await acme.api.expect(200, 'GET', `/v1/instances/${own.id}/schedule`)).cron).toBe('0 5 * * *');
      await scheduleForm.getByLabel('Cron').fill('0 6 * * 1');
      await scheduleForm.getByLabel('Keep last').fill('3');
      await scheduleForm.getByRole('button', { name: 'Save schedule' }).click();
      await expect
        .poll(() => page.locator('[data-own-schedule]').textContent())
        .toContain('0 6 * * 1 Europe/Berlin, keeps the last 3');
      expect(await acme.api.expect(200, 'GET', `/v1/instances/${own.id}/schedule`)).toMatchObject({
        cron: '0 6 * * 1',
        timezone: 'Europe/Berlin',
        keepLast: 3,
      });
      await check(page, 'instance-schedules');
      await scheduleForm.getByRole('button', { name: 'Remove schedule' }).click();
      await page.getByText('No schedule of its own.').waitFor();
      expect((await acme.api.get(`/v1/instances/${own.id}/schedule`)).status).toBe(404);

      // One volume of its restore point onto acme-spare; a blank volume is the API's 400, and nothing starts.
      const point = page.locator('[data-backup]').first();
      await point.waitFor();
      const backupId = await point.getAttribute('data-backup');
      const form = point.getByRole('form', { name: /^Restore a volume of / });
      await form.getByLabel('Onto instance').selectOption({ label: 'acme-spare' });
      await form.getByLabel('Volume', { exact: true }).fill('   ');
      await form.getByRole('button', { name: 'Restore volume' }).click();
      await expect.poll(() => point.getByRole('alert').textContent()).toMatch(/volume.*\(400 /);
      const before = (await acme.api.expect(200, 'GET', `/v1/tasks?kind=restore-volume&instanceId=${spare.id}`)).items;
      expect(before).toEqual([]);
      await form.getByLabel('Volume', { exact: true }).fill('disk-1');
      await form.getByRole('button', { name: 'Restore volume' }).click();
      const started = await point.getByRole('status').filter({ hasText: 'Restore-volume task' }).textContent();
      const taskId = /Restore-volume task (\S+) started/.exec(started ?? '')![1]!;
      const done = await waitForTask(acme.api, taskId, ['succeeded']);
      expect(done).toMatchObject({ kind: 'restore-volume', backupId, instanceId: spare.id });
      expect((done as unknown as { output: { extra: unknown } }).output.extra).toEqual({
        volume: 'disk-1',
        targetInstanceId: spare.id,
      });
      // The targets are acme's other instances of the zone: not this one, nothing of bravo's.
      const options = await form.getByLabel('Onto instance').locator('option').allTextContents();
      expect(options).toContain('acme-spare');
      expect(options).not.toContain('acme-sched');
      expect(options).not.toContain('bravo-db');

      // acme-spare: no offering, no schedule, no job.
      await page.goto(`${stack.cp.url}/ui/instances/${spare.id}`);
      await page.getByRole('heading', { name: 'Instance acme-spare' }).waitFor();
      await page.getByText('No offering: this instance is not protected.').waitFor();
      await page.getByText('No schedule of its own.').waitFor();
      await page.getByText('No backup job holds it.').waitFor();

      // An offering assigned from the page (acme's of the zone only are offered), then removed.
      const offeringForm = page.getByRole('form', { name: 'Offering', exact: true });
      // The list is read after the page shows (its offerings come in a request of their own).
      const offeredOptions = offeringForm.getByLabel('Offering to assign').locator('option');
      await expect
        .poll(() => offeredOptions.allTextContents())
        .toEqual(expect.arrayContaining(['sched-daily', 'demo-adhoc']));
      const offered = await offeredOptions.allTextContents();
      expect(offered).not.toContain('charlie-adhoc');
      await offeringForm.getByLabel('Offering to assign').selectOption({ label: 'sched-daily' });
      await offeringForm.getByRole('button', { name: 'Assign offering' }).click();
      await page.locator(`[data-offering="${scheduled.offeringId}"]`).waitFor();
      expect((await acme.api.expect(200, 'GET', `/v1/instances/${spare.id}`)).offeringId).toBe(scheduled.offeringId);
      await offeringForm.getByRole('button', { name: 'Remove offering' }).click();
      await page.getByText('No offering: this instance is not protected.').waitFor();
      expect((await acme.api.expect(200, 'GET', `/v1/instances/${spare.id}`)).offeringId).toBeNull();
    } finally {
      await context.close();
    }
  });

  it("a job's page shows its run's members in order, each with a live bar that moves to 100 % without a reload", async () => {
    const second = await acme.api.expect(201, 'POST', '/v1/instances', {
      name: 'acme-db',
      zone: 'zone-a',
      locator: { vm: 'acme-db' },
    });
    await assignOffering(acme.api, second.id, demoOffering);
    const members = [acmeVm, second.id];
    const job = await acme.api.expect(201, 'POST', '/v1/backup-jobs', {
      name: 'acme-pair',
      instanceIds: members,
      mode: 'FULL',
      execution: 'SEQUENTIAL',
    });
    const { context, page } = await loggedIn(acme.token);
    try {
      await page.goto(`${stack.cp.url}/ui/jobs/${job.id}`);
      await page.getByRole('heading', { name: 'Backup job acme-pair' }).waitFor();
      await page.getByText('No run yet.').waitFor();
      // Samples each member's set and bar every 50 ms, in this document (a reload would lose them).
      await page.evaluate(`
        window.sameDocument = true;
        window.bars = [];
        setInterval(() => {
          for (const tr of document.querySelectorAll('tr[data-member]')) {
            const bar = tr.querySelector('progress');
            window.bars.push({
              id: tr.getAttribute('data-member'),
              set: tr.getAttribute('data-member-set'),
              value: bar ? Number(bar.getAttribute('value')) : null,
            });
          }
        }, 50);
      `);
      await page.getByRole('button', { name: 'Run', exact: true }).click();
      await page.locator('tr[data-member-set="UPDATED"]').nth(1).waitFor({ timeout: 60_000 });
      expect(
        await page.locator('tr[data-member]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-member'))),
      ).toEqual(members);
      for (const id of members) {
        const row = page.locator(`tr[data-member="${id}"]`);
        expect(await row.locator('progress').getAttribute('value')).toBe('100');
        expect(await row.locator('[data-percent]').textContent()).toBe('100 %');
      }
      const { bars, sameDocument } = (await page.evaluate(
        '({ bars: window.bars, sameDocument: window.sameDocument })',
      )) as {
        bars: { id: string; set: string; value: number | null }[];
        sameDocument: boolean;
      };
      expect(sameDocument).toBe(true);
      for (const id of members) {
        const moving = bars.filter((b) => b.id === id && b.set === 'ONGOING').map((b) => b.value ?? -1);
        expect(
          moving.some((v) => v > 0 && v < 100),
          `${id} while ONGOING: ${[...new Set(moving)].join(',')}`,
        ).toBe(true);
        // Never a bar before it started.
        expect(bars.filter((b) => b.id === id && b.set === 'OUTDATED' && b.value !== null)).toEqual([]);
      }
      await check(page, 'job-members');
    } finally {
      await context.close();
    }
  });
});
