// coldtrace charts: a storage unit's history and a lot's exposure, drawn with uPlot (MIT,
// served unmodified from /ui/vendor/). Data come from the server as JSON at the resolution the
// shown range calls for; zooming or panning asks for the new range. The dashboard's CSP allows
// no inline script or style: everything here is set through the DOM and the canvas.
"use strict";

const COLOURS = ["#12355b", "#4f8fd6", "#7a4fd6", "#0f7d7d"];
const SHADE = {
  action: "rgba(179, 38, 30, 0.16)",
  alert: "rgba(184, 110, 0, 0.14)",
  no_data: "rgba(107, 111, 118, 0.18)",
  gap: "rgba(107, 111, 118, 0.18)",
};
const MARK = {
  alert: { colour: "#b86e00", glyph: "!" },
  acknowledged: { colour: "#1b7f3b", glyph: "✓" },
  disposition: { colour: "#7a4fd6", glyph: "Q" },
  maintenance: { colour: "#2f6fb3", glyph: "M" },
  calibration: { colour: "#6a1b9a", glyph: "C" },
  closure: { colour: "#37474f", glyph: "R" },
};
SHADE.maintenance = "rgba(47, 111, 179, 0.12)";
SHADE.calibration = "rgba(106, 27, 154, 0.10)";

// Annotations: a marked line per instant (the windows are shaded), listed under the chart too.
function drawMarks(u, notes) {
  const { ctx, bbox } = u;
  const ratio = window.devicePixelRatio || 1;
  ctx.save();
  ctx.font = `bold ${Math.round(11 * ratio)}px system-ui, sans-serif`;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  ctx.lineWidth = ratio;
  ctx.setLineDash([]);
  for (const note of notes) {
    const x = Math.round(u.valToPos(note.at, "x", true));
    if (x < bbox.left || x > bbox.left + bbox.width) continue;
    const mark = MARK[note.kind];
    ctx.strokeStyle = mark.colour;
    ctx.fillStyle = mark.colour;
    ctx.globalAlpha = 0.5;
    ctx.beginPath();
    ctx.moveTo(x, bbox.top + 14 * ratio);
    ctx.lineTo(x, bbox.top + bbox.height);
    ctx.stroke();
    ctx.globalAlpha = 1;
    ctx.fillText(mark.glyph, x, bbox.top + 1 * ratio);
  }
  ctx.restore();
}

function listNotes(list, notes, format) {
  list.replaceChildren();
  for (const note of notes) {
    const item = document.createElement("li");
    item.className = note.kind;
    item.dataset.kind = note.kind;
    const when = note.end === null ? format(note.at) : `${format(note.at)} – ${format(note.end)}`;
    item.textContent = `${MARK[note.kind].glyph} ${when}: ${note.text}`;
    list.append(item);
  }
  if (!notes.length) {
    const item = document.createElement("li");
    item.textContent = "Nothing noted in this range.";
    list.append(item);
  }
}

const LIMIT_STYLE = {
  action: { colour: "#b3261e", dash: [] },
  alert: { colour: "#b86e00", dash: [6, 4] },
};

function celsius(v) {
  return v === null || v === undefined ? "—" : `${v.toFixed(1)} °C`;
}

function zoned(tz) {
  const fmt = new Intl.DateTimeFormat("en-GB", {
    timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
  return (seconds) => fmt.format(new Date(seconds * 1000)).replace(",", "");
}

// Time-axis labels in the site's zone, 24-hour clock; the date where a day starts.
function timeTicks(tz) {
  const parts = (seconds) => {
    const out = {};
    const fmt = new Intl.DateTimeFormat("en-GB", {
      timeZone: tz, day: "2-digit", month: "2-digit", year: "numeric",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    });
    for (const p of fmt.formatToParts(new Date(seconds * 1000))) out[p.type] = p.value;
    return out;
  };
  return (u, ticks, axisIdx, space, incr) => ticks.map((t) => {
    const p = parts(t);
    const date = `${p.day}/${p.month}`;
    if (incr >= 28 * 86400) return `${p.month}/${p.year}`;
    if (incr >= 86400) return date;
    const clock = `${p.hour}:${p.minute}`;
    return clock === "00:00" ? `${clock}\n${date}` : clock;
  });
}

// Shaded intervals (excursions, no data) behind the lines; limits as labelled lines on top.
function shadeIntervals(u, intervals) {
  const { ctx, bbox } = u;
  ctx.save();
  for (const iv of intervals) {
    const x0 = Math.max(u.valToPos(iv.start, "x", true), bbox.left);
    const x1 = Math.min(u.valToPos(iv.end, "x", true), bbox.left + bbox.width);
    if (x1 <= x0) continue;
    ctx.fillStyle = SHADE[iv.kind] || SHADE.gap;
    ctx.fillRect(x0, bbox.top, Math.max(x1 - x0, 1), bbox.height);
  }
  ctx.restore();
}

function drawLimits(u, limits) {
  const { ctx, bbox } = u;
  const ratio = window.devicePixelRatio || 1;
  ctx.save();
  ctx.font = `${Math.round(11 * ratio)}px system-ui, sans-serif`;
  ctx.textAlign = "left"; // uPlot leaves the y axis' "right" set
  for (const lim of limits) {
    const y = Math.round(u.valToPos(lim.value, "y", true));
    if (y < bbox.top || y > bbox.top + bbox.height) continue;
    const style = LIMIT_STYLE[lim.level];
    ctx.strokeStyle = style.colour;
    ctx.fillStyle = style.colour;
    ctx.lineWidth = ratio;
    ctx.setLineDash(style.dash.map((d) => d * ratio));
    ctx.beginPath();
    ctx.moveTo(bbox.left, y);
    ctx.lineTo(bbox.left + bbox.width, y);
    ctx.stroke();
    const label = `${lim.level} ${lim.side} ${celsius(lim.value)}`;
    const below = lim.side === "low";
    ctx.textBaseline = below ? "top" : "bottom";
    ctx.fillText(label, bbox.left + 4 * ratio, y + (below ? 2 : -2) * ratio);
  }
  ctx.restore();
}

function limitList(limits) {
  const out = [];
  for (const [level, side] of [["action", "high"], ["alert", "high"], ["alert", "low"], ["action", "low"]]) {
    const value = limits[`${level}_${side}`];
    if (value !== null && value !== undefined) out.push({ level, side, value });
  }
  return out;
}

function yRange(limits) {
  return (u, min, max) => {
    const values = limits.map((l) => l.value);
    if (min !== null && Number.isFinite(min)) values.push(min);
    if (max !== null && Number.isFinite(max)) values.push(max);
    if (!values.length) return [0, 10];
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    const pad = Math.max((hi - lo) * 0.08, 0.5);
    return [lo - pad, hi + pad];
  };
}

// One table per sensor, joined on time: a null is a gap (the line breaks), the undefined
// cells uPlot.join adds to align the sensors are spanned.
function aligned(series, withBand, shift) {
  const tables = [];
  const modes = [];
  for (const s of series) {
    // a bucket is drawn at its middle: the hour 09:00-10:00 is the point at 09:30
    const time = shift ? s.time.map((t) => t + shift) : s.time;
    tables.push(withBand ? [time, s.mean, s.min, s.max] : [time, s.mean]);
    modes.push(withBand ? [1, 1, 1] : [1]);
  }
  if (!tables.length) return [[]];
  return tables.length === 1 ? tables[0] : uPlot.join(tables, modes);
}

function seriesOptions(series, withBand, tz) {
  const format = zoned(tz);
  const out = [{ label: `time (${tz})`, value: (u, v) => (v === null || v === undefined ? "—" : format(v)) }];
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    out.push({ label: withBand ? `${s.sensor_id} mean` : s.sensor_id, stroke: colour, width: 1.5,
      spanGaps: false, value: (u, v) => celsius(v) });
    if (withBand) {
      out.push({ label: `${s.sensor_id} min`, stroke: colour, width: 1, dash: [2, 3],
        spanGaps: false, value: (u, v) => celsius(v) });
      out.push({ label: `${s.sensor_id} max`, stroke: colour, width: 1, dash: [2, 3],
        spanGaps: false, value: (u, v) => celsius(v) });
    }
  });
  return out;
}

function makeChart(box, view, payload, onSelectRange) {
  const limits = limitList(payload.limits);
  const withBand = payload.resolution !== "raw";
  const opts = {
    width: Math.max(box.clientWidth, 280),
    height: 360,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), view.tz),
    scales: {
      x: { time: true, range: () => [view.start, view.end] },
      y: { range: yRange(limits) },
    },
    axes: [
      { stroke: "#5d6670", grid: { stroke: "#e6e9ed" }, values: timeTicks(view.tz), size: 48 },
      { stroke: "#5d6670", grid: { stroke: "#e6e9ed" }, label: "°C", size: 56,
        values: (u, ticks) => ticks.map((v) => v.toFixed(1)) },
    ],
    series: seriesOptions(payload.series, withBand, view.tz),
    cursor: { drag: { x: true, y: false, setScale: false } },
    legend: { live: true },
    hooks: {
      drawClear: [(u) => shadeIntervals(u, view.shaded)],
      draw: [(u) => { drawLimits(u, limits); drawMarks(u, view.marks); }],
      setSelect: [(u) => {
        if (u.select.width < 4) return;
        const a = u.posToVal(u.select.left, "x");
        const b = u.posToVal(u.select.left + u.select.width, "x");
        u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
        onSelectRange(a, b);
      }],
    },
  };
  const shift = { raw: 0, hourly: 1800, daily: 43200 }[payload.resolution] || 0;
  return new uPlot(opts, aligned(payload.series, withBand, shift), box);
}

function shadedFrom(payload) {
  const now = Date.now() / 1000;
  const shaded = payload.gaps.map(([start, end]) => ({ start, end: Math.min(end, now), kind: "gap" }));
  for (const x of payload.excursions) {
    const kind = x.kind === "no_data" ? "no_data" : x.level;
    shaded.push({ start: x.start, end: x.end === null ? now : x.end, kind });
  }
  return shaded;
}

// The unit history page -------------------------------------------------------------------

function unitHistory(section) {
  const box = section.querySelector(".chart-box");
  const shown = section.querySelector(".shown");
  const csv = section.querySelector("a.csv");
  const format = zoned(section.dataset.tz);
  const view = { tz: section.dataset.tz, start: 0, end: 0, shaded: [], marks: [] };
  let chart = null;
  let request = 0;

  async function load(start, end) {
    const span = Math.max(end - start, 60);
    view.start = Math.floor(start);
    view.end = Math.ceil(start + span);
    const query = `&start=${iso(view.start)}&end=${iso(view.end)}`;
    csv.href = section.dataset.csv + query;
    const report = section.querySelector("a.report");
    if (report) report.href = section.dataset.report + query;
    const mine = ++request;
    section.dataset.loading = "1";
    const response = await fetch(section.dataset.history + query, { credentials: "same-origin" });
    if (mine !== request) return; // a newer range was asked for meanwhile
    if (response.status === 401) {
      window.location.assign("/ui/login");
      return;
    }
    if (!response.ok) {
      shown.textContent = `Could not load the history: ${response.status} ${response.statusText}`;
      delete section.dataset.loading;
      return;
    }
    const payload = await response.json();
    if (mine !== request) return;
    view.shaded = shadedFrom(payload);
    const notes = payload.annotations || [];
    for (const n of notes) {
      if (n.end !== null) view.shaded.push({ start: n.at, end: n.end, kind: n.kind === "calibration" ? "calibration" : "maintenance" });
    }
    view.marks = notes.filter((n) => n.end === null);
    const list = section.querySelector("ol.annotations");
    if (list) listNotes(list, notes, format);
    if (chart) chart.destroy();
    chart = makeChart(box, view, payload, (a, b) => load(a, b));
    fillStats(section, payload);
    shown.textContent = `${format(view.start)} – ${format(view.end)} (${view.tz}),` +
      ` ${payload.resolution === "raw" ? "every reading" : `${payload.resolution} min/mean/max`}`;
    section.dataset.resolution = payload.resolution;
    delete section.dataset.loading;
    section.dataset.loaded = String(Number(section.dataset.loaded || 0) + 1);
  }

  section.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    const span = view.end - view.start;
    if (button.dataset.span) {
      const now = Date.now() / 1000;
      load(now - Number(button.dataset.span), now);
    } else if (button.dataset.pan) {
      const shift = span * Number(button.dataset.pan);
      load(view.start + shift, view.end + shift);
    } else if (button.dataset.zoom) {
      const middle = (view.start + view.end) / 2;
      const half = (span * Number(button.dataset.zoom)) / 2;
      load(middle - half, middle + half);
    }
  });
  window.addEventListener("resize", () => {
    if (chart) chart.setSize({ width: Math.max(box.clientWidth, 280), height: 360 });
  });
  const now = Date.now() / 1000;
  load(now - 86400, now);
}

function iso(seconds) {
  return encodeURIComponent(new Date(seconds * 1000).toISOString());
}

function fillStats(section, payload) {
  const s = payload.stats;
  const text = {
    min: celsius(s.min), max: celsius(s.max), mean: celsius(s.mean),
    mkt: payload.resolution === "raw" ? celsius(s.mkt) :
      (s.mkt === null ? "—" : `${celsius(s.mkt)} (from ${payload.resolution} means)`),
    samples: String(s.samples),
    resolution: payload.resolution === "raw" ? "readings" : `${payload.resolution} rollups`,
  };
  for (const [key, value] of Object.entries(text)) {
    const cell = section.querySelector(`[data-stat="${key}"]`);
    if (cell) cell.textContent = value;
  }
}

// The lot exposure chart -------------------------------------------------------------------
// The whole trace is in the page (at most a few thousand buckets): zoom and pan stay in the
// browser; figures and CSV follow the range in view.

function drawStays(u, stays) {
  const { ctx, bbox } = u;
  const ratio = window.devicePixelRatio || 1;
  ctx.save();
  ctx.font = `${Math.round(11 * ratio)}px system-ui, sans-serif`;
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  ctx.fillStyle = "#12355b";
  ctx.strokeStyle = "#12355b";
  ctx.setLineDash([2 * ratio, 3 * ratio]);
  ctx.lineWidth = ratio;
  const now = Date.now() / 1000;
  for (const stay of stays) {
    const x0 = u.valToPos(stay.start, "x", true);
    const x1 = u.valToPos(stay.end === null ? now : stay.end, "x", true);
    if (x1 < bbox.left || x0 > bbox.left + bbox.width) continue;
    if (x0 >= bbox.left) {
      ctx.beginPath();
      ctx.moveTo(x0, bbox.top);
      ctx.lineTo(x0, bbox.top + bbox.height);
      ctx.stroke();
    }
    const left = Math.max(x0, bbox.left) + 3 * ratio;
    const room = Math.min(x1, bbox.left + bbox.width) - left;
    if (room > 20 * ratio) ctx.fillText(stay.name, left, bbox.top + 2 * ratio, room);
  }
  ctx.restore();
}

function stayAt(stays, t) {
  for (const s of stays) if (t >= s.start && (s.end === null || t < s.end)) return s;
  return null;
}

function lotExposure(holder) {
  const data = JSON.parse(holder.dataset.exposure);
  const box = holder.querySelector(".chart-box");
  const shown = holder.querySelector(".shown");
  const csv = holder.querySelector("a.csv");
  const format = zoned(data.timezone);
  const limits = limitList(data.limits);
  const now = Date.now() / 1000;
  const shaded = [];
  data.time.forEach((t, i) => {
    if (data.mean[i] === null) shaded.push({ start: t, end: t + data.bucket, kind: "gap" });
  });
  for (const x of data.excursions) {
    shaded.push({ start: x.start, end: x.end === null ? now : x.end,
      kind: x.kind === "no_data" ? "no_data" : x.level });
  }
  const first = data.time.length ? data.time[0] : now - 3600;
  const last = data.time.length ? data.time[data.time.length - 1] + data.bucket : now;
  let csvUrl = null;

  function update(u) {
    const lo = u.scales.x.min;
    const hi = u.scales.x.max;
    let n = 0, total = 0, arrhenius = 0, min = null, max = null;
    const rows = ["bucket_start,location_id,known_minutes,min_degC,mean_degC,max_degC"];
    data.time.forEach((t, i) => {
      if (t + data.bucket <= lo || t >= hi) return;
      const stay = stayAt(data.stays, t);
      const mean = data.mean[i];
      rows.push([new Date(t * 1000).toISOString(), stay ? csvCell(stay.location) : "",
        (data.known[i] / 60).toFixed(1), cell(data.min[i]), cell(mean), cell(data.max[i])].join(","));
      if (mean === null) return;
      const w = data.known[i];
      n += w;
      total += w * mean;
      arrhenius += w * Math.exp(-10000 / (mean + 273.15));
      min = min === null ? data.min[i] : Math.min(min, data.min[i]);
      max = max === null ? data.max[i] : Math.max(max, data.max[i]);
    });
    const stats = {
      min: celsius(min), max: celsius(max), mean: n ? celsius(total / n) : "—",
      mkt: n ? celsius(10000 / -Math.log(arrhenius / n) - 273.15) : "—",
    };
    for (const [key, value] of Object.entries(stats)) {
      const c = holder.querySelector(`[data-stat="${key}"]`);
      if (c) c.textContent = value;
    }
    shown.textContent = `${format(lo)} – ${format(hi)} (${data.timezone})`;
    if (csvUrl) URL.revokeObjectURL(csvUrl);
    csvUrl = URL.createObjectURL(new Blob([rows.join("\n") + "\n"], { type: "text/csv" }));
    csv.href = csvUrl;
    holder.dataset.loaded = String(Number(holder.dataset.loaded || 0) + 1);
  }

  const opts = {
    width: Math.max(box.clientWidth, 280),
    height: 320,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), data.timezone),
    scales: { x: { time: true }, y: { range: yRange(limits) } },
    axes: [
      { stroke: "#5d6670", grid: { stroke: "#e6e9ed" }, values: timeTicks(data.timezone), size: 48 },
      { stroke: "#5d6670", grid: { stroke: "#e6e9ed" }, label: "°C", size: 56,
        values: (u, ticks) => ticks.map((v) => v.toFixed(1)) },
    ],
    series: [
      { label: `time (${data.timezone})`, value: (u, v) => (v === null || v === undefined ? "—" : format(v)) },
      { label: "mean", stroke: COLOURS[0], width: 1.5, spanGaps: false, value: (u, v) => celsius(v) },
      { label: "min", stroke: COLOURS[1], width: 1, dash: [2, 3], spanGaps: false, value: (u, v) => celsius(v) },
      { label: "max", stroke: "#b3261e", width: 1, dash: [2, 3], spanGaps: false, value: (u, v) => celsius(v) },
    ],
    cursor: { drag: { x: true, y: false } },
    hooks: {
      drawClear: [(u) => shadeIntervals(u, shaded)],
      draw: [(u) => { drawLimits(u, limits); drawStays(u, data.stays); }],
      setScale: [(u, key) => { if (key === "x") update(u); }],
    },
  };
  // each bucket drawn at its middle: the hour 09:00-10:00 is the point at 09:30
  const middles = data.time.map((t) => t + data.bucket / 2);
  const chart = new uPlot(opts, [middles, data.mean, data.min, data.max], box);
  chart.setScale("x", { min: first, max: last }); // the last bucket to its end, not its start
  holder.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    const lo = chart.scales.x.min;
    const hi = chart.scales.x.max;
    if (button.dataset.reset) chart.setScale("x", { min: first, max: last });
    else if (button.dataset.pan) {
      const shift = (hi - lo) * Number(button.dataset.pan);
      chart.setScale("x", { min: lo + shift, max: hi + shift });
    }
  });
  window.addEventListener("resize", () => chart.setSize({ width: Math.max(box.clientWidth, 280), height: 320 }));
}

function cell(v) {
  return v === null || v === undefined ? "" : String(v);
}

function csvCell(text) {
  const safe = /^[=+\-@\t\r\n]/.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

document.addEventListener("DOMContentLoaded", () => {
  if (!window.uPlot) return;
  for (const section of document.querySelectorAll("section.unit-history")) unitHistory(section);
  for (const holder of document.querySelectorAll(".lot-exposure[data-exposure]")) lotExposure(holder);
});
