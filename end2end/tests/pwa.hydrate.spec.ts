import { chromium, type Page } from '@playwright/test';
import { expect, test } from './fixtures';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { newDevice, publish } from './mqtt';
import { cachedDevices, readOfflineCache } from './offline_cache';

const siteDir = path.resolve(__dirname, '..', '..', 'target', 'site');

/** Waits until the service worker controls the page (the first load installs it). */
async function controlledBySw(page: Page) {
  await page.evaluate(() => navigator.serviceWorker.ready);
  await expect.poll(() => page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
}

test('Chromium finds the app installable, with a complete manifest', async ({}, testInfo) => {
  const baseURL = testInfo.project.use.baseURL!;
  const launch = testInfo.project.use.launchOptions!;
  // Installability is not assessed in incognito-like contexts: use a real profile folder.
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'iot-pwa-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: launch.executablePath,
    args: launch.args,
    baseURL,
  });
  try {
    const page = await context.newPage();
    await page.goto('/');
    await controlledBySw(page);

    const cdp = await context.newCDPSession(page);
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    expect(installabilityErrors).toEqual([]);
    const manifest = await cdp.send('Page.getAppManifest');
    expect(manifest.errors).toEqual([]);

    const m = await (await page.request.get('/manifest.webmanifest')).json();
    expect(m).toMatchObject({ id: '/', start_url: '/', scope: '/', display: 'standalone', name: 'IoT Dashboard' });
    expect(m.theme_color).toMatch(/^#/);
    expect(m.background_color).toMatch(/^#/);
    const icons = m.icons.map((i: { sizes: string; purpose: string }) => `${i.sizes} ${i.purpose}`);
    expect(icons).toEqual(expect.arrayContaining(['192x192 any', '512x512 any', '512x512 maskable']));
    for (const icon of m.icons) expect((await page.request.get(icon.src)).status()).toBe(200);
    await expect(page.locator('link[rel="apple-touch-icon"]')).toHaveAttribute('href', /\.png$/);
    expect((await page.request.get('/icons/apple-touch-icon.png')).status()).toBe(200);
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
});

test('"Install app" appears when the browser offers installation and goes once installed', async ({ page }) => {
  await page.goto('/');
  const install = page.locator('#install-app');
  await expect(install).toBeHidden();
  // What Chromium does when the app qualifies: offer a prompt the page may show later.
  await page.evaluate(() => {
    const offer = Object.assign(new Event('beforeinstallprompt', { cancelable: true }), {
      prompt: () => ((window as unknown as { prompted: boolean }).prompted = true),
      userChoice: Promise.resolve({ outcome: 'accepted' }),
    });
    window.dispatchEvent(offer);
  });
  await expect(install).toBeVisible();
  await install.click();
  await expect.poll(() => page.evaluate(() => (window as unknown as { prompted?: boolean }).prompted)).toBe(true);
  await expect(install).toBeHidden();
  await page.evaluate(() => window.dispatchEvent(new Event('appinstalled')));
  await expect(install).toBeHidden();
});

test('without IndexedDB the dashboard works online and says why offline mode is off', async ({ page }) => {
  await page.addInitScript(() => Object.defineProperty(window, 'indexedDB', { value: undefined }));
  const device = newDevice('E2E_NO_IDB');
  await page.goto('/');
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
  publish(device, { temperature: 17.5 });
  await expect(page.locator(`[data-device="${device}"] [data-metric="temperature"] .value`)).toHaveText('17.5');
  await expect(page.locator('.banner.note')).toContainText('Offline mode is off');
});

test('offline, a reload shows the last-known readings from the cache', async ({ page, context }) => {
  await page.goto('/');
  await controlledBySw(page);
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');

  // This device is not in any page the server rendered: only the live feed and the cache know it.
  const device = newDevice('E2E_OFFLINE');
  publish(device, { temperature: 30.5, humidity: 35 });
  const temperature = page.locator(`[data-device="${device}"] [data-metric="temperature"] .value`);
  await expect(temperature).toHaveText('30.5');
  await expect.poll(() => cachedDevices(page), { timeout: 5_000 }).toContain(device);

  await context.setOffline(true);
  await page.reload();
  await expect(temperature).toHaveText('30.5');
  await expect(page.locator(`[data-device="${device}"]`)).toHaveClass(/stale/);
  await expect(page.locator('.banner.offline')).toContainText(/Offline — data as of \d\d:\d\d/);
  await context.setOffline(false);
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
  await expect(page.locator('.banner.offline')).toBeHidden();
});

test('offline, a page never opened falls back to the overview', async ({ page, context }) => {
  const device = newDevice('E2E_SHELL');
  publish(device, { temperature: 12.5 });
  await page.goto('/');
  await controlledBySw(page);
  await expect(page.locator(`[data-device="${device}"] [data-metric="temperature"] .value`)).toHaveText('12.5');
  // pwa.js keeps the overview, which the worker did not see load, a moment after it takes control.
  await expect
    .poll(() => page.evaluate(async () => (await (await caches.open('pages')).match('/')) !== undefined))
    .toBe(true);

  await context.setOffline(true);
  await page.goto(`/device/${device}?metric=temperature&range=24h`);
  await expect(page).toHaveURL(/\/$/);
  await expect(page.locator(`[data-device="${device}"] [data-metric="temperature"] .value`)).toHaveText('12.5');
  await expect(page.locator('.banner.offline')).toBeVisible();
});

test('back online, exactly the missed readings are fetched and applied once', async ({ page, context }) => {
  const device = newDevice('E2E_GAP');
  publish(device, { temperature: 1, humidity: 50 }, new Date(Date.now() - 200_000));
  await page.goto(`/device/${device}?metric=temperature&range=1h`);
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
  const messages = page.locator('.facts div', { hasText: 'Messages' }).locator('dd');
  await expect(messages).toHaveText('1');

  await context.setOffline(true);
  await expect(page.locator('.banner.offline')).toBeVisible();
  const start = Date.now() - 150_000;
  for (let i = 0; i < 100; i++) publish(device, { temperature: 100 + i, humidity: 50 }, new Date(start + i * 1000));

  const gapRequests: string[] = [];
  const gapEvents: number[] = [];
  const otherRequests: string[] = [];
  page.on('response', async (response) => {
    if (!response.url().includes('/api/changes')) {
      if (response.url().includes('/api/')) otherRequests.push(response.url());
      return;
    }
    gapRequests.push(response.url());
    const body = await response.json();
    gapEvents.push(body.events.length);
  });
  await context.setOffline(false);

  await expect(messages).toHaveText('101');
  await expect(page.locator('.metric-tabs a[data-metric="temperature"] .value')).toHaveText('199.0');
  await expect(page.locator('svg.chart, .uplot-host').first()).toHaveAttribute('data-readings', '101');
  expect(gapRequests).toHaveLength(1);
  expect(gapEvents).toEqual([100]);
  // The chart folded the missed readings in; it did not fetch its whole range again.
  expect(otherRequests).toEqual([]);
  // The page never reloaded: the missed readings came as one page of changes.
  await expect(page.locator('.banner.offline')).toBeHidden();
});

test('offline, a chart reopens with the readings that arrived live', async ({ page, context }) => {
  const device = newDevice('E2E_CHART_OFFLINE');
  publish(device, { temperature: 10 }, new Date(Date.now() - 60_000));
  await page.goto(`/device/${device}?metric=temperature&range=1h`);
  await controlledBySw(page);
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
  // The server's SVG chart, or the interactive one that replaces it once the page is live.
  const chart = page.locator('svg.chart, .uplot-host').first();
  await expect(chart).toHaveAttribute('data-readings', '1');
  publish(device, { temperature: 11 }, new Date(Date.now() - 30_000));
  publish(device, { temperature: 12 }, new Date(Date.now() - 20_000));
  await expect(chart).toHaveAttribute('data-readings', '3');
  await expect.poll(() => keptChartReadings(page, `${device}/temperature/3600`), { timeout: 5_000 }).toBe(3);

  await context.setOffline(true);
  await page.reload();
  await expect(page.locator('.banner.offline')).toBeVisible();
  await expect(chart).toHaveAttribute('data-readings', '3');
});

test('offline, the last-known alarms show in the badge and the list, and catch up once back', async ({ page, context, request }) => {
  const device = newDevice('E2E_ALARM_OFFLINE');
  const rule = await request.post('/api/alarm_rules', {
    data: {
      name: `offline ${device}`, devices: [device], kind: 'threshold', metric: 'temperature', op: '>',
      levels: [{ severity: 'critical', value: 30 }], for_secs: 0,
    },
  });
  expect(rule.status(), await rule.text()).toBe(201);
  await page.goto('/alarms?status=active_unack');
  await controlledBySw(page);
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
  const badge = page.locator('.alarm-badge');
  const before = Number(await badge.getAttribute('data-count'));
  const keptPage = () => page.evaluate(async () => (await (await caches.open('pages')).match(location.href))?.text() ?? '');
  await expect.poll(keptPage).toContain('alarms-page');

  // It fires while the page is open: the page the worker kept does not list it; only the live
  // feed, and then the browser's cache, know it.
  publish(device, { temperature: 35 });
  const [alarm] = await (await request.get(`/api/alarms?status=active&device=${device}`)).json();
  const row = page.locator(`tr[data-alarm="${alarm.id}"]`);
  await expect(row).toHaveAttribute('data-status', 'ACTIVE_UNACK');
  await expect(badge).toHaveAttribute('data-count', String(before + 1));
  await expect.poll(() => cachedAlarms(page), { timeout: 5_000 }).toContain(alarm.id);
  expect(await keptPage()).not.toContain(alarm.id);

  await context.setOffline(true);
  await page.reload();
  await expect(page.locator('.banner.offline')).toBeVisible();
  await expect(row).toHaveAttribute('data-status', 'ACTIVE_UNACK');
  await expect(badge).toHaveAttribute('data-count', String(before + 1));

  // Acknowledged elsewhere meanwhile: back online, the change comes through the change log.
  const acked = await request.post(`/api/alarms/${alarm.id}/ack`);
  expect(acked.ok(), await acked.text()).toBe(true);
  const caughtUp: number[] = [];
  page.on('response', async (response) => {
    if (response.url().includes('/api/changes')) caughtUp.push((await response.json()).events.length);
  });
  await context.setOffline(false);
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
  await expect(row).toHaveCount(0);
  await expect(badge).toHaveAttribute('data-count', String(before));
  expect(caughtUp.length).toBeGreaterThan(0);
  await expect.poll(() => cachedAlarms(page, true), { timeout: 5_000 }).toContain(alarm.id);
});

test('a new version offers "Update available — reload" and the click loads it', async ({ page }) => {
  await page.goto('/');
  await controlledBySw(page);
  const sw = path.join(siteDir, 'sw.js');
  const original = fs.readFileSync(sw, 'utf8');
  try {
    // A new build: the service worker changes.
    fs.writeFileSync(sw, `${original}\n// build ${Date.now()}\n`);
    await page.evaluate(() => ((window as unknown as { marker: string }).marker = 'old page'));
    await page.evaluate(async () => (await navigator.serviceWorker.getRegistration())?.update());
    const banner = page.locator('#update-banner');
    await expect(banner).toBeVisible();
    await expect(banner).toContainText('Update available');
    const reloaded = page.waitForEvent('load');
    await banner.getByRole('button', { name: 'reload' }).click();
    await reloaded;
    expect(await page.evaluate(() => (window as unknown as { marker?: string }).marker)).toBeUndefined();
    await expect(page.locator('#update-banner')).toBeHidden();
    await controlledBySw(page);
  } finally {
    fs.writeFileSync(sw, original);
  }
});

/** Readings in a chart the app kept in IndexedDB (0 when none). */
function keptChartReadings(page: Page, key: string): Promise<number> {
  return page.evaluate(
    (key) =>
      new Promise<number>((resolve) => {
        const open = indexedDB.open('iot-dashboard');
        open.onerror = () => resolve(0);
        open.onsuccess = () => {
          const db = open.result;
          if (!db.objectStoreNames.contains('charts')) return resolve(0);
          const get = db.transaction('charts').objectStore('charts').get(key);
          get.onerror = () => resolve(0);
          get.onsuccess = () =>
            resolve(
              get.result
                ? JSON.parse(get.result).buckets.reduce((n: number, b: { count: number }) => n + b.count, 0)
                : 0,
            );
        };
      }),
    key,
  );
}

/** The ids of the alarms in the app's IndexedDB cache (only the acknowledged ones if `acked`). */
async function cachedAlarms(page: Page, acked = false): Promise<string[]> {
  const alarms = (await readOfflineCache(page))?.alarms ?? [];
  return alarms.filter((a) => !acked || a.acked).map((a) => a.id);
}

