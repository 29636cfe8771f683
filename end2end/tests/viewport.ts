import type { Page } from '@playwright/test';
import { expect } from './fixtures';

/** The phone widths the header must fit: small Androids, then iPhones. */
export const PHONE_WIDTHS = [360, 390];

/**
 * Fails when the page is wider than the screen (it would scroll sideways) or when anything in
 * the top bar or the banners under it sticks out of the screen, even if clipped.
 */
export async function expectFitsScreen(page: Page, what: string) {
  const found = await page.evaluate(() => {
    const width = window.innerWidth;
    const outside = [...document.querySelectorAll('.topbar, .topbar *, .banner, .banner *')]
      .filter((el) => {
        const r = el.getBoundingClientRect();
        return (r.width > 0 || r.height > 0) && (r.left < -0.5 || r.right > width + 0.5);
      })
      .map((el) => {
        const r = el.getBoundingClientRect();
        const cls = el.getAttribute('class');
        return `<${el.tagName.toLowerCase()}${cls ? ` class="${cls}"` : ''}> ${Math.round(r.left)}..${Math.round(r.right)}: ${(el.textContent ?? '').trim().slice(0, 40)}`;
      });
    return { width, scrollWidth: document.documentElement.scrollWidth, outside };
  });
  expect(found.outside, `${what}: in the header but outside the ${found.width} px screen`).toEqual([]);
  expect(found.scrollWidth, `${what}: the page is wider than the screen`).toBeLessThanOrEqual(found.width);
}
