import { expect, test as base } from '@playwright/test';

/**
 * Every spec's `test`: fails a test whose page hit a hydration error or an uncaught exception,
 * which would otherwise leave a dead page that some assertions still pass on.
 */
export const test = base.extend<{ pageErrors: void }>({
  pageErrors: [
    async ({ page }, use) => {
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error' && /hydration|panicked|Content Security Policy|Refused to/i.test(m.text())) errors.push(m.text().slice(0, 500));
      });
      await use();
      expect(errors, 'errors in the page').toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };
