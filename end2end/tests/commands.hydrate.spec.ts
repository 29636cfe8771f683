import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { publish } from './mqtt';
import { OwnServer, signInAt, simulatorBinary, startServer, suffix } from './server';

// The device page's Commands section on a server of its own where people and devices sign in:
// an admin sends commands to a simulated device (target/debug/simulator, which answers
// identify and refuses unknown methods) and watches them finish live; a command to an offline
// device stays QUEUED and is canceled; a viewer sees the history without the form or buttons.
// Hydrated only: the rows change from the live feed.
let server: OwnServer;
let base = '';
let simulator: ChildProcess | undefined;

test.beforeAll(async () => {
  server = await startServer([['root', 'admin', 'admin password'], ['vera', 'viewer', 'viewer password']]);
  base = server.base;
});

test.afterAll(() => {
  simulator?.kill();
  server?.stop();
});

/** A key for `device`, issued by the signed-in admin. */
async function issueKey(page: Page, device: string): Promise<string> {
  const res = await page.request.post(`${base}/api/admin/device_keys/issue`, { form: { device }, headers: { Origin: base } });
  expect(res.status()).toBe(200);
  return (await res.json()).key;
}

/** Opens the device's page once it has reported, hydrated and live. */
async function openDevice(page: Page, device: string) {
  await expect(async () => {
    await page.goto(`${base}/device/${device}`);
    await expect(page.locator('.device-head')).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 20_000 });
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
  await expect(page.getByRole('heading', { name: 'Commands' })).toBeVisible();
}

async function send(page: Page, method: string, params = '') {
  const form = page.locator('.command-send');
  await form.getByLabel('Method').fill(method);
  await form.getByLabel('Params (JSON object)').fill(params);
  await form.getByRole('button', { name: 'Send command' }).click();
}

test('an admin sends commands to a connected device and sees them answered live', async ({ page }) => {
  await signInAt(page, base, 'root', 'admin password');
  const prefix = `cmd${suffix()}`;
  const device = `${prefix}01`;
  const keys = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'iot-cmd-')), 'keys');
  fs.writeFileSync(keys, `${device} ${await issueKey(page, device)}\n`);
  simulator = spawn(simulatorBinary, ['--port', String(server.mqttPort), '--keys', keys, '-n', '1', '--prefix', prefix, '--interval', '1'], { stdio: 'ignore' });

  await openDevice(page, device);
  await expect(page.locator('.device-commands')).toContainText('None yet');
  // No reload from here on: every change below comes from the action's answer or the feed.
  await page.evaluate(() => { (window as unknown as { __same: number }).__same = 1; });

  await send(page, 'identify', '{"secs": 2}');
  const identify = page.locator('.command-list tbody tr').first();
  await expect(identify.locator('.method')).toHaveText('identify');
  await expect(identify).toHaveAttribute('data-status', 'SUCCEEDED');
  await expect(identify.locator('.command-status')).toHaveText('SUCCEEDED');
  await expect(identify.locator('.by')).toHaveText('root');
  await expect(identify.locator('.outcome')).toHaveText('{"blinked":true}');
  await expect(identify.locator('.took')).toHaveText(/^\d+(\.\d)? m?s$/);
  await expect(identify.getByRole('button', { name: 'Cancel' })).toHaveCount(0);

  await send(page, 'self_destruct');
  const unknown = page.locator('.command-list tbody tr').first();
  await expect(unknown.locator('.method')).toHaveText('self_destruct');
  await expect(unknown).toHaveAttribute('data-status', 'REJECTED');
  await expect(unknown.locator('.outcome')).toHaveText('unknown_method: no method self_destruct');
  await expect(page.locator('.command-list tbody tr')).toHaveCount(2);

  // The server's refusals (422) in words, nothing added.
  await send(page, 'identify', '[1, 2]');
  await expect(page.locator('.command-send .error')).toHaveText('Not sent: params must be a JSON object');
  await send(page, 'no spaces allowed');
  await expect(page.locator('.command-send .error')).toContainText('Not sent: method must be 1 to 64');
  await send(page, 'identify', JSON.stringify({ blob: 'a'.repeat(1100) }));
  await expect(page.locator('.command-send .error')).toHaveText('Not sent: params are 1111 bytes; at most 1024');
  await expect(page.locator('.command-list tbody tr')).toHaveCount(2);
  expect(await page.evaluate(() => (window as unknown as { __same?: number }).__same)).toBe(1);

  // After a reload the history is the server's, newest first.
  await page.reload();
  await expect(page.locator('.command-list tbody tr[data-status]')).toHaveCount(2);
  await expect(page.locator('.command-list tbody tr').first()).toHaveAttribute('data-status', 'REJECTED');
});

test('a command to an offline device waits QUEUED and is canceled; a viewer sees the history only', async ({ page, browser }) => {
  await signInAt(page, base, 'root', 'admin password');
  const device = `off${suffix()}`;
  // It reported once and left.
  publish(device, { t: 21.5 }, new Date(), { port: server.mqttPort, key: await issueKey(page, device) });
  await openDevice(page, device);

  await send(page, 'reboot', '{"delay_s": 1}');
  const row = page.locator('.command-list tbody tr').first();
  await expect(row.locator('.method')).toHaveText('reboot');
  await expect(row).toHaveAttribute('data-status', 'QUEUED');
  await expect(row.locator('.took')).toHaveText('');
  await page.waitForTimeout(1500);
  await expect(row).toHaveAttribute('data-status', 'QUEUED');

  await row.getByRole('button', { name: 'Cancel' }).click();
  await expect(row).toHaveAttribute('data-status', 'CANCELED');
  await expect(row.locator('.outcome')).toHaveText('canceled by root');
  await expect(row.getByRole('button', { name: 'Cancel' })).toHaveCount(0);

  // A second one stays QUEUED, for the viewer to see.
  await send(page, 'identify');
  await expect(page.locator('.command-list tbody tr').first()).toHaveAttribute('data-status', 'QUEUED');

  const viewer = await browser.newContext();
  const vpage = await viewer.newPage();
  await signInAt(vpage, base, 'vera', 'viewer password');
  await openDevice(vpage, device);
  const rows = vpage.locator('.command-list tbody tr');
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(0)).toHaveAttribute('data-status', 'QUEUED');
  await expect(rows.nth(1)).toHaveAttribute('data-status', 'CANCELED');
  await expect(vpage.locator('.command-send')).toHaveCount(0);
  await expect(vpage.getByRole('button', { name: 'Cancel' })).toHaveCount(0);
  await expect(vpage.getByRole('button', { name: 'Send command' })).toHaveCount(0);

  // Another admin page whose live feed hears nothing still offers to cancel it.
  const stale = await page.context().newPage();
  await stale.routeWebSocket(/\/ws\/live/, () => { /* opened, never says anything */ });
  await openDevice(stale, device);
  const staleRow = stale.locator('.command-list tbody tr').first();
  await expect(staleRow).toHaveAttribute('data-status', 'QUEUED');

  // The admin cancels it; the viewer's page follows live.
  await page.locator('.command-list tbody tr').first().getByRole('button', { name: 'Cancel' }).click();
  await expect(rows.nth(0)).toHaveAttribute('data-status', 'CANCELED');
  // Canceled again from the page that had not heard: refused (409), and said why.
  await staleRow.getByRole('button', { name: 'Cancel' }).click();
  await expect(stale.locator('.device-commands .error')).toHaveText('Not canceled: the command is already CANCELED');
  const id = await rows.nth(0).getAttribute('data-command');
  const again = await page.request.post(`${base}/api/device_commands/cancel`, { form: { device, id: id! }, headers: { Origin: base } });
  expect(again.status()).toBe(409);
  // A viewer may not send or cancel, even by hand.
  const refused = await vpage.request.post(`${base}/api/device_commands/send`, { form: { device, method: 'identify' }, headers: { Origin: base } });
  expect(refused.status()).toBe(403);
  await viewer.close();

  // The device's 100 unfinished commands: the 101st is refused (429), said in words.
  for (let i = 0; i < 100; i++) {
    const made = await page.request.post(`${base}/api/device_commands/send`, { form: { device, method: 'identify' }, headers: { Origin: base } });
    expect(made.status()).toBe(200);
  }
  await send(page, 'identify');
  await expect(page.locator('.command-send .error')).toHaveText('Not sent: the device already has 100 unfinished commands');
  const tooMany = await page.request.post(`${base}/api/device_commands/send`, { form: { device, method: 'identify' }, headers: { Origin: base } });
  expect(tooMany.status()).toBe(429);
  await expect(page.locator('.command-list tbody tr')).toHaveCount(50);
});
