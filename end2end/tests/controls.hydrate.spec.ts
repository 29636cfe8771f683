import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Locator, Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { OwnServer, signInAt, simulatorBinary, startServer, suffix } from './server';

// Dashboard controls on a server of their own where people and devices sign in, driving a
// simulated device (target/debug/simulator: set_relay switches its relay, reported as the
// metric `relay`; desired interval_s is applied and reported). Never optimistic: a switch says
// "Pending…" until the device confirms, then "Confirmed"; with a device that never answers, it
// shows why and the device's actual state again. Viewers see the state, disabled. Hydrated
// only: controls act from the page's script and follow the live feed.
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

/** Runs the simulator's one device with `flags`, signed in with its key (replacing any run). */
async function runDevice(keys: string, prefix: string, flags: string[]) {
  if (simulator) {
    const old = simulator;
    const gone = new Promise((r) => old.once('exit', r));
    old.kill();
    await gone;
  }
  simulator = spawn(simulatorBinary, ['--port', String(server.mqttPort), '--keys', keys, '-n', '1', '--prefix', prefix, '--interval', '1', ...flags], { stdio: 'ignore' });
}

/** A dashboard with a number (1 to 60 s, queueing while the device is offline) and a select
 * (Fast 1 s, Slow 30 s) on the device's desired interval_s, and a button sending identify. */
async function createBoard(page: Page, device: string): Promise<string> {
  const number = {
    id: 'interval', kind: 'number', title: 'Interval', devices: [device], min: 1, max: 60, unit: 's',
    control: { binding: { to: 'desired', key: 'interval_s' }, step: 1, queue_offline: true },
  };
  const button = { id: 'blink', kind: 'button', title: 'Blink', devices: [device], control: { binding: { to: 'command', method: 'identify' } } };
  const select = {
    id: 'pace', kind: 'select', title: 'Pace', devices: [device],
    control: { binding: { to: 'desired', key: 'interval_s' }, options: [{ label: 'Fast', value: 1 }, { label: 'Slow', value: 30 }] },
  };
  const place = (widget: string, x: number) => ({ widget, x, y: 0, w: 3, h: 2 });
  const res = await page.request.post(`${base}/api/dashboards/create`, {
    data: { dashboard: { id: 'x', name: `Pump ${device}`, widgets: [number, select, button], layouts: { wide: [place('interval', 0), place('pace', 3), place('blink', 6)], medium: [], phone: [] }, range: { type: 'last', secs: 86400 } } },
    headers: { Origin: base },
  });
  expect(res.status()).toBe(200);
  return (await res.json()).id;
}

async function openBoard(page: Page, id: string) {
  await page.goto(`${base}/d/${id}`);
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
}

/** The switch's status line and its button. */
function parts(widget: Locator) {
  return { control: widget.locator('.control'), status: widget.locator('.control-status'), button: widget.getByRole('switch') };
}

test('a switch waits for the device, is confirmed, and shows the error and reverts when the device never answers', async ({ page, browser }) => {
  await signInAt(page, base, 'root', 'admin password');
  const prefix = `ctl${suffix()}`;
  const device = `${prefix}01`;
  const issued = await page.request.post(`${base}/api/admin/device_keys/issue`, { form: { device }, headers: { Origin: base } });
  expect(issued.status()).toBe(200);
  const keys = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'iot-ctl-')), 'keys');
  fs.writeFileSync(keys, `${device} ${(await issued.json()).key}\n`);
  // Answers and reports come 1.5 s late, so the pending state can be seen.
  await runDevice(keys, prefix, ['--command-latency-ms', '1500']);
  const id = await createBoard(page, device);
  await expect(async () => {
    await openBoard(page, id);
    // The select does not queue: enabled once the device is there.
    await expect(page.locator('.widget[data-kind="select"] select')).toBeEnabled({ timeout: 1000 });
  }).toPass({ timeout: 20_000 });

  // A switch added and configured in the editor: set_relay {"on": …}, its state the metric relay.
  await page.getByRole('button', { name: 'Edit' }).click();
  await page.click('.palette [data-kind="switch"]');
  const dialog = page.locator('.dialog');
  await dialog.locator('input[name="title"]').fill('Pump relay');
  await dialog.locator(`label.choice:has-text("${device}") input`).check();
  await dialog.locator('input[name="method"]').fill('set_relay');
  await dialog.locator('input[name="params_key"]').fill('on');
  await dialog.locator('input[name="state_metric"]').fill('relay');
  await dialog.locator('input[name="timeout_secs"]').fill('3');
  await expect(dialog.getByRole('alert')).toHaveCount(0);
  await dialog.getByRole('button', { name: 'Save' }).click();
  await expect(page.locator('.save-state')).toHaveText('Saved');
  await page.getByRole('button', { name: 'Done' }).click();

  const widget = page.locator('.widget[data-kind="switch"]');
  const { control, status, button } = parts(widget);
  await expect(button).toHaveAccessibleName('Pump relay');
  await expect(button).toContainText('Unknown');
  await expect(button).toBeEnabled();
  // No reload from here on: every change below comes from the action's answer or the feed.
  await page.evaluate(() => { (window as unknown as { __same: number }).__same = 1; });

  await button.click();
  await expect(status).toContainText('Pending…');
  await expect(control).toHaveAttribute('aria-busy', 'true');
  await expect(button).toBeDisabled();
  await expect(button).toHaveAttribute('title', 'Waiting for the device to confirm');
  await expect(status).toHaveText('Confirmed', { timeout: 10_000 });
  await expect(control).toHaveAttribute('aria-busy', 'false');
  await expect(button).toHaveAttribute('aria-checked', 'true');
  await expect(button).toContainText('On');

  await button.click();
  await expect(status).toContainText('Pending…');
  await expect(status).toHaveText('Confirmed', { timeout: 10_000 });
  await expect(button).toHaveAttribute('aria-checked', 'false');
  await expect(button).toContainText('Off');

  // The desired interval: pending until the device reports it, then confirmed.
  const number = page.locator('.widget[data-kind="number"]');
  await number.locator('input[type="number"]').fill('2');
  await number.getByRole('button', { name: 'Set' }).click();
  await expect(number.locator('.control-status')).toContainText('Pending…');
  await expect(number.locator('.control-status')).toHaveText('Confirmed', { timeout: 10_000 });
  await expect(number.locator('.control-now')).toHaveText('Device: 2 s');
  // A select on the same key shows no option for 2 s; choosing Slow waits for the device too,
  // and the number follows the device's report.
  const pace = page.locator('.widget[data-kind="select"]');
  await expect(pace.locator('select')).toHaveValue('');
  await pace.locator('select').selectOption({ label: 'Slow' });
  await expect(pace.locator('.control-status')).toContainText('Pending…');
  await expect(pace.locator('select')).toHaveValue('');
  await expect(pace.locator('.control-status')).toHaveText('Confirmed', { timeout: 10_000 });
  await expect(pace.locator('select')).toHaveValue('1');
  await expect(number.locator('.control-now')).toHaveText('Device: 30 s');
  // A button: identify, pending until answered.
  const blink = page.locator('.widget[data-kind="button"]');
  await blink.getByRole('button', { name: 'identify' }).click();
  await expect(blink.locator('.control-status')).toContainText('Pending…');
  await expect(blink.locator('.control-status')).toHaveText('Confirmed', { timeout: 10_000 });

  // The same device, now never answering: the command times out after 3 s, the switch says so
  // and shows the relay as the device has it (off) again.
  await runDevice(keys, prefix, ['--command-no-answer-rate', '1']);
  await expect(button).toBeEnabled({ timeout: 20_000 });
  await button.click();
  await expect(status).toContainText('Pending…');
  await expect(button).toHaveAttribute('aria-checked', 'false');
  await expect(status).toHaveText('Timed out: no answer within 3 s', { timeout: 15_000 });
  await expect(status.locator('.control-failed')).toBeVisible();
  await expect(button).toHaveAttribute('aria-checked', 'false');
  await expect(button).toContainText('Off');
  await expect(button).toBeEnabled();
  expect(await page.evaluate(() => (window as unknown as { __same?: number }).__same)).toBe(1);

  // A viewer sees the state, disabled, and why.
  const viewer = await browser.newContext();
  const vpage = await viewer.newPage();
  await signInAt(vpage, base, 'vera', 'viewer password');
  await openBoard(vpage, id);
  const seen = vpage.locator('.widget[data-kind="switch"]').getByRole('switch');
  await expect(seen).toHaveAttribute('aria-checked', 'false');
  await expect(seen).toBeDisabled();
  await expect(seen).toHaveAttribute('title', 'Only admins can control devices');
  await expect(vpage.locator('.widget[data-kind="number"] input[type="number"]')).toHaveValue('30');
  await expect(vpage.locator('.widget[data-kind="select"] select')).toHaveValue('1');
  await expect(vpage.locator('.widget[data-kind="select"] select')).toBeDisabled();
  const refused = await vpage.request.post(`${base}/api/control/operate`, { form: { dashboard: id, widget: 'interval', value: '5' }, headers: { Origin: base } });
  expect(refused.status()).toBe(403);
  await viewer.close();

  // Offline without queueing: disabled, with the reason.
  simulator?.kill();
  await expect(button).toBeDisabled({ timeout: 20_000 });
  await expect(button).toHaveAttribute('title', `${device} is offline; this control does not queue changes`);
  // The number queues: a change waits for the device, pending.
  const box = number.locator('input[type="number"]');
  await expect(box).toBeEnabled();
  await box.fill('5');
  await number.getByRole('button', { name: 'Set' }).click();
  await expect(number.locator('.control-status')).toContainText("Pending… (waiting for the device's report)");
  await expect(number.locator('.control-now')).toHaveText('Device: 30 s');
});
