import { expect, test } from './fixtures';
import { newDevice, publish } from './mqtt';

// Runs hydrated and without JavaScript: the fleet view is links and plain forms. Each test
// names its own devices and looks only at them (id:PREFIX*), since the server is shared.

function fleetOf(prefix: string, extra = ''): string {
  return `/fleet?q=${encodeURIComponent(`id:${prefix}* ${extra}`.trim())}`;
}

test('tags set on a device page filter the fleet, whose chips, order and links follow the address', async ({ page }) => {
  const prefix = newDevice('E2E_FLEET');
  const [a, b, c] = ['A', 'B', 'C'].map((s) => `${prefix}_${s}`);
  publish(a, { temperature: 20, rssi: -60, battery: 3.9, uptime_s: 7200 });
  publish(b, { temperature: 21, rssi: -85, battery: 3.2 });
  publish(c, { temperature: 22, rssi: -72 });

  await page.goto(`/device/${a}`);
  await page.locator('.tag-form input[name="tags"]').fill('site=greenhouse floor=2');
  await page.locator('.tag-form button[type="submit"]').click();
  await expect(page.locator('.device-tags .tag-list')).toContainText('site=greenhouse');
  await expect(page.locator('.device-tags .tag-list')).toContainText('floor=2');

  await page.goto('/');
  await page.locator('.main-nav a[href="/fleet"]').click();
  await expect(page).toHaveURL(/\/fleet$/);
  await page.goto(fleetOf(prefix));
  const rows = page.locator('table.fleet-table tbody tr');
  await expect(rows).toHaveCount(3);
  await expect(page.locator('.fleet-count')).toHaveText(/^3 (of \d+ )?devices$/);
  await expect(page.locator('.chips [data-chip="weak-signal"]')).toHaveText('1 weak signal');
  await expect(page.locator('.chips [data-chip="low-battery"]')).toHaveText('1 low battery');
  const rowA = page.locator(`tr[data-device="${a}"]`);
  await expect(rowA.locator('td.rssi')).toHaveText('-60.0 dBm');
  await expect(rowA.locator('td.uptime')).toHaveText('2 h 0 min');
  await expect(rowA.locator('td.seen time')).toHaveText(/just now|s ago/);

  // Sorting is a link: the weakest signal first, then the other way round.
  await page.locator('th[data-sort="rssi"] a').click();
  await expect(page).toHaveURL(/sort=rssi/);
  await expect(rows.first()).toHaveAttribute('data-device', b);
  await page.locator('th[data-sort="rssi"] a').click();
  await expect(page).toHaveURL(/sort=-rssi/);
  await expect(rows.first()).toHaveAttribute('data-device', a);
  await expect(page.locator('th[data-sort="rssi"]')).toHaveAttribute('aria-sort', 'descending');

  // A chip narrows the query; so does a row's tag.
  await page.locator('.chips [data-chip="weak-signal"]').click();
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toHaveAttribute('data-device', b);
  await page.goto(fleetOf(prefix));
  await rowA.locator('a.tag', { hasText: 'site=greenhouse' }).click();
  await expect(page).toHaveURL(/tag%3Asite%3Dgreenhouse/);
  await expect(rows).toHaveCount(1);
  await expect(page.locator('.fleet-search input[name="q"]')).toHaveValue(`id:${prefix}* tag:site=greenhouse`);

  // A mistake in the query says where it is.
  await page.goto(fleetOf(prefix, 'stauts:stale'));
  await expect(page.locator('.fleet-page [role="alert"]')).toContainText(`at character ${`id:${prefix}* `.length + 1}: unknown field "stauts"`);
});

test('a query typed in the form is the address: a bookmark of it gives the same rows, and its CSV link the same devices', async ({ page, request }) => {
  const prefix = newDevice('E2E_MARK');
  const ids = ['A', 'B', 'C', 'D'].map((s) => `${prefix}_${s}`);
  ids.forEach((id, i) => publish(id, { temperature: 20, rssi: -60 - 10 * i }));
  await page.goto('/fleet');
  // Weak signal (under -80 dBm): C (-80 is not) and D; sorted by signal, weakest first.
  await page.locator('.fleet-search input[name="q"]').fill(`id:${prefix}* rssi<=-80`);
  await page.locator('.fleet-search button[type="submit"]').click();
  await expect(page).toHaveURL(new RegExp(`/fleet\\?q=id(%3A|:)${prefix}`));
  const rows = page.locator('table.fleet-table tbody tr');
  await expect(rows).toHaveCount(2);
  await page.locator('th[data-sort="rssi"] a').click();
  await expect(page).toHaveURL(/sort=rssi/);
  await expect(rows.first()).toHaveAttribute('data-device', ids[3]);
  const shown = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-device')));
  expect(shown).toEqual([ids[3], ids[2]]);

  // The address is the bookmark: opened afresh, the same rows in the same order.
  const bookmark = page.url();
  await page.goto('about:blank');
  await page.goto(bookmark);
  await expect(rows).toHaveCount(2);
  expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-device')))).toEqual(shown);
  await expect(page.locator('.fleet-search input[name="q"]')).toHaveValue(`id:${prefix}* rssi<=-80`);
  await expect(page.locator('.fleet-count')).toHaveText(/^2 of \d+ devices$/);

  // The page's CSV link lists the same devices, in the same order.
  const href = await page.locator('.downloads a.list').getAttribute('href');
  expect(href).toContain('/api/fleet.csv?q=');
  const csv = await request.get(href!);
  expect(csv.status()).toBe(200);
  const lines = (await csv.text()).trim().split('\n');
  expect(lines.slice(1).map((l) => l.split(',')[0])).toEqual(shown);
  expect(lines[1].split(',')[5]).toBe('-90');
  // So does the readings link, for the few devices this query holds.
  const readings = await page.locator('.downloads a.readings').getAttribute('href');
  const export_ = await request.get(readings!);
  expect(export_.status()).toBe(200);
  expect(await export_.text()).toContain(ids[3]);
});

test('tags are added and removed in bulk, a query is saved as a group, and the list downloads as CSV', async ({ page, request }) => {
  const prefix = newDevice('E2E_BULK');
  const ids = ['A', 'B', 'C'].map((s) => `${prefix}_${s}`);
  for (const id of ids) publish(id, { temperature: 20 });
  await page.goto(fleetOf(prefix));
  const rows = page.locator('table.fleet-table tbody tr');
  await expect(rows).toHaveCount(3);

  // Ticked rows.
  await page.locator(`tr[data-device="${ids[0]}"] input[name="ids[]"]`).check();
  await page.locator(`tr[data-device="${ids[1]}"] input[name="ids[]"]`).check();
  await page.locator('.fleet-bulk input[name="add"]').fill('zone=north');
  await page.locator('.fleet-bulk button[type="submit"]').click();
  if (test.info().project.name !== 'ssr') await expect(page.locator('.bulk-result')).toHaveText('Tags changed on 2 of 2 devices.');
  await expect(page).toHaveURL(new RegExp(`q=id%3A${prefix}`));
  await expect(page.locator(`tr[data-device="${ids[0]}"] td.tags`)).toHaveText('zone=north');
  await expect(page.locator(`tr[data-device="${ids[1]}"] td.tags`)).toHaveText('zone=north');
  await expect(page.locator(`tr[data-device="${ids[2]}"] td.tags`)).toHaveText('');

  // Every device that matches, ticked or not.
  await page.locator('.fleet-bulk input[name="add"]').fill('site=barn');
  await page.locator('.fleet-bulk input[name="remove"]').fill('zone');
  await page.locator('.fleet-bulk input[name="all"]').check();
  await page.locator('.fleet-bulk button[type="submit"]').click();
  for (const id of ids) await expect(page.locator(`tr[data-device="${id}"] td.tags`)).toHaveText('site=barn');

  // The query as a group: a link to its devices.
  await page.goto(fleetOf(prefix, 'tag:site=barn'));
  const name = `Barn ${prefix}`;
  await page.locator('.group-save input[name="name"]').fill(name);
  await page.locator('.group-save button[type="submit"]').click();
  const group = page.locator('.fleet-groups a.group', { hasText: name });
  await expect(group).toBeVisible();
  await group.click();
  await expect(page).toHaveURL(/q=group%3Abarn-e2e-bulk-/);
  await expect(rows).toHaveCount(3);

  const csv = await request.get(`/api/fleet.csv?q=${encodeURIComponent(`id:${prefix}*`)}&sort=-id`);
  expect(csv.status()).toBe(200);
  const lines = (await csv.text()).trim().split('\n');
  expect(lines[0]).toBe('id,name,status,last_seen_utc,firmware,rssi,battery,uptime_s,up_24h,tags,open_alarms');
  expect(lines.slice(1).map((l) => l.split(',')[0])).toEqual([...ids].reverse());
  expect(lines[1]).toContain(',site=barn,0');
});

test('a tag set elsewhere shows in the fleet without reloading', async ({ page, request }) => {
  test.skip(test.info().project.name === 'ssr', 'live updates need JavaScript');
  const device = newDevice('E2E_LIVE_TAG');
  publish(device, { temperature: 20 });
  await page.goto(fleetOf(device));
  const row = page.locator(`tr[data-device="${device}"]`);
  await expect(row).toBeVisible();
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
  const set = await request.post('/api/device/tags', { form: { id: device, tags: 'site=remote' } });
  expect(set.status()).toBe(200);
  await expect(row.locator('td.tags')).toHaveText('site=remote');
});
