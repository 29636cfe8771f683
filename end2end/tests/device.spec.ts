import { expect, test } from './fixtures';
import { newDevice, publish } from './mqtt';

// Runs hydrated and without JavaScript: the device forms are plain forms.

test('a device gets a display name and a note, shown as plain text', async ({ page }) => {
  const device = newDevice('E2E_NAMED');
  publish(device, { temperature: 20, humidity: 50 });
  await page.goto(`/device/${device}`);
  await page.locator('input[name="name"]').fill('North greenhouse');
  await page.locator('textarea[name="note"]').fill('<img src=x onerror="window.pwned=1"> by the door');
  await page.locator('.device-meta button[type="submit"]').click();
  // Without JavaScript the form posts and the server sends the browser back to the page.
  await expect(page.locator('h1')).toContainText('North greenhouse');
  if (test.info().project.name !== 'ssr') await expect(page.locator('.device-meta .save-state')).toHaveText('Saved');

  await page.goto('/');
  await expect(page.locator(`[data-device="${device}"] h2`)).toHaveText('North greenhouse');
  await page.goto(`/device/${device}`);
  await expect(page.locator('h1')).toContainText('North greenhouse');
  await expect(page.locator('textarea[name="note"]')).toHaveValue('<img src=x onerror="window.pwned=1"> by the door');
  await expect(page.locator('.device-about img')).toHaveCount(0);
  if (test.info().project.name !== 'ssr') expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
});

test('every metric is charted, and a device is deleted with its history after confirming', async ({ page }) => {
  const device = newDevice('E2E_DELETE');
  publish(device, { temperature: 20, humidity: 50, battery: 3.9 });
  await page.goto(`/device/${device}?metric=temperature`);
  await expect(page.locator('.other-metrics figure')).toHaveCount(2);
  await expect(page.locator('.other-metrics figure[data-metric="humidity"]')).toBeVisible();

  // Without the box ticked the browser refuses to submit.
  await page.locator('.device-delete button').click();
  await expect(page).toHaveURL(new RegExp(`/device/${device}`));
  await page.locator('.device-delete input[name="confirm"]').check();
  await page.locator('.device-delete button').click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.locator(`[data-device="${device}"]`)).toHaveCount(0);
  await page.goto(`/device/${device}`);
  await expect(page.getByRole('heading', { name: 'Unknown device' })).toBeVisible();
});
