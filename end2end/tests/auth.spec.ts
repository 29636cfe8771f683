import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from './fixtures';

// A second server of its own, with an admin and a viewer created from the command line (as an
// operator would), so signing in is required; the shared server stays open for the other specs.
const target = path.resolve(__dirname, '..', '..', 'target');
const binary = path.join(target, 'debug', 'server');
let server: ChildProcess;
let base = '';
let data = '';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

test.beforeAll(async () => {
  data = fs.mkdtempSync(path.join(os.tmpdir(), 'iot-auth-'));
  const env = { ...process.env, IOT_STORAGE_PATH: path.join(data, 't.redb') };
  for (const [name, role, password] of [['root', 'admin', 'admin password'], ['val', 'viewer', 'viewer password']]) {
    execFileSync(binary, ['user', 'add', name, '--role', role], { env: { ...env, IOT_PASSWORD: password } });
  }
  const [web, mqtt] = [await freePort(), await freePort()];
  server = spawn(binary, [], {
    env: { ...env, IOT_WEB_LISTEN: `127.0.0.1:${web}`, IOT_MQTT_LISTEN: `127.0.0.1:${mqtt}`, IOT_SITE_ROOT: path.join(target, 'site') },
    stdio: 'ignore',
  });
  base = `http://127.0.0.1:${web}`;
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the second server did not start');
});

test.afterAll(() => {
  server?.kill();
  fs.rmSync(data, { recursive: true, force: true });
});

async function signIn(page: import('@playwright/test').Page, name: string, password: string) {
  await page.getByLabel('User name').fill(name);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

test('strangers are sent to sign in and come back where they were going', async ({ page }) => {
  await page.goto(`${base}/d/overview?range=1h`);
  await expect(page).toHaveURL(/\/login\?next=/);
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await signIn(page, 'root', 'not the password');
  await expect(page.getByRole('alert')).toHaveText('Wrong user name or password.');
  await signIn(page, 'root', 'admin password');
  await expect(page).toHaveURL(`${base}/d/overview?range=1h`);
  await expect(page.locator('.account-name')).toHaveText('root');
  await expect(page.locator('.account-role')).toHaveText('admin');
});

test('a viewer sees the dashboards, cannot change them, and signs out', async ({ page }) => {
  await page.goto(`${base}/login`);
  await signIn(page, 'val', 'viewer password');
  await expect(page).toHaveURL(`${base}/`);
  await expect(page.locator('.account-role')).toHaveText('viewer');
  const refused = await page.request.post(`${base}/api/dashboards/delete`, {
    data: { id: 'overview' },
    headers: { Origin: base },
  });
  expect(refused.status()).toBe(403);
  await page.goto(`${base}/dashboards`);
  await expect(page.locator('body')).toContainText('Overview');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto(`${base}/dashboards`);
  await expect(page).toHaveURL(/\/login\?next=\/dashboards$/);
});
