import { expect, test } from './fixtures';
import { newDevice, publish } from './mqtt';

// Runs hydrated and with JavaScript off: the server-rendered page must carry the data.

test('the overview lists a device with its latest values and units', async ({ page }) => {
  const device = newDevice('E2E_OVERVIEW');
  publish(device, { temperature: 21.5, humidity: 40, battery: 3.91 });
  publish(device, { temperature: 22.7, humidity: 41.2, battery: 3.9 });

  await page.goto('/');
  await expect(page).toHaveTitle('IoT Dashboard');
  const card = page.locator(`[data-device="${device}"]`);
  await expect(card).toHaveAttribute('data-health', 'online');
  await expect(card.locator('[data-metric="temperature"] .value')).toHaveText('22.7');
  await expect(card.locator('[data-metric="temperature"] .unit')).toHaveText('°C');
  await expect(card.locator('[data-metric="humidity"] .value')).toHaveText('41.2');
  await expect(card.locator('[data-metric="humidity"] .unit')).toHaveText('%');
  await expect(card.locator('[data-metric="battery"] .value')).toHaveText('3.90');
  await expect(card.locator('[data-metric="battery"] .unit')).toHaveText('V');
  await expect(card.locator('time')).toContainText(/just now|s ago/);
});

test('a device page charts the history of a metric', async ({ page }) => {
  const device = newDevice('E2E_CHART');
  for (const t of [20, 21, 22]) publish(device, { temperature: t, humidity: 50 });

  await page.goto(`/device/${device}?metric=temperature&range=1h`);
  await expect(page.locator('h1')).toContainText(device);
  // The server's SVG chart, or the interactive one that replaces it once the page is live.
  const chart = page.locator('svg.chart, .uplot-host').first();
  await expect(chart).toHaveAttribute('data-readings', '3');
  if (test.info().project.name === 'ssr') {
    await expect(chart.locator('path.line')).toHaveAttribute('d', /^M/);
  } else {
    await expect(chart.locator('canvas')).toBeVisible();
  }
  await expect(page.locator('.metric-tabs a[data-metric="humidity"]')).toBeVisible();

  // Switching range is a plain link: it works with or without JavaScript.
  await page.locator('.range-tabs a[data-range="24h"]').click();
  await expect(page).toHaveURL(/range=24h/);
  await expect(page.locator('svg.chart, .uplot-host').first()).toHaveAttribute('data-readings', '3');
});

test('an unknown device says so', async ({ page }) => {
  await page.goto('/device/NO_SUCH_DEVICE');
  await expect(page.getByRole('heading', { name: 'Unknown device' })).toBeVisible();
});

test('the starter dashboard shows every device, with or without JavaScript', async ({ page }) => {
  const device = newDevice('E2E_STARTER');
  publish(device, { temperature: 18.5, humidity: 60, battery: 3.77 });
  await page.goto('/dashboards');
  await page.getByRole('link', { name: 'Overview' }).click();
  await expect(page).toHaveURL(/\/d\/overview$/);
  await expect(page.locator(`.status-list li[data-device="${device}"]`)).toContainText('3.77 V');
  await expect(page.locator(`table.readings tr[data-device="${device}"] td[data-metric="temperature"]`)).toHaveText('18.5 °C');
  await expect(page.locator('.widget[data-kind="line_chart"]').locator('svg.chart, .uplot-host canvas').first()).toBeVisible();
  // Range presets are links.
  await page.locator('.range-picker a[data-range="6h"]').click();
  await expect(page).toHaveURL(/range=6h/);
  await expect(page.locator('.range-picker a[data-range="6h"]')).toHaveClass(/active/);
});

