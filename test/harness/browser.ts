import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium, type Browser, type Page } from 'playwright-core';

export type { Browser, BrowserContext, Page } from 'playwright-core';
import { root } from './processes.js';

/** Debian's chromium: the browser tests drive it; without it (and outside CI) they are skipped with a notice. */
export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = fs.existsSync(CHROMIUM);

/** Where screenshots go: a test artifact, never committed (.gitignore). */
export const SCREENSHOTS = path.join(root, 'test', 'artifacts', 'console');

/**
 * A headless chromium quiet on the network (no component updates, sync or QUIC), with a fresh
 * profile: playwright's launch() gives it a new temporary --user-data-dir of its own, removed at
 * close (it refuses one passed in the arguments). One per test file: contexts are cheap, browsers not.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A screenshot of the whole page, as `SCREENSHOTS/<name>.png`. */
export async function screenshot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

const axeSource = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/**
 * axe-core's violations on the page as it is, serious and critical only. The script is run
 * through the DevTools protocol, which the page's CSP does not govern (a <script> would be refused).
 */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run: () => Promise<{ violations: AxeViolation[] }> } }).axe;
    return (await axe.run()).violations;
  });
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) }));
}
