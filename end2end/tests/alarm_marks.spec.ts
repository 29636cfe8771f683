import { APIRequestContext, Locator, Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { newDevice, publish } from './mqtt';

// Alarms drawn where the data is: a chart shades the time each alarm on its series was active
// (its severity's colour, from when it fired to when it cleared, or on to the end while it is
// active) and draws the levels of the threshold rules watching it; a gauge marks those levels
// on its dial. Without JavaScript the server's SVG carries them (svg .alarm-band, .guide); once
// live the interactive chart places them as elements over and under its canvas
// (.chart-marks .alarm-band, .chart-guide). Positions are checked from the elements' data and
// coordinates, a few pixels either way.

const hydrated = () => test.info().project.name === 'hydrated';

interface Alarm {
  id: string;
  rule_name: string;
  active: boolean;
  started_at: number;
  cleared_at: number | null;
}

async function rule(request: APIRequestContext, data: object) {
  const res = await request.post('/api/alarm_rules', { data });
  expect(res.status(), await res.text()).toBe(201);
}

async function alarms(request: APIRequestContext, device: string): Promise<Alarm[]> {
  const res = await request.get(`/api/alarms?status=all&device=${device}`);
  expect(res.ok()).toBe(true);
  return res.json();
}

/**
 * A device with two rules: `hot` (temperature over 27 warning, over 30 critical, clears at 26)
 * fired, cleared, and fired again (two alarms, the second active), and `damp` (humidity over 80)
 * active. Readings over the last two minutes.
 */
async function alarmedDevice(request: APIRequestContext, prefix: string) {
  const device = newDevice(prefix);
  const quick = { for_secs: 0, clear_for_secs: 0, flap_window_secs: 0 };
  await rule(request, {
    name: `hot ${device}`, devices: [device], kind: 'threshold', metric: 'temperature', op: '>',
    levels: [{ severity: 'critical', value: 30 }, { severity: 'warning', value: 27 }], clear: 26, ...quick,
  });
  await rule(request, {
    name: `damp ${device}`, devices: [device], kind: 'threshold', metric: 'humidity', op: '>',
    levels: [{ severity: 'minor', value: 80 }], ...quick,
  });
  const t0 = Date.now();
  publish(device, { temperature: 25, humidity: 50 }, new Date(t0 - 120_000));
  publish(device, { temperature: 31, humidity: 50 }, new Date(t0 - 90_000));
  publish(device, { temperature: 25, humidity: 50 }, new Date(t0 - 60_000));
  publish(device, { temperature: 32, humidity: 90 }, new Date(t0 - 30_000));
  const all = await alarms(request, device);
  const hot = all.filter((a) => a.rule_name.startsWith('hot')).sort((a, b) => a.started_at - b.started_at);
  const damp = all.filter((a) => a.rule_name.startsWith('damp'));
  expect(hot.map((a) => a.active)).toEqual([false, true]);
  expect(damp.map((a) => a.active)).toEqual([true]);
  return { device, cleared: hot[0], active: hot[1], damp: damp[0] };
}

/** Where a time falls across a plot `[left, left + width]` spanning `[from, to]`. */
function xOf(t: number, from: number, to: number, left: number, width: number): number {
  return left + ((Math.max(from, Math.min(to, t)) - from) / (to - from)) * width;
}

/**
 * Checks the bands of `alarms` in a chart (server SVG or interactive), each where its alarm's
 * time falls, the cleared one ending where it cleared and the active one reaching the end;
 * `absent` alarms are not drawn.
 */
async function expectBands(chart: Locator, shown: Alarm[], absent: Alarm[]) {
  for (const a of absent) await expect(chart.locator(`.alarm-band[data-alarm="${a.id}"]`)).toHaveCount(0);
  for (const a of shown) {
    const band = chart.locator(`.alarm-band[data-alarm="${a.id}"]`);
    await expect(band).toHaveCount(1);
    await expect(band).toHaveAttribute('data-from', String(a.started_at));
    if (a.cleared_at === null) await expect(band).not.toHaveAttribute('data-to', /./);
    else await expect(band).toHaveAttribute('data-to', String(a.cleared_at));
  }
  if (!hydrated()) {
    // The SVG: x and width in its view box; the plot from 56 to the width less 12.
    const svg = chart.locator('svg.chart');
    const from = Number(await svg.getAttribute('data-from'));
    const to = Number(await svg.getAttribute('data-to'));
    const plotRight = Number((await svg.getAttribute('viewBox'))!.split(' ')[2]) - 12;
    for (const a of shown) {
      const band = svg.locator(`.alarm-band[data-alarm="${a.id}"]`);
      const x = Number(await band.getAttribute('x'));
      const end = x + Number(await band.getAttribute('width'));
      expect(Math.abs(x - xOf(a.started_at, from, to, 56, plotRight - 56))).toBeLessThan(3);
      const right = a.cleared_at === null ? plotRight : xOf(a.cleared_at, from, to, 56, plotRight - 56);
      expect(Math.abs(end - right)).toBeLessThan(3);
    }
  } else {
    // The interactive chart: left and width in pixels across the layer under the plot, which
    // says the time it spans.
    const layer = chart.locator('.chart-marks.bands');
    const from = Number(await layer.getAttribute('data-from'));
    const to = Number(await layer.getAttribute('data-to'));
    const width = await layer.evaluate((el) => el.clientWidth);
    for (const a of shown) {
      const box = await chart
        .locator(`.chart-marks .alarm-band[data-alarm="${a.id}"]`)
        .evaluate((el) => [parseFloat((el as HTMLElement).style.left), parseFloat((el as HTMLElement).style.width)]);
      expect(Math.abs(box[0] - xOf(a.started_at, from, to, 0, width))).toBeLessThan(3);
      const right = a.cleared_at === null ? width : xOf(a.cleared_at, from, to, 0, width);
      expect(Math.abs(box[0] + box[1] - right)).toBeLessThan(3);
    }
  }
}

/** The guide lines in a chart: (kind, value), top to bottom. */
async function guides(chart: Locator): Promise<string[]> {
  if (!hydrated()) {
    return chart.locator('svg.chart .guide').evaluateAll((gs) =>
      gs
        .map((g) => ({ at: Number(g.querySelector('line')!.getAttribute('y1')), key: `${g.getAttribute('data-guide')} ${g.getAttribute('data-value')}` }))
        .sort((a, b) => a.at - b.at)
        .map((g) => g.key),
    );
  }
  return chart.locator('.chart-guide').evaluateAll((gs) =>
    gs
      .map((g) => ({ at: parseFloat((g as HTMLElement).style.top), key: `${g.getAttribute('data-guide')} ${g.getAttribute('data-value')}` }))
      .sort((a, b) => a.at - b.at)
      .map((g) => g.key),
  );
}

async function ready(page: Page, chart: Locator) {
  if (hydrated()) {
    await expect(page.locator('.live-badge')).toHaveAttribute('data-state', 'live');
    await expect(chart.locator('.uplot-host')).toBeVisible();
  } else {
    await expect(chart.locator('svg.chart')).toBeVisible();
  }
}

test("a device's charts shade its alarms on their metric and draw the rules' levels", async ({ page, request }) => {
  const { device, cleared, active, damp } = await alarmedDevice(request, 'E2E_MARKS_DEVICE');
  await page.goto(`/device/${device}?metric=temperature&range=1h`);
  const main = page.locator('.chart-box:not(.small)');
  const humidity = page.locator('.chart-box.small[data-metric="humidity"]');
  await ready(page, main);
  await ready(page, humidity);

  await expectBands(main, [cleared, active], [damp]);
  await expect(main.locator(`.alarm-band[data-alarm="${active.id}"]`)).toHaveAttribute('data-severity', 'critical');
  await expectBands(humidity, [damp], [cleared, active]);
  await expect(humidity.locator('.alarm-band')).toHaveAttribute('data-severity', 'minor');
  // The levels, top to bottom, the value axis stretched to take them in.
  await expect.poll(() => guides(main)).toEqual(['trip 30', 'trip 27', 'clear 26']);
  await expect.poll(() => guides(humidity)).toEqual(['trip 80']);
  if (!hydrated()) {
    await expect(main.locator('.guide[data-value="30"] text')).toHaveText(`hot ${device}: critical > 30`);
    return;
  }
  await expect(main.locator('.chart-guide[data-value="30"]')).toHaveText(`hot ${device}: critical > 30`);

  // Live: the active alarm's band ends as a reading clears it, and a new alarm starts one.
  publish(device, { temperature: 20, humidity: 50 });
  const now = (await alarms(request, device)).find((a) => a.id === active.id)!;
  expect(now.active).toBe(false);
  await expect(main.locator(`.alarm-band[data-alarm="${active.id}"]`)).toHaveAttribute('data-to', String(now.cleared_at));
  publish(device, { temperature: 35, humidity: 50 });
  const fresh = (await alarms(request, device)).find((a) => a.active && a.rule_name.startsWith('hot'))!;
  await expect(main.locator(`.alarm-band[data-alarm="${fresh.id}"]`)).toHaveCount(1);
  await expect(main.locator(`.alarm-band[data-alarm="${fresh.id}"]`)).toHaveAttribute('data-from', String(fresh.started_at));
});

test("a dashboard's chart shades its alarms and its gauge marks the rules' levels", async ({ page, request }) => {
  const { device, cleared, active, damp } = await alarmedDevice(request, 'E2E_MARKS_BOARD');
  const dashboard = {
    id: 'new',
    name: `marks ${device}`,
    widgets: [
      { id: 'w1', kind: 'line_chart', title: 'Temperature', devices: [device], metrics: ['temperature'] },
      { id: 'w2', kind: 'gauge', title: 'Now', devices: [device], metrics: ['temperature'], min: 0, max: 50 },
    ],
    layouts: {
      wide: [{ widget: 'w1', x: 0, y: 0, w: 8, h: 4 }, { widget: 'w2', x: 8, y: 0, w: 4, h: 4 }],
      medium: [],
      phone: [],
    },
    range: { type: 'last', secs: 3600 },
  };
  const created = await request.post('/api/dashboards/create', { data: { dashboard } });
  expect(created.status()).toBe(200);
  await page.goto(`/d/${(await created.json()).id}`);
  const chart = page.locator('.widget[data-kind="line_chart"]');
  await ready(page, chart);
  await expectBands(chart, [cleared, active], [damp]);
  await expect.poll(() => guides(chart)).toEqual(['trip 30', 'trip 27', 'clear 26']);

  // The gauge (0 to 50 over 240°, from lower left): a mark across the dial at each level.
  const gauge = page.locator('.widget[data-kind="gauge"] .gauge');
  const marks = await gauge.locator('.gauge-mark').evaluateAll((ls) =>
    ls.map((l) => [l.getAttribute('data-guide'), l.getAttribute('data-value'), l.getAttribute('x1'), l.getAttribute('y1')]),
  );
  expect(marks.map(([kind, value]) => `${kind} ${value}`)).toEqual(['trip 30', 'trip 27', 'clear 26']);
  for (const [, value, x1, y1] of marks) {
    const deg = ((210 - (Number(value) / 50) * 240) * Math.PI) / 180;
    expect(Math.abs(Number(x1) - (100 + 69 * Math.cos(deg)))).toBeLessThan(0.5);
    expect(Math.abs(Number(y1) - (100 - 69 * Math.sin(deg)))).toBeLessThan(0.5);
  }
});
