import { spawnSync } from 'node:child_process';
import { expect, test } from './fixtures';
import { newDevice, publish } from './mqtt';

// Runs hydrated and without JavaScript: the device page's desired-state form is a plain form, so
// a key is set, removed and refused (a change made meanwhile) without JavaScript too (on the
// shared server, which is open: anyone may change it, recorded as "open"). Hydrated, the page
// follows the device's reports live; without JavaScript it shows them on reload.

const mqttPort = process.env.E2E_MQTT_PORT || '18837';

/** Publishes the device's reported state, as a device that applied version `v` would. */
function report(device: string, v: number, state: Record<string, unknown>): void {
  const run = spawnSync('mosquitto_pub', [
    '-h', '127.0.0.1', '-p', mqttPort, '-q', '1', '-i', `e2e-rep-${process.pid}-${Date.now()}`,
    '-t', `app/device/${device}/reported`, '-m', JSON.stringify({ v, state }),
  ], { encoding: 'utf8', timeout: 10_000 });
  expect(run.status, run.stderr).toBe(0);
}

test('an admin sets a desired key; it is pending until the device reports it, then in sync', async ({ page }) => {
  const hydrated = test.info().project.name === 'hydrated';
  const device = newDevice('E2E_DES');
  publish(device, { temperature: 20 });
  await page.goto(`/device/${device}`);
  const section = page.locator('.device-desired');
  const sync = section.locator('.desired-sync');
  await expect(sync).toHaveText('Nothing desired yet, and the device has not reported');
  await expect(section.locator('.desired-v')).toHaveText('0');

  await section.getByLabel('Key').fill('interval_s');
  await section.getByLabel('Value (JSON)').fill('30');
  await section.getByRole('button', { name: 'Set', exact: true }).click();
  await expect(section.locator('.desired-v')).toHaveText('1');
  await expect(section.locator('[data-doc="desired"] [data-key="interval_s"] code')).toHaveText('30');
  await expect(section.locator('.desired-by')).toContainText('changed by open at');
  await expect(sync).toHaveText('Pending: the device has never reported (it should apply version 1)');

  // The device reports an older version: pending since the change, in words.
  report(device, 0, {});
  if (!hydrated) await page.reload();
  await expect(sync).toHaveText(/^Pending since \d\d:\d\d:\d\d( UTC)? \(the device has not reported version 1\)$/);
  await expect(sync).toHaveAttribute('data-sync', 'pending');

  // It applies version 1: in sync, with what it reported shown.
  report(device, 1, { interval_s: 30, fw: '1.2' });
  if (!hydrated) await page.reload();
  await expect(sync).toHaveText('In sync');
  await expect(sync).toHaveAttribute('data-sync', 'ok');
  await expect(section.locator('.reported-v')).toContainText('version 1, at');
  await expect(section.locator('[data-doc="reported"] [data-key="fw"] code')).toHaveText('"1.2"');

  // It says it applied version 1 but runs another value: rejected, and why.
  report(device, 1, { interval_s: 10 });
  if (!hydrated) await page.reload();
  await expect(sync).toHaveText('Rejected: the device reports interval_s = 10 (wanted 30)');

  // Bad input is refused in words.
  await section.getByLabel('Key').fill('mode');
  await section.getByLabel('Value (JSON)').fill('eco');
  await section.getByRole('button', { name: 'Set', exact: true }).click();
  await expect(section.locator('.desired-edit .error')).toContainText('Not changed: the value is not JSON');
  await expect(section.locator('.desired-v')).toHaveText('1');
});

test('an edit made against a version changed meanwhile is refused, not overwritten', async ({ page, baseURL }) => {
  const device = newDevice('E2E_DESC');
  publish(device, { temperature: 20 });
  // Hydrated, a page whose live feed hears nothing (as a page does between someone else's
  // change and the feed's news of it) still shows version 0.
  await page.routeWebSocket(/\/ws\/live/, () => { /* opened, never says anything */ });
  await page.goto(`/device/${device}`);
  const section = page.locator('.device-desired');
  await expect(section.locator('.desired-v')).toHaveText('0');

  // Someone else changes it meanwhile.
  const other = await page.request.patch(`/api/devices/${device}/desired`, {
    data: { mode: 'eco' }, headers: { Origin: baseURL!, 'If-Match': '"0"' },
  });
  expect(other.status()).toBe(200);

  await section.getByLabel('Key').fill('interval_s');
  await section.getByLabel('Value (JSON)').fill('60');
  await section.getByRole('button', { name: 'Set', exact: true }).click();
  await expect(section.locator('.desired-edit .error')).toHaveText(
    'Not changed: Changed meanwhile by someone else (the desired state is at version 1 now); reload the page to see it, then change it again',
  );
  const kept = await (await page.request.get(`/api/devices/${device}/desired`)).json();
  expect(kept).toMatchObject({ v: 1, state: { mode: 'eco' } });

  // Reloaded, the page shows the other change, and an edit against it is taken: a key removed.
  await page.goto(`/device/${device}`);
  await expect(section.locator('.desired-v')).toHaveText('1');
  await expect(section.locator('[data-doc="desired"] [data-key="mode"] code')).toHaveText('"eco"');
  await section.getByLabel('Key').fill('mode');
  await section.getByRole('button', { name: 'Remove key' }).click();
  await expect(section.locator('.desired-v')).toHaveText('2');
  await expect(section.locator('[data-doc="desired"] [data-key]')).toHaveCount(0);
  expect((await (await page.request.get(`/api/devices/${device}/desired`)).json()).state).toEqual({});
});
