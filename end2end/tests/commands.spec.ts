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

  // A time to live and one-way: a command that may wait 1 s for the (offline) device expires.
  await section.getByLabel('Method').fill('reboot');
  await section.getByLabel('Params (JSON object)').fill('');
  await section.getByLabel('Time to live (s)').fill('1');
  await section.getByLabel('One-way (done once the device has it)').check();
  await section.getByRole('button', { name: 'Send command' }).click();
  await expect(section.locator('.command-list tbody tr')).toHaveCount(2);
  const made = (await (await page.request.get(`/api/devices/${device}/commands?limit=1`)).json()).commands[0];
  expect(made).toMatchObject({ method: 'reboot', oneway: true });
  expect(made.expires_at - made.created_at).toBe(1000);
  await expect
    .poll(async () => {
      await page.reload();
      return page.locator('.device-commands .command-list tbody tr').first().getAttribute('data-status');
    }, { timeout: 15_000 })
    .toBe('EXPIRED');
});

test('a device with more commands than one page shows older ones a page at a time', async ({ page }) => {
  const device = newDevice('E2E_CMDP');
  publish(device, { temperature: 20 });
  await expect.poll(async () => (await page.request.get(`/api/devices/${device}/commands`)).status()).toBe(200);
  const ids: string[] = [];
  for (let n = 0; n < 55; n++) {
    const made = await page.request.post(`/api/devices/${device}/commands`, { data: { method: 'identify', params: { n } } });
    expect(made.status()).toBe(202);
    ids.push((await made.json()).id);
  }
  await page.goto(`/device/${device}?range=24h`);
  const section = page.locator('.device-commands');
  const rows = section.locator('.command-list tbody tr');
  await expect(rows).toHaveCount(50);
  await expect(rows.first()).toHaveAttribute('data-command', ids[54]);
  await expect(section.getByRole('link', { name: 'Newest commands' })).toHaveCount(0);

  await section.getByRole('link', { name: 'Older commands' }).click();
  await expect(page).toHaveURL(new RegExp(`range=24h&commands_before=${ids[5]}`));
  await expect(rows).toHaveCount(5);
  await expect(rows.first()).toHaveAttribute('data-command', ids[4]);
  await expect(rows.last()).toHaveAttribute('data-command', ids[0]);
  await expect(section.getByRole('link', { name: 'Older commands' })).toHaveCount(0);

  await section.getByRole('link', { name: 'Newest commands' }).click();
  await expect(rows).toHaveCount(50);
  await expect(rows.first()).toHaveAttribute('data-command', ids[54]);
});
