import { expect, test } from './fixtures';
import { newDevice, publish } from './mqtt';

test('a new device appears and its values change live, without a reload', async ({ page }) => {
  await page.goto('/');
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
  // Survives only if the page is never reloaded.
  await page.evaluate(() => ((window as unknown as { marker: string }).marker = 'same page'));

  const device = newDevice('E2E_LIVE');
  publish(device, { temperature: 19.5, humidity: 50, battery: 4.01 });
  const temperature = page.locator(`[data-device="${device}"] [data-metric="temperature"] .value`);
  await expect(temperature).toHaveText('19.5');

  publish(device, { temperature: 23.4, humidity: 48, battery: 4.0 });
  await expect(temperature).toHaveText('23.4');
  await expect(page.locator(`[data-device="${device}"]`)).toHaveAttribute('data-health', 'online');

  expect(await page.evaluate(() => (window as unknown as { marker?: string }).marker)).toBe('same page');
});

test('what came while the page was away shows once the catch-up works, though its first requests failed', async ({ page, context }) => {
  await page.goto('/');
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
  const [seen, missed] = [newDevice('E2E_SEEN'), newDevice('E2E_MISSED')];
  const temperature = (device: string) => page.locator(`[data-device="${device}"] [data-metric="temperature"] .value`);
  publish(seen, { temperature: 10.5, humidity: 50, battery: 4.0 });
  await expect(temperature(seen)).toHaveText('10.5');

  // Away: a device the page has not seen reports meanwhile.
  await context.setOffline(true);
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'reconnecting');
  publish(missed, { temperature: 21.5, humidity: 50, battery: 4.0 });

  // Back, the socket opens again, but asking for what was missed fails for a while (a node
  // going away behind the load balancer), and live readings arrive meanwhile.
  let failed = 0;
  await context.route('**/api/changes**', (route) => {
    failed += 1;
    return route.abort();
  });
  await context.setOffline(false);
  await expect.poll(() => failed).toBeGreaterThan(0);
  publish(seen, { temperature: 11.5, humidity: 50, battery: 4.0 });
  await expect.poll(() => failed).toBeGreaterThan(1);
  await context.unroute('**/api/changes**');

  // Nothing was skipped: the missed device shows, and the live reading too.
  await expect(temperature(missed)).toHaveText('21.5', { timeout: 20_000 });
  await expect(temperature(seen)).toHaveText('11.5');
});
