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
