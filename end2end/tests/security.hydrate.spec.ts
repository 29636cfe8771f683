import type { Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { newDevice } from './mqtt';
import { cachedDevices } from './offline_cache';
import { OwnServer, signIn, startServer } from './server';

// What the outside review asked of the browser side: markup from users stays text in the
// chart tooltip; signing out forgets this browser's copies of the data; the admin page is
// never kept by the service worker.

/** Waits until the service worker controls the page (the first load installs it). */
async function controlledBySw(page: Page) {
  await page.evaluate(() => navigator.serviceWorker.ready);
  await expect.poll(() => page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
}

/** The paths of what the service worker's `pages` and `api` caches hold. */
function cached(page: Page): Promise<{ pages: string[]; api: string[] }> {
  return page.evaluate(async () => {
    const paths = async (name: string) => {
      if (!(await caches.has(name))) return [];
      const keys = await (await caches.open(name)).keys();
      return keys.map((r) => new URL(r.url).pathname);
    };
    return { pages: await paths('pages'), api: await paths('api') };
  });
}


test('markup in a chart\'s unit shows as text in its tooltip and never runs', async ({ page, request }) => {
  // If the tooltip parsed its text as HTML, this would call a() (the unit may hold 16 characters).
  await page.addInitScript(() => {
    (window as unknown as { a: () => void }).a = () => ((window as unknown as { pwned: number }).pwned = 1);
  });
  const device = newDevice('E2E_TIP');
  const now = Date.now();
  const readings = [0, 1, 2, 3, 4, 5].map((i) => ({
    device_id: device,
    telemetry: { temperature: 20 + i },
    timestamp: new Date(now - (6 - i) * 300_000).toISOString(),
  }));
  expect((await request.post('/api/telemetry', { data: readings })).status()).toBe(202);
  const unit = '<svg/onload=a()>';
  const dashboard = {
    id: 'new',
    name: `tooltip ${device}`,
    widgets: [{ id: 'w1', kind: 'line_chart', title: 'Markup unit', devices: [device], metrics: ['temperature'], unit }],
    layouts: { wide: [{ widget: 'w1', x: 0, y: 0, w: 12, h: 4 }], medium: [], phone: [] },
    range: { type: 'last', secs: 3600 },
  };
  const created = await request.post('/api/dashboards/create', { data: { dashboard } });
  expect(created.status()).toBe(200);
  await page.goto(`/d/${(await created.json()).id}`);
  const host = page.locator('.uplot-host');
  await expect(host.locator('canvas')).toBeVisible();
  const over = host.locator('.u-over');
  const box = (await over.boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.9, box.y + box.height / 2);
  const tip = host.locator('.chart-tooltip');
  await expect(tip).toBeVisible();
  await expect(tip).toContainText(unit);
  await expect(tip.locator('svg')).toHaveCount(0);
  expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
});

test.describe('signed in', () => {
  let server: OwnServer;

  test.beforeAll(async () => {
    server = await startServer([['root', 'admin', 'admin password']]);
  });

  test.afterAll(() => server?.stop());

  test('signing out forgets the cached pages, API answers and offline store', async ({ page }) => {
    const base = server.base;
    const device = newDevice('E2E_FORGET');
    await page.goto(`${base}/login`);
    await controlledBySw(page);
    await signIn(page, 'root', 'admin password');
    await expect(page).toHaveURL(`${base}/`);
    // Once the worker controls the page, readings that come live are kept in the offline store,
    // pages and the API's answers (a chart's history) in the worker's caches.
    await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
    const stored = await page.request.post(`${base}/api/telemetry`, {
      data: { device_id: device, telemetry: { temperature: 21.5 } },
      headers: { Authorization: `Basic ${Buffer.from('root:admin password').toString('base64')}` },
    });
    expect(stored.status()).toBe(202);
    await expect(page.locator(`[data-device="${device}"] [data-metric="temperature"] .value`)).toHaveText('21.5');
    await expect.poll(() => cachedDevices(page)).toContain(device);
    await page.goto(`${base}/device/${device}?metric=temperature&range=1h`);
    await expect(page.locator('.uplot-host canvas')).toBeVisible();
    await page.goto(`${base}/`);
    await expect.poll(async () => (await cached(page)).pages).toContain('/');
    await expect.poll(async () => (await cached(page)).api.length).toBeGreaterThan(0);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page).toHaveURL(/\/login$/);
    const left = await cached(page);
    expect(left.pages, 'pages kept after signing out').not.toContain('/');
    expect(left.pages.filter((p) => p.startsWith('/device/')), 'device pages kept').toEqual([]);
    expect(left.api.filter((p) => p !== '/api/whoami'), 'API answers kept').toEqual([]);
    expect(await cachedDevices(page), 'devices kept in the offline store').toEqual([]);
  });

  test('the admin page and its answers are never kept by the service worker', async ({ page, context }) => {
    const base = server.base;
    await page.goto(`${base}/login`);
    await controlledBySw(page);
    await signIn(page, 'root', 'admin password');
    await expect(page).toHaveURL(`${base}/`);
    // In the app (the router's own navigation), then loaded afresh.
    await page.locator('.admin-link').click();
    await expect(page).toHaveURL(`${base}/admin`);
    await expect(page.getByRole('heading', { name: 'Users', exact: true })).toBeVisible();
    await page.goto(`${base}/admin`);
    await expect(page.getByRole('heading', { name: 'Users', exact: true })).toBeVisible();
    await page.goto(`${base}/`);
    await expect.poll(async () => (await cached(page)).pages).toContain('/');
    const kept = await cached(page);
    expect(kept.pages.filter((p) => p === '/admin' || p.startsWith('/admin/'))).toEqual([]);
    expect(kept.api.filter((p) => p.startsWith('/api/admin/'))).toEqual([]);
    // Offline, nothing shows the admin page.
    await context.setOffline(true);
    await page.goto(`${base}/admin`).catch(() => {});
    await expect(page.getByRole('heading', { name: 'Users', exact: true })).toHaveCount(0);
    await context.setOffline(false);
  });
});
