import { expect, test } from './fixtures';
import { PHONE_WIDTHS, expectFitsScreen } from './viewport';

// The phone header's longest states, which need JavaScript: offline (the banner, the badge
// saying "Reconnecting…") and a dashboard being edited (its widgets' icon buttons).

test('offline, the badge and the banner still fit a phone screen', async ({ page, context }) => {
  for (const width of PHONE_WIDTHS) {
    await page.setViewportSize({ width, height: 800 });
    await page.goto('/');
    await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
    await context.setOffline(true);
    await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'reconnecting');
    await expect(page.locator('.banner.offline')).toBeVisible();
    await expect(page.locator('.live-badge')).toBeInViewport({ ratio: 1 });
    await expectFitsScreen(page, `offline at ${width} px`);
    await context.setOffline(false);
    await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
  }
});

test('a dashboard being edited fits a phone screen, its widget tools named', async ({ page }) => {
  for (const width of PHONE_WIDTHS) {
    await page.setViewportSize({ width, height: 800 });
    await page.goto('/d/overview');
    // Edit acts from the page's script: a click before it runs does nothing.
    await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
    await page.getByRole('button', { name: 'Edit' }).click();
    const first = page.locator('.widget').first();
    for (const name of ['Move up', 'Move down', 'Configure', 'Remove']) {
      await expect(first.getByRole('button', { name })).toBeVisible();
    }
    await expect(first.locator('.lucide-settings')).toBeVisible();
    await expectFitsScreen(page, `editing at ${width} px`);
    await page.getByRole('button', { name: 'Done' }).click();
  }
});
