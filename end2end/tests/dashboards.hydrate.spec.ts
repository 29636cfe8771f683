import type { Locator, Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { newDevice, publish } from './mqtt';

/** A widget's grid area on the current layout: "x / span w" and "y / span h" (1-based). */
async function area(widget: Locator, breakpoint = 'w') {
  const style = (await widget.getAttribute('style')) ?? '';
  const get = (v: string) => style.match(new RegExp(`--${breakpoint}${v}:([^;]+)`))?.[1].trim();
  return { col: get('c'), row: get('r') };
}

/** Drags from the centre of `handle` by (dx, dy) pixels with the mouse (pointer events). */
async function drag(page: Page, handle: Locator, dx: number, dy: number) {
  const box = (await handle.boundingBox())!;
  const x = box.x + box.width / 2;
  const y = box.y + box.height / 2;
  await page.mouse.move(x, y);
  await page.mouse.down();
  for (let i = 1; i <= 5; i++) await page.mouse.move(x + (dx * i) / 5, y + (dy * i) / 5);
  await page.mouse.up();
}

async function newBoard(page: Page, name: string) {
  await page.goto('/dashboards');
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
  await page.fill('form.create-dashboard input[name="name"]', name);
  await page.click('form.create-dashboard button[type="submit"]');
  await expect(page).toHaveURL(/\/d\/[a-z0-9-]+-[a-z0-9]{6}\?edit=1$/);
  await expect(page.locator('.palette')).toBeVisible();
}

async function addWidget(page: Page, kind: string) {
  await page.click(`.palette [data-kind="${kind}"]`);
  await page.locator('.dialog').getByRole('button', { name: 'Save' }).click();
  await expect(page.locator('.dialog')).toBeHidden();
}

test('build a dashboard with every widget, arrange it, and find it the same after a reload', async ({ page }) => {
  const device = newDevice('E2E_DASH');
  publish(device, { temperature: 21.5, humidity: 40, battery: 3.9 });
  await newBoard(page, 'E2E board');

  // A gauge on this device's temperature, 0 to 50, amber from 30.
  await page.click('.palette [data-kind="gauge"]');
  const dialog = page.locator('.dialog');
  await dialog.locator('input[name="title"]').fill('Greenhouse temperature');
  await dialog.locator(`label.choice:has-text("${device}") input`).check();
  await dialog.locator('label.choice:has-text("temperature") input').check();
  await dialog.locator('input[name="min"]').fill('0');
  await dialog.locator('input[name="max"]').fill('50');
  await dialog.getByRole('button', { name: 'Add threshold' }).click();
  await dialog.locator('input[name="threshold-value"]').fill('30');
  await dialog.locator('input[name="threshold-value"]').press('Tab');
  await dialog.getByRole('button', { name: 'Save' }).click();
  for (const kind of ['stat', 'line_chart', 'table', 'status_list']) await addWidget(page, kind);
  await expect(page.locator('.widget')).toHaveCount(5);
  await expect(page.locator('.save-state')).toHaveText('Saved');

  const gauge = page.locator('.widget[data-kind="gauge"]');
  const stat = page.locator('.widget[data-kind="stat"]');
  await expect(gauge.locator('.gauge-value')).toHaveText('21.5');

  // Drag the gauge far right: it snaps to the last three columns; resize the stat by a cell.
  await drag(page, gauge.locator('.widget-head h2'), 2000, 0);
  await expect.poll(() => area(gauge).then((a) => a.col)).toBe('10 / span 3');
  const before = await area(stat);
  const cell = ((await page.locator('.board-grid').boundingBox())!.width + 12) / 12;
  await drag(page, stat.locator('.resize-handle'), cell, 84);
  const w = Number(before.col!.split('span')[1]) + 1;
  const h = Number(before.row!.split('span')[1]) + 1;
  await expect.poll(() => area(stat)).toEqual({
    col: before.col!.replace(/span \d+/, `span ${w}`),
    row: before.row!.replace(/span \d+/, `span ${h}`),
  });
  await expect(page.locator('.save-state')).toHaveText('Saved');
  const arranged = await Promise.all((await page.locator('.widget').all()).map((w) => area(w)));

  await page.goto(page.url().replace('?edit=1', ''));
  await expect(page.locator('.widget')).toHaveCount(5);
  expect(await Promise.all((await page.locator('.widget').all()).map((w) => area(w)))).toEqual(arranged);
  await expect(gauge.locator('.widget-head h2')).toHaveText('Greenhouse temperature');
  await expect(gauge.locator('.gauge-band')).toHaveCount(1);
  await expect(gauge.locator('.gauge-bound')).toHaveText(['0', '50']);
  await expect(page.locator(`.widget[data-kind="table"] tr[data-device="${device}"]`)).toBeVisible();
  await expect(page.locator(`.widget[data-kind="status_list"] li[data-device="${device}"]`)).toBeVisible();

  // On a phone the widgets stack in one column.
  await page.setViewportSize({ width: 360, height: 800 });
  const boxes = await Promise.all((await page.locator('.widget').all()).map((w) => w.boundingBox()));
  expect(new Set(boxes.map((b) => Math.round(b!.x))).size).toBe(1);
  expect(new Set(boxes.map((b) => Math.round(b!.width))).size).toBe(1);
});

test('widgets move and resize with the keyboard', async ({ page }) => {
  await newBoard(page, 'Keys');
  await addWidget(page, 'stat');
  const stat = page.locator('.widget[data-kind="stat"]');
  expect(await area(stat)).toEqual({ col: '1 / span 3', row: '1 / span 2' });
  await stat.focus();
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('Shift+ArrowDown');
  await page.keyboard.press('Shift+ArrowRight');
  await expect.poll(() => area(stat)).toEqual({ col: '3 / span 4', row: '1 / span 3' });
  await expect(page.locator('.save-state')).toHaveText('Saved');
  await page.reload();
  await expect.poll(() => area(stat)).toEqual({ col: '3 / span 4', row: '1 / span 3' });
});

test('on a phone, widgets stack and can be reordered', async ({ page }) => {
  await page.setViewportSize({ width: 360, height: 800 });
  await newBoard(page, 'Phone');
  await addWidget(page, 'stat');
  await addWidget(page, 'status_list');
  const first = page.locator('.widget').first();
  const order = async () => {
    const boxes = await Promise.all((await page.locator('.widget').all()).map(async (w) => ({ kind: await w.getAttribute('data-kind'), y: (await w.boundingBox())!.y })));
    return boxes.sort((a, b) => a.y - b.y).map((b) => b.kind);
  };
  await expect.poll(order).toEqual(['stat', 'status_list']);
  await page.locator('.widget[data-kind="status_list"]').getByRole('button', { name: 'Move up' }).click();
  await expect.poll(order).toEqual(['status_list', 'stat']);
  await expect(page.locator('.save-state')).toHaveText('Saved');
  await page.reload();
  await expect.poll(order).toEqual(['status_list', 'stat']);
  await expect(first).toBeVisible();
});

test('rename, duplicate and delete a dashboard', async ({ page }) => {
  await newBoard(page, 'Temporary');
  await addWidget(page, 'status_list');
  await page.locator('input.board-name').fill('Renamed board');
  await page.locator('input.board-name').press('Enter');
  await page.locator('input.board-name').blur();
  await expect(page.locator('.save-state')).toHaveText('Saved');

  await page.getByRole('button', { name: 'Duplicate' }).click();
  await expect(page).toHaveURL(/\/d\/copy-of-renamed-board-[a-z0-9]{6}$/);
  await expect(page.locator('h1')).toHaveText('Copy of Renamed board');
  await expect(page.locator('.widget')).toHaveCount(1);

  page.once('dialog', (d) => d.accept());
  await page.getByRole('button', { name: 'Edit' }).click();
  await page.getByRole('button', { name: 'Delete' }).click();
  await expect(page).toHaveURL(/\/dashboards$/);
  await expect(page.locator('.dashboard-list')).toContainText('Renamed board');
  await expect(page.locator('.dashboard-list')).not.toContainText('Copy of Renamed board');
});
