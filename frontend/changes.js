// "Recent changes": what happened on the whole PBX (GET /history) for everyone, and for admins
// the audit of every attempted change (GET /audit) and the config versions with their diff and
// an undo (POST /config/versions/{id}/revert, previewed and confirmed first).

import { api } from "./api.js";
import { $, diffView, el, openDialog, when, wireDialog } from "./dom.js";
import { appendEvents, eventsTable } from "./history.js";
import { confirmChange } from "./change.js";

const PAGE = 50;
const TABS = ["events", "audit", "versions"];
let admin = false;
let hooks = { reverted: () => {} };
let cursors = {};

export function initChanges(callbacks) {
  hooks = callbacks;
  wireDialog($("changes"));
  for (const tab of TABS) {
    $(`tab-${tab}`).addEventListener("click", () => select(tab));
  }
  $("changes-tabs").addEventListener("keydown", (event) => {
    if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
    const shown = TABS.filter((t) => !$(`tab-${t}`).hidden);
    const at = shown.indexOf(
      TABS.find((t) => $(`tab-${t}`).getAttribute("aria-selected") === "true"),
    );
    const next = shown[(at + (event.key === "ArrowRight" ? 1 : shown.length - 1)) % shown.length];
    select(next);
    $(`tab-${next}`).focus();
  });
}

export function setAdmin(canWrite) {
  admin = canWrite;
  $("tab-audit").hidden = !canWrite;
  $("tab-versions").hidden = !canWrite;
}

export function openChanges(opener, tab = "events") {
  openDialog($("changes"), opener);
  select(admin || tab === "events" ? tab : "events");
}

function select(tab) {
  for (const name of TABS) {
    const active = name === tab;
    $(`tab-${name}`).setAttribute("aria-selected", String(active));
    $(`tab-${name}`).tabIndex = active ? 0 : -1;
    $(`panel-${name}`).hidden = !active;
  }
  cursors = {};
  if (tab === "events") loadEvents(true);
  else if (tab === "audit") loadAudit(true);
  else loadVersions(true);
}

function pager(name, load) {
  const button = el("button", { type: "button", class: "small older", text: "Older" });
  button.hidden = !cursors[name];
  button.addEventListener("click", () => load(false));
  return button;
}

async function page(name, path, reset) {
  const cursor = reset ? null : cursors[name];
  const separator = path.includes("?") ? "&" : "?";
  const { response, body } = await api(
    `${path}${separator}limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
  );
  cursors[name] = body.next_cursor;
  return { response, body };
}

function failed(panel, error) {
  panel.replaceChildren(el("p", { class: "error", role: "alert", text: error.message }));
}

async function loadEvents(reset) {
  const panel = $("panel-events");
  try {
    const { body } = await page("events", "history", reset);
    if (reset) {
      const table = eventsTable(body.events, { withExtension: true });
      panel.replaceChildren(
        body.events.length ? table : el("p", { class: "muted", text: "Nothing recorded yet." }),
        pager("events", loadEvents),
      );
    } else {
      appendEvents(panel.querySelector("tbody"), body.events, true);
      panel.querySelector("button.older").hidden = !cursors.events;
    }
  } catch (error) {
    failed(panel, error);
  }
}

async function loadAudit(reset) {
  const panel = $("panel-audit");
  try {
    const { body } = await page("audit", "audit", reset);
    const rows = body.entries.map((entry) =>
      el(
        "tr",
        { class: `result-${entry.result}` },
        el("td", { class: "nowrap", text: when(entry.occurred_at) }),
        el("td", { text: `${entry.who} (${entry.role})` }),
        el("td", { text: `${entry.operation} ${entry.object_type} ${entry.object_id}` }),
        el("td", { text: entry.result.replace("_", " ") }),
        el(
          "td",
          {},
          entry.detail ? el("span", { text: entry.detail }) : null,
          entry.diff
            ? el(
                "details",
                {},
                el("summary", { text: "diff" }),
                diffView({ [entry.object_id]: entry.diff }),
              )
            : null,
        ),
      ),
    );
    if (reset) {
      const table = el(
        "table",
        { class: "events" },
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ...["Time", "Who", "What", "Result", "Details"].map((t) =>
              el("th", { scope: "col", text: t }),
            ),
          ),
        ),
        el("tbody", {}, ...rows),
      );
      panel.replaceChildren(
        rows.length ? table : el("p", { class: "muted", text: "No change attempted yet." }),
        pager("audit", loadAudit),
      );
    } else {
      panel.querySelector("tbody").append(...rows);
      panel.querySelector("button.older").hidden = !cursors.audit;
    }
  } catch (error) {
    failed(panel, error);
  }
}

async function loadVersions(reset) {
  const panel = $("panel-versions");
  try {
    const { body } = await page("versions", "config/versions", reset);
    const rows = body.versions.map((version) => versionRow(version));
    if (reset) {
      const list = el("ul", { class: "versions" }, ...rows);
      panel.replaceChildren(
        rows.length ? list : el("p", { class: "muted", text: "No change applied yet." }),
        pager("versions", loadVersions),
      );
    } else {
      panel.querySelector("ul.versions").append(...rows);
      panel.querySelector("button.older").hidden = !cursors.versions;
    }
  } catch (error) {
    failed(panel, error);
  }
}

function versionRow(version) {
  const diffBox = el("div", { class: "version-diff" });
  const show = el("button", {
    type: "button",
    class: "small",
    "aria-expanded": "false",
    text: "Show diff",
  });
  show.addEventListener("click", async () => {
    if (show.getAttribute("aria-expanded") === "true") {
      diffBox.replaceChildren();
      show.setAttribute("aria-expanded", "false");
      show.textContent = "Show diff";
      return;
    }
    try {
      const { body } = await api(`config/versions/${version.id}`);
      diffBox.replaceChildren(diffView({ [`version ${version.id}`]: body.diff ?? "" }));
      show.setAttribute("aria-expanded", "true");
      show.textContent = "Hide diff";
    } catch (error) {
      diffBox.replaceChildren(el("p", { class: "error", text: error.message }));
    }
  });
  const undo = el("button", { type: "button", class: "small danger", text: "Revert…" });
  undo.addEventListener("click", () => confirmRevert(version));
  return el(
    "li",
    { "data-version": String(version.id) },
    el(
      "div",
      { class: "version-head" },
      el("strong", { text: `#${version.id}` }),
      el("span", { text: ` ${when(version.created_at)} · ${version.author} · ${version.reason}` }),
      show,
      undo,
    ),
    diffBox,
  );
}

function confirmRevert(version) {
  confirmChange({
    title: `Revert config version ${version.id}`,
    intro:
      `The files "${version.reason}" touched are put back as they were before it, checked, ` +
      "reloaded and read back like any change.",
    confirmLabel: `Revert version ${version.id}`,
    etag: async () => (await api("config/versions?limit=1")).response.headers.get("ETag"),
    request: (dryRun, ifMatch) =>
      api(`config/versions/${version.id}/revert${dryRun ? "?dry_run=true" : ""}`, {
        method: "POST",
        headers: ifMatch ? { "If-Match": ifMatch } : {},
      }),
    doneText: (result) =>
      `Reverted version ${version.id}: the files are as before it (now version ${result.version}).`,
    done: (result) => {
      hooks.reverted(result);
      if (!$("changes").open) return;
      loadVersions(true);
    },
  });
}
