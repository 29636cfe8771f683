import { expect, test } from './fixtures';
import { newDevice, publish } from './mqtt';

// Runs hydrated and without JavaScript: the device forms are plain forms.

test('a device gets a display name and a note, shown as plain text', async ({ page }) => {
  const device = newDevice('E2E_NAMED');
  publish(device, { temperature: 20, humidity: 50 });
  await page.goto(`/device/${device}`);
  await page.locator('input[name="name"]').fill('North greenhouse');
  await page.locator('textarea[name="note"]').fill('<img src=x onerror="window.pwned=1"> by the door');
  await page.locator('.device-meta button[type="submit"]').click();
  // Without JavaScript the form posts and the server sends the browser back to the page.
  await expect(page.locator('h1')).toContainText('North greenhouse');
  if (test.info().project.name !== 'ssr') await expect(page.locator('.device-meta .save-state')).toHaveText('Saved');

  await page.goto('/');
  await expect(page.locator(`[data-device="${device}"] h2`)).toHaveText('North greenhouse');
  await page.goto(`/device/${device}`);
  await expect(page.locator('h1')).toContainText('North greenhouse');
  await expect(page.locator('textarea[name="note"]')).toHaveValue('<img src=x onerror="window.pwned=1"> by the door');
  await expect(page.locator('.device-about img')).toHaveCount(0);
  if (test.info().project.name !== 'ssr') expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
});

test('every metric is charted, and a device is deleted with its history after confirming', async ({ page }) => {
  const device = newDevice('E2E_DELETE');
  publish(device, { temperature: 20, humidity: 50, battery: 3.9 });
  await page.goto(`/device/${device}?metric=temperature`);
  await expect(page.locator('.other-metrics figure')).toHaveCount(2);
  await expect(page.locator('.other-metrics figure[data-metric="humidity"]')).toBeVisible();

  // Without the box ticked the browser refuses to submit.
  await page.locator('.device-delete button').click();
  await expect(page).toHaveURL(new RegExp(`/device/${device}`));
  await page.locator('.device-delete input[name="confirm"]').check();
  await page.locator('.device-delete button').click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.locator(`[data-device="${device}"]`)).toHaveCount(0);
  await page.goto(`/device/${device}`);
  await expect(page.getByRole('heading', { name: 'Unknown device' })).toBeVisible();
});

test('markup in widget titles, names and notes is shown as text and never runs', async ({ page, request }) => {
  const evil = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>';
  const device = newDevice('E2E_XSS');
  publish(device, { temperature: 20 });
  // A metric name with markup is refused at the door.
  const refused = await request.post('/api/telemetry', { data: { device_id: device, telemetry: { '<b>x</b>': 1, ok: 2 } } });
  expect((await refused.json()).dropped_metrics[0].reason).toBe('bad_metric_name');
  const dashboard = {
    id: 'new',
    name: evil,
    widgets: [{ id: 'w1', kind: 'stat', title: evil, devices: [device], metrics: ['temperature'] }],
    layouts: { wide: [{ widget: 'w1', x: 0, y: 0, w: 3, h: 2 }], medium: [], phone: [] },
    range: { type: 'last', secs: 3600 },
  };
  const created = await request.post('/api/dashboards/create', { data: { dashboard } });
  expect(created.status()).toBe(200);
  const { id } = await created.json();
  page.on('dialog', (d) => {
    throw new Error(`a dialog opened: ${d.message()}`);
  });
  await page.goto(`/d/${id}`);
  await expect(page.locator('.widget-head h2')).toHaveText(evil);
  await expect(page.locator('h1')).toHaveText(evil);
  await page.goto('/dashboards');
  await expect(page.locator('.dashboard-list')).toContainText(evil);
  await expect(page.locator('main img')).toHaveCount(0);
  if (test.info().project.name !== 'ssr') expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
});
