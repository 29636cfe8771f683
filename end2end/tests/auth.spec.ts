import { expect, test } from './fixtures';
import { OwnServer, signIn, startServer } from './server';

// A second server of its own, with an admin and a viewer created from the command line.
let server: OwnServer;
let base = '';

test.beforeAll(async () => {
  server = await startServer([['root', 'admin', 'admin password'], ['val', 'viewer', 'viewer password']]);
  base = server.base;
});

test.afterAll(() => server?.stop());

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
