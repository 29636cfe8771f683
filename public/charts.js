// Interactive charts in the browser, on uPlot (fast canvas drawing, time axes in the browser's
// time zone with DST handled): a tooltip with the exact value and local time under the cursor,
// drag across to zoom into a range, and live updates; guide lines (alarm rules' levels) and
// alarm bands (when an alarm was active) as elements over and under the plot. The dashboard's
// WASM calls `iotCharts.mount/update/destroy`; without uPlot the server-rendered SVG chart stays.
window.iotCharts = (() => {
  const charts = new Map();
  let nextId = 1;

  const css = (name, fallback) =>
    getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;

  const format = (v, decimals) => {
    if (v == null || !Number.isFinite(v)) return '–';
    if (decimals != null) return v.toFixed(decimals);
    const a = Math.abs(v);
    return v.toFixed(a >= 1000 ? 0 : a >= 10 ? 1 : 2);
  };

  // [x, avg…, min…, max…] in uPlot's column layout.
  const columns = (spec) => [spec.x, ...spec.avg, ...spec.min, ...spec.max];

  // `state.spec` is the chart's latest spec: update() replaces it.
  function tooltip(state) {
    let tip;
    return {
      hooks: {
        init: (u) => {
          tip = document.createElement('div');
          tip.className = 'chart-tooltip';
          tip.hidden = true;
          u.over.appendChild(tip);
          u.over.addEventListener('mouseleave', () => (tip.hidden = true));
        },
        setCursor: (u) => {
          const i = u.cursor.idx;
          if (i == null || u.cursor.left < 0) {
            tip.hidden = true;
            return;
          }
          const t = new Date(u.data[0][i]);
          // Text nodes only: labels and units come from users (widget settings, device names).
          const rows = [];
          const spec = state.spec;
          spec.series.forEach((s, k) => {
            const v = u.data[1 + k][i];
            if (v == null) return;
            const row = document.createElement('div');
            const swatch = document.createElement('span');
            swatch.className = 'swatch';
            swatch.style.background = s.color;
            const value = document.createElement('b');
            value.textContent = format(v, spec.decimals);
            row.append(swatch, `${s.label}: `, value, ` ${spec.unit}`);
            rows.push(row);
          });
          if (!rows.length) {
            tip.hidden = true;
            return;
          }
          const time = document.createElement('time');
          time.dateTime = t.toISOString();
          time.textContent = t.toLocaleString();
          tip.replaceChildren(time, ...rows);
          tip.hidden = false;
          const left = u.cursor.left + 12;
          tip.style.left = `${Math.min(left, u.over.clientWidth - tip.offsetWidth - 4)}px`;
          tip.style.top = `${Math.max(0, u.cursor.top - tip.offsetHeight - 8)}px`;
        },
      },
    };
  }

  // Marks placed as elements after every redraw (new data, zoom, resize), so they are part of
  // the page, not pixels: alarm bands under the plot (from when an alarm started to when it
  // cleared, or on to the end, in its severity's colour) and guide lines over it (dashed, at
  // fixed values, labelled at the right end). Labels are text nodes: they come from users.
  function marks(state) {
    let under;
    let over;
    const layer = (parent, name) => {
      const el = document.createElement('div');
      el.className = `chart-marks ${name}`;
      parent.appendChild(el);
      return el;
    };
    return {
      hooks: {
        init: (u) => {
          under = layer(u.under, 'bands');
          over = layer(u.over, 'guides');
        },
        draw: (u) => {
          const spec = state.spec;
          const { min, max } = u.scales.x;
          const bands = [];
          for (const b of min == null || max == null ? [] : spec.alarm_bands || []) {
            const from = Math.max(b.from, min);
            const to = Math.min(b.to ?? Infinity, max);
            if (!(from <= to)) continue;
            const left = u.valToPos(from, 'x');
            const el = document.createElement('div');
            el.className = 'alarm-band';
            el.dataset.alarm = b.alarm;
            el.dataset.severity = b.severity;
            el.dataset.from = b.from;
            if (b.to != null) el.dataset.to = b.to;
            el.title = b.label;
            el.style.left = `${left}px`;
            el.style.width = `${Math.max(1, u.valToPos(to, 'x') - left)}px`;
            bands.push(el);
          }
          under.replaceChildren(...bands);
          // The time the plot spans, where bands are placed from.
          under.dataset.from = min;
          under.dataset.to = max;
          const height = u.over.clientHeight;
          const guides = [];
          for (const g of spec.guides || []) {
            const y = u.valToPos(g.value, 'y');
            if (!Number.isFinite(y) || y < 0 || y > height) continue;
            const el = document.createElement('div');
            el.className = `chart-guide ${g.kind}`;
            el.dataset.guide = g.kind;
            el.dataset.value = g.value;
            el.style.top = `${y}px`;
            if (g.label) {
              const label = document.createElement('span');
              label.textContent = g.label;
              el.append(label);
            }
            guides.push(el);
          }
          over.replaceChildren(...guides);
        },
      },
    };
  }

  // The time range: the data's, stretched to take in the alarm bands within the range asked
  // (`from` to `to`: now, for a chart that follows it), so an alarm that started after the last
  // reading (a device gone quiet) still shows.
  function timeRange(state) {
    return {
      time: true,
      range: (u, min, max) => {
        const { from, to } = state.spec;
        let [lo, hi] = [min, max];
        for (const b of state.spec.alarm_bands || []) {
          const start = Math.max(b.from, from);
          const end = Math.min(b.to ?? to, to);
          if (!(start <= end)) continue;
          lo = lo == null ? start : Math.min(lo, start);
          hi = hi == null ? end : Math.max(hi, end);
        }
        return [lo, hi];
      },
    };
  }

  // The value range: the data's, stretched to take in every guide (a page's guides are known
  // when its charts mount).
  function valueRange(state) {
    if (!(state.spec.guides || []).length) return {};
    return {
      range: (u, min, max) => {
        const values = (state.spec.guides || []).map((g) => g.value).filter(Number.isFinite);
        const lo = Math.min(...values, min ?? Infinity);
        const hi = Math.max(...values, max ?? -Infinity);
        return window.uPlot.rangeNum(lo, hi, 0.1, true);
      },
    };
  }

  function options(el, state, onZoom) {
    const spec = state.spec;
    const n = spec.series.length;
    // Colours are read at every redraw, so a theme change only needs a redraw.
    const axis = {
      stroke: () => css('--muted', '#5b6b79'),
      grid: { stroke: () => css('--grid', '#e5e9ee'), width: 1 },
      ticks: { show: false },
    };
    const hidden = { stroke: 'transparent', width: 0, points: { show: false } };
    const series = [
      {},
      ...spec.series.map((s) => ({
        label: s.label,
        stroke: s.color,
        width: 2,
        spanGaps: false,
        value: (u, v) => format(v, spec.decimals),
      })),
      ...spec.series.map((s) => ({ ...hidden, label: `${s.label} min` })),
      ...spec.series.map((s) => ({ ...hidden, label: `${s.label} max` })),
    ];
    const bands = spec.series.map((s, k) => ({ series: [1 + 2 * n + k, 1 + n + k], fill: `${s.color}29` }));
    return {
      width: Math.max(200, el.clientWidth),
      height: Math.max(120, el.clientHeight),
      ms: 1,
      legend: { show: false },
      scales: { x: timeRange(state), y: valueRange(state) },
      axes: [axis, { ...axis, size: 56, values: (u, vals) => vals.map((v) => format(v, spec.decimals)) }],
      series,
      bands,
      cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
      select: { show: true },
      hooks: {
        setSelect: [
          (u) => {
            if (u.select.width > 4) {
              const from = u.posToVal(u.select.left, 'x');
              const to = u.posToVal(u.select.left + u.select.width, 'x');
              onZoom(Math.round(from), Math.round(to));
            }
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          },
        ],
      },
      plugins: [marks(state), tooltip(state)],
    };
  }

  document.addEventListener('themechange', () => charts.forEach(({ plot }) => plot.redraw(false, true)));

  return {
    available: () => typeof window.uPlot === 'function',
    mount(el, specJson, onZoom) {
      const state = { spec: JSON.parse(specJson) };
      const plot = new window.uPlot(options(el, state, onZoom), columns(state.spec), el);
      const resize = new ResizeObserver(() =>
        plot.setSize({ width: Math.max(200, el.clientWidth), height: Math.max(120, el.clientHeight) }),
      );
      resize.observe(el);
      const id = nextId++;
      charts.set(id, { plot, resize, state });
      return id;
    },
    // New data, guides or bands for the same series; a different set of series needs a new
    // chart.
    update(id, specJson) {
      const chart = charts.get(id);
      if (!chart) return false;
      const spec = JSON.parse(specJson);
      if (spec.series.length !== chart.state.spec.series.length) return false;
      chart.state.spec = spec;
      chart.plot.setData(columns(spec));
      return true;
    },
    destroy(id) {
      const chart = charts.get(id);
      if (!chart) return;
      chart.resize.disconnect();
      chart.plot.destroy();
      charts.delete(id);
    },
  };
})();
