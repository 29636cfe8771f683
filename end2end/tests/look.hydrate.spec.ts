import { expect, test } from './fixtures';
import fs from 'node:fs';
import { newDevice, publish } from './mqtt';

test('dark mode toggles, follows into charts, and persists', async ({ page }) => {
  await page.emulateMedia({ colorScheme: 'light' });
  await page.goto('/d/overview');
  const toggle = page.locator('.theme-toggle');
  await expect(toggle).toBeVisible();
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(await background()).toBe('rgb(244, 246, 248)');
  await toggle.click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  expect(await background()).toBe('rgb(14, 20, 26)');
  await page.reload();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  expect(await background()).toBe('rgb(14, 20, 26)');
  await page.locator('.theme-toggle').click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');
  expect(await background()).toBe('rgb(244, 246, 248)');
});

test.describe('in a browser five and a half hours east of UTC', () => {
  test.use({ timezoneId: 'Asia/Kolkata' });

  test('CSV export downloads every reading of the range with UTC and local times', async ({ page }) => {
    const device = newDevice('E2E_CSV');
    const now = Date.now();
    for (let i = 0; i < 5; i++) publish(device, { temperature: 20 + i }, new Date(now - (5 - i) * 60_000));
    await page.goto(`/device/${device}?metric=temperature&range=1h`);
    await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('a.csv').click()]);
    expect(download.suggestedFilename()).toBe(`${device}-temperature.csv`);
    const rows = fs.readFileSync((await download.path())!, 'utf8').trim().split('\n');
    expect(rows[0]).toBe('time_utc,time_local,device,metric,value');
    expect(rows.slice(1).map((r) => r.split(',').slice(2).join(','))).toEqual(
      [20, 21, 22, 23, 24].map((v) => `${device},temperature,${v}`),
    );
    const [utc, local] = rows[1].split(',');
    expect(utc).toMatch(/Z$/);
    expect(local).toMatch(/\+05:30$/);
    expect(new Date(utc).getTime()).toBe(new Date(local).getTime());
  });
});
