import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Debian's Chromium, headless, with nothing that reaches beyond loopback. */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

/** Logs in on /manage/login as an administrator and waits for the dashboard. */
export async function logInToManage(page: Page, base: string, name = 'admin', password = 'admin-password-1'): Promise<void> {
  await page.goto(`${base}/manage/login`);
  await page.fill('#username', name);
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  await page.waitForURL(`${base}/manage/`);
}

/** Screenshots of every main page go here (looked at before a page is called done; not committed). */
export const SCREENSHOTS = join(process.cwd(), '.test-tmp', 'screenshots');

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * Collects what must never happen on a page: a CSP violation, a script error, a console
 * error, a failed asset. `assertClean()` fails the test with the list.
 */
export function watchPage(page: Page): { problems: string[]; assertClean(where: string): void } {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400 && r.request().resourceType() !== 'document') problems.push(`${r.status()} ${r.url()}`);
  });
  return {
    problems,
    assertClean: (where) => assert.deepEqual(problems, [], `${where}: ${problems.join('; ')}`),
  };
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * axe-core's WCAG 2.1 A/AA rules run inside the page (through the DevTools protocol, so the
 * page's own strict CSP stays on): labels, contrast, heading order, names of controls.
 */
export async function assertAccessible(page: Page, where: string): Promise<void> {
  const violations = (await page.evaluate(`${axeSource}
    axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } })
      .then((r) => r.violations.map((v) => v.id + ': ' + v.help + ' (' + v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ') + ')'))`)) as string[];
  assert.deepEqual(violations, [], `${where}: accessibility violations`);
}
