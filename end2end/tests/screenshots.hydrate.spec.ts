import type { Page } from '@playwright/test';
import path from 'node:path';
import { expect, test } from './fixtures';
import { publish } from './mqtt';
import { OwnServer, startServer } from './server';

// The README's screenshots: written on every run into end2end/screenshots/ (not in git);
// `make screenshots` runs this spec alone and shrinks them into docs/screenshots/
// (end2end/shrink-screenshots.mjs). A server of their own, open as after `make run`, so they
// show the simulator's three devices only, with a day of the simulator's kind of readings.

const shots = path.resolve(__dirname, '..', 'screenshots');
const shot = (name: string) => path.join(shots, `${name}.png`);
const devices = ['ESP32_SIM_01', 'ESP32_SIM_02', 'ESP32_SIM_03'];
const DAY = 24 * 3_600_000;
const EVERY = 2 * 60_000;

/**
 * The simulator's signals (simulator/src/signal.rs), seeded: temperature on a daily sine with
 * noise, humidity moving against it, a battery discharging towards 3.3 V, then charging.
 */
function sensor(seed: number) {
  let state = seed >>> 0;
  // mulberry32: small, seedable, good enough for noise.
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const between = (a: number, b: number) => a + (b - a) * random();
  const noise = (amplitude: number) => (random() + random() - 1) * amplitude;
  const round = (v: number, decimals: number) => Math.round(v * 10 ** decimals) / 10 ** decimals;
  const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
  const tempOffset = between(-2, 2);
  const humidityOffset = between(-8, 8);
  const drain = between(0.0004, 0.0012);
  let battery = between(3.7, 4.2);
  let charging = false;
  return (at: Date) => {
    const hour = at.getUTCHours() + at.getUTCMinutes() / 60 + at.getUTCSeconds() / 3600;
    const daily = Math.sin((2 * Math.PI * (hour - 9)) / 24);
    const temperature = 21 + tempOffset + 4 * daily + noise(0.3);
    const humidity = clamp(55 + humidityOffset - 2.5 * (temperature - 21 - tempOffset) + noise(1), 5, 100);
    if (charging) {
      battery = Math.min(4.2, battery + 0.01);
      charging = battery < 4.2;
    } else {
      battery = Math.max(3.3, battery - drain);
      charging = battery <= 3.3;
    }
    return {
      temperature: round(temperature, 2),
      humidity: round(humidity, 1),
      battery: round(clamp(battery + noise(0.005), 3, 4.3), 3),
    };
  };
}

/** Waits until the service worker controls the page (the first load installs it). */
async function controlledBySw(page: Page) {
  await page.evaluate(() => navigator.serviceWorker.ready);
  await expect.poll(() => page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
}

/** How many devices the browser's offline cache (IndexedDB) holds. */
function cachedDevices(page: Page): Promise<number> {
  return page.evaluate(async () => {
    if (!(await indexedDB.databases()).some((d) => d.name === 'iot-dashboard')) return 0;
    return new Promise<number>((resolve) => {
      const open = indexedDB.open('iot-dashboard');
      open.onerror = () => resolve(0);
      open.onsuccess = () => {
        const db = open.result;
        if (!db.objectStoreNames.contains('state')) return resolve(0);
        const get = db.transaction('state').objectStore('state').get('cache');
        get.onerror = () => resolve(0);
        get.onsuccess = () => resolve(get.result ? JSON.parse(get.result).devices.length : 0);
      };
    });
  });
}

let server: OwnServer;

test.beforeAll(async () => {
  server = await startServer([]);
});

test.afterAll(() => server?.stop());

test('screenshots of the main views', async ({ page, context, request }) => {
  test.setTimeout(120_000);
  const { base, mqttPort } = server;
  const now = Date.now();
  // Seeds picked so that the three rooms differ by a few degrees.
  const sensors = [7, 42, 12345].map(sensor);
  for (const [k, device] of devices.entries()) {
    const read = sensors[k];
    const items = [];
    for (let t = now - DAY; t < now - EVERY / 2; t += EVERY) {
      items.push({ device_id: device, telemetry: read(new Date(t)), timestamp: new Date(t).toISOString() });
    }
    const answer = await request.post(`${base}/api/telemetry`, { data: items });
    expect(answer.status()).toBe(202);
    expect((await answer.json()).accepted).toBe(items.length);
    // The latest reading over MQTT, as the simulator sends them.
    publish(device, read(new Date(now)), new Date(now), { port: mqttPort });
  }
  const live = () => expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
  const charts = () => expect(page.locator('.uplot-host canvas').first()).toBeVisible();

  // Wide, light.
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(`${base}/`);
  await live();
  await page.screenshot({ path: shot('overview') });

  await page.goto(`${base}/d/overview?range=24h`);
  await charts();
  await live();
  await page.screenshot({ path: shot('dashboard') });

  await page.getByRole('button', { name: 'Edit' }).click();
  await expect(page.locator('.palette')).toBeVisible();
  await page.locator('.widget').nth(1).focus();
  await page.screenshot({ path: shot('dashboard-edit') });
  await page.getByRole('button', { name: 'Done' }).click();

  await page.goto(`${base}/device/${devices[0]}?metric=temperature&range=24h`);
  await charts();
  await live();
  await page.screenshot({ path: shot('device'), fullPage: true });

  // Wide, dark (the system's setting; the toggle would do the same).
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto(`${base}/d/overview?range=24h`);
  await charts();
  await live();
  await page.screenshot({ path: shot('dashboard-dark') });

  // Phone, light; then dark and offline: reloaded from the service worker and the cache.
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base}/d/overview?range=24h`);
  await charts();
  await live();
  await page.screenshot({ path: shot('phone') });

  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto(`${base}/`);
  await controlledBySw(page);
  await live();
  // The cache keeps what arrives live.
  for (const [k, device] of devices.entries()) publish(device, sensors[k](new Date()), new Date(), { port: mqttPort });
  await expect.poll(() => cachedDevices(page), { timeout: 10_000 }).toBe(devices.length);
  await context.setOffline(true);
  await page.reload();
  await expect(page.locator('.banner.offline')).toContainText(/Offline — data as of \d\d:\d\d/);
  await expect(page.locator('.device-card.stale')).toHaveCount(devices.length);
  await page.screenshot({ path: shot('phone-offline') });
  await context.setOffline(false);
  await live();
});
