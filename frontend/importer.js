// Import (admins) and export of extensions as CSV. An import is checked first (the API's dry
// run): a table shows every row as ok or with its error and line; only a file without errors can
// be applied, all rows or none. The export downloads GET /endpoints?format=csv.

import { ApiError, api } from "./api.js";
import {
  $,
  announce,
  diffView,
  el,
  openDialog,
  secretOnce,
  showAlert,
  withoutDryRunPasswords,
  wireDialog,
} from "./dom.js";
import { CONFLICT_TEXT, refusal } from "./change.js";

let hooks = { imported: () => {} };
let checked = null; // {text, rows, etag} of the file last checked

export function initImport(callbacks) {
  hooks = callbacks;
  wireDialog($("importer"), () => {
    checked = null;
  });
  $("import-form").addEventListener("submit", (event) => {
    event.preventDefault();
    check();
  });
  $("import-file").addEventListener("change", () => {
    checked = null;
    $("import-report").replaceChildren();
    $("import-apply").hidden = true;
    $("import-reload").hidden = true;
    showAlert($("import-errors"), null);
  });
  $("import-apply").addEventListener("click", () => apply());
  $("import-reload").addEventListener("click", () => check());
}

export function openImport(opener) {
  $("import-form").reset();
  $("import-report").replaceChildren();
  $("import-apply").hidden = true;
  $("import-reload").hidden = true;
  showAlert($("import-errors"), null);
  checked = null;
  openDialog($("importer"), opener);
}

// Records of a CSV text with the line each ends on, as Python's csv module counts them (the
// API's "line N"); blank records are skipped, as the API skips them.
export function csvRecords(text) {
  const records = [];
  let cells = [];
  let cell = "";
  let quoted = false;
  let line = 1;
  const source = text.replace(/^\ufeff/, "");
  const end = () => {
    cells.push(cell);
    if (cells.some((c) => c.trim())) records.push({ line, cells });
    cells = [];
    cell = "";
  };
  for (let i = 0; i < source.length; i += 1) {
    const ch = source[i];
    if (quoted) {
      if (ch === '"' && source[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (ch === '"') {
        quoted = false;
      } else {
        if (ch === "\n") line += 1;
        cell += ch;
      }
    } else if (ch === '"') {
      quoted = true;
    } else if (ch === ",") {
      cells.push(cell);
      cell = "";
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && source[i + 1] === "\n") i += 1;
      end();
      line += 1;
    } else {
      cell += ch;
    }
  }
  if (cell || cells.length) end();
  return records;
}

function rowsOf(text) {
  const [header, ...records] = csvRecords(text);
  const column = header ? header.cells.map((c) => c.trim()).indexOf("extension") : -1;
  return records.map((r) => ({
    line: r.line,
    extension: column >= 0 ? (r.cells[column] ?? "").trim() : "",
  }));
}

async function check() {
  const file = $("import-file").files[0];
  showAlert($("import-errors"), null);
  $("import-apply").hidden = true;
  $("import-reload").hidden = true;
  if (!file) {
    showAlert($("import-errors"), "Choose a CSV file first.");
    $("import-file").focus();
    return;
  }
  const text = await file.text();
  const rows = rowsOf(text);
  $("import-report").replaceChildren(el("p", { class: "muted", text: "Checking…" }));
  try {
    const { body } = await send(text, true, null);
    checked = { text, rows, etag: body.etag, name: file.name };
    report(rows, new Map(), body);
    $("import-apply").textContent =
      `Import ${rows.length} extension${rows.length === 1 ? "" : "s"}`;
    $("import-apply").hidden = false;
    announce(`${file.name}: all ${rows.length} rows are fine; nothing applied yet`);
    $("import-apply").focus();
  } catch (error) {
    checked = null;
    if (error instanceof ApiError && error.status === 422 && error.fields.length) {
      const byLine = new Map();
      const general = [];
      for (const entry of error.fields) {
        const match = /^line (\d+)$/.exec(String(entry.loc?.[1] ?? ""));
        if (match) {
          const line = Number(match[1]);
          byLine.set(line, [...(byLine.get(line) ?? []), entry.msg]);
        } else {
          general.push(entry.msg);
        }
      }
      report(rows, byLine, null);
      const bad = byLine.size;
      showAlert(
        $("import-errors"),
        bad
          ? `${bad} of ${rows.length} rows have errors: nothing was applied. Fix them and check again.`
          : "The file was refused: nothing was applied.",
        ...(general.length ? [el("ul", {}, ...general.map((m) => el("li", { text: m })))] : []),
      );
    } else {
      $("import-report").replaceChildren();
      const { text: message, extra } = refusal(error);
      showAlert($("import-errors"), message, ...extra);
    }
  }
}

function send(text, dryRun, ifMatch) {
  const headers = { "Content-Type": "text/csv" };
  if (ifMatch) headers["If-Match"] = ifMatch;
  return api(`endpoints/import${dryRun ? "?dry_run=true" : ""}`, {
    method: "POST",
    body: text,
    headers,
  });
}

function report(rows, errors, result) {
  const tbody = el("tbody");
  const known = new Set(rows.map((r) => r.line));
  const all = [...rows];
  for (const line of errors.keys()) if (!known.has(line)) all.push({ line, extension: "" });
  all.sort((a, b) => a.line - b.line);
  for (const row of all) {
    const problems = errors.get(row.line);
    tbody.append(
      el(
        "tr",
        { class: problems ? "bad" : "ok", "data-line": String(row.line) },
        el("td", { text: String(row.line) }),
        el("td", { text: row.extension }),
        el(
          "td",
          {},
          el("span", {
            class: `badge ${problems ? "badge-error" : "badge-online"}`,
            text: problems ? "error" : "ok",
          }),
          problems ? el("span", { class: "reason", text: ` ${problems.join("; ")}` }) : null,
        ),
      ),
    );
  }
  const table = el(
    "table",
    { class: "rows-report" },
    el("caption", { text: "Rows of the file (line numbers count the header as line 1)" }),
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { scope: "col", text: "Line" }),
        el("th", { scope: "col", text: "Extension" }),
        el("th", { scope: "col", text: "Result" }),
      ),
    ),
    tbody,
  );
  const parts = [table];
  if (result)
    parts.push(
      el(
        "details",
        {},
        el("summary", { text: "The changes to the files" }),
        diffView(withoutDryRunPasswords(result.diff, Object.values(result.passwords ?? {}))),
      ),
    );
  $("import-report").replaceChildren(...parts);
}

async function apply() {
  if (!checked) return;
  const current = checked;
  $("import-apply").hidden = true;
  try {
    const { body } = await send(current.text, false, current.etag);
    const passwords = Object.entries(body.passwords ?? {});
    $("import-report").replaceChildren(
      el("p", {
        class: "done",
        text: `Imported ${body.extensions.length} extensions (config version ${body.version}).`,
      }),
      ...(passwords.length
        ? [
            el("p", { text: "Generated passwords, shown this once:" }),
            ...passwords.map(([ext, pw]) => secretOnce(ext, pw)),
          ]
        : []),
    );
    announce(`Imported ${body.extensions.length} extensions`);
    checked = null;
    hooks.imported(body.extensions);
    $("importer").querySelector("[data-close]").focus();
  } catch (error) {
    if (error instanceof ApiError && error.status === 412) {
      showAlert($("import-errors"), CONFLICT_TEXT);
      $("import-reload").hidden = false;
      $("import-reload").focus();
      return;
    }
    const { text, extra } = refusal(error);
    showAlert($("import-errors"), text, ...extra);
  }
}

// A download of the current list (with passwords for an admin who asks for them).
export async function exportCsv(secrets = false) {
  const { body } = await api(`endpoints?format=csv${secrets ? "&secrets=true" : ""}`, {
    headers: { Accept: "text/csv" },
    text: true,
  });
  const url = URL.createObjectURL(new Blob([body], { type: "text/csv" }));
  const link = el("a", { href: url, download: "endpoints.csv" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
