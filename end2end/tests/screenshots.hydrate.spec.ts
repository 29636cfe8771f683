import { expect, test } from './fixtures';
import path from 'node:path';
import { newDevice, publish } from './mqtt';

// The README shows these; they are written on every run into end2end/screenshots/ (not in git).
const shots = path.resolve(__dirname, '..', 'screenshots');

test('screenshots of the main views', async ({ page, request }) => {
  test.setTimeout(60_000);
  const devices = ['Greenhouse', 'Cellar', 'Attic'].map((n) => newDevice(`SHOT_${n}`));
  const now = Date.now();
  for (const [k, device] of devices.entries()) {
    const items = [];
    for (let t = now - 6 * 3_600_000; t <= now; t += 60_000) {
      const temperature = 18 + k * 3 + 3 * Math.sin(t / 5_400_000 + k);
      items.push({ device_id: device, telemetry: { temperature, humidity: 70 - temperature, battery: 4.1 - k * 0.2 }, timestamp: new Date(t).toISOString() });
    }
    expect((await request.post('/api/telemetry', { data: items })).status()).toBe(202);
    publish(device, { temperature: 19 + k * 3, humidity: 52 - k, battery: 4.1 - k * 0.2 });
  }
  await page.setViewportSize({ width: 1280, height: 860 });
  await page.goto('/');
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
  await page.screenshot({ path: path.join(shots, 'devices.png') });

  await page.goto('/d/overview?range=6h');
  await expect(page.locator('.uplot-host canvas').first()).toBeVisible();
  await page.screenshot({ path: path.join(shots, 'dashboard.png') });

  await page.getByRole('button', { name: 'Edit' }).click();
  await page.click('.palette [data-kind="gauge"]');
  await expect(page.locator('.dialog')).toBeVisible();
  await page.screenshot({ path: path.join(shots, 'dashboard-edit.png') });
  await page.locator('.dialog').getByRole('button', { name: 'Cancel' }).click();

  await page.goto(`/device/${devices[0]}?metric=temperature&range=24h`);
  await expect(page.locator('.uplot-host canvas').first()).toBeVisible();
  await page.screenshot({ path: path.join(shots, 'device.png'), fullPage: true });

  await page.locator('.theme-toggle').click();
  await page.goto('/d/overview?range=6h');
  await expect(page.locator('.uplot-host canvas').first()).toBeVisible();
  await page.screenshot({ path: path.join(shots, 'dashboard-dark.png') });
  await page.locator('.theme-toggle').click();

  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto('/d/overview?range=6h');
  await expect(page.locator('.widget').first()).toBeVisible();
  await page.screenshot({ path: path.join(shots, 'phone.png'), fullPage: true });
});
