import { Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { newDevice, publish } from './mqtt';
import { OwnServer, signIn, startServer } from './server';

// The admin page on a server of its own where people (and so devices) must sign in. Issuing a
// key needs JavaScript (the key is shown once, on the page), hence hydrated only.
let server: OwnServer;
let base = '';

test.beforeAll(async () => {
  server = await startServer([['root', 'admin', 'admin password']]);
  base = server.base;
});

test.afterAll(() => server?.stop());

const xss = '<img src=x onerror=window.__xss=1>';

async function openAdminPage(page: Page) {
  await page.goto(`${base}/login`);
  await signIn(page, 'root', 'admin password');
  await expect(page.locator('.account-name')).toHaveText('root');
  await page.locator('.admin-link').click();
  await expect(page).toHaveURL(`${base}/admin`);
  await expect(page.getByRole('heading', { name: 'Users and device keys' })).toBeVisible();
  // The issue button is on once the page is hydrated.
  await expect(page.getByRole('button', { name: 'Issue key' })).toBeEnabled();
  await expect(page.locator('.needs-js')).toHaveCount(0);
}

/** Issues a key on the page and reads it (a new one, when it replaces `previous` shown there). */
async function issueKey(page: Page, device: string, previous?: string): Promise<string> {
  await page.getByLabel('Device id').fill(device);
  await page.getByRole('button', { name: 'Issue key' }).click();
  const issued = page.locator('.issued-key');
  await expect(issued.locator('strong code')).toHaveText(device);
  if (previous) await expect(issued.locator('.key-value')).not.toHaveValue(previous);
  return await issued.locator('.key-value').inputValue();
}

async function noScriptRan(page: Page) {
  await expect(page.locator('main img')).toHaveCount(0);
  expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
}

test('an admin adds a viewer, who signs in without the admin link and is refused its page and functions', async ({ page }) => {
  await openAdminPage(page);
  await page.getByLabel('User name').fill('vera');
  await page.locator('.add-user').getByLabel('Password').fill('viewer password');
  await page.getByLabel('Role').selectOption('viewer');
  await page.getByRole('button', { name: 'Add user' }).click();
  await expect(page.locator('.add-user + .done')).toHaveText('User added: they can sign in now.');
  await expect(page.locator('tr[data-user="vera"] .user-role')).toHaveText('viewer');

  // Admins do not remove or demote themselves, and root is the only admin anyway.
  const me = page.locator('tr[data-user="root"]');
  await me.getByRole('button', { name: 'Remove' }).click();
  await expect(me).toBeVisible(); // the confirm box is not ticked: the browser does not submit
  await me.getByLabel('Yes, remove').check();
  await me.getByRole('button', { name: 'Remove' }).click();
  await expect(page.locator('.users table + .error, .users .error')).toContainText('you cannot remove yourself');
  await me.getByRole('button', { name: 'Make viewer' }).click();
  await expect(page.locator('.users .error')).toContainText('change your own role');
  await expect(me.locator('.user-role')).toHaveText('admin');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await signIn(page, 'vera', 'viewer password');
  await expect(page.locator('.account-role')).toHaveText('viewer');
  await expect(page.locator('.admin-link')).toHaveCount(0);
  const refused = await page.goto(`${base}/admin`);
  expect(refused?.status()).toBe(403);
  await expect(page.locator('body')).toContainText('Only admins can manage users and device keys');
  expect((await page.request.get(`${base}/api/admin/users`)).status()).toBe(403);
  expect((await page.request.get(`${base}/api/admin/device_keys`)).status()).toBe(403);
  for (const [fn, form] of [
    ['users/add', { name: 'mallory', password: 'long enough', role: 'admin' }],
    ['users/role', { name: 'vera', role: 'admin' }],
    ['users/remove', { name: 'root', confirm: 'yes' }],
    ['device_keys/issue', { device: 'DEV_X' }],
    ['device_keys/revoke', { device: 'DEV_X', confirm: 'yes' }],
  ] as const) {
    const res = await page.request.post(`${base}/api/admin/${fn}`, { form, headers: { Origin: base } });
    expect(res.status(), fn).toBe(403);
  }
  // Nothing changed: vera is still a viewer, and no mallory.
  await page.goto(`${base}/`);
  await expect(page.locator('.account-role')).toHaveText('viewer');
  const mallory = await fetch(`${base}/api/whoami`, { headers: { Authorization: `Basic ${btoa('mallory:long enough')}` } });
  expect(mallory.status).toBe(401);
});

test('a key issued on the page lets its device publish, a new one replaces it, revoking ends it', async ({ page }) => {
  const device = newDevice('E2E_KEY');
  await openAdminPage(page);
  const key = await issueKey(page, device);
  expect(key).toMatch(/^[0-9a-f]{48}$/);
  await expect(page.locator('.issued-key')).toContainText('shown only this once');
  await expect(page.locator('.issued-key .mqtt-settings')).toContainText(`app/device/${device}/telemetry`);
  await expect(page.locator('.issued-key .note')).toHaveCount(0);
  await expect(page.locator(`.key-list li[data-device="${device}"]`)).toBeVisible();

  expect(() => publish(device, { temperature: 20 }, new Date(), { port: server.mqttPort })).toThrow(/not authori[sz]ed/i);
  publish(device, { temperature: 21 }, new Date(), { port: server.mqttPort, key });
  const stored = await (await page.request.get(`${base}/api/device?id=${device}`)).json();
  expect(stored.device.message_count).toBe(1);

  const second = await issueKey(page, device, key);
  expect(second).toMatch(/^[0-9a-f]{48}$/);
  await expect(page.locator('.issued-key .note')).toHaveText("This replaced the device's previous key, which no longer works.");
  expect(() => publish(device, { temperature: 22 }, new Date(), { port: server.mqttPort, key })).toThrow(/bad user name or password/);
  publish(device, { temperature: 23 }, new Date(), { port: server.mqttPort, key: second });

  const row = page.locator(`.key-list li[data-device="${device}"]`);
  await row.getByRole('button', { name: 'Revoke' }).click();
  await expect(row).toBeVisible(); // not confirmed: nothing happens
  await row.getByLabel('Yes, revoke').check();
  await row.getByRole('button', { name: 'Revoke' }).click();
  await expect(page.locator('.device-keys .done')).toHaveText('Key revoked: the device can no longer connect.');
  await expect(row).toHaveCount(0);
  expect(() => publish(device, { temperature: 24 }, new Date(), { port: server.mqttPort, key: second })).toThrow(/bad user name or password/);
  await page.reload();
  await expect(page.locator('.issued-key')).toHaveCount(0); // the key is never shown again
});

test('markup in user names and device ids is refused or shown as text, and never runs', async ({ page }) => {
  page.on('dialog', (d) => {
    throw new Error(`a dialog opened: ${d.message()}`);
  });
  await openAdminPage(page);
  await page.getByLabel('User name').fill(xss);
  await page.locator('.add-user').getByLabel('Password').fill('long enough');
  await page.getByRole('button', { name: 'Add user' }).click();
  await expect(page.locator('.add-user + .error')).toHaveText('user names are 1 to 64 of A-Z a-z 0-9 _ . -');
  await expect(page.locator('.admin-table')).toContainText('root');
  await expect(page.locator('.admin-table')).not.toContainText('<img');
  await expect(page.getByLabel('User name')).toHaveValue(xss);

  await page.getByLabel('Device id').fill(xss);
  await page.getByRole('button', { name: 'Issue key' }).click();
  await expect(page.locator('.device-keys > .error')).toHaveText('device ids are 1 to 64 of A-Z a-z 0-9 _ . -');
  await noScriptRan(page);

  // As hostile as a valid device id gets: dots (a ".." path segment), dashes, underscores, 64 long.
  const hostile = `..${'-_.'.repeat(20)}.-`;
  expect(hostile).toHaveLength(64);
  const key = await issueKey(page, hostile);
  await expect(page.locator('.issued-key .mqtt-settings')).toContainText(`app/device/${hostile}/telemetry`);
  await expect(page.locator(`.key-list li[data-device="${hostile}"] code`)).toHaveText(hostile);
  publish(hostile, { temperature: 20 }, new Date(), { port: server.mqttPort, key });

  // The page's only query parameter names an error; anything else in it says nothing.
  await page.goto(`${base}/admin?error=${encodeURIComponent('<script>window.__xss=1</script>')}`);
  await expect(page.getByRole('heading', { name: 'Users and device keys' })).toBeVisible();
  await expect(page.locator('.admin-page > .error')).toHaveCount(0);
  await noScriptRan(page);
  await page.goto(`${base}/admin?error=last_admin`);
  await expect(page.locator('.admin-page > .error')).toHaveText('this is the last admin: make another user admin first');
});
