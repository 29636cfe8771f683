import { expect, test } from './fixtures';
import { newDevice } from './mqtt';

// A zone with DST, away from UTC, so local-time mistakes show.
test.use({ timezoneId: 'America/New_York' });

test('a day at one reading a second: at most ~2 points per pixel, local-time tooltip, drag to zoom', async ({ page, request }) => {
  test.setTimeout(120_000);
  const device = newDevice('E2E_DAY');
  const now = Date.now();
  const start = now - 86_400_000 + 1_000;
  let sent = 0;
  for (let t = start; t <= now; ) {
    const batch = [];
    for (let i = 0; i < 2000 && t <= now; i++, t += 1000) {
      batch.push({ device_id: device, telemetry: { temperature: 20 + 5 * Math.sin(t / 3_600_000) }, timestamp: new Date(t).toISOString() });
    }
    const response = await request.post('/api/telemetry', { data: batch });
    expect(response.status()).toBe(202);
    sent += batch.length;
  }
  expect(sent).toBeGreaterThan(86_000);

  const histories: { maxPoints: number; buckets: number; readings: number }[] = [];
  page.on('response', async (r) => {
    const url = new URL(r.url());
    if (!url.pathname.startsWith('/api/history')) return;
    // A response still arriving when the test ends has no body to read any more.
    const body = await r.json().catch(() => null);
    if (!body) return;
    histories.push({
      maxPoints: Number(url.searchParams.get('max_points')),
      buckets: body.buckets.length,
      readings: body.buckets.reduce((n: number, b: { count: number }) => n + b.count, 0),
    });
  });
  await page.goto(`/device/${device}?metric=temperature&range=24h`);
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
  const host = page.locator('.uplot-host');
  await expect(host.locator('canvas')).toBeVisible();
  // The chart refetches once it has measured its width: wait until it shows that answer.
  await expect.poll(() => histories.length).toBeGreaterThan(0);
  await expect.poll(async () => Number(await host.getAttribute('data-points'))).toBe(histories.at(-1)!.buckets);
  await expect(host.locator('canvas')).toBeVisible();
  const width = await host.evaluate((el) => el.getBoundingClientRect().width);
  // The chart refetched for its measured width; every answer fits its pixels.
  await expect.poll(() => histories.length).toBeGreaterThan(0);
  for (const h of histories) {
    expect(h.maxPoints).toBeLessThanOrEqual(2 * width);
    expect(h.buckets).toBeLessThanOrEqual(h.maxPoints);
  }
  expect(Number(await host.getAttribute('data-points'))).toBeLessThanOrEqual(2 * width);
  expect(histories.at(-1)!.readings).toBeGreaterThan(85_000);

  // The tooltip gives the reading's time in the browser's zone (New York here).
  const over = host.locator('.u-over');
  await expect(over).toBeVisible();
  const box = (await over.boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
  const tip = host.locator('.chart-tooltip');
  await expect(tip).toBeVisible();
  const iso = await tip.locator('time').getAttribute('datetime');
  const instant = new Date(iso!);
  expect(instant.getTime()).toBeGreaterThan(start - 3_600_000);
  expect(instant.getTime()).toBeLessThan(now + 60_000);
  await expect(tip.locator('time')).toHaveText(instant.toLocaleString('en-US', { timeZone: 'America/New_York' }));
  await expect(tip).toContainText(/°C/);

  // Drag across a part of the chart: it zooms into that range with finer data.
  await page.mouse.move(box.x + box.width * 0.4, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.45, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await expect(page.getByRole('button', { name: 'Reset zoom' })).toBeVisible();
  await expect.poll(() => histories.some((h) => h.readings > 0 && h.readings < 10_000)).toBe(true);
  await page.getByRole('button', { name: 'Reset zoom' }).click();
  await expect(page.getByRole('button', { name: 'Reset zoom' })).toBeHidden();
});
