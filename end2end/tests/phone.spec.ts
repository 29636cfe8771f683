import { expect, test } from './fixtures';
import { newDevice, publish } from './mqtt';
import { OwnServer, signIn, startServer } from './server';
import { PHONE_WIDTHS, expectFitsScreen } from './viewport';

// At phone widths every page fits the screen: the top bar wraps and its actions show icons
// (their names stay for screen readers), so nothing is cut off or needs sideways scrolling.
// With JavaScript and without; the shared server is open ("Set up sign-in"), and a server of
// this spec's own has a signed-in admin with a long name (the fullest top bar).

const device = newDevice('E2E_PHONE');
const hydrated = () => test.info().project.name === 'hydrated';

test.beforeAll(() => {
  publish(device, { temperature: 21.5, humidity: 48.2, battery: 3.91 });
});

// (/admin is refused on an open dashboard: it is covered signed in, below.)
const openPages = ['/', '/fleet', '/dashboards', '/d/overview', `/device/${device}`, '/login', '/setup', '/account'];
// The sign-in pages stream the account corner in after the page, which needs JavaScript.
const signInPages = ['/login', '/setup'];

for (const path of openPages) {
  test(`${path.replace(device, '<device>')} fits a phone screen`, async ({ page }) => {
    for (const width of PHONE_WIDTHS) {
      await page.setViewportSize({ width, height: 800 });
      await page.goto(path);
      if (hydrated() || !signInPages.includes(path)) {
        await expect(page.locator('.setup-link')).toBeInViewport({ ratio: 1 });
        await expect(page.locator('.setup-link')).toHaveAccessibleName('Set up sign-in');
        // Icons are inline SVG in the page: drawn with or without JavaScript.
        await expect(page.locator('.setup-link .lucide-lock-open')).toBeVisible();
      }
      await expect(page.locator('.live-badge')).toBeInViewport({ ratio: 1 });
      for (const link of await page.locator('.main-nav a').all()) await expect(link).toBeInViewport({ ratio: 1 });
      if (hydrated()) await expect(page.locator('.theme-toggle')).toBeInViewport({ ratio: 1 });
      if (hydrated() && !signInPages.includes(path)) {
        await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
      }
      await expectFitsScreen(page, `${path} at ${width} px`);
    }
  });
}

test.describe('signed in as an admin', () => {
  let server: OwnServer;
  const admin = 'administrator.of.the.north.greenhouse';

  test.beforeAll(async () => {
    server = await startServer([[admin, 'admin', 'admin password']]);
  });

  test.afterAll(() => server?.stop());

  test('every page fits a phone screen, with the account corner in icons', async ({ page }) => {
    const { base } = server;
    await page.setViewportSize({ width: PHONE_WIDTHS[0], height: 800 });
    await page.goto(`${base}/login`);
    await signIn(page, admin, 'admin password');
    await expect(page).toHaveURL(`${base}/`);
    for (const width of PHONE_WIDTHS) {
      await page.setViewportSize({ width, height: 800 });
      for (const path of ['/', '/fleet', '/dashboards', '/d/overview', '/admin', '/account']) {
        await page.goto(`${base}${path}`);
        const signOut = page.getByRole('button', { name: 'Sign out' });
        await expect(signOut).toBeInViewport({ ratio: 1 });
        await expect(page.getByRole('link', { name: 'Users & keys' })).toBeInViewport({ ratio: 1 });
        await expect(page.locator('.account')).toBeInViewport({ ratio: 1 });
        await expect(page.locator('.live-badge')).toBeInViewport({ ratio: 1 });
        await expectFitsScreen(page, `${path} signed in at ${width} px`);
      }
    }
    // On a wide screen the labels show again.
    await page.setViewportSize({ width: 1280, height: 800 });
    await expect(page.locator('.sign-out .label')).toBeVisible();
    await expect(page.locator('.sign-out .label')).toHaveText('Sign out');
  });
});
