// ISPBX Manager dashboard: a live board of PJSIP extensions.
// No framework, no build step. Data from the API is only ever written with textContent.

const PAGE_SIZE = 100;
const POLL_MS = 5000;
const BACKOFF_MAX_S = 60;
const TOKEN_KEY = "ispbx.token";
const IN_CALL = new Set(["In use", "Busy", "Ringing", "Ring+Inuse", "On Hold"]);
const STATES = {
  "Not in use": "idle",
  "In use": "in use",
  Busy: "in use",
  Ringing: "ringing",
  "Ring+Inuse": "ringing",
  "On Hold": "on hold",
  Unavailable: "unavailable",
  Invalid: "unavailable",
  Unknown: "unknown",
};
const SORTS = ["ext", "name", "status", "state", "contacts", "client", "rtt", "drift"];
// AMI field names as responses spell them (lower-cased) → what the detail panel shows. A field
// not listed here shows its own name.
const LABELS = {
  objecttype: "Type",
  objectname: "Name",
  devicestate: "Device state",
  activechannels: "Active channels",
  context: "Context",
  callerid: "Caller ID",
  transport: "Transport",
  aor: "AOR",
  aors: "AORs",
  auth: "Auth",
  auths: "Auths",
  outboundauth: "Outbound auth",
  outboundauths: "Outbound auths",
  contacts: "Contacts",
  allow: "Codecs",
  directmedia: "Direct media",
  mailboxes: "Mailboxes",
  setvar: "Channel variables",
  username: "Username",
  authtype: "Auth type",
  password: "Password",
  md5cred: "MD5 credentials",
  realm: "Realm",
  maxcontacts: "Max contacts",
  contactsregistered: "Contacts registered",
  totalcontacts: "Total contacts",
  endpointname: "Endpoint",
  qualifyfrequency: "Qualify frequency (s)",
  qualifytimeout: "Qualify timeout (s)",
  removeexisting: "Remove existing",
  defaultexpiration: "Default expiration (s)",
  uri: "URI",
  status: "Status",
  useragent: "User agent",
  viaaddress: "Via address",
  roundtripusec: "Round-trip time",
  regexpire: "Registration expires",
  callid: "Call-ID",
  id: "ID",
};
const NO_QUALIFY_HELP =
  "Not qualified: Asterisk sends this contact no OPTIONS (qualify_frequency = 0), so there is " +
  "no round-trip time, and it stays online until its registration expires even if the phone " +
  "is gone. This is Asterisk's own view; set qualify_frequency on the AOR to notice a vanished " +
  "phone sooner.";
const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

const $ = (id) => document.getElementById(id);
// The API lives one level above /ui/ (also behind a reverse proxy's path prefix).
const API = new URL("../", location.href);
const apiUrl = (path) => new URL(path, API).href;

// ---------------------------------------------------------------- state

const state = {
  token: null,
  rows: new Map(), // extension -> row of GET /endpoints
  envelope: { ami_connected: true, synced: true, stale_since: null, config_error: null },
  etag: null,
  lastUpdate: null,
  view: { q: "", status: "", sort: "ext", dir: "asc", page: 1, ext: "" },
  link: "connecting", // live | polling | unreachable | connecting
};
let source = null; // EventSource
let pollTimer = null;
let countdownTimer = null;
let backoff = 0; // seconds; 0 while the server is reachable
let renderQueued = false;
let sortedCache = null;
let detailSeq = 0;
let detailRefresh = null;

// ---------------------------------------------------------------- helpers

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child != null) node.append(child);
  }
  return node;
}

const pad = (n) => String(n).padStart(2, "0");
function clock(date) {
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

export function callerName(callerid) {
  if (!callerid) return "";
  const quoted = /^\s*"((?:[^"\\]|\\.)*)"/.exec(callerid);
  if (quoted) return quoted[1].replace(/\\(.)/g, "$1");
  const bare = /^\s*([^<]*?)\s*</.exec(callerid);
  if (bare) return bare[1];
  return callerid.trim();
}

export function deviceState(devicestate) {
  if (!devicestate) return "unknown";
  return STATES[devicestate] ?? devicestate.toLowerCase();
}

function contactAddress(contact) {
  if (contact.viaaddress) return contact.viaaddress;
  const match = /^sips?:(?:[^@;]*@)?([^;>]+)/.exec(contact.uri || "");
  return match ? match[1] : "";
}

function label(key) {
  return LABELS[key] ?? key;
}

function expiresAt(regexpire) {
  const seconds = Number(regexpire);
  if (!regexpire || !Number.isFinite(seconds) || seconds <= 0) return null;
  return new Date(seconds * 1000);
}

function unqualified(contact) {
  return contact.status === "NonQualified" || contact.roundtripusec === "N/A";
}

function noQualifyTitle(contact) {
  const at = expiresAt(contact?.regexpire);
  return at ? `${NO_QUALIFY_HELP} Registration expires at ${clock(at)}.` : NO_QUALIFY_HELP;
}

function rttMs(contact) {
  const usec = Number(contact?.roundtripusec);
  if (!contact || !Number.isFinite(usec) || contact.roundtripusec === "") return null;
  return usec / 1000;
}

function registered(row) {
  const count = Number(row.aor?.contactsregistered);
  return Number.isFinite(count) ? count : row.contacts.length;
}

function drift(row) {
  const marks = [];
  if (row.exists_in_config === false) marks.push(["not in pjsip.conf", "drift"]);
  else if (row.exists_in_config == null) marks.push(["config unknown", "unknown"]);
  if (row.in_asterisk === false) marks.push(["not loaded in Asterisk", "drift"]);
  else if (row.in_asterisk == null) marks.push(["Asterisk unknown", "unknown"]);
  return marks;
}

function fold(text) {
  return text.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
}

const searchText = new WeakMap(); // row -> folded "extension callerid"
function haystack(row) {
  let text = searchText.get(row);
  if (text === undefined) {
    text = fold(`${row.extension} ${row.callerid ?? ""}`);
    searchText.set(row, text);
  }
  return text;
}

// ---------------------------------------------------------------- URL view state

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  }
  const sort = params.get("sort");
  const status = params.get("status");
  state.view = {
    q: params.get("q") ?? "",
    status: status === "online" || status === "offline" ? status : "",
    sort: SORTS.includes(sort) ? sort : "ext",
    dir: params.get("dir") === "desc" ? "desc" : "asc",
    page: Math.max(1, parseInt(params.get("page") ?? "1", 10) || 1),
    ext: params.get("ext") ?? "",
  };
  return token;
}

function writeHash() {
  const v = state.view;
  const params = new URLSearchParams();
  if (v.q) params.set("q", v.q);
  if (v.status) params.set("status", v.status);
  if (v.sort !== "ext" || v.dir !== "asc") {
    params.set("sort", v.sort);
    params.set("dir", v.dir);
  }
  if (v.page > 1) params.set("page", String(v.page));
  if (v.ext) params.set("ext", v.ext);
  const hash = params.toString();
  history.replaceState(null, "", location.pathname + location.search + (hash ? `#${hash}` : ""));
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(path, headers = {}) {
  const response = await fetch(apiUrl(path), {
    headers: { Authorization: `Bearer ${state.token}`, Accept: "application/json", ...headers },
    cache: "no-store",
  });
  if (response.status === 401) {
    askToken("The token was not accepted. Enter a valid API token.");
    throw new ApiError(401, "Unauthorized");
  }
  if (response.status === 304) return { response, body: null };
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const detail = typeof body?.detail === "string" ? body.detail : `HTTP ${response.status}`;
    throw new ApiError(response.status, detail);
  }
  return { response, body };
}

function isUnreachable(error) {
  return !(error instanceof ApiError) || [502, 503, 504].includes(error.status);
}

async function loadList() {
  const headers = state.etag ? { "If-None-Match": state.etag } : {};
  const { response, body } = await api("endpoints", headers);
  if (body) {
    state.etag = response.headers.get("ETag");
    state.rows = new Map(body.endpoints.map((row) => [row.extension, row]));
    setEnvelope(body);
    sortedCache = null;
    refreshDetailSoon();
  }
  touched();
}

// ---------------------------------------------------------------- live updates

function startStream() {
  stopStream();
  const es = new EventSource(apiUrl(`events?token=${encodeURIComponent(state.token)}`));
  source = es;
  let opened = false;
  es.onopen = () => {
    opened = true;
    backoff = 0;
    clearPoll();
    setLink("live");
  };
  es.onerror = () => {
    if (source !== es) return;
    stopStream();
    if (state.link === "live") setLink("polling");
    // A stream that was up and broke: check the server now. One that never opened: the
    // regular poll is already due.
    if (!pollTimer) schedulePoll(opened ? 0 : POLL_MS);
  };
  const on = (kind, handler) =>
    es.addEventListener(kind, (event) => {
      if (source !== es) return;
      try {
        handler(JSON.parse(event.data));
      } catch (error) {
        showError(`Bad ${kind} event: ${error.message}`);
      }
    });
  on("endpoint", (row) => {
    state.rows.set(row.extension, row);
    sortedCache = null;
    touched();
    if (row.extension === state.view.ext) refreshDetailSoon();
  });
  on("removed", ({ extension }) => {
    state.rows.delete(extension);
    sortedCache = null;
    touched();
    if (extension === state.view.ext) refreshDetailSoon();
  });
  on("status", (envelope) => {
    setEnvelope(envelope);
    touched();
  });
  on("reset", () => {
    loadList().catch(handleFailure);
  });
}

function stopStream() {
  if (source) {
    source.onerror = null;
    source.close();
    source = null;
  }
}

function clearPoll() {
  clearTimeout(pollTimer);
  clearInterval(countdownTimer);
  pollTimer = null;
  countdownTimer = null;
  $("unreachable").hidden = true;
}

function schedulePoll(ms) {
  clearTimeout(pollTimer);
  clearInterval(countdownTimer);
  countdownTimer = null;
  pollTimer = setTimeout(poll, ms);
}

async function poll() {
  pollTimer = null;
  if (!state.token) return;
  try {
    await loadList();
  } catch (error) {
    handleFailure(error);
    return;
  }
  // Reachable again (or still): keep polling every 5 s until the stream is back up.
  backoff = 0;
  $("unreachable").hidden = true;
  if (state.link !== "live") setLink("polling");
  schedulePoll(POLL_MS);
  if (!source) startStream();
}

function handleFailure(error) {
  if (error instanceof ApiError && error.status === 401) return;
  if (isUnreachable(error)) {
    stopStream();
    backoff = backoff ? Math.min(backoff * 2, BACKOFF_MAX_S) : POLL_MS / 1000;
    setLink("unreachable");
    countdown(backoff);
  } else {
    showError(error.message);
    if (!source && !pollTimer) schedulePoll(POLL_MS);
  }
}

function countdown(seconds) {
  schedulePoll(seconds * 1000);
  const due = Date.now() + seconds * 1000;
  const show = () => {
    const left = Math.max(0, Math.ceil((due - Date.now()) / 1000));
    $("unreachable-text").textContent = `Server unreachable — retrying in ${left} s`;
  };
  show();
  $("unreachable").hidden = false;
  countdownTimer = setInterval(show, 1000);
}

// ---------------------------------------------------------------- summary and banners

function setEnvelope(envelope) {
  state.envelope = {
    ami_connected: envelope.ami_connected,
    synced: envelope.synced !== false,
    stale_since: envelope.stale_since ?? null,
    config_error: envelope.config_error ?? null,
  };
  queueRender();
}

function setLink(link) {
  state.link = link;
  const text = { live: "live", polling: "polling every 5 s", unreachable: "server unreachable" };
  $("link-state").textContent = text[link] ?? "connecting…";
  $("link-state").className = `link-${link}`;
}

function touched() {
  state.lastUpdate = new Date();
  showError(null);
  queueRender();
}

function showError(message) {
  const banner = $("error-banner");
  banner.hidden = !message;
  banner.textContent = message ? `Error: ${message}` : "";
}

function renderSummary() {
  let online = 0;
  let inCall = 0;
  for (const row of state.rows.values()) {
    if (row.status === "online") online += 1;
    if (IN_CALL.has(row.details?.devicestate)) inCall += 1;
  }
  $("count-online").textContent = String(online);
  $("count-offline").textContent = String(state.rows.size - online);
  $("count-call").textContent = String(inCall);
  const env = state.envelope;
  const since = env.stale_since ? clock(new Date(env.stale_since)) : "?";
  const ami = $("ami-state");
  const never = !env.ami_connected && !env.synced;
  ami.textContent = env.ami_connected
    ? "connected"
    : never
      ? "not reached yet"
      : `reconnecting since ${since}`;
  ami.className = env.ami_connected ? "ok" : "bad";
  $("last-update").textContent = state.lastUpdate ? clock(state.lastUpdate) : "–";

  const amiBanner = $("ami-banner");
  amiBanner.hidden = env.ami_connected !== false;
  amiBanner.textContent = env.ami_connected
    ? ""
    : never
      ? "Asterisk not reached yet — states unknown; extensions shown as pjsip.conf defines them. Retrying."
      : `Asterisk connection lost — states as of ${since}; reconnecting.`;
  const configBanner = $("config-banner");
  configBanner.hidden = !env.config_error;
  configBanner.textContent = env.config_error
    ? `pjsip.conf could not be read: ${env.config_error}`
    : "";
  $("table").classList.toggle("stale", env.ami_connected === false);
}

// ---------------------------------------------------------------- the board

const sortKey = {
  ext: (r) => r.extension,
  name: (r) => callerName(r.callerid),
  status: (r) => r.status,
  state: (r) => deviceState(r.details?.devicestate),
  contacts: (r) => registered(r),
  client: (r) => (r.contacts[0] ? contactAddress(r.contacts[0]) : ""),
  rtt: (r) => rttMs(r.contacts[0]) ?? Infinity,
  drift: (r) => drift(r).length,
};

function visibleRows() {
  if (sortedCache) return sortedCache;
  const { q, status, sort, dir } = state.view;
  const needle = fold(q.trim());
  const key = sortKey[sort];
  const rows = [];
  for (const row of state.rows.values()) {
    if (status && row.status !== status) continue;
    if (needle && !haystack(row).includes(needle)) continue;
    rows.push(row);
  }
  const sign = dir === "desc" ? -1 : 1;
  rows.sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    const c =
      typeof ka === "number" && typeof kb === "number"
        ? ka - kb
        : collator.compare(String(ka), String(kb));
    return sign * c || collator.compare(a.extension, b.extension);
  });
  sortedCache = rows;
  return rows;
}

function rowElement(row) {
  const stateWord = deviceState(row.details?.devicestate);
  const contact = row.contacts[0];
  const more = row.contacts.length > 1 ? ` (+${row.contacts.length - 1})` : "";
  const rtt = rttMs(contact);
  const max = row.aor?.maxcontacts ?? "?";
  const tr = el("tr", { tabindex: "0", "data-ext": row.extension });
  tr.append(
    el("th", { scope: "row", "data-label": "Extension", text: row.extension }),
    el("td", { "data-label": "Caller ID", text: callerName(row.callerid) }),
    el(
      "td",
      { "data-label": "Status" },
      el("span", { class: `badge badge-${row.status}`, text: row.status }),
    ),
    el(
      "td",
      { "data-label": "Device state" },
      el("span", { class: `state state-${stateWord.replace(/\s+/g, "-")}`, text: stateWord }),
    ),
    el("td", { "data-label": "Contacts", text: `${registered(row)} / ${max}` }),
    el(
      "td",
      { "data-label": "Client" },
      contact ? el("span", { class: "addr", text: contactAddress(contact) + more }) : "—",
      contact?.useragent ? el("span", { class: "ua", text: contact.useragent }) : null,
    ),
    el(
      "td",
      { "data-label": "RTT" },
      !contact
        ? "—"
        : rtt == null
          ? el("span", { class: "hint", title: noQualifyTitle(contact), text: "N/A" })
          : `${rtt.toFixed(1)} ms`,
    ),
    el(
      "td",
      { "data-label": "Drift", class: "drift" },
      ...drift(row).map(([text, kind]) => el("span", { class: `mark mark-${kind}`, text })),
    ),
  );
  return tr;
}

// The Drift column and its legend show only while some row drifts.
function renderDrift() {
  const marks = new Set();
  for (const row of state.rows.values()) {
    for (const [text] of drift(row)) marks.add(text);
  }
  const shown = marks.size > 0;
  $("table").classList.toggle("no-drift", !shown);
  const legend = $("drift-legend");
  legend.hidden = !shown;
  for (const item of legend.querySelectorAll("[data-mark]")) {
    item.hidden = !marks.has(item.dataset.mark);
  }
}

function renderBoard() {
  const rows = visibleRows();
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
  const view = state.view;
  if (view.page > pages) view.page = pages;
  const start = (view.page - 1) * PAGE_SIZE;
  const slice = rows.slice(start, start + PAGE_SIZE);

  const focused = document.activeElement?.closest?.("#rows tr")?.dataset.ext;
  const tbody = $("rows");
  const fragment = document.createDocumentFragment();
  for (const row of slice) fragment.append(rowElement(row));
  if (!slice.length) {
    const empty = el("td", { colspan: "8", class: "empty" });
    empty.textContent = state.rows.size ? "No extension matches." : "No extensions.";
    fragment.append(el("tr", {}, empty));
  }
  tbody.replaceChildren(fragment);
  if (focused) tbody.querySelector(`tr[data-ext="${CSS.escape(focused)}"]`)?.focus();

  $("shown").textContent = `${rows.length} of ${state.rows.size} extensions`;
  $("page-info").textContent = `Page ${view.page} of ${pages}`;
  $("prev").disabled = view.page <= 1;
  $("next").disabled = view.page >= pages;
  $("board").querySelector(".pager").hidden = pages <= 1;
  renderDrift();

  for (const th of document.querySelectorAll("thead th[data-sort]")) {
    const active = th.dataset.sort === view.sort;
    if (active) th.setAttribute("aria-sort", view.dir === "asc" ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
  }
}

function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderSummary();
    renderBoard();
  });
}

function changeView(patch) {
  Object.assign(state.view, patch);
  sortedCache = null;
  writeHash();
  queueRender();
}

// ---------------------------------------------------------------- detail panel

// ``readable``: AMI fields get labels (``maxcontacts`` → "Max contacts", the field name as a
// tooltip); pjsip.conf options keep their own names, as they are written in the file.
function kvTable(title, object, { readable = true } = {}) {
  const section = el("section", { class: readable ? "kv" : "kv raw" }, el("h3", { text: title }));
  if (!object) {
    section.append(el("p", { class: "muted", text: "none" }));
    return section;
  }
  const table = el("table");
  const tbody = el("tbody");
  for (const [key, value] of Object.entries(object)) {
    const th = readable
      ? el("th", { scope: "row", title: key, text: label(key) })
      : el("th", { scope: "row", text: key });
    tbody.append(el("tr", {}, th, el("td", { text: shownValue(key, value) })));
  }
  table.append(tbody);
  section.append(table);
  return section;
}

function shownValue(key, value) {
  if (value == null) return "";
  if (key === "regexpire") {
    const at = expiresAt(value);
    return at ? `${at.toLocaleString()} (${value})` : String(value);
  }
  if (key === "roundtripusec" && value !== "N/A" && Number.isFinite(Number(value))) {
    return `${(Number(value) / 1000).toFixed(1)} ms`;
  }
  return String(value);
}

function listTables(title, items) {
  if (!items || !items.length) return [kvTable(title, null)];
  return items.map((item, i) => kvTable(items.length > 1 ? `${title} ${i + 1}` : title, item));
}

// One label/value table per contact: a wide table with a column per field would not fit the
// panel.
function contactsTable(contacts) {
  const section = el("section", { class: "kv contacts" }, el("h3", { text: "Contacts" }));
  if (!contacts?.length) {
    section.append(el("p", { class: "muted", text: "No contact registered." }));
    return section;
  }
  if (contacts.some(unqualified)) {
    section.append(el("p", { class: "note", role: "note", text: NO_QUALIFY_HELP }));
  }
  contacts.forEach((contact, i) => {
    const part = kvTable(contacts.length > 1 ? `Contact ${i + 1}` : "Contact", contact);
    part.querySelector("h3").className = "sub";
    section.append(...part.children);
  });
  return section;
}

async function loadDetail() {
  const ext = state.view.ext;
  if (!ext) return;
  const seq = ++detailSeq;
  const path = `endpoints/${encodeURIComponent(ext)}`;
  const [detail, config] = await Promise.allSettled([api(path), api(`${path}/config`)]);
  if (seq !== detailSeq || ext !== state.view.ext) return;
  const body = $("detail-body");
  const parts = [];
  if (detail.status === "fulfilled") {
    const d = detail.value.body;
    const flags = el(
      "p",
      { class: "flags" },
      ...drift(d).map(([text, kind]) => el("span", { class: `mark mark-${kind}`, text })),
    );
    parts.push(
      flags,
      kvTable("Endpoint", d.details.endpoint),
      ...listTables("Auth", d.details.auths?.length ? d.details.auths : d.details.auth && [d.details.auth]),
      ...listTables("AOR", d.details.aors?.length ? d.details.aors : d.details.aor && [d.details.aor]),
    );
    if (d.details.outbound_auths?.length) parts.push(...listTables("Outbound auth", d.details.outbound_auths));
    parts.push(contactsTable(d.details.contacts));
  } else {
    parts.push(el("p", { class: "error", role: "alert", text: `Endpoint: ${detail.reason.message}` }));
  }
  if (config.status === "fulfilled") {
    parts.push(kvTable("Configuration (pjsip.conf)", config.value.body.config, { readable: false }));
  } else {
    parts.push(el("p", { class: "error", role: "alert", text: `Configuration: ${config.reason.message}` }));
  }
  body.replaceChildren(...parts);
}

function refreshDetailSoon() {
  if (!state.view.ext || $("detail").hidden) return;
  clearTimeout(detailRefresh);
  detailRefresh = setTimeout(() => loadDetail().catch(() => {}), 200);
}

function openDetail(ext, { focus = true } = {}) {
  changeView({ ext });
  $("detail-title").textContent = `Extension ${ext}`;
  $("detail-body").replaceChildren(el("p", { class: "muted", text: "Loading…" }));
  $("detail").hidden = false;
  document.body.classList.add("with-detail");
  if (focus) $("detail-title").focus();
  loadDetail().catch(() => {});
}

function closeDetail() {
  const ext = state.view.ext;
  detailSeq += 1;
  $("detail").hidden = true;
  document.body.classList.remove("with-detail");
  changeView({ ext: "" });
  const row = ext && $("rows").querySelector(`tr[data-ext="${CSS.escape(ext)}"]`);
  if (row) row.focus();
}

// ---------------------------------------------------------------- token

function askToken(message) {
  stopStream();
  clearPoll();
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("board").hidden = true;
  $("detail").hidden = true;
  $("token-form").hidden = false;
  if (message) $("token-message").textContent = message;
  $("token-input").value = "";
  $("token-input").focus();
}

function useToken(token) {
  state.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token-form").hidden = true;
  $("board").hidden = false;
  start();
}

async function start() {
  setLink("connecting");
  backoff = 0;
  if (state.view.ext) openDetail(state.view.ext, { focus: false });
  try {
    await loadList();
  } catch (error) {
    handleFailure(error);
    return;
  }
  if (state.token) startStream();
}

// ---------------------------------------------------------------- wiring

function wire() {
  $("q").value = state.view.q;
  $("status").value = state.view.status;
  $("q").addEventListener("input", (e) => changeView({ q: e.target.value, page: 1 }));
  $("status").addEventListener("change", (e) => changeView({ status: e.target.value, page: 1 }));
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  for (const th of document.querySelectorAll("thead th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const sort = th.dataset.sort;
      const dir = state.view.sort === sort && state.view.dir === "asc" ? "desc" : "asc";
      changeView({ sort, dir, page: 1 });
    });
  }
  $("prev").addEventListener("click", () => changeView({ page: state.view.page - 1 }));
  $("next").addEventListener("click", () => changeView({ page: state.view.page + 1 }));
  const rows = $("rows");
  rows.addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-ext]");
    if (tr) openDetail(tr.dataset.ext);
  });
  rows.addEventListener("keydown", (e) => {
    const tr = e.target.closest("tr[data-ext]");
    if (!tr) return;
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      openDetail(tr.dataset.ext);
    } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const next = e.key === "ArrowDown" ? tr.nextElementSibling : tr.previousElementSibling;
      next?.focus();
    }
  });
  $("detail-close").addEventListener("click", closeDetail);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("detail").hidden) closeDetail();
  });
  $("retry-now").addEventListener("click", () => {
    clearPoll();
    poll();
  });
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = $("token-input").value.trim();
    if (token) useToken(token);
  });
  window.addEventListener("hashchange", () => {
    const token = readHash();
    $("q").value = state.view.q;
    $("status").value = state.view.status;
    sortedCache = null;
    if (token) useToken(token);
    else queueRender();
    if (state.view.ext && state.token) openDetail(state.view.ext, { focus: false });
    else if (!$("detail").hidden) closeDetail();
  });
}

function main() {
  const fromUrl = readHash();
  wire();
  const token = fromUrl || sessionStorage.getItem(TOKEN_KEY);
  if (token) useToken(token);
  else askToken(null);
}

main();
