// Fleet figures against a running server (scripts/bench-fleet.sh starts one): DEVICES devices
// (temperature, rssi, battery, uptime_s; a third tagged site=greenhouse), then the time for
// /fleet's first page as the server sends it (HTML, and its JSON), plain, filtered and sorted,
// the whole list as CSV (median of RUNS, after a warm-up), and Chromium's time from navigation
// to an interactive page: hydrated, live feed open (median of 5). Prints a Markdown table.
import { chromium } from '@playwright/test';

const base = process.env.BASE_URL;
const devices = Number(process.env.DEVICES ?? 10_000);
const runs = Number(process.env.RUNS ?? 11);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const post = async (path, body, type = 'application/json') => {
  const r = await fetch(base + path, { method: 'POST', headers: { 'content-type': type }, body });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r;
};

const id = (i) => `FLEET_${String(i).padStart(5, '0')}`;
for (let start = 0; start < devices; start += 1000) {
  const batch = [];
  for (let i = start; i < Math.min(start + 1000, devices); i++) {
    batch.push({ device_id: id(i), telemetry: { temperature: 20 + (i % 10), rssi: -50 - (i % 45), battery: 3.0 + (i % 12) / 10, uptime_s: i * 60 } });
  }
  await post('/api/telemetry', JSON.stringify(batch));
}
for (let start = 0; start < devices; start += 3000) {
  const ids = [];
  for (let i = start; i < Math.min(start + 1000, devices); i++) ids.push(`ids[]=${id(i)}`);
  await post('/api/fleet/tags', `${ids.join('&')}&add=site%3Dgreenhouse`, 'application/x-www-form-urlencoded');
}

async function timed(path) {
  const times = [];
  let bytes = 0;
  for (let k = 0; k <= runs; k++) {
    const t0 = performance.now();
    const r = await fetch(base + path);
    const text = await r.text();
    if (!r.ok) throw new Error(`${path}: ${r.status} ${text.slice(0, 200)}`);
    if (k > 0) times.push(performance.now() - t0);
    bytes = text.length;
  }
  return { ms: median(times), max: Math.max(...times), bytes };
}

// The page answered is the one meant: its first 100 rows, of every device.
const first = await (await fetch(`${base}/fleet`)).text();
const shown = first.split('data-device="').length - 1;
if (shown !== 100 || !first.includes(`${devices.toLocaleString('en').replace(/,/g, '')} devices`)) {
  throw new Error(`/fleet shows ${shown} rows; expected 100 of ${devices} devices`);
}

const rows = [];
const figure = (what, t) => rows.push([`${what} (median of ${runs}, slowest ${t.max.toFixed(0)} ms; ${(t.bytes / 1024).toFixed(0)} KiB)`, `${t.ms.toFixed(0)} ms`]);
const q = encodeURIComponent('tag:site=greenhouse signal:weak');
figure(`/fleet first page (100 rows) of ${devices.toLocaleString('en')} devices: request to last byte of the server-rendered HTML`, await timed('/fleet'));
figure('same, its JSON (/api/fleet)', await timed('/api/fleet'));
figure('same, filtered (tag:site=greenhouse signal:weak) and sorted by last seen', await timed(`/fleet?q=${q}&sort=-seen`));
figure('same, sorted by battery, page 50', await timed('/fleet?sort=battery&page=50'));
figure(`the whole list as CSV (${devices.toLocaleString('en')} rows)`, await timed('/api/fleet.csv'));

const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args });
const interactive = [];
for (let k = 0; k < 5; k++) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, serviceWorkers: 'block' });
  const page = await context.newPage();
  const t0 = Date.now();
  await page.goto(`${base}/fleet`);
  await page.locator('.live-badge[data-state="live"]').waitFor();
  interactive.push(Date.now() - t0);
  await context.close();
}
await browser.close();
rows.push([`/fleet in Chromium: navigation to interactive (hydrated, live feed open; median of 5: ${interactive.join(', ')} ms)`, `${median(interactive)} ms`]);

console.log('| figure | value |');
console.log('|---|---|');
for (const [what, value] of rows) console.log(`| ${what} | ${value} |`);
