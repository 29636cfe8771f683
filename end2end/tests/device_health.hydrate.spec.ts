import { spawnSync } from 'node:child_process';
import { expect, test } from './fixtures';
import { newDevice, publish } from './mqtt';

// Issue 17: what a device says about itself (its attributes), its events and its vitals on its
// page, live.

const mqttPort = process.env.E2E_MQTT_PORT || '18837';
let sent = 0;

/** Publishes a device's attributes at QoS 1, as a device would: returns once they are stored. */
function attributes(device: string, values: Record<string, string | number | boolean>): void {
  const args = [
    '-h', '127.0.0.1', '-p', mqttPort, '-q', '1', '-i', `e2e-attr-${process.pid}-${++sent}`,
    '-t', `app/device/${device}/attributes`, '-m', JSON.stringify(values),
  ];
  const run = spawnSync('mosquitto_pub', args, { encoding: 'utf8', timeout: 10_000 });
  if (run.status !== 0) throw new Error(`mosquitto_pub failed (exit ${run.status}): ${run.stderr}`);
}

test('attributes show on the device page within a second, and a firmware change or a reboot is an event', async ({ page }) => {
  const device = newDevice('E2E_ATTR');
  publish(device, { temperature: 20, rssi: -85, battery_pct: 15, uptime_s: 7_260 });
  await page.goto(`/device/${device}`);
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
  // Its well-known metrics, read by name and banded.
  await expect(page.locator('[data-vital="signal"]')).toHaveAttribute('data-band', 'weak');
  await expect(page.locator('[data-vital="signal"] dd')).toHaveText('-85 dBm · weak');
  await expect(page.locator('[data-vital="battery"]')).toHaveAttribute('data-band', 'low');
  await expect(page.locator('[data-vital="uptime"] dd')).toHaveText('2 h 1 min');
  await expect(page.locator('.device-attributes')).toContainText('None reported yet');

  attributes(device, { fw: '1.4.1', model: 'c3', ota: true });
  const fw = page.locator('[data-attribute="fw"] .value');
  await expect(fw).toHaveText('1.4.1', { timeout: 1_000 });
  await expect(page.locator('[data-attribute="ota"] .value')).toHaveText('true', { timeout: 1_000 });
  await expect(page.locator('.device-events')).toContainText('None yet');

  attributes(device, { fw: '1.4.2', model: 'c3' });
  await expect(fw).toHaveText('1.4.2', { timeout: 1_000 });
  const firmware = page.locator('.event-list li[data-kind="firmware"]');
  await expect(firmware).toContainText('fw 1.4.1 → 1.4.2', { timeout: 1_000 });

  publish(device, { temperature: 20.5, rssi: -60, battery_pct: 80, uptime_s: 12 });
  await expect(page.locator('.event-list li[data-kind="reboot"]')).toContainText('rebooted (uptime 7260 s → 12 s)', { timeout: 1_000 });
  await expect(page.locator('.event-list li').first()).toHaveAttribute('data-kind', 'reboot');
  await expect(page.locator('[data-vital="signal"]')).toHaveAttribute('data-band', 'good');

  // As the server renders it, after a reload.
  await page.reload();
  await expect(page.locator('[data-attribute="fw"] .value')).toHaveText('1.4.2');
  await expect(page.locator('.event-list li')).toHaveCount(2);
});
