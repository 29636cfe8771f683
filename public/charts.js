// Interactive charts in the browser, on uPlot (fast canvas drawing, time axes in the browser's
// time zone with DST handled): a tooltip with the exact value and local time under the cursor,
// drag across to zoom into a range, and live updates. The dashboard's WASM calls
// `iotCharts.mount/update/destroy`; without uPlot the server-rendered SVG chart stays.
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

  function tooltip(spec) {
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

  // Guide lines at fixed values (an alarm's trip and clear levels), dashed, labelled at the
  // right end; canvas text, so labels are never markup.
  function guides(spec) {
    const list = spec.guides || [];
    return {
      hooks: {
        draw: (u) => {
          const ctx = u.ctx;
          const px = window.devicePixelRatio || 1;
          const { left, top, width, height } = u.bbox;
          ctx.save();
          for (const g of list) {
            const y = Math.round(u.valToPos(g.value, 'y', true));
            if (!Number.isFinite(y) || y < top || y > top + height) continue;
            const color = g.kind === 'trip' ? css('--error', '#b91c1c') : css('--online', '#16a34a');
            ctx.strokeStyle = color;
            ctx.fillStyle = color;
            ctx.lineWidth = 1.5 * px;
            ctx.setLineDash([6 * px, 4 * px]);
            ctx.beginPath();
            ctx.moveTo(left, y);
            ctx.lineTo(left + width, y);
            ctx.stroke();
            ctx.font = `${11 * px}px system-ui, sans-serif`;
            ctx.textAlign = 'right';
            ctx.fillText(g.label, left + width - 4 * px, y - 4 * px);
          }
          ctx.restore();
        },
      },
    };
  }

  // The value range: the data's, stretched to take in every guide.
  function valueRange(spec) {
    const values = (spec.guides || []).map((g) => g.value).filter(Number.isFinite);
    if (!values.length) return {};
    return {
      range: (u, min, max) => {
        const lo = Math.min(...values, min ?? Infinity);
        const hi = Math.max(...values, max ?? -Infinity);
        return window.uPlot.rangeNum(lo, hi, 0.1, true);
      },
    };
  }

  function options(el, spec, onZoom) {
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
      scales: { x: { time: true }, y: valueRange(spec) },
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
      plugins: [tooltip(spec), guides(spec)],
    };
  }

  document.addEventListener('themechange', () => charts.forEach(({ plot }) => plot.redraw(false, true)));

  return {
    available: () => typeof window.uPlot === 'function',
    mount(el, specJson, onZoom) {
      const spec = JSON.parse(specJson);
      const plot = new window.uPlot(options(el, spec, onZoom), columns(spec), el);
      const resize = new ResizeObserver(() =>
        plot.setSize({ width: Math.max(200, el.clientWidth), height: Math.max(120, el.clientHeight) }),
      );
      resize.observe(el);
      const id = nextId++;
      charts.set(id, { plot, resize, series: spec.series.length });
      return id;
    },
    // New data for the same series; a different set of series needs a new chart.
    update(id, specJson) {
      const chart = charts.get(id);
      if (!chart) return false;
      const spec = JSON.parse(specJson);
      if (spec.series.length !== chart.series) return false;
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
