// Dashboard figures, in Chromium against a running server (scripts/bench-ui.sh starts one):
//  1. points sent for a 24 h chart of one reading a second, versus the chart's width
//  2. time to draw a 10k-point chart (median of 5)
//  3. applying 500 live readings/s across 50 widgets: frame times and long tasks (median of 5)
import { chromium } from '@playwright/test';
import { execFileSync } from 'node:child_process';

const base = process.env.BASE_URL;
const mqttPort = process.env.MQTT_PORT;
const simulator = process.env.SIMULATOR;
const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const post = async (path, body) => {
  const r = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r;
};

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });

// 1. A day at one reading a second.
const day = `BENCH_DAY_${Date.now().toString(36)}`;
const now = Date.now();
for (let t = now - 86_400_000 + 1000; t <= now; ) {
  const batch = [];
  for (let i = 0; i < 5000 && t <= now; i++, t += 1000) {
    batch.push({ device_id: day, telemetry: { temperature: 20 + 5 * Math.sin(t / 3.6e6) }, timestamp: new Date(t).toISOString() });
  }
  await post('/api/telemetry', batch);
}
const histories = [];
page.on('response', async (r) => {
  const url = new URL(r.url());
  if (url.pathname === '/api/history') histories.push({ maxPoints: Number(url.searchParams.get('max_points')), bytes: (await r.body()).length, buckets: (await r.json()).buckets.length });
});
await page.goto(`${base}/device/${day}?metric=temperature&range=24h`);
await page.locator('.uplot-host canvas').first().waitFor();
await page.waitForTimeout(1000);
const width = await page.locator('.uplot-host').first().evaluate((el) => el.getBoundingClientRect().width);
const last = histories.at(-1);

// 2. Drawing 10k points.
const draws = await page.evaluate(async () => {
  const n = 10_000;
  const t0 = Date.now() - n * 1000;
  const spec = { unit: '°C', decimals: null, series: [{ label: 'bench', color: '#0f9f8f' }], x: [], avg: [[]], min: [[]], max: [[]] };
  for (let i = 0; i < n; i++) {
    const v = 20 + Math.sin(i / 300) * 5 + Math.random();
    spec.x.push(t0 + i * 1000); spec.avg[0].push(v); spec.min[0].push(v - 0.5); spec.max[0].push(v + 0.5);
  }
  const json = JSON.stringify(spec);
  const host = document.createElement('div');
  host.style.cssText = 'position:fixed;left:0;top:0;width:1200px;height:400px';
  document.body.appendChild(host);
  // Creation to the end of the first draw (uPlot draws in a microtask after creation).
  const times = [];
  for (let k = 0; k < 5; k++) {
    const data = JSON.parse(json);
    const start = performance.now();
    let drawn = 0;
    const plot = new window.uPlot(
      {
        width: 1200, height: 400, ms: 1, scales: { x: { time: true } },
        series: [{}, { stroke: '#0f9f8f', width: 2 }, { stroke: 'transparent' }, { stroke: 'transparent' }],
        bands: [{ series: [3, 2], fill: '#0f9f8f29' }],
        hooks: { draw: [() => (drawn = performance.now())] },
      },
      [data.x, data.avg[0], data.min[0], data.max[0]],
      host,
    );
    await new Promise((r) => setTimeout(r, 0));
    times.push(drawn - start);
    plot.destroy();
  }
  host.remove();
  return times;
});

// 3. 50 widgets, 500 readings a second.
const prefix = `BENCHUI${Date.now().toString(36)}_`;
execFileSync(simulator, ['--port', mqttPort, '--total', '50', '--connections', '50', '--prefix', prefix], { stdio: 'ignore' });
const ids = Array.from({ length: 50 }, (_, i) => `${prefix}${String(i + 1).padStart(3, '0')}`);
const widgets = ids.map((d, i) => ({ id: `w${i}`, kind: i % 2 ? 'gauge' : 'stat', title: d, devices: [d], metrics: ['temperature'] }));
const place = (cols, w) => widgets.map((wd, i) => ({ widget: wd.id, x: (i * w) % cols, y: Math.floor((i * w) / cols) * 2, w, h: 2 }));
await post('/api/dashboards/save', {
  dashboard: { id: 'bench-50', name: 'Bench 50', widgets, layouts: { wide: place(12, 2), medium: [], phone: [] }, range: { type: 'last', secs: 3600 } },
});
await page.goto(`${base}/d/bench-50`);
await page.locator('.live-badge[data-state="live"]').waitFor();
await page.waitForTimeout(2000);
const runs = [];
for (let run = 0; run < 5; run++) {
  await page.evaluate(() => {
    window.__bench = { frames: [], long: 0, longCount: 0, stop: false, updates: 0 };
    new MutationObserver((m) => (window.__bench.updates += m.length)).observe(document.querySelector('.board-grid'), {
      subtree: true, characterData: true, childList: true,
    });
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) { window.__bench.long += e.duration; window.__bench.longCount++; }
    }).observe({ type: 'longtask' });
    let prev = performance.now();
    const tick = (t) => { window.__bench.frames.push(t - prev); prev = t; if (!window.__bench.stop) requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
  });
  execFileSync(simulator, ['--port', mqttPort, '--total', '2500', '--rate', '500', '--connections', '50', '--prefix', prefix], { stdio: 'ignore' });
  const r = await page.evaluate(() => {
    window.__bench.stop = true;
    const f = [...window.__bench.frames].sort((a, b) => a - b);
    return { frames: f.length, p95: f[Math.floor(f.length * 0.95)], max: f.at(-1), long: window.__bench.long, longCount: window.__bench.longCount, updates: window.__bench.updates };
  });
  runs.push(r);
}
await browser.close();

const ms = (v) => `${v.toFixed(1)} ms`;
console.log('| figure | value |');
console.log('|---|---|');
console.log(`| 24 h at 1 reading/s (${(86_400).toLocaleString()} readings): buckets sent / max asked / chart width | ${last.buckets} / ${last.maxPoints} / ${Math.round(width)} px (${(last.bytes / 1024).toFixed(0)} KiB JSON) |`);
console.log(`| draw a 10k-point chart (uPlot mount, median of 5; ${draws.map((d) => d.toFixed(1)).join(', ')}) | ${ms(median(draws))} |`);
console.log(`| 500 readings/s into 50 widgets for 5 s: frame interval p95 (median of 5 runs) | ${ms(median(runs.map((r) => r.p95)))} |`);
console.log(`| same: worst frame (median of 5 runs) | ${ms(median(runs.map((r) => r.max)))} |`);
console.log(`| same: long tasks per run (median count, total) | ${median(runs.map((r) => r.longCount))}, ${ms(median(runs.map((r) => r.long)))} |`);
console.log(`| same: DOM updates applied per run (median; proves the readings arrived) | ${median(runs.map((r) => r.updates))} |`);
