import { spawn } from 'node:child_process';
import { expect, test } from './fixtures';
import { newDevice, publish } from './mqtt';

// Issue 17: a device's connection log on its page, live: each connection with why it ended,
// one held open listed as it lasts, and the share of the last 24 h and 7 d it was connected.

const mqttPort = process.env.E2E_MQTT_PORT || '18837';

test('connections show on the device page as they begin and end, with their reasons', async ({ page }) => {
  const device = newDevice('E2E_CONN');
  // mosquitto_pub under the device's own client id: connects, publishes, says DISCONNECT.
  publish(device, { temperature: 20 }, new Date(), { clientId: device });
  await page.goto(`/device/${device}`);
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
  const rows = page.locator('.connection-list tbody tr');
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toHaveAttribute('data-reason', 'clean');
  await expect(rows.first().locator('.reason')).toHaveText('clean disconnect');
  await expect(page.locator('.availability [data-window="24 h"] .figure')).toHaveText(/^\d+(\.\d)? %$/);
  await expect(page.locator('.availability [data-window="7 d"] .figure')).toHaveText(/^\d+(\.\d)? %$/);

  // Held open (a subscriber under the device's id): listed within a second, as connected now.
  const held = spawn('mosquitto_sub', [
    '-h', '127.0.0.1', '-p', mqttPort, '-q', '1', '-i', device, '-t', `app/device/${device}/command`,
  ]);
  try {
    await expect(rows).toHaveCount(2, { timeout: 2_000 });
    await expect(rows.first()).toHaveAttribute('data-reason', 'open', { timeout: 1_000 });
    await expect(rows.first().locator('.reason')).toHaveText('connected now');
    await expect(rows.first()).toContainText('so far');
  } finally {
    // Gone without a DISCONNECT.
    held.kill('SIGKILL');
  }
  await expect(rows.first()).toHaveAttribute('data-reason', 'remote_close', { timeout: 2_000 });
  await expect(rows.first().locator('.reason')).toHaveText('closed without disconnecting');

  // As the server renders it, after a reload: newest first.
  await page.reload();
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(0)).toHaveAttribute('data-reason', 'remote_close');
  await expect(rows.nth(1)).toHaveAttribute('data-reason', 'clean');
});
