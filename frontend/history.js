// The History section of the detail panel: "was it down last night?" as a picture. A timeline of
// the last 24 h / 7 d / 30 d (online, unreachable, offline periods as coloured bars, ringing and
// in-use moments as marks, the availability share), a round-trip-time chart over the same window
// and the raw events, newest first, paged with the API's cursor.

import { api, seg } from "./api.js";
import { between, clock, duration, el, percent, when } from "./dom.js";
import { rttChart, timeline } from "./charts.js";

export const WINDOWS = { "24h": ["24 h", 1], "7d": ["7 d", 7], "30d": ["30 d", 30] };
const CHART_PAGES = 3; // at most 3,000 events feed the marks and the RTT chart
const EVENTS_PAGE = 50;
const MARKS = {
  Ringing: ["ringing", "Ringing"],
  "Ring+Inuse": ["ringing", "Ringing"],
  "In use": ["inuse", "In use"],
  Busy: ["inuse", "Busy"],
  "On Hold": ["hold", "On hold"],
};
const KIND_WORDS = {
  registered: "Registered",
  unregistered: "Unregistered",
  reachable: "Reachable",
  unreachable: "Unreachable",
  rtt: "Round-trip time",
  device_state: "Device state",
  flapping_started: "Flapping started",
  flapping_stopped: "Flapping stopped",
  ami_connected: "AMI connected",
  ami_lost: "AMI lost",
  ami_hung: "AMI not answering",
  ami_reconnected: "AMI reconnected",
  config_loaded: "pjsip.conf loaded",
  config_rejected: "pjsip.conf rejected",
};
const LEGEND = [
  ["online", "online"],
  ["unreachable", "unreachable"],
  ["offline", "offline"],
  ["unknown", "no data"],
];

function secondsText(a) {
  const unreachable = a.unreachable_seconds
    ? ` (unreachable ${duration(a.unreachable_seconds)})`
    : "";
  return (
    `online ${duration(a.online_seconds)}, offline ${duration(a.offline_seconds)}${unreachable}, ` +
    `no data ${duration(a.unknown_seconds)}`
  );
}

const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;

export function kindWord(kind) {
  return KIND_WORDS[kind] ?? kind;
}

// One line for an event's data: the fields a person reads first, then the rest.
export function eventSummary(event) {
  const data = event.data ?? {};
  const parts = [];
  if (event.kind === "device_state") {
    parts.push(data.previous ? `${data.previous} → ${data.state}` : String(data.state ?? ""));
  }
  const rtt = (us) => `${(Number(us) / 1000).toFixed(1)} ms`;
  for (const [key, value] of Object.entries(data)) {
    if (value == null || value === "" || ["state", "previous", "initial", "online"].includes(key))
      continue;
    if (key === "aor" && value === event.endpoint) continue; // the usual case says nothing
    if (typeof value === "object") continue;
    if (key === "rtt_us" || key === "previous_rtt_us")
      parts.push(`${key === "rtt_us" ? "RTT" : "was"} ${rtt(value)}`);
    else if (key === "reg_expire") parts.push(`expires ${clock(new Date(Number(value) * 1000))}`);
    else parts.push(`${key.replace(/_/g, " ")}: ${value}`);
  }
  return parts.join(" · ");
}

export function eventsTable(events, { withExtension = false } = {}) {
  const tbody = el("tbody");
  appendEvents(tbody, events, withExtension);
  return el(
    "table",
    { class: "events" },
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { scope: "col", text: "Time" }),
        withExtension ? el("th", { scope: "col", text: "Extension" }) : null,
        el("th", { scope: "col", text: "Event" }),
        el("th", { scope: "col", text: "Details" }),
      ),
    ),
    tbody,
  );
}

export function appendEvents(tbody, events, withExtension = false) {
  for (const event of events) {
    tbody.append(
      el(
        "tr",
        { "data-kind": event.kind },
        el("td", { class: "nowrap", text: when(event.occurred_at) }),
        withExtension ? el("td", { text: event.endpoint ?? "PBX" }) : null,
        el("td", { text: kindWord(event.kind) }),
        el("td", { text: eventSummary(event) }),
      ),
    );
  }
}

export class HistorySection {
  constructor(ext) {
    this.ext = ext;
    this.window = "24h";
    this.fit = false; // draw only the recorded part of the window (a short gap becomes wide)
    this.data = null; // what the charts were last drawn from
    this.seq = 0;
    this.cursor = null;
    this.paged = false;
    this.timer = null;
    this.root = this.skeleton();
  }

  skeleton() {
    const id = "history-title";
    const buttons = Object.entries(WINDOWS).map(([key, [word]]) => {
      const button = el("button", {
        type: "button",
        "data-window": key,
        "aria-pressed": String(key === this.window),
        text: word,
      });
      button.addEventListener("click", () => this.setWindow(key));
      return button;
    });
    this.zoom = el("button", {
      type: "button",
      class: "zoom",
      "aria-pressed": "false",
      title: "Stretch the charts over the part of the window that has data",
      text: "Zoom to recorded data",
    });
    this.zoom.addEventListener("click", () => {
      this.fit = !this.fit;
      this.zoom.setAttribute("aria-pressed", String(this.fit));
      if (this.data) this.draw(this.data);
    });
    this.status = el("p", { class: "muted history-status", "aria-live": "polite" });
    this.summary = el("p", { class: "availability" });
    this.chart = el("div", { class: "chart-box" });
    this.outages = el("div", { class: "outages" });
    this.rtt = el("div", { class: "chart-box" });
    this.tbody = null;
    this.events = el("div", { class: "events-box" });
    this.more = el("button", { type: "button", class: "small", text: "Older events" });
    this.more.hidden = true;
    this.more.addEventListener("click", () => this.loadEvents(false));
    const legend = el(
      "ul",
      { class: "chart-legend", "aria-label": "Legend" },
      ...LEGEND.map(([state, word]) =>
        el("li", {}, el("span", { class: `swatch tl-${state}` }), word),
      ),
      el("li", {}, el("span", { class: "swatch dm-ringing" }), "ringing"),
      el("li", {}, el("span", { class: "swatch dm-inuse" }), "in use"),
    );
    return el(
      "section",
      { class: "history", "aria-labelledby": id },
      el("h3", { id, text: "History" }),
      el(
        "div",
        { class: "history-controls" },
        el("div", { class: "segmented", role: "group", "aria-label": "Time window" }, ...buttons),
        this.zoom,
      ),
      this.status,
      this.summary,
      this.chart,
      legend,
      this.outages,
      el("h4", { text: "Round-trip time" }),
      this.rtt,
      el("h4", { text: "Events (newest first)" }),
      this.events,
      this.more,
    );
  }

  setWindow(key) {
    if (!WINDOWS[key] || key === this.window) return;
    this.window = key;
    for (const button of this.root.querySelectorAll("[data-window]")) {
      button.setAttribute("aria-pressed", String(button.dataset.window === key));
    }
    this.load();
  }

  bounds() {
    const until = new Date();
    const since = new Date(until.getTime() - WINDOWS[this.window][1] * 86_400_000);
    return { since, until };
  }

  // Refetch a moment after a live change of this extension (bursts cost one refetch).
  refreshSoon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load({ keepEvents: this.paged }), 1500);
  }

  stop() {
    clearTimeout(this.timer);
    this.seq += 1;
  }

  async load({ keepEvents = false } = {}) {
    const seq = ++this.seq;
    const { since, until } = this.bounds();
    const iso = (date) => encodeURIComponent(date.toISOString());
    const range = `since=${iso(since)}&until=${iso(until)}`;
    const base = `endpoints/${seg(this.ext)}`;
    this.status.className = "muted history-status";
    this.status.textContent = "Loading the history…";
    try {
      const [availability, events] = await Promise.all([
        api(`${base}/availability?${range}`).then((r) => r.body),
        this.chartEvents(`${base}/history?${range}&limit=1000`),
      ]);
      if (seq !== this.seq) return;
      this.data = { availability, events, since, until };
      this.draw(this.data);
      this.status.textContent = "";
    } catch (error) {
      if (seq !== this.seq) return;
      this.status.textContent = `History: ${error.message}`;
      this.status.className = "error history-status";
      return;
    }
    if (!keepEvents) await this.loadEvents(true);
  }

  async chartEvents(path) {
    const events = [];
    let cursor = null;
    for (let page = 0; page < CHART_PAGES; page += 1) {
      const { body } = await api(cursor ? `${path}&cursor=${encodeURIComponent(cursor)}` : path);
      events.push(...body.events);
      cursor = body.next_cursor;
      if (!cursor) break;
    }
    return events;
  }

  // The x range of the charts: the window, or (zoomed) from the first recorded period to now.
  range({ availability, since, until }) {
    if (!this.fit) return { from: since, to: until };
    const known = availability.periods.find((p) => p.state !== "unknown");
    const from = known ? new Date(known.start) : since;
    return { from: until - from < 10_000 ? new Date(until - 10_000) : from, to: until };
  }

  draw(data) {
    const { availability, events } = data;
    const { from: since, to: until } = this.range(data);
    const windowWord = WINDOWS[this.window][0];
    const outages = availability.periods.filter(
      (p) => p.state === "offline" || p.state === "unreachable",
    );
    const share = availability.availability;
    const down = outages.reduce((sum, p) => sum + p.seconds, 0);
    this.summary.replaceChildren(
      el("strong", {
        class: "share",
        text: share == null ? "No data" : `${percent(share)} available`,
      }),
      ` over the last ${windowWord}: ${secondsText(availability)}.`,
    );
    const marks = [];
    const points = [];
    for (const event of events) {
      const at = new Date(event.occurred_at);
      if (at < since) continue;
      if (event.kind === "device_state" && MARKS[event.data?.state]) {
        const [state, word] = MARKS[event.data.state];
        marks.push({ at, state, word });
      }
      const us = event.data?.rtt_us;
      if (typeof us === "number" && Number.isFinite(us)) points.push({ at, ms: us / 1000 });
    }
    const shown = this.fit
      ? `${windowWord} (zoomed to the recorded part, from ${when(since.toISOString())})`
      : windowWord;
    const label =
      `Availability timeline of ${this.ext}, last ${shown}: ` +
      (share == null ? "no data" : `${percent(share)} available`) +
      `; ${plural(outages.length, "outage")}${outages.length ? ` (${duration(down)} in all)` : ""}` +
      `; ${plural(marks.length, "ringing or in-use moment")}.`;
    const periods = availability.periods
      .filter((p) => new Date(p.end) > since)
      .map((p) => (new Date(p.start) < since ? { ...p, start: since.toISOString() } : p));
    this.chart.replaceChildren(timeline({ since, until, periods, marks, label }));
    this.drawOutages(outages);
    if (points.length) {
      const max = Math.max(...points.map((p) => p.ms));
      this.rtt.replaceChildren(
        rttChart({
          since,
          until,
          points,
          label:
            `Round-trip times of ${this.ext}, last ${windowWord}: ` +
            `${plural(points.length, "sample")}, up to ${max.toFixed(1)} ms.`,
        }),
      );
    } else {
      this.rtt.replaceChildren(
        el("p", {
          class: "muted",
          text: "No round-trip times in this window (Asterisk measures them only for contacts it qualifies).",
        }),
      );
    }
  }

  drawOutages(outages) {
    if (!outages.length) {
      this.outages.replaceChildren(el("p", { class: "muted", text: "No outage in this window." }));
      return;
    }
    const newest = [...outages].reverse();
    const list = el(
      "ul",
      { class: "outage-list", "aria-label": "Outages, newest first" },
      ...newest
        .slice(0, 10)
        .map((p) =>
          el(
            "li",
            { "data-state": p.state },
            el("span", { class: `swatch tl-${p.state}` }),
            `${p.state === "unreachable" ? "Unreachable" : "Offline"} ${between(p.start, p.end)} (${duration(p.seconds)})`,
          ),
        ),
    );
    const parts = [list];
    if (newest.length > 10)
      parts.push(el("p", { class: "muted", text: `and ${newest.length - 10} earlier` }));
    this.outages.replaceChildren(...parts);
  }

  async loadEvents(reset) {
    const seq = this.seq;
    const { since } = this.bounds();
    let path = `endpoints/${seg(this.ext)}/history?since=${encodeURIComponent(since.toISOString())}&limit=${EVENTS_PAGE}`;
    if (!reset && this.cursor) path += `&cursor=${encodeURIComponent(this.cursor)}`;
    this.more.disabled = true;
    try {
      const { body } = await api(path);
      if (seq !== this.seq) return;
      if (reset || !this.tbody) {
        const table = eventsTable(body.events);
        this.tbody = table.querySelector("tbody");
        this.events.replaceChildren(
          body.events.length
            ? table
            : el("p", { class: "muted", text: "No events in this window." }),
        );
        this.paged = false;
      } else {
        appendEvents(this.tbody, body.events);
        this.paged = true;
      }
      this.cursor = body.next_cursor;
      this.more.hidden = !this.cursor;
    } catch (error) {
      if (seq === this.seq)
        this.events.replaceChildren(el("p", { class: "error", text: `Events: ${error.message}` }));
    } finally {
      this.more.disabled = false;
    }
  }
}
