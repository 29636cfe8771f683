import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from './fixtures';
import { publish, publishOnce } from './mqtt';

// `make run` as a newcomer uses it: scripts/run.sh (the server, its embedded broker and three
// simulated devices), then "set up sign-in" through the setup link its banner prints. The
// simulated devices have keys of their own, so the dashboard keeps moving once sign-in is
// required; a device that has none is shown refused, with why, and the log does not fill up.

const root = path.resolve(__dirname, '..', '..');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

interface Demo {
  base: string;
  mqttPort: number;
  /** Everything run.sh, the server and the simulator printed so far. */
  output(): string;
  stop(): void;
}

async function startDemo(): Promise<Demo> {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'iot-demo-'));
  const [web, mqttPort] = [await freePort(), await freePort()];
  let output = '';
  const run: ChildProcess = spawn(path.join(root, 'scripts', 'run.sh'), [path.join(root, 'target', 'debug')], {
    cwd: root,
    env: {
      ...process.env,
      IOT_WEB_LISTEN: `127.0.0.1:${web}`,
      IOT_MQTT_LISTEN: `127.0.0.1:${mqttPort}`,
      IOT_STORAGE_PATH: path.join(data, 'telemetry.redb'),
      IOT_SITE_ROOT: path.join(root, 'target', 'site'),
      RUST_LOG: 'info,rmqtt=warn,rmqtt_net=warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  run.stdout!.on('data', (d) => (output += d));
  run.stderr!.on('data', (d) => (output += d));
  const stop = () => {
    // run.sh stops the server and the simulator when it is told to.
    try {
      process.kill(-run.pid!, 'SIGTERM');
    } catch { /* gone */ }
    fs.rmSync(data, { recursive: true, force: true });
  };
  for (let i = 0; i < 200; i++) {
    if (/Dashboard: http/.test(output)) return { base: `http://127.0.0.1:${web}`, mqttPort, output: () => output, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  stop();
  throw new Error(`run.sh did not start:\n${output}`);
}

let demo: Demo;
test.beforeAll(async () => {
  demo = await startDemo();
});
test.afterAll(() => demo?.stop());

test('setting up sign-in keeps the simulated devices going and shows a device without a key as refused', async ({ page }) => {
  test.setTimeout(120_000);
  // A device of the user's own, registered while the dashboard is open (no key).
  const stranger = `E2E_NOKEY_${test.info().project.name}`;
  publish(stranger, { temperature: 20 }, new Date(), { port: demo.mqttPort });

  // The banner holds the one-time setup link.
  const link = demo.output().match(/(http:\/\/\S+\/setup\?token=[0-9a-f]+)/)?.[1];
  expect(link, demo.output()).toBeTruthy();
  await page.goto(link!);
  await page.getByLabel('User name').fill('ann');
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Create admin and sign in' }).click();
  await expect(page.locator('.account-name')).toHaveText('ann');

  // Signed in now: the overview is live and the simulated devices keep changing for 30 s.
  await page.goto(`${demo.base}/`);
  const values = async () =>
    page.locator('.device-card[data-device^="ESP32_SIM_"] .metric[data-metric="temperature"] .value').allTextContents();
  await expect(page.locator('.device-card[data-device^="ESP32_SIM_"]')).toHaveCount(3);
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
  const seen = new Set([(await values()).join('|')]);
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    await page.waitForTimeout(3_000);
    seen.add((await values()).join('|'));
    for (const card of await page.locator('.device-card[data-device^="ESP32_SIM_"]').all()) {
      await expect(card).toHaveAttribute('data-health', 'online');
    }
  }
  expect(seen.size, 'the simulated devices kept publishing after sign-in').toBeGreaterThanOrEqual(5);

  // The device without a key: refused with the reason, shown within 2 s of its one attempt
  // (timed from before it connects, so the CONNACK refusing it is inside the 2 s), logged
  // sparingly.
  const before = demo.output().length;
  const card = page.locator(`.device-card[data-device="${stranger}"]`);
  const tried = Date.now();
  const attempt = publishOnce(stranger, { temperature: 21 }, { port: demo.mqttPort, key: 'none' });
  await expect(card).toHaveAttribute('data-health', 'refused', { timeout: 2_000 });
  const shownAfter = Date.now() - tried;
  const refused = await attempt;
  expect(refused.status, 'the broker refused the wrong key').not.toBe(0);
  expect(refused.output).toMatch(/not authori[sz]ed|bad user name or password|refused/i);
  expect(shownAfter, 'ms from the attempt to the card showing it').toBeLessThanOrEqual(2_000);
  await expect(card.locator('.refused-note')).toContainText('Refused since');
  await expect(card.locator('.refused-note')).toContainText('wrong key');
  await expect(card.locator('.refused-note')).toContainText(', once');
  // Anonymously (as it did while the dashboard was open): refused for not signing in, 20 times.
  for (let i = 0; i < 20; i++) {
    const { status } = await publishOnce(stranger, { temperature: 22 }, { port: demo.mqttPort, clientId: stranger });
    expect(status).not.toBe(0);
  }
  await expect(card.locator('.refused-note')).toContainText('not signed in (issue a key), 21 times');
  await expect(card).toHaveAttribute('data-health', 'refused');
  // Its own page says the same.
  await page.goto(`${demo.base}/device/${stranger}`);
  const note = page.locator('.refused-note');
  await expect(note).toContainText(/Refused since \d\d:\d\d(:\d\d)? — not signed in \(issue a key\), 21 times/);
  await expect(note).toHaveAttribute('data-reason', 'not_signed_in');

  // An id the server never registered, refused at CONNECT: listed for the admin under Refused
  // connections, and never made a device.
  const unknown = `E2E_NEVER_${test.info().project.name}_${Date.now().toString(36)}`;
  for (let i = 0; i < 2; i++) {
    const { status } = await publishOnce(unknown, { temperature: 1 }, { port: demo.mqttPort, clientId: unknown });
    expect(status).not.toBe(0);
  }
  await page.goto(`${demo.base}/admin`);
  const row = page.locator(`.refused-ids tr[data-id="${unknown}"]`);
  await expect(row).toBeVisible();
  await expect(row.locator('td').nth(1)).toHaveText('not signed in (issue a key)');
  await expect(row.locator('td').nth(2)).toHaveText('2');
  await expect(row.locator('td').nth(4)).toHaveText(/^127\.0\.0\.1:\d+$/);
  await page.goto(`${demo.base}/`);
  await expect(page.locator('.device-card[data-device^="ESP32_SIM_"]')).toHaveCount(3);
  await expect(page.locator(`.device-card[data-device="${unknown}"]`)).toHaveCount(0);
  const devices = await (await page.request.get(`${demo.base}/api/devices`)).text();
  expect(devices).not.toContain(unknown);
  const lines = demo.output().slice(before).split('\n').filter((l) => l.includes(stranger));
  expect(lines.length, lines.join('\n')).toBeLessThanOrEqual(4);
});
