// PWA figures, measured in Chromium against a running server (scripts/bench-pwa.sh starts one):
//  0. cold load (new browser profile: no HTTP cache, no service worker): time to the first
//     values on screen (server-rendered) and to the live feed (WASM loaded, hydrated,
//     WebSocket open), and the bytes that took (median of 5)
//  1. offline cold reload: time from reload to the first cached values on screen (median of 5)
//  2. bytes over the network on reconnect after 100 missed readings, versus reloading the page
//  3. precache size (what the service worker stores at install)
import { chromium } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const base = process.env.BASE_URL;
const mqttPort = process.env.MQTT_PORT;
const site = process.env.SITE_DIR;
const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

const publish = (device, telemetry, at = new Date()) =>
  execFileSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', mqttPort, '-q', '1', '-t', `app/device/${device}/telemetry`,
    '-m', JSON.stringify({ telemetry, timestamp: at.toISOString() })]);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args });
const device = `BENCH_PWA_${Date.now().toString(36)}`;
const valueOf = (device) => `[data-device="${device}"] [data-metric="temperature"] .value`;

// 0. Cold load.
publish(device, { temperature: 21.5 });
const coldValues = [];
const coldLive = [];
const coldBytes = [];
for (let i = 0; i < 5; i++) {
  const fresh = await browser.newContext({ baseURL: base, serviceWorkers: 'block' });
  const p = await fresh.newPage();
  const cdp = await fresh.newCDPSession(p);
  await cdp.send('Network.enable');
  let received = 0;
  cdp.on('Network.loadingFinished', (e) => (received += e.encodedDataLength));
  const t0 = Date.now();
  await p.goto('/', { waitUntil: 'commit' });
  await p.locator(valueOf(device)).waitFor();
  coldValues.push(Date.now() - t0);
  await p.locator('.live-badge[data-state="live"]').waitFor();
  coldLive.push(Date.now() - t0);
  coldBytes.push(received);
  await fresh.close();
}

const context = await browser.newContext({ baseURL: base });
const page = await context.newPage();

// 1. Offline cold reload.
await page.goto('/');
await page.evaluate(() => navigator.serviceWorker.ready);
await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
await page.locator('.live-badge[data-state="live"]').waitFor();
const value = page.locator(valueOf(device));
await value.waitFor();
await page.waitForTimeout(1500); // the cache is written in batches
await context.setOffline(true);
const reloads = [];
for (let i = 0; i < 5; i++) {
  const t0 = Date.now();
  await page.reload({ waitUntil: 'commit' });
  await value.waitFor();
  reloads.push(Date.now() - t0);
}
await context.setOffline(false);
await page.locator('.live-badge[data-state="live"]').waitFor();

// 2. Reconnect after 100 missed readings versus a reload. Without the service worker, so the
// page's own network log sees every byte (with it, fetches happen in the worker).
const plain = await browser.newContext({ baseURL: base, serviceWorkers: 'block' });
const p2 = await plain.newPage();
const net = await plain.newCDPSession(p2);
await net.send('Network.enable');
await net.send('Network.setCacheDisabled', { cacheDisabled: true });
let bytes = 0;
net.on('Network.loadingFinished', (e) => (bytes += e.encodedDataLength));
net.on('Network.webSocketFrameReceived', (e) => (bytes += e.response.payloadData.length));
await p2.goto(`/device/${device}?metric=temperature&range=1h`);
await p2.locator('.live-badge[data-state="live"]').waitFor();
await plain.setOffline(true);
await p2.locator('.banner.offline').waitFor();
const start = Date.now() - 120_000;
for (let i = 0; i < 100; i++) publish(device, { temperature: 20 + i / 10 }, new Date(start + i * 1000));
bytes = 0;
await plain.setOffline(false);
await p2.locator('svg.chart[data-readings="101"], .uplot-host[data-readings="101"]').first().waitFor();
await p2.waitForTimeout(500);
const reconnectBytes = bytes;
bytes = 0;
await p2.reload();
await p2.locator('svg.chart[data-readings="101"], .uplot-host[data-readings="101"]').first().waitFor();
await p2.locator('.live-badge[data-state="live"]').waitFor();
await p2.waitForTimeout(500);
const reloadBytes = bytes;
await browser.close();

// 3. Precache size: the files listed in the generated service worker.
const sw = fs.readFileSync(path.join(site, 'sw.js'), 'utf8');
// The hashed files' URLs start with a placeholder the server replaces (tools/build-sw.mjs).
const urls = [...sw.matchAll(/url:"(?:__IOT_ASSETS_URL__)?([^"]+)"/g)].map((m) => m[1]);
const precache = urls.reduce((n, u) => n + fs.statSync(path.join(site, u.replace(/^\//, ''))).size, 0);

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`| figure | value |`);
console.log(`|---|---|`);
console.log(`| cold load to first values (new profile, median of 5; runs ${coldValues.join(', ')} ms) | ${median(coldValues)} ms |`);
console.log(`| cold load to live (WASM loaded and hydrated, WebSocket open; runs ${coldLive.join(', ')} ms) | ${median(coldLive)} ms |`);
console.log(`| network bytes of that cold load | ${kb(median(coldBytes))} |`);
console.log(`| offline cold reload to first values (median of 5; runs ${reloads.join(', ')} ms) | ${median(reloads)} ms |`);
console.log(`| network bytes on reconnect after 100 missed readings | ${kb(reconnectBytes)} |`);
console.log(`| network bytes reloading that page instead (no cache) | ${kb(reloadBytes)} |`);
console.log(`| precache: ${urls.length} files | ${kb(precache)} |`);
