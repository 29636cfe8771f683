import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from '@playwright/test';

// A server of a spec's own, with users created from the command line (as an operator would),
// so signing in is required; the shared server stays open for the other specs.
const target = path.resolve(__dirname, '..', '..', 'target');
const binary = path.join(target, 'debug', 'server');
/** The simulator the specs run as devices. */
export const simulatorBinary = path.join(target, 'debug', 'simulator');

/** A short string no other run of a spec makes, for device ids and names. */
export function suffix(): string {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

export interface OwnServer {
  /** http://127.0.0.1:<port> */
  base: string;
  mqttPort: number;
  stop(): void;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts a server on free ports with a fresh database holding `users` ([name, role, password])
 * and the settings in `settings` (IOT_* variables).
 */
export async function startServer(
  users: [string, 'admin' | 'viewer', string][],
  settings: Record<string, string> = {},
): Promise<OwnServer> {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'iot-e2e-'));
  const env = { ...process.env, IOT_STORAGE_PATH: path.join(data, 't.redb') };
  for (const [name, role, password] of users) {
    execFileSync(binary, ['user', 'add', name, '--role', role], { env: { ...env, IOT_PASSWORD: password } });
  }
  const [web, mqttPort] = [await freePort(), await freePort()];
  const server: ChildProcess = spawn(binary, [], {
    env: { ...env, ...settings, IOT_WEB_LISTEN: `127.0.0.1:${web}`, IOT_MQTT_LISTEN: `127.0.0.1:${mqttPort}`, IOT_SITE_ROOT: path.join(target, 'site') },
    stdio: 'ignore',
  });
  const stop = () => {
    server.kill();
    fs.rmSync(data, { recursive: true, force: true });
  };
  const base = `http://127.0.0.1:${web}`;
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) return { base, mqttPort, stop };
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  stop();
  throw new Error('the spec\'s own server did not start');
}

/** Fills in and submits the sign-in form on the page it is on. */
export async function signIn(page: import('@playwright/test').Page, name: string, password: string) {
  const [user, secret] = [page.getByLabel('User name'), page.getByLabel('Password')];
  // What is typed into the server-rendered form before the page's script runs can be cleared
  // as the page hydrates: typed again until both hold.
  await expect(async () => {
    await user.fill(name);
    await secret.fill(password);
    await expect(user).toHaveValue(name, { timeout: 500 });
    await expect(secret).toHaveValue(password, { timeout: 500 });
  }).toPass({ timeout: 10_000 });
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Signs in on the server at `base` from its sign-in page, and waits to be shown as `name`. */
export async function signInAt(page: import('@playwright/test').Page, base: string, name: string, password: string) {
  await page.goto(`${base}/login`);
  await signIn(page, name, password);
  await expect(page.locator('.account-name')).toHaveText(name);
}
