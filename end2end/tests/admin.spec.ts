import { expect, test } from './fixtures';
import { OwnServer, signIn, startServer } from './server';

// The admin page's user forms are plain forms: they work hydrated and without JavaScript (a
// refusal then comes back as /admin?error=<code>, which the page explains). Issuing a key is
// covered by admin.hydrate.spec.ts.
let server: OwnServer;

test.beforeAll(async () => {
  server = await startServer([['root', 'admin', 'admin password']]);
});

test.afterAll(() => server?.stop());

test('users are added, re-roled and removed with plain forms, and refusals say why', async ({ page }) => {
  const project = test.info().project.name;
  const { base } = server;
  const name = `user-${project}`;
  await page.goto(`${base}/login?next=/admin`);
  await signIn(page, 'root', 'admin password');
  await expect(page).toHaveURL(`${base}/admin`);

  await page.getByLabel('User name').fill(name);
  await page.locator('.add-user').getByLabel('Password').fill('long enough');
  await page.getByRole('button', { name: 'Add user' }).click();
  const row = page.locator(`tr[data-user="${name}"]`);
  await expect(row.locator('.user-role')).toHaveText('viewer');
  await row.getByRole('button', { name: 'Make admin' }).click();
  await expect(row.locator('.user-role')).toHaveText('admin');

  const me = page.locator('tr[data-user="root"]');
  await me.getByLabel('Yes, remove').check();
  await me.getByRole('button', { name: 'Remove' }).click();
  await expect(page.getByRole('alert')).toHaveText('you cannot remove yourself or change your own role; another admin can');
  await expect(me.locator('.user-role')).toHaveText('admin');

  await row.getByLabel('Yes, remove').check();
  await row.getByRole('button', { name: 'Remove' }).click();
  await expect(row).toHaveCount(0);
  await expect(me).toBeVisible();

  if (project === 'ssr') {
    // A key is shown once, on the page: without JavaScript the button stays off and says why.
    await expect(page.getByRole('button', { name: 'Issue key' })).toBeDisabled();
    await expect(page.getByText('Issuing a key needs JavaScript')).toBeVisible();
  }
});
