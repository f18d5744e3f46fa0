// Hand-written SVG charts for the history: an availability timeline and a round-trip-time chart.
// Colours come from CSS classes and geometry from SVG attributes, so nothing needs an inline style
// (the dashboard's CSP allows none). Each chart has a text alternative (role="img", a label and
// a <title> per bar or point).

import { clock, duration, svg } from "./dom.js";

const WIDTH = 540; // user units; the SVG scales to the panel's width
const LEFT = 36; // room for the RTT chart's axis labels; the timeline uses the same x scale
const RIGHT = 8;
const MIN_BAR = 2; // a 4 s outage in a 30-day window still shows
const STATE_WORDS = {
  online: "online",
  offline: "offline",
  unreachable: "unreachable",
  unknown: "no data",
};
// Outages are drawn last, so a short one is never hidden under a neighbour's minimum width.
const DRAW_ORDER = { unknown: 0, online: 1, offline: 2, unreachable: 3 };

function scaleOf(since, until) {
  const t0 = since.getTime();
  const span = Math.max(1, until.getTime() - t0);
  const inner = WIDTH - LEFT - RIGHT;
  return (date) => LEFT + ((date.getTime() - t0) / span) * inner;
}

function span(start, end) {
  const sameDay = start.toDateString() === end.toDateString();
  const day = (d) => d.toLocaleDateString(undefined, { day: "numeric", month: "short" });
  return sameDay
    ? `${clock(start)}–${clock(end)}`
    : `${day(start)} ${clock(start)} – ${day(end)} ${clock(end)}`;
}

// Tick times for the axis: every 3 h for a day, every day for a week, every 5 days for a month.
// Steps in minutes, from 10 s to 5 days; the first that gives at most 8 ticks is used.
const STEPS = [1 / 6, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 7200];

export function ticks(since, until) {
  const minutes = (until - since) / 60_000;
  const step = STEPS.find((s) => minutes / s <= 8) ?? STEPS[STEPS.length - 1];
  const size = step * 60_000;
  // Aligned to local time: whole minutes/hours of the step, midnights for days.
  const offset = since.getTimezoneOffset() * 60_000;
  let first = Math.ceil((since.getTime() - offset) / size) * size + offset;
  if (step >= 1440) {
    const midnight = new Date(since);
    midnight.setHours(24, 0, 0, 0);
    first = midnight.getTime();
  }
  const pad2 = (n) => String(n).padStart(2, "0");
  const label =
    step < 1
      ? (d) => `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`
      : step < 1440
        ? (d) => `${pad2(d.getHours())}:${pad2(d.getMinutes())}`
        : (d) =>
            d.toLocaleDateString(
              undefined,
              step === 1440
                ? { weekday: "short", day: "numeric" }
                : { day: "numeric", month: "short" },
            );
  const out = [];
  let at = new Date(first);
  while (at <= until) {
    out.push({ at, label: label(at) });
    const next = new Date(at);
    // Days differ in length around DST changes: step by calendar days.
    if (step >= 1440) next.setDate(next.getDate() + step / 1440);
    else next.setTime(at.getTime() + size);
    at = next;
  }
  return out;
}

function axis(x, since, until, y) {
  const group = svg("g", { class: "axis" });
  group.append(svg("line", { x1: LEFT, x2: WIDTH - RIGHT, y1: y, y2: y }));
  for (const tick of ticks(since, until)) {
    const at = x(tick.at).toFixed(1);
    group.append(
      svg("line", { x1: at, x2: at, y1: y, y2: y + 4 }),
      svg("text", { x: at, y: y + 15, "text-anchor": "middle", text: tick.label }),
    );
  }
  return group;
}

// periods: [{start, end, state, seconds}] from /availability; marks: [{at: Date, state}] for
// ringing and in-use moments (device_state events).
export function timeline({ since, until, periods, marks, label }) {
  const x = scaleOf(since, until);
  const chart = svg("svg", {
    class: "chart timeline",
    viewBox: `0 0 ${WIDTH} 66`,
    role: "img",
    "aria-label": label,
  });
  chart.append(svg("title", { text: label }));
  const bars = svg("g", { class: "bars" });
  const sorted = [...periods].sort((a, b) => DRAW_ORDER[a.state] - DRAW_ORDER[b.state]);
  for (const period of sorted) {
    const start = new Date(period.start);
    const end = new Date(period.end);
    const x0 = x(start);
    let w = x(end) - x0;
    if (period.state !== "unknown") w = Math.max(w, MIN_BAR);
    if (w <= 0) continue;
    const rect = svg("rect", {
      class: `tl tl-${period.state}`,
      "data-state": period.state,
      "data-start": period.start,
      "data-end": period.end,
      x: Math.min(x0, WIDTH - RIGHT - w).toFixed(2),
      y: 4,
      width: w.toFixed(2),
      height: 24,
    });
    const word = STATE_WORDS[period.state] ?? period.state;
    rect.append(
      svg("title", { text: `${word} ${span(start, end)} (${duration(period.seconds)})` }),
    );
    bars.append(rect);
  }
  chart.append(bars);
  const dots = svg("g", { class: "marks" });
  for (const mark of marks) {
    const at = x(mark.at).toFixed(2);
    const tick = svg("rect", {
      class: `dm dm-${mark.state}`,
      "data-state": mark.state,
      x: (Number(at) - 1.5).toFixed(2),
      y: 31,
      width: 3,
      height: 9,
    });
    tick.append(svg("title", { text: `${mark.word} at ${clock(mark.at)}` }));
    dots.append(tick);
  }
  chart.append(dots, axis(x, since, until, 44));
  return chart;
}

// points: [{at: Date, ms}] (round-trip times from the history events).
export function rttChart({ since, until, points, label }) {
  const x = scaleOf(since, until);
  const top = 8;
  const bottom = 88;
  const max = niceMax(Math.max(...points.map((p) => p.ms), 1));
  const y = (ms) => bottom - (ms / max) * (bottom - top);
  const chart = svg("svg", {
    class: "chart rtt",
    viewBox: `0 0 ${WIDTH} 112`,
    role: "img",
    "aria-label": label,
  });
  chart.append(svg("title", { text: label }));
  const grid = svg("g", { class: "grid" });
  for (const value of [0, max / 2, max]) {
    const at = y(value).toFixed(1);
    grid.append(
      svg("line", { x1: LEFT, x2: WIDTH - RIGHT, y1: at, y2: at }),
      svg("text", {
        x: LEFT - 4,
        y: Number(at) + 3,
        "text-anchor": "end",
        text: `${trim(value)} ms`,
      }),
    );
  }
  chart.append(grid);
  const sorted = [...points].sort((a, b) => a.at - b.at);
  if (sorted.length > 1) {
    const line = sorted.map((p) => `${x(p.at).toFixed(1)},${y(p.ms).toFixed(1)}`).join(" ");
    chart.append(svg("polyline", { class: "rtt-line", points: line }));
  }
  const dots = svg("g", { class: "rtt-points" });
  for (const p of sorted) {
    const dot = svg("circle", { cx: x(p.at).toFixed(1), cy: y(p.ms).toFixed(1), r: 2.5 });
    dot.append(svg("title", { text: `${trim(p.ms)} ms at ${clock(p.at)}` }));
    dots.append(dot);
  }
  chart.append(dots, axis(x, since, until, bottom));
  return chart;
}

function niceMax(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  const steps = [1, 2, 5, 10];
  return power * steps.find((s) => s * power >= value);
}

function trim(ms) {
  return ms >= 10 ? ms.toFixed(0) : ms.toFixed(1).replace(/\.0$/, "");
}
