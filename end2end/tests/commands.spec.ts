import { expect, test } from './fixtures';
import { newDevice, publish } from './mqtt';

// Runs hydrated and without JavaScript: the device page's command forms are plain forms, so a
// command is sent, refused in words and canceled without JavaScript too (on the shared server,
// which is open: anyone may act, recorded as "open").

test('a command is sent to an offline device, refused in words when wrong, and canceled', async ({ page }) => {
  const device = newDevice('E2E_CMD');
  publish(device, { temperature: 20 });
  await page.goto(`/device/${device}`);
  const section = page.locator('.device-commands');
  await expect(section).toContainText('None yet');

  await section.getByLabel('Method').fill('identify');
  await section.getByLabel('Params (JSON object)').fill('{"secs": 5}');
  await section.getByRole('button', { name: 'Send command' }).click();
  const row = section.locator('.command-list tbody tr').first();
  await expect(row).toHaveAttribute('data-status', 'QUEUED');
  await expect(row.locator('.method')).toHaveText('identify');
  await expect(row.locator('.by')).toHaveText('open');

  await section.getByLabel('Method').fill('not a method');
  await section.getByRole('button', { name: 'Send command' }).click();
  await expect(section.locator('.command-send .error')).toContainText('Not sent: method must be 1 to 64');
  await expect(section.locator('.command-list tbody tr')).toHaveCount(1);

  await section.locator('.command-list tbody tr').first().getByRole('button', { name: 'Cancel' }).click();
  await expect(section.locator('.command-list tbody tr').first()).toHaveAttribute('data-status', 'CANCELED');
  await expect(section.locator('.command-list tbody tr .outcome')).toHaveText('canceled by open');
  await expect(section.getByRole('button', { name: 'Cancel' })).toHaveCount(0);
});
