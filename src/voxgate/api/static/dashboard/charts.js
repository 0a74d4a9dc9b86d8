// Small hand-written SVG charts for the voxgate dashboard: line, horizontal bar, waterfall.
// No dependencies and no innerHTML: every label goes in through textContent, so call data
// (transcripts, route names) can never inject markup.
"use strict";

(function () {
  const NS = "http://www.w3.org/2000/svg";

  function el(tag, attrs, parent) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }

  function text(parent, x, y, str, attrs) {
    const t = el("text", Object.assign({ x: x, y: y }, attrs || {}), parent);
    t.textContent = str;
    return t;
  }

  // Round tick values (1, 2, 5 x 10^k) covering [lo, hi].
  function ticks(lo, hi, count) {
    if (!(hi > lo)) hi = lo + 1;
    const raw = (hi - lo) / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
    const out = [];
    const first = Math.floor(lo / step + 1e-9) * step;
    const last = Math.ceil(hi / step - 1e-9) * step;
    for (let v = first; v <= last + step * 1e-9; v += step) {
      out.push(Math.round(v / step) * step);
    }
    return { values: out, step: step };
  }

  function fmtNum(v) {
    if (Math.abs(v) >= 1000) return v.toLocaleString("en-US", { maximumFractionDigits: 0 });
    if (Math.abs(v) >= 10 || v === 0) return String(Math.round(v * 10) / 10);
    return String(Math.round(v * 100) / 100);
  }

  // Drawing at the container's CSS width keeps 1 SVG unit = 1 px, so text stays 12 px.
  function widthOf(container, fallback) {
    return Math.max(360, Math.round(container.clientWidth || fallback));
  }

  function svgRoot(container, width, height, label) {
    container.textContent = "";
    const svg = el("svg", {
      class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label,
      preserveAspectRatio: "xMinYMin meet",
    }, container);
    return svg;
  }

  function legend(svg, items, x, y, maxWidth) {
    const g = el("g", { class: "legend" }, svg);
    let cx = x, cy = y;
    for (const item of items) {
      const w = 22 + item.name.length * 7 + 16;
      if (cx + w > x + maxWidth) { cx = x; cy += 18; }
      if (item.line) el("line", { x1: cx, x2: cx + 16, y1: cy - 4, y2: cy - 4, stroke: item.color, "stroke-width": 3, "stroke-dasharray": item.dash || "" }, g);
      else el("rect", { x: cx, y: cy - 10, width: 14, height: 12, rx: 2, fill: item.color }, g);
      text(g, cx + 20, cy, item.name);
      cx += w;
    }
    return cy;
  }

  // Line chart. opts: {title, series:[{name,color,dash,points:[[x,y],...]}], xLabel, yLabel,
  // xFormat(x)->str, yFormat(y)->str, xMin, xMax, yMin, height}
  function lineChart(container, opts) {
    const W = widthOf(container, 640), H = opts.height || 280;
    const svg = svgRoot(container, W, H, opts.title || "line chart");
    const all = opts.series.flatMap((s) => s.points.filter((p) => p[1] !== null && p[1] !== undefined));
    if (opts.title) text(svg, 0, 16, opts.title, { class: "title" });
    const legendBottom = legend(svg, opts.series.map((s) => ({ name: s.name, color: s.color, dash: s.dash, line: true })), 0, 38, W);
    const m = { left: 58, right: 16, top: legendBottom + 14, bottom: 46 };
    const pw = W - m.left - m.right, ph = H - m.top - m.bottom;
    if (all.length === 0) {
      text(svg, W / 2, m.top + ph / 2, "no data", { "text-anchor": "middle", class: "axis-label" });
      return svg;
    }
    const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
    let x0 = opts.xMin !== undefined ? opts.xMin : Math.min(...xs);
    let x1 = opts.xMax !== undefined ? opts.xMax : Math.max(...xs);
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    const yt = ticks(opts.yMin !== undefined ? opts.yMin : Math.min(0, ...ys), Math.max(...ys) * 1.08 || 1, 5);
    const y0 = yt.values[0], y1 = yt.values[yt.values.length - 1];
    const sx = (v) => m.left + ((v - x0) / (x1 - x0)) * pw;
    const sy = (v) => m.top + ph - ((v - y0) / (y1 - y0 || 1)) * ph;
    const xf = opts.xFormat || fmtNum, yf = opts.yFormat || fmtNum;

    const grid = el("g", { class: "grid" }, svg);
    const axis = el("g", { class: "axis" }, svg);
    for (const v of yt.values) {
      el("line", { x1: m.left, x2: m.left + pw, y1: sy(v), y2: sy(v) }, grid);
      text(axis, m.left - 6, sy(v) + 4, yf(v), { "text-anchor": "end" });
    }
    const xt = opts.xTicks ? opts.xTicks(x0, x1) : ticks(x0, x1, 6).values;
    for (const v of xt) {
      if (v < x0 || v > x1) continue;
      el("line", { x1: sx(v), x2: sx(v), y1: m.top + ph, y2: m.top + ph + 4 }, axis);
      text(axis, sx(v), m.top + ph + 18, xf(v), { "text-anchor": "middle" });
    }
    el("line", { x1: m.left, x2: m.left + pw, y1: m.top + ph, y2: m.top + ph }, axis);
    el("line", { x1: m.left, x2: m.left, y1: m.top, y2: m.top + ph }, axis);
    if (opts.xLabel) text(svg, m.left + pw / 2, H - 6, opts.xLabel, { "text-anchor": "middle", class: "axis-label" });
    if (opts.yLabel) text(svg, 14, m.top + ph / 2, opts.yLabel, { "text-anchor": "middle", class: "axis-label", transform: `rotate(-90 14 ${m.top + ph / 2})` });

    for (const s of opts.series) {
      const g = el("g", { class: "series", "data-series": s.name, "data-points": s.points.length }, svg);
      let d = "";
      let pen = false;
      for (const [x, y] of s.points) {
        if (y === null || y === undefined) { pen = false; continue; }
        d += (pen ? "L" : "M") + sx(x).toFixed(1) + " " + sy(y).toFixed(1);
        pen = true;
      }
      el("path", { d: d, fill: "none", stroke: s.color, "stroke-width": 2.2, "stroke-dasharray": s.dash || "" }, g);
      for (const [x, y] of s.points) {
        if (y === null || y === undefined) continue;
        const dot = el("circle", { cx: sx(x), cy: sy(y), r: s.points.length > 60 ? 1.8 : 3.2, fill: s.color }, g);
        el("title", {}, dot).textContent = `${s.name}: ${yf(y)} at ${xf(x)}`;
      }
    }
    return svg;
  }

  // Horizontal bars. opts: {title, items:[{label,value,color}], valueFormat, xLabel}
  function barChart(container, opts) {
    const W = widthOf(container, 640), rowH = 26;
    const items = opts.items;
    const labelW = Math.min(220, 16 + Math.max(40, ...items.map((i) => i.label.length * 7)));
    const top = opts.title ? 30 : 8, bottom = 40;
    const H = top + Math.max(1, items.length) * rowH + bottom;
    const svg = svgRoot(container, W, H, opts.title || "bar chart");
    if (opts.title) text(svg, 0, 16, opts.title, { class: "title" });
    if (items.length === 0) {
      text(svg, W / 2, top + 18, "no data", { "text-anchor": "middle", class: "axis-label" });
      return svg;
    }
    const pw = W - labelW - 60;
    const xt = ticks(0, Math.max(...items.map((i) => i.value)), 5);
    const xmax = xt.values[xt.values.length - 1] || 1;
    const sx = (v) => labelW + (v / xmax) * pw;
    const grid = el("g", { class: "grid" }, svg), axis = el("g", { class: "axis" }, svg);
    const plotBottom = top + items.length * rowH;
    for (const v of xt.values) {
      el("line", { x1: sx(v), x2: sx(v), y1: top, y2: plotBottom }, grid);
      text(axis, sx(v), plotBottom + 16, fmtNum(v), { "text-anchor": "middle" });
    }
    el("line", { x1: labelW, x2: labelW, y1: top, y2: plotBottom }, axis);
    const fmt = opts.valueFormat || fmtNum;
    items.forEach((item, i) => {
      const y = top + i * rowH;
      text(svg, labelW - 8, y + rowH / 2 + 4, item.label, { "text-anchor": "end" });
      const bar = el("rect", { x: labelW, y: y + 4, width: Math.max(1, sx(item.value) - labelW), height: rowH - 8, fill: item.color, rx: 2, class: "bar", "data-value": item.value }, svg);
      el("title", {}, bar).textContent = `${item.label}: ${fmt(item.value)}`;
      text(svg, sx(item.value) + 6, y + rowH / 2 + 4, fmt(item.value));
    });
    if (opts.xLabel) text(svg, labelW + pw / 2, H - 4, opts.xLabel, { "text-anchor": "middle", class: "axis-label" });
    return svg;
  }

  // Waterfall: one row per turn, stages laid end to end from the caller's end of speech.
  // opts: {title, stages:[{key,name,color}], rows:[{label, title, values:{key: ms|null}, total, note}], xLabel}
  function waterfall(container, opts) {
    const W = widthOf(container, 760), rowH = 30, labelW = 78;
    const svg0 = svgRoot(container, W, 100, opts.title || "latency waterfall");
    if (opts.title) text(svg0, 0, 16, opts.title, { class: "title" });
    const legendBottom = legend(svg0, opts.stages.map((s) => ({ name: s.name, color: s.color })), 0, 40, W);
    const top = legendBottom + 16, bottom = 42;
    const H = top + Math.max(1, opts.rows.length) * rowH + bottom;
    svg0.setAttribute("viewBox", `0 0 ${W} ${H}`);
    if (opts.rows.length === 0) {
      text(svg0, W / 2, top + 18, "no turns recorded", { "text-anchor": "middle", class: "axis-label" });
      return svg0;
    }
    const sums = opts.rows.map((r) => opts.stages.reduce((a, s) => a + (r.values[s.key] || 0), 0));
    const xt = ticks(0, Math.max(...sums, 1) * 1.05, 7);
    const xmax = xt.values[xt.values.length - 1];
    const noteW = Math.max(...opts.rows.map((r) => 8 + 7 * ((r.note || "").length + 9)));
    const pw = W - labelW - Math.min(noteW, W / 3);
    const sx = (v) => labelW + (v / xmax) * pw;
    const grid = el("g", { class: "grid" }, svg0), axis = el("g", { class: "axis" }, svg0);
    const plotBottom = top + opts.rows.length * rowH;
    for (const v of xt.values) {
      el("line", { x1: sx(v), x2: sx(v), y1: top, y2: plotBottom }, grid);
      text(axis, sx(v), plotBottom + 16, fmtNum(v), { "text-anchor": "middle" });
    }
    el("line", { x1: labelW, x2: labelW, y1: top, y2: plotBottom }, axis);
    if (opts.xLabel) text(svg0, labelW + pw / 2, H - 6, opts.xLabel, { "text-anchor": "middle", class: "axis-label" });
    opts.rows.forEach((row, i) => {
      const y = top + i * rowH;
      const g = el("g", { class: "turn", "data-turn": i }, svg0);
      const label = text(g, labelW - 8, y + rowH / 2 + 4, row.label, { "text-anchor": "end" });
      if (row.title) el("title", {}, label).textContent = row.title;
      let at = 0;
      for (const stage of opts.stages) {
        const v = row.values[stage.key];
        if (!v || v <= 0) continue;
        const x = sx(at), w = Math.max(1, sx(at + v) - sx(at));
        const rect = el("rect", { x: x, y: y + 5, width: w, height: rowH - 10, fill: stage.color, class: "segment", "data-stage": stage.key, "data-ms": v }, g);
        el("title", {}, rect).textContent = `${row.label} · ${stage.name}: ${Math.round(v)} ms (starts at ${Math.round(at)} ms)`;
        if (w > 34) text(g, x + w / 2, y + rowH / 2 + 4, String(Math.round(v)), { "text-anchor": "middle", class: "seg-label" });
        at += v;
      }
      const total = row.total !== undefined && row.total !== null ? `${Math.round(row.total)} ms` : `${Math.round(at)} ms`;
      text(g, sx(at) + 6, y + rowH / 2 + 4, total + (row.note ? ` ${row.note}` : ""));
    });
    return svg0;
  }

  window.VoxCharts = { lineChart: lineChart, barChart: barChart, waterfall: waterfall, ticks: ticks, fmtNum: fmtNum };
})();
