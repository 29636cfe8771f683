import { APIRequestContext, Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { newDevice, publish } from './mqtt';

// Alarms live: the header's badge counts a new alarm within a second of it firing,
// acknowledging in one tab updates another, the rule editor (with its backtest), channels and
// deliveries work, and the alarm list still renders for a browser without JavaScript. On the
// shared open server: anyone may act, as "open".

/** A threshold rule on one device, firing at the first reading over 30 (REST, as a script would). */
async function hotRule(request: APIRequestContext, device: string, name: string): Promise<string> {
  const res = await request.post('/api/alarm_rules', {
    data: {
      name, devices: [device], kind: 'threshold', metric: 'temperature', op: '>',
      levels: [{ severity: 'critical', value: 30 }], clear: 28, for_secs: 0,
    },
  });
  expect(res.status(), await res.text()).toBe(201);
  return (await res.json()).id;
}

async function activeAlarm(request: APIRequestContext, device: string): Promise<{ id: string; started_at: number }> {
  const res = await request.get(`/api/alarms?status=active&device=${device}`);
  expect(res.ok()).toBe(true);
  const list = await res.json();
  expect(list).toHaveLength(1);
  return list[0];
}

async function badgeCount(page: Page): Promise<number> {
  return Number(await page.locator('.alarm-badge').getAttribute('data-count'));
}

async function live(page: Page) {
  await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
}

test('the header badge counts a new alarm within a second of it firing', async ({ page, request }) => {
  const device = newDevice('E2E_ALARM_BADGE');
  await hotRule(request, device, `badge ${device}`);
  publish(device, { temperature: 25 });

  await page.goto('/');
  await live(page);
  const before = await badgeCount(page);
  const badge = page.locator('.alarm-badge');
  await expect(badge).toHaveAttribute('href', '/alarms?status=active_unack');

  // QoS 1: the PUBACK comes once the reading, and the alarm it opened, are committed.
  publish(device, { temperature: 31.5 });
  const fired = Date.now();
  await expect(badge).toHaveAttribute('data-count', String(before + 1), { timeout: 1_000 });
  expect(Date.now() - fired).toBeLessThan(1_000);
  const alarm = await activeAlarm(request, device);
  expect(Date.now() - alarm.started_at).toBeLessThan(5_000);
  await expect(badge.locator('.count')).toHaveText(String(before + 1));
  await expect(badge).toHaveAccessibleName(/need/);

  // The server renders the same count (no JavaScript needed, nothing to wait for).
  await page.reload();
  await expect(badge).toHaveAttribute('data-count', String(before + 1));
  await badge.click();
  await expect(page).toHaveURL(/\/alarms\?status=active_unack$/);
  await expect(page.locator(`tr[data-alarm="${alarm.id}"]`)).toHaveAttribute('data-status', 'ACTIVE_UNACK');
});

test('acknowledging in one tab updates another open tab live', async ({ page, context, request }) => {
  const device = newDevice('E2E_ALARM_TABS');
  await hotRule(request, device, `tabs ${device}`);
  publish(device, { temperature: 33 });
  const alarm = await activeAlarm(request, device);

  const other = await context.newPage();
  await other.goto(`/alarms/${alarm.id}`);
  await live(other);
  await expect(other.locator('.alarm-head')).toHaveAttribute('data-status', 'ACTIVE_UNACK');
  const otherBadge = await badgeCount(other);

  await page.goto(`/alarms?status=active_unack&device=${device}`);
  await live(page);
  const row = page.locator(`tr[data-alarm="${alarm.id}"]`);
  await row.getByRole('checkbox').check();
  await page.getByRole('button', { name: 'Acknowledge' }).click();
  await expect(page.locator('.bulk-result')).toContainText('Done for 1 alarm.');
  await expect(row).toHaveCount(0);

  // The other tab was not touched: the live feed brings the change.
  await expect(other.locator('.alarm-head')).toHaveAttribute('data-status', 'ACTIVE_ACK');
  await expect(other.locator('.alarm-timeline li[data-kind="acked"]')).toContainText('by open');
  await expect(other.locator('.alarm-badge')).toHaveAttribute('data-count', String(otherBadge - 1));
  await expect(other.getByRole('button', { name: 'Acknowledge' })).toHaveCount(0);

  // And back: a new breach on the device shows in this tab's list without a reload.
  await page.goto(`/alarms?status=active&device=${device}`);
  await live(page);
  await expect(row).toHaveAttribute('data-status', 'ACTIVE_ACK');
  await other.getByRole('button', { name: 'Clear' }).click();
  await expect(other.locator('.alarm-head')).toHaveAttribute('data-status', 'CLEARED_ACK');
  await expect(row).toHaveCount(0);
  // The condition still holds: the next reading opens a new alarm (level-triggered).
  publish(device, { temperature: 34 });
  await expect(page.locator('tr[data-alarm]')).toHaveCount(1);
  await expect(page.locator('tr[data-alarm]')).toHaveAttribute('data-status', 'ACTIVE_UNACK');
  await other.close();
});

test('an alarm page shows the chart with its levels, shelves, comments and clears', async ({ page, request }) => {
  const device = newDevice('E2E_ALARM_PAGE');
  await hotRule(request, device, `page ${device}`);
  for (const t of [26, 29, 31.2]) publish(device, { temperature: t });
  const alarm = await activeAlarm(request, device);

  await page.goto(`/alarms/${alarm.id}`);
  await live(page);
  await expect(page.locator('h1')).toHaveText(`page ${device} on ${device}`);
  await expect(page.locator('.alarm-facts')).toContainText('temperature > 30 (critical)');
  await expect(page.locator('.alarm-facts a[href^="/device/"]')).toHaveAttribute('href', `/device/${device}`);
  // The chart: the readings around the alarm, interactive once live.
  await expect(page.locator('.alarm-chart .uplot-host')).toHaveAttribute('data-readings', '3');
  await expect(page.locator('.alarm-chart canvas').first()).toBeVisible();
  await expect(page.locator('.alarm-timeline li[data-kind="fired"]')).toContainText('at 31.2');

  await page.getByLabel('Shelve for').selectOption('8');
  await page.getByRole('button', { name: 'Shelve', exact: true }).click();
  await expect(page.locator('.alarm-summary .alarm-flag.shelved')).toContainText('shelved until');
  await expect(page.locator('.alarm-timeline li[data-kind="shelved"]')).toBeVisible();
  await page.getByRole('button', { name: 'Unshelve' }).click();
  await expect(page.locator('.alarm-summary .alarm-flag.shelved')).toHaveCount(0);

  const note = 'Fan checked <b>ok</b>';
  await page.getByLabel('Add a comment').fill(note);
  await page.getByRole('button', { name: 'Comment' }).click();
  await expect(page.locator('.comments .comment-text')).toHaveText(note);
  await expect(page.locator('.comments b')).toHaveCount(0);
  await expect(page.getByLabel('Add a comment')).toHaveValue('');

  await page.getByRole('button', { name: 'Clear' }).click();
  await expect(page.locator('.alarm-head')).toHaveAttribute('data-status', 'CLEARED_UNACK');
  await expect(page.locator('.alarm-timeline li[data-kind="cleared"]')).toContainText('Cleared by hand');
  await page.getByRole('button', { name: 'Acknowledge' }).click();
  await expect(page.locator('.alarm-head')).toHaveAttribute('data-status', 'CLEARED_ACK');
  await expect(page.locator('.alarm-actions form')).toHaveCount(0);
});

test('rules, their backtest, channels and deliveries are managed on the rules page', async ({ page, request }) => {
  const device = newDevice('E2E_ALARM_RULES');
  // History for the backtest: a breach and its recovery.
  for (const t of [25, 31, 32, 27]) publish(device, { temperature: t });
  const name = `rule ${device}`;

  await page.goto('/alarms/rules');
  await live(page);
  const editor = page.locator('.rule-editor');
  await expect(editor.getByRole('heading', { level: 2 })).toHaveText('New rule');
  // Once live, only the kind's fields show.
  await expect(editor.locator('.quiet-fields')).toBeHidden();
  await editor.getByLabel('Name').fill(name);
  await editor.getByRole('textbox', { name: /^Devices/ }).fill(device);
  await editor.getByRole('textbox', { name: /^Metric/ }).fill('temperature');
  await editor.getByLabel('Level 1 value').fill('30');
  await editor.getByLabel('Clear level (empty').fill('28');
  await editor.getByLabel('For (pending)').fill('0');

  // What it would have done, before it is saved.
  await editor.getByRole('button', { name: 'Try it on the last 24 h' }).click();
  const answer = editor.locator('.backtest-result, .backtest-error');
  await expect(answer).toBeVisible();
  await expect(editor.locator('.backtest-result .opened')).toHaveText('1 alarm');
  await expect(editor.locator('.backtest-result .episodes tbody tr')).toHaveCount(1);
  await editor.getByRole('button', { name: 'Try it on the last 7 d' }).click();
  await expect(editor.locator('.backtest-result .opened')).toHaveText('1 alarm');
  // A broken form says why, on the page.
  await editor.getByLabel('Level 1 value').fill('thirty');
  await editor.getByRole('button', { name: 'Try it on the last 24 h' }).click();
  await expect(editor.locator('.backtest-error')).toContainText('level 1');
  await editor.getByLabel('Level 1 value').fill('30');

  await editor.getByRole('button', { name: 'Create rule' }).click();
  await expect(page.locator('.rule-editor .done')).toHaveText(`Rule “${name}” saved.`);
  const row = page.locator('.rule-list tr', { hasText: name });
  await expect(row.locator('.rule-what')).toHaveText('temperature > 30 (critical), clears at 28');
  await expect(row.locator('.rule-channels')).toHaveText('in the app only');

  // A webhook channel: its secret is shown once.
  const channels = page.locator('.channels');
  await channels.getByLabel('Name').fill(`hook ${device}`);
  await channels.getByLabel('URL').fill('http://127.0.0.1:9/hook');
  await channels.getByRole('button', { name: 'Add channel' }).click();
  await expect(channels.locator('.secret-value')).toHaveValue(/^whsec_/);
  const channel = channels.locator('.channel-list tr', { hasText: `hook ${device}` });
  await expect(channel.locator('.channel-target')).toHaveText('http://127.0.0.1:9/hook');
  await channel.getByRole('button', { name: 'Send a test' }).click();
  await expect(channels.locator('.done')).toContainText('Test sent');
  await expect(page.locator('.delivery-list tr', { hasText: 'A test notification' }).first()).toBeVisible();

  // Route the rule to it.
  await row.getByRole('link', { name: 'Edit' }).click();
  await expect(editor.getByRole('heading', { level: 2 })).toHaveText(`Edit rule “${name}”`);
  await expect(editor.getByLabel('For (pending)')).toHaveValue('');
  await editor.getByLabel(`hook ${device}`).check();
  await editor.getByRole('button', { name: 'Save rule' }).click();
  await expect(row.locator('.rule-channels')).toHaveText(`hook ${device}`);

  // Delete the rule, then the channel.
  await row.getByLabel('Yes, delete').check();
  await row.getByRole('button', { name: 'Delete' }).click();
  await expect(row).toHaveCount(0);
  await channel.getByLabel('Yes, delete').check();
  await channel.getByRole('button', { name: 'Delete' }).click();
  await expect(channel).toHaveCount(0);
  expect((await (await request.get('/api/alarm_rules')).json()).some((r: { name: string }) => r.name === name)).toBe(false);
});

test("a dashboard's alarm list widget shows its devices' active alarms as they fire", async ({ page, request }) => {
  const [mine, other] = [newDevice('E2E_ALARM_WIDGET'), newDevice('E2E_ALARM_ELSEWHERE')];
  await hotRule(request, mine, `widget ${mine}`);
  await hotRule(request, other, `widget ${other}`);
  publish(mine, { temperature: 31 });
  const dashboard = {
    id: 'new',
    name: `alarms ${mine}`,
    widgets: [{ id: 'w1', kind: 'alarm_list', title: 'Alarms here', devices: [mine] }],
    layouts: { wide: [{ widget: 'w1', x: 0, y: 0, w: 4, h: 4 }], medium: [], phone: [] },
    range: { type: 'last', secs: 3600 },
  };
  const created = await request.post('/api/dashboards/create', { data: { dashboard } });
  expect(created.status()).toBe(200);
  await page.goto(`/d/${(await created.json()).id}`);
  await live(page);
  const widget = page.locator('.widget[data-kind="alarm_list"]');
  await expect(widget.locator('li')).toHaveCount(1);
  await expect(widget.locator('li a')).toHaveText(`widget ${mine} on ${mine}`);
  // Another device's alarm stays out; this one's, once a reading clears it, goes.
  publish(other, { temperature: 40 });
  publish(mine, { temperature: 20 });
  await expect(widget.locator('li')).toHaveCount(0);
  await expect(widget).toContainText('No active alarms.');
  publish(mine, { temperature: 32 });
  await expect(widget.locator('li')).toHaveCount(1);
  await expect(widget.locator('li .severity')).toHaveText('critical');
});

test('the alarm list renders without JavaScript', async ({ browser, request }) => {
  const device = newDevice('E2E_ALARM_NOJS');
  await hotRule(request, device, `nojs ${device}`);
  publish(device, { temperature: 35 });
  const alarm = await activeAlarm(request, device);

  const context = await browser.newContext({ javaScriptEnabled: false, baseURL: test.info().project.use.baseURL });
  const page = await context.newPage();
  await page.goto(`/alarms?status=active_unack&device=${device}`);
  const row = page.locator(`tr[data-alarm="${alarm.id}"]`);
  await expect(row).toHaveAttribute('data-status', 'ACTIVE_UNACK');
  await expect(row.locator('.severity')).toHaveText('critical');
  await expect(page.locator('.alarm-badge')).toHaveAttribute('data-state', 'alarming');
  await expect(page.locator('.live-badge')).toHaveText('Server view');
  await context.close();
});
