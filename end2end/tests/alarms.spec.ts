import { APIRequestContext } from '@playwright/test';
import { expect, test } from './fixtures';
import { newDevice, publish } from './mqtt';
import { OwnServer, signIn, startServer } from './server';
import { PHONE_WIDTHS, expectFitsScreen } from './viewport';

// Alarms with plain forms: every spec here runs hydrated and with JavaScript off, so the list's
// filters, bulk actions, an alarm's actions and the rules page's forms must work as plain
// GET links and POST forms. (Live updates, the backtest and webhook secrets need JavaScript:
// alarms.hydrate.spec.ts.) On the shared open server: anyone may act, as "open".

const hydrated = () => test.info().project.name === 'hydrated';

async function hotRule(request: APIRequestContext, device: string, name: string) {
  const res = await request.post('/api/alarm_rules', {
    data: {
      name, devices: [device], kind: 'threshold', metric: 'temperature', op: '>',
      levels: [{ severity: 'critical', value: 30 }, { severity: 'warning', value: 27 }], clear: 26, for_secs: 0,
    },
  });
  expect(res.status(), await res.text()).toBe(201);
}

async function alarmOf(request: APIRequestContext, device: string): Promise<string> {
  const list = await (await request.get(`/api/alarms?status=all&device=${device}`)).json();
  expect(list).toHaveLength(1);
  return list[0].id;
}

test('the list filters in its address and acts on ticked alarms', async ({ page, request }) => {
  const device = newDevice('E2E_ALARM_LIST');
  await hotRule(request, device, `list ${device}`);
  publish(device, { temperature: 28 });
  const id = await alarmOf(request, device);

  await page.goto('/');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Alarms' }).click();
  await expect(page).toHaveURL(/\/alarms$/);
  await expect(page.locator('.status-tabs a[data-status="active"]')).toHaveAttribute('aria-current', 'page');

  // Filters: a GET form, so each filtered list has an address.
  await page.getByLabel('Device', { exact: true }).fill(device);
  await page.getByLabel('Severity').selectOption('warning');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(new RegExp(`status=active&severity=warning&device=${device}`));
  const row = page.locator(`tr[data-alarm="${id}"]`);
  await expect(row).toHaveAttribute('data-severity', 'warning');
  await expect(row.locator('.value')).toHaveText('28.0');
  await page.getByLabel('Severity').selectOption('critical');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page.locator('.alarms-empty')).toHaveText('No alarms here.');
  await page.locator('.status-tabs a[data-status="active_unack"]').click();
  await expect(page).toHaveURL(new RegExp(`status=active_unack&severity=critical&device=${device}`));
  await page.getByRole('link', { name: 'Clear filters' }).click();
  await page.goto(`/alarms?status=active_unack&device=${device}`);

  // Bulk: tick, then act; a plain form comes back to the same list.
  await expect(row).toHaveAttribute('data-status', 'ACTIVE_UNACK');
  await page.getByRole('button', { name: 'Shelve 1 h' }).click();
  await expect(page.locator('.alarm-bulk .error')).toHaveText('tick the alarms to act on first');
  await row.getByRole('checkbox').check();
  await page.getByRole('button', { name: 'Shelve 1 h' }).click();
  await expect(row.locator('.alarm-flag.shelved')).toContainText('shelved until');
  await row.getByRole('checkbox').check();
  await page.getByRole('button', { name: 'Acknowledge' }).click();
  await expect(row).toHaveCount(0);
  await expect(page).toHaveURL(new RegExp(`/alarms\\?status=active_unack&device=${device}`));
  await page.locator('.status-tabs a[data-status="active"]').click();
  await expect(row).toHaveAttribute('data-status', 'ACTIVE_ACK');
});

test("an alarm's page acts with plain forms and keeps its timeline", async ({ page, request }) => {
  const device = newDevice('E2E_ALARM_ONE');
  await hotRule(request, device, `one ${device}`);
  for (const t of [25, 31]) publish(device, { temperature: t });
  const id = await alarmOf(request, device);

  await page.goto(`/alarms?status=all&device=${device}`);
  await page.locator(`tr[data-alarm="${id}"] .alarm-link`).click();
  await expect(page).toHaveURL(`/alarms/${id}`);
  const head = page.locator('.alarm-head');
  await expect(head).toHaveAttribute('data-status', 'ACTIVE_UNACK');
  await expect(page.locator('.alarm-summary .severity')).toHaveText('critical');
  // The server's chart (or the interactive one once live) with the rule's levels.
  if (!hydrated()) {
    await expect(page.locator('.alarm-chart svg.chart')).toHaveAttribute('data-readings', '2');
    await expect(page.locator('.alarm-chart svg .guide[data-guide="trip"]')).toHaveCount(2);
    await expect(page.locator('.alarm-chart svg .guide[data-guide="clear"]')).toHaveAttribute('data-value', '26');
  }

  await page.getByRole('button', { name: 'Acknowledge' }).click();
  await expect(head).toHaveAttribute('data-status', 'ACTIVE_ACK');
  await page.getByLabel('Shelve for').selectOption('24');
  await page.getByRole('button', { name: 'Shelve', exact: true }).click();
  await expect(page.locator('.alarm-facts')).toContainText('Shelved until');
  await page.getByRole('button', { name: 'Unshelve' }).click();
  await expect(page.locator('.alarm-facts')).not.toContainText('Shelved until');
  await page.getByLabel('Add a comment').fill('Door was open');
  await page.getByRole('button', { name: 'Comment' }).click();
  await expect(page.locator('.comments .comment-text')).toHaveText('Door was open');
  await page.getByRole('button', { name: 'Clear' }).click();
  await expect(head).toHaveAttribute('data-status', 'CLEARED_ACK');
  // Hydrated, the status changes with the action's answer and the timeline once the alarm's
  // log has been fetched again.
  const kinds = () => page.locator('.alarm-timeline li').evaluateAll((l) => l.map((e) => e.getAttribute('data-kind')));
  await expect.poll(kinds).toEqual(['cleared', 'unshelved', 'shelved', 'acked', 'fired']);
  await expect(page.locator('.alarm-timeline li[data-kind="acked"]')).toContainText('by open');
});

test('an alarm whose device went quiet says since when, and stays active', async ({ page, request }) => {
  const device = newDevice('E2E_ALARM_QUIET');
  await hotRule(request, device, `quiet ${device}`);
  // Its last reading (breaching) was taken 90 s ago: recent enough to be evaluated, old enough
  // that the device counts as quiet.
  const taken = new Date(Date.now() - 90_000);
  publish(device, { temperature: 33 }, taken);
  const id = await alarmOf(request, device);
  await page.goto(`/alarms/${id}`);
  await expect(page.locator('.alarm-head')).toHaveAttribute('data-status', 'ACTIVE_UNACK');
  const hhmm = (d: Date) => `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
  // UTC from the server; the browser's zone once live (the test runs in UTC either way).
  await expect(page.locator('.no-data')).toContainText(`No data since ${hhmm(taken)}`);
});

test('rules and channels are made and deleted with plain forms', async ({ page }) => {
  const device = newDevice('E2E_ALARM_FORMS');
  const name = `forms ${device}`;
  await page.goto('/alarms/rules');
  const editor = page.locator('.rule-editor');
  await editor.getByLabel('Name').fill(name);
  await editor.getByLabel('Kind').selectOption('offline');
  await editor.getByLabel('After (e.g. 5m)').fill('2m');
  await editor.getByRole('textbox', { name: /^Devices/ }).fill(device);
  await editor.getByRole('button', { name: 'Create rule' }).click();
  const row = page.locator('.rule-list tr', { hasText: name });
  await expect(row.locator('.rule-what')).toHaveText('offline or stale for 2m (major)');
  await expect(row.locator('.rule-devices')).toHaveText(device);

  // A mistake is refused with the reason.
  await editor.getByLabel('Name').fill(`${name} bad`);
  await editor.getByLabel('Kind').selectOption('threshold');
  await editor.getByRole('textbox', { name: /^Metric/ }).fill('temperature');
  await editor.getByLabel('Level 1 value').fill('hot');
  await editor.getByRole('button', { name: 'Create rule' }).click();
  await expect(page.locator('.rule-editor .error')).toContainText('level 1: "hot" is not a number');

  // An ntfy channel works as a plain form; a webhook (its secret shown once) needs JavaScript.
  const channels = page.locator('.channels');
  await channels.getByLabel('Name').fill(`phone ${device}`);
  await channels.getByLabel('Kind').selectOption('ntfy');
  await channels.getByLabel('URL').fill('https://ntfy.example/alarms');
  await channels.getByRole('button', { name: 'Add channel' }).click();
  const channel = page.locator('.channel-list tr', { hasText: `phone ${device}` });
  await expect(channel.locator('.channel-target')).toHaveText('https://ntfy.example/alarms');
  if (!hydrated()) {
    await expect(page.locator('.needs-js').first()).toBeVisible();
    await expect(page.getByRole('button', { name: 'Try it on the last 24 h' })).toBeDisabled();
    await channels.getByLabel('Name').fill(`hook ${device}`);
    await channels.getByLabel('URL').fill('http://127.0.0.1:9/hook');
    await channels.getByRole('button', { name: 'Add channel' }).click();
    await expect(page.locator('.channels .error')).toHaveText('creating a webhook needs JavaScript: its signing secret is shown once');
    await expect(page.locator('.channel-list tr', { hasText: `hook ${device}` })).toHaveCount(0);
  }

  await row.getByLabel('Yes, delete').check();
  await row.getByRole('button', { name: 'Delete' }).click();
  await expect(row).toHaveCount(0);
  await channel.getByLabel('Yes, delete').check();
  await channel.getByRole('button', { name: 'Delete' }).click();
  await expect(channel).toHaveCount(0);
});

test('the alarm pages fit a phone screen', async ({ page, request }) => {
  const device = newDevice('E2E_ALARM_PHONE');
  await hotRule(request, device, `phone ${device} with a rather long rule name`);
  publish(device, { temperature: 32 });
  const id = await alarmOf(request, device);
  for (const width of PHONE_WIDTHS) {
    await page.setViewportSize({ width, height: 800 });
    for (const path of ['/alarms', `/alarms/${id}`, '/alarms/rules']) {
      await page.goto(path);
      await expect(page.locator('.alarm-badge')).toBeInViewport({ ratio: 1 });
      await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Alarms' })).toBeInViewport({ ratio: 1 });
      await expectFitsScreen(page, `${path} at ${width} px`);
    }
  }
});

test.describe('signed in', () => {
  let server: OwnServer;

  test.beforeAll(async () => {
    server = await startServer([['ann', 'admin', 'admin password'], ['val', 'viewer', 'viewer password']]);
  });

  test.afterAll(() => server?.stop());

  test('strangers get no badge, viewers see alarms but cannot act, admins act under their name', async ({ page }) => {
    const { base } = server;
    await page.goto(`${base}/login`);
    await expect(page.locator('.alarm-badge')).toHaveCount(0);
    const stranger = await page.request.get(`${base}/api/alarm_badge`);
    expect(stranger.status()).toBe(401);

    // An alarm, made by an admin through the API with HTTP Basic.
    const device = newDevice('E2E_ALARM_ROLES');
    const auth = { Authorization: `Basic ${Buffer.from('ann:admin password').toString('base64')}` };
    const rule = await page.request.post(`${base}/api/alarm_rules`, {
      headers: auth,
      data: { name: 'roles', devices: [device], kind: 'threshold', metric: 't', op: '>', levels: [{ severity: 'major', value: 1 }] },
    });
    expect(rule.status()).toBe(201);
    const stored = await page.request.post(`${base}/api/telemetry`, { headers: auth, data: { device_id: device, telemetry: { t: 5 } } });
    expect(stored.status()).toBe(202);
    const id = (await (await page.request.get(`${base}/api/alarms?device=${device}`, { headers: auth })).json())[0].id;

    await signIn(page, 'val', 'viewer password');
    await expect(page.locator('.account-name')).toHaveText('val');
    await expect(page.locator('.alarm-badge')).toHaveAttribute('data-count', '1');
    await page.goto(`${base}/alarms`);
    await expect(page.locator(`tr[data-alarm="${id}"]`)).toBeVisible();
    await expect(page.locator('.bulk-actions')).toHaveCount(0);
    await expect(page.locator(`tr[data-alarm="${id}"] input[type="checkbox"]`)).toHaveCount(0);
    await page.goto(`${base}/alarms/${id}`);
    await expect(page.locator('.alarm-actions')).toHaveCount(0);
    await expect(page.locator('.comment-form')).toHaveCount(0);
    await page.goto(`${base}/alarms/rules`);
    await expect(page.locator('.rule-list')).toContainText('roles');
    await expect(page.locator('.rule-editor')).toHaveCount(0);
    await expect(page.getByText('Only admins change rules and channels.')).toBeVisible();
    const refused = await page.request.post(`${base}/api/alarm_act`, { form: { id, action: 'ack' }, headers: { Origin: base } });
    expect(refused.status()).toBe(403);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page).toHaveURL(/\/login$/);
    await page.goto(`${base}/login?next=/alarms/${id}`);
    await signIn(page, 'ann', 'admin password');
    await expect(page).toHaveURL(`${base}/alarms/${id}`);
    await page.getByRole('button', { name: 'Acknowledge' }).click();
    await expect(page.locator('.alarm-head')).toHaveAttribute('data-status', 'ACTIVE_ACK');
    await expect(page.locator('.alarm-facts .acked')).toContainText('by ann');
    await expect(page.locator('.alarm-badge')).toHaveAttribute('data-count', '0');
  });
});
