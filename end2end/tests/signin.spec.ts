import { Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { signIn } from './server';

// Markup where the sign-in pages take text: the user name field and the query parameters they
// read (`next`, `error`). It is shown as typed or refused, and never runs. Runs hydrated and
// without JavaScript, on the shared server, which has no user: every name here is refused, so
// nothing creates one.
const markup = ['<img src=x onerror=window.__xss=1>', '<script>window.__xss=1</script>'];

async function nothingRan(page: Page) {
  await expect(page.locator('main img, main script')).toHaveCount(0);
  if (test.info().project.name !== 'ssr') {
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
  }
}

test('markup typed as a user name on the sign-in page is refused and never runs', async ({ page }) => {
  for (const name of markup) {
    await page.goto('/login');
    await signIn(page, name, 'some password');
    await expect(page).toHaveURL(/\/login\?error=invalid/);
    await expect(page.getByRole('alert')).toHaveText('Wrong user name or password.');
    await nothingRan(page);
  }
});

test('markup in the sign-in page\'s query is kept as text and never runs', async ({ page }) => {
  // [next, where a failed sign-in keeps pointing]: only a printable path on this site survives.
  const cases: [string, string][] = [
    [markup[0], '/'],
    [markup[1], '/'],
    ['/"><svg/onload=window.__xss=1>', '/"><svg/onload=window.__xss=1>'],
  ];
  for (const [i, [next, kept]] of cases.entries()) {
    await page.goto(`/login?next=${encodeURIComponent(next)}&error=${encodeURIComponent(markup[0])}`);
    await expect(page.getByRole('alert')).toHaveText('Could not sign in.');
    await expect(page.locator('input[name="next"]')).toHaveValue(next);
    await nothingRan(page);
    // A failed sign-in comes back with `next`, still as text (a fresh name each time: wrong
    // passwords are throttled per name).
    await signIn(page, `nobody-${test.info().project.name}-${i}`, 'some password');
    await expect(page.getByRole('alert')).toHaveText('Wrong user name or password.');
    await expect(page.locator('input[name="next"]')).toHaveValue(kept);
    await nothingRan(page);
  }
});

test('markup typed into the setup form is refused and never runs', async ({ page }) => {
  for (const name of markup) {
    await page.goto('/setup');
    await page.getByLabel('User name').fill(name);
    await page.getByLabel('Password').fill('long enough password');
    await page.getByRole('button', { name: 'Create admin and sign in' }).click();
    // The browser refuses the name (the field's pattern) and keeps it as typed.
    await expect(page).toHaveURL(/\/setup$/);
    await expect(page.getByLabel('User name')).toHaveValue(name);
    await nothingRan(page);

    // Past the browser's check, the server refuses it too.
    const form = { token: 'e2e-setup-token', name, password: 'long enough password' };
    const res = await page.request.post('/auth/setup', { form, maxRedirects: 0 });
    expect(res.status()).toBe(303);
    expect(res.headers().location).toBe('/setup?error=name');
    await page.goto('/setup?error=name');
    await expect(page.getByRole('alert')).toHaveText('User names are 1 to 64 of A-Z a-z 0-9 _ . -');
    await nothingRan(page);
  }
  await page.goto(`/setup?error=${encodeURIComponent(markup[1])}`);
  await expect(page.getByRole('alert')).toHaveText('Could not create the user; try again.');
  await nothingRan(page);
});
