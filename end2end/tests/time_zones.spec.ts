import type { APIRequestContext } from '@playwright/test';
import { expect, test } from './fixtures';
import { newDevice } from './mqtt';

// Runs hydrated and without JavaScript. The browser is in Berlin: once hydrated, charts in day
// buckets ask for Berlin's days and the CSV names the zone; the server alone renders UTC.
test.use({ timezoneId: 'Europe/Berlin' });

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Berlin's offset at `t`, as an ISO 8601 suffix (`+01:00`). */
function berlinOffset(t: number): string {
  const name = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', timeZoneName: 'longOffset' })
    .formatToParts(new Date(t))
    .find((p) => p.type === 'timeZoneName')!.value;
  return name === 'GMT' ? '+00:00' : name.slice(3);
}

/** Whether `t` is a midnight in Berlin. */
function berlinMidnight(t: number): boolean {
  const clock = new Date(t).toLocaleTimeString('en-GB', { timeZone: 'Europe/Berlin', hour12: false });
  return clock === '00:00:00';
}

/** A reading an hour for the last ten days. */
async function tenDays(request: APIRequestContext, device: string): Promise<number> {
  const now = Date.now();
  const items = [];
  for (let t = now - 10 * DAY; t <= now - 60_000; t += HOUR) {
    items.push({ device_id: device, telemetry: { temperature: 20 + (t / HOUR) % 5 }, timestamp: t });
  }
  const response = await request.post('/api/telemetry', { data: items });
  expect(response.status()).toBe(202);
  return items.length;
}

test("a chart in day buckets follows the browser's days once hydrated", async ({ page, request }) => {
  const device = newDevice('E2E_TZ_DAYS');
  const readings = await tenDays(request, device);
  const to = Date.now();
  // 300 days in a narrow chart: buckets of a day or two.
  const dashboard = {
    id: 'new',
    name: `days ${device}`,
    widgets: [{ id: 'w1', kind: 'line_chart', title: 'Days', devices: [device], metrics: ['temperature'] }],
    layouts: { wide: [{ widget: 'w1', x: 0, y: 0, w: 3, h: 3 }], medium: [], phone: [] },
    range: { type: 'between', from: to - 300 * DAY, to },
  };
  const created = await request.post('/api/dashboards/create', { data: { dashboard } });
  expect(created.status()).toBe(200);
  const asked: { tz: string | null; body: { zone?: string; buckets: { t: number; count: number }[] } }[] = [];
  page.on('response', async (r) => {
    const url = new URL(r.url());
    if (!url.pathname.startsWith('/api/history_between')) return;
    const body = await r.json().catch(() => null);
    if (body) asked.push({ tz: url.searchParams.get('tz'), body });
  });
  await page.goto(`/d/${(await created.json()).id}`);
  const host = page.locator('.widget[data-kind="line_chart"] .uplot-host');
  if (test.info().project.name === 'ssr') {
    // The server's chart (its SVG): every reading, in UTC buckets; no zone to ask with.
    await expect(page.locator('.widget[data-kind="line_chart"] svg.chart')).toHaveAttribute('data-readings', String(readings));
    expect(asked).toEqual([]);
    return;
  }
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
  await expect.poll(() => asked.some((a) => a.tz === 'Europe/Berlin')).toBe(true);
  const answer = asked.find((a) => a.tz === 'Europe/Berlin')!.body;
  expect(answer.zone).toBe('Europe/Berlin');
  expect(answer.buckets.length).toBeGreaterThan(4);
  for (const b of answer.buckets) expect(berlinMidnight(b.t), new Date(b.t).toISOString()).toBe(true);
  expect(answer.buckets.reduce((n, b) => n + b.count, 0)).toBe(readings);
  await expect(host).toHaveAttribute('data-readings', String(readings));
});

test("the CSV's local times are the browser's zone once hydrated, UTC without JavaScript", async ({ page, request }) => {
  const device = newDevice('E2E_TZ_CSV');
  await tenDays(request, device);
  await page.goto(`/device/${device}?metric=temperature&range=24h`);
  const link = page.locator('a.csv');
  const hydrated = test.info().project.name !== 'ssr';
  if (hydrated) {
    await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
    await expect(link).toHaveAttribute('href', /&tz=Europe%2FBerlin$/);
  } else {
    await expect(link).not.toHaveAttribute('href', /tz=|offset=/);
  }
  const csv = await (await request.get((await link.getAttribute('href'))!)).text();
  const rows = csv.trim().split('\n').slice(1).map((l) => l.split(','));
  expect(rows.length).toBeGreaterThan(20);
  for (const [utc, local] of rows) {
    const t = Date.parse(utc);
    expect(Date.parse(local)).toBe(t);
    expect(local.slice(-6)).toBe(hydrated ? berlinOffset(t) : '+00:00');
  }
});
