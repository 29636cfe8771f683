import { chromium, type Page } from '@playwright/test';
import { expect, test } from './fixtures';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { newDevice, publish } from './mqtt';
import { cachedDevices } from './offline_cache';
import { startServer } from './server';
import { serveStatic } from './static_server';

// The front end from a CDN (web.assets_url): the built site served as it is by a plain static
// server on another origin, the dashboard's pages linking the hashed files there.
const siteDir = path.resolve(__dirname, '..', '..', 'target', 'site');

async function controlledBySw(page: Page) {
  await page.evaluate(() => navigator.serviceWorker.ready);
  await expect.poll(() => page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
}

test('from a second origin the app loads, hydrates, goes live and reopens offline', async ({}, testInfo) => {
  test.setTimeout(90_000);
  const cdn = await serveStatic(siteDir);
  const server = await startServer([], { IOT_WEB_ASSETS_URL: cdn.url });
  cdn.allow(server.base);
  const launch = testInfo.project.use.launchOptions!;
  // A real profile, as an installed app has: the service worker and its caches persist.
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'iot-cdn-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: launch.executablePath,
    args: launch.args,
    baseURL: server.base,
  });
  const errors: string[] = [];
  const fromServer: string[] = [];
  try {
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text().slice(0, 500));
    });
    page.on('request', (r) => {
      if (r.url().startsWith(server.base) && /\.(js|css|wasm)$/.test(new URL(r.url()).pathname)) {
        fromServer.push(new URL(r.url()).pathname);
      }
    });

    const device = newDevice('E2E_CDN');
    publish(device, { temperature: 21.5 }, new Date(), { port: server.mqttPort });
    await page.goto('/');
    const temperature = page.locator(`[data-device="${device}"] [data-metric="temperature"] .value`);
    await expect(temperature).toHaveText('21.5');
    // Hydrated (the WASM runs) and live (its WebSocket to the dashboard is open).
    await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
    publish(device, { temperature: 22.5 }, new Date(), { port: server.mqttPort });
    await expect(temperature).toHaveText('22.5');
    // A click only the WASM answers: the theme toggle.
    const theme = await page.evaluate(() => document.documentElement.dataset.theme ?? '');
    await page.locator('.theme-toggle').click();
    await expect.poll(() => page.evaluate(() => document.documentElement.dataset.theme ?? '')).not.toBe(theme);

    // Every script, stylesheet and the WASM came from the CDN, by hashed name.
    const manifest: Record<string, string> = JSON.parse(fs.readFileSync(path.join(siteDir, 'asset-manifest.json'), 'utf8'));
    for (const hashed of Object.values(manifest)) expect(cdn.requests).toContain(hashed);
    expect(manifest['/pkg/iot-dashboard.wasm']).toMatch(/^\/pkg\/iot-dashboard\.[0-9a-f]{16}\.wasm$/);
    expect(fromServer, 'no script, stylesheet or WASM from the dashboard itself').toEqual([]);

    // The service worker precached them from the CDN: offline, and with the CDN gone, the app
    // reopens from its caches, hydrated.
    await controlledBySw(page);
    await expect.poll(() => cachedDevices(page), { timeout: 5_000 }).toContain(device);
    expect(errors, 'no console errors, no CSP violations').toEqual([]);
    await context.setOffline(true);
    await cdn.close();
    await page.reload();
    await expect(temperature).toHaveText('22.5');
    await expect(page.locator('.banner.offline')).toContainText(/Offline — data as of \d\d:\d\d/);
    expect(fromServer).toEqual([]);
    // Offline, only what cannot reach the network fails (the live socket, data requests).
    const offline = /ERR_INTERNET_DISCONNECTED|Failed to load resource|WebSocket/;
    expect(errors.filter((e) => !offline.test(e))).toEqual([]);
  } finally {
    await context.close();
    await cdn.close().catch(() => {});
    server.stop();
    fs.rmSync(profile, { recursive: true, force: true });
  }
});
