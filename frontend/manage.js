// The endpoint form (admins): create or edit an extension, preview the API's dry-run diff beside
// the fields, apply on confirm. Common fields plus an "advanced" editor that offers only the
// options of Asterisk's own table (GET /config/options) and, for enumerations, their values.
// Errors of a 422 are shown next to the field their ``loc`` names.

import { ApiError, api, seg } from "./api.js";
import {
  $,
  announce,
  diffStats,
  diffView,
  el,
  withoutDryRunPasswords,
  openDialog,
  secretOnce,
  showAlert,
  wireDialog,
} from "./dom.js";
import { CONFLICT_TEXT, confirmChange, refusal } from "./change.js";

const TYPES = ["endpoint", "auth", "aor"];
// Options the common fields (or the file's structure) own: not offered in the advanced editor.
const OWNED = {
  endpoint: new Set(["callerid", "context", "transport", "allow", "disallow", "auth", "aors"]),
  auth: new Set(["password"]),
  aor: new Set(["max_contacts"]),
};
// Where an error's loc points (after "body", and "options" of a create).
const FIELD_OF = {
  extension: "extension",
  callerid: "callerid",
  context: "context",
  transport: "transport",
  codecs: "codecs",
  password: "password",
  max_contacts: "max_contacts",
  templates: "templates",
  "endpoint.callerid": "callerid",
  "endpoint.context": "context",
  "endpoint.transport": "transport",
  "endpoint.allow": "codecs",
  "endpoint.disallow": "codecs",
  "auth.password": "password",
  "aor.max_contacts": "max_contacts",
};
const TEXT_FIELDS = ["callerid", "context"];

let table = null; // {endpoint: {options: Map, templates, transports}, ..., codecs}
let hooks = { applied: () => {}, deleted: () => {} };
// The form's state: mode, extension, the ETag it was opened with, the values it started from,
// the body last previewed and the ETag of that preview.
let form = null;
let advancedCount = 0;

export function initManage(callbacks) {
  hooks = callbacks;
  const dialog = $("editor");
  wireDialog(dialog, () => {
    form = null;
  });
  $("editor-form").addEventListener("submit", (event) => {
    event.preventDefault();
    preview();
  });
  $("editor-back").addEventListener("click", () => showForm());
  $("editor-apply").addEventListener("click", () => apply());
  $("editor-reload").addEventListener("click", () => reloadAndReapply());
  $("f-generate").addEventListener("click", () => {
    $("f-password").value = generatePassword();
    $("f-password").type = "text";
    $("f-password").focus();
    announce("A new password was generated into the field");
  });
  $("adv-add").addEventListener("click", () => addAdvancedRow().querySelector("select")?.focus());
  wirePicklist();
}

// ---------------------------------------------------------------- the option table

export async function optionTable() {
  if (table) return table;
  const answers = await Promise.all(TYPES.map((type) => api(`config/options?type=${type}`)));
  const loaded = { codecs: answers[0].body.codecs };
  answers.forEach(({ body }, i) => {
    loaded[TYPES[i]] = {
      options: new Map(body.options.map((option) => [option.name, option])),
      templates: body.templates ?? [],
      transports: body.transports ?? [],
    };
  });
  table = loaded;
  return table;
}

// Templates and transports change with the files: ask again at each opening of the form.
function forgetNames() {
  table = null;
}

// ---------------------------------------------------------------- opening the form

export async function openCreate(opener) {
  await openForm({ mode: "create", ext: "", opener });
}

export async function openEdit(ext, opener) {
  await openForm({ mode: "edit", ext, opener });
}

async function openForm({ mode, ext, opener }) {
  const dialog = $("editor");
  forgetNames();
  resetForm(mode, ext);
  openDialog(dialog, opener);
  showAlert($("editor-errors"), null);
  try {
    const options = await optionTable();
    fillChoices(options);
    form = { mode, ext, etag: null, initial: emptyInitial(), body: null, previewEtag: null };
    if (mode === "edit") await loadCurrent(form);
    setInitial(form.initial);
    $("editor-fieldset").disabled = false;
    $(mode === "edit" ? "f-callerid" : "f-extension").focus();
  } catch (error) {
    const { text, extra } = refusal(error);
    showAlert($("editor-errors"), `Cannot open the form: ${text}`, ...extra);
  }
}

function emptyInitial() {
  return { callerid: "", context: "", transport: "", max_contacts: "", codecs: [] };
}

async function loadCurrent(state) {
  const path = `endpoints/${seg(state.ext)}`;
  const [config, detail] = await Promise.all([api(`${path}/config`), api(path)]);
  state.etag = config.response.headers.get("ETag");
  const options = config.body.config ?? {};
  const aor = detail.body.details?.aor ?? {};
  state.initial = {
    callerid: options.callerid ?? "",
    context: options.context ?? "",
    transport: options.transport ?? "",
    max_contacts: aor.maxcontacts ?? "",
    codecs: (options.allow ?? "")
      .split(",")
      .map((c) => c.trim())
      .filter(Boolean),
  };
  state.config = options;
}

function resetForm(mode, ext) {
  $("editor-title").textContent = mode === "edit" ? `Edit extension ${ext}` : "New extension";
  $("editor-form").reset();
  $("f-password").type = "password";
  $("f-extension").readOnly = mode === "edit";
  $("f-extension").value = ext;
  $("f-templates-set").hidden = mode === "edit";
  $("f-password-hint").textContent =
    mode === "edit"
      ? "Leave empty to keep the password; Generate makes a new one."
      : "Leave empty and a password is generated; it is shown once.";
  $("f-codecs-hint").textContent =
    mode === "edit"
      ? "Empty: the template's (or Asterisk's) codecs apply."
      : "Empty: the template's codecs apply.";
  $("adv-rows").replaceChildren();
  $("editor-fields").hidden = false;
  $("editor-done").hidden = true;
  clearFieldErrors();
  showForm();
  $("editor-fieldset").disabled = true; // until the option table (and the endpoint) are in
  $("editor-result").hidden = true;
  $("editor-result").replaceChildren();
}

function fillChoices(options) {
  const transport = $("f-transport");
  transport.replaceChildren(
    el("option", { value: "", text: "(as the template says)" }),
    ...options.endpoint.transports.map((name) => el("option", { value: name, text: name })),
  );
  const box = $("f-templates");
  box.replaceChildren();
  for (const type of TYPES) {
    for (const name of options[type].templates) {
      const id = `f-template-${type}-${name}`;
      box.append(
        el(
          "div",
          { class: "check" },
          el("input", { type: "checkbox", id, name: "templates", value: name }),
          el("label", { for: id, text: `${name} (${type})` }),
        ),
      );
    }
  }
  if (!box.children.length)
    box.append(el("p", { class: "muted", text: "The files define no templates." }));
  fillPicklist(options.codecs, []);
}

function setInitial(initial) {
  for (const key of TEXT_FIELDS) $(`f-${key}`).value = initial[key];
  const transport = $("f-transport");
  if (initial.transport && ![...transport.options].some((o) => o.value === initial.transport)) {
    transport.append(el("option", { value: initial.transport, text: initial.transport }));
  }
  transport.value = initial.transport;
  $("f-max-contacts").value = initial.max_contacts;
  fillPicklist(table.codecs, initial.codecs);
}

// ---------------------------------------------------------------- codecs: an ordered pick list

function fillPicklist(codecs, chosen) {
  const available = $("codecs-available");
  const picked = $("codecs-chosen");
  available.replaceChildren(
    ...codecs.filter((c) => !chosen.includes(c)).map((c) => el("option", { value: c, text: c })),
  );
  picked.replaceChildren(...chosen.map((c) => el("option", { value: c, text: c })));
}

export function chosenCodecs() {
  return [...$("codecs-chosen").options].map((o) => o.value);
}

function wirePicklist() {
  const available = $("codecs-available");
  const picked = $("codecs-chosen");
  const move = (from, to) => {
    const selected = [...from.selectedOptions];
    for (const option of selected) to.append(option);
    if (selected.length) announce(`${selected.map((o) => o.value).join(", ")} moved`);
  };
  const shift = (step) => {
    const options = [...picked.options];
    const selected = options.filter((o) => o.selected);
    const ordered = step < 0 ? selected : selected.reverse();
    for (const option of ordered) {
      const sibling = step < 0 ? option.previousElementSibling : option.nextElementSibling;
      if (!sibling || sibling.selected) continue;
      if (step < 0) sibling.before(option);
      else sibling.after(option);
    }
    if (selected.length) announce(`Order: ${chosenCodecs().join(", ")}`);
  };
  $("codec-add").addEventListener("click", () => move(available, picked));
  $("codec-remove").addEventListener("click", () => move(picked, available));
  $("codec-up").addEventListener("click", () => shift(-1));
  $("codec-down").addEventListener("click", () => shift(1));
  available.addEventListener("dblclick", () => move(available, picked));
  picked.addEventListener("dblclick", () => move(picked, available));
  available.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      move(available, picked);
    }
  });
  picked.addEventListener("keydown", (e) => {
    if (e.key === "Delete" || e.key === "Backspace") {
      e.preventDefault();
      move(picked, available);
    } else if (e.altKey && (e.key === "ArrowUp" || e.key === "ArrowDown")) {
      e.preventDefault();
      shift(e.key === "ArrowUp" ? -1 : 1);
    }
  });
}

// ---------------------------------------------------------------- the advanced editor

function addAdvancedRow() {
  advancedCount += 1;
  const n = advancedCount;
  const typeSelect = el(
    "select",
    { id: `adv-type-${n}` },
    ...TYPES.map((type) => el("option", { value: type, text: type })),
  );
  const nameSelect = el("select", { id: `adv-name-${n}`, "aria-describedby": `adv-help-${n}` });
  const valueBox = el("div", { class: "adv-value" });
  const help = el("p", { class: "help", id: `adv-help-${n}` });
  const error = el("p", { class: "field-error", id: `adv-error-${n}` });
  const unset = el("input", { type: "checkbox", id: `adv-unset-${n}` });
  const unsetBox = el(
    "div",
    { class: "check" },
    unset,
    el("label", { for: `adv-unset-${n}`, text: "Remove (use the default)" }),
  );
  unsetBox.hidden = form?.mode !== "edit";
  const remove = el("button", { type: "button", class: "small", text: "Remove row" });
  const row = el(
    "div",
    { class: "adv-row", "data-row": String(n) },
    el("div", { class: "field" }, el("label", { for: typeSelect.id, text: "Object" }), typeSelect),
    el("div", { class: "field" }, el("label", { for: nameSelect.id, text: "Option" }), nameSelect),
    valueBox,
    unsetBox,
    remove,
    help,
    error,
  );
  const fillNames = () => {
    const type = typeSelect.value;
    const names = [...table[type].options.keys()].filter((name) => !OWNED[type].has(name));
    nameSelect.replaceChildren(
      el("option", { value: "", text: "— choose an option —" }),
      ...names.map((name) => el("option", { value: name, text: name })),
    );
    fillValue();
  };
  const fillValue = () => {
    const spec = table[typeSelect.value].options.get(nameSelect.value);
    row.dataset.type = typeSelect.value;
    row.dataset.name = nameSelect.value;
    valueBox.replaceChildren(
      valueControl(n, spec, currentValue(typeSelect.value, nameSelect.value)),
    );
    const parts = spec ? [spec.synopsis] : [];
    if (spec?.default != null) parts.push(`Default: ${spec.default}.`);
    if (spec?.multiple) parts.push("Several values: one per line.");
    help.textContent = parts.join(" ");
  };
  typeSelect.addEventListener("change", fillNames);
  nameSelect.addEventListener("change", fillValue);
  unset.addEventListener("change", () => {
    for (const control of valueBox.querySelectorAll("input, select, textarea"))
      control.disabled = unset.checked;
  });
  remove.addEventListener("click", () => {
    row.remove();
    $("adv-add").focus();
  });
  fillNames();
  $("adv-rows").append(row);
  return row;
}

// The endpoint's current value of an option (the form knows the endpoint section's options).
function currentValue(type, name) {
  if (form?.mode !== "edit" || type !== "endpoint") return "";
  return form.config?.[name] ?? "";
}

function valueControl(n, spec, current) {
  const id = `adv-value-${n}`;
  const labelled = (control) =>
    el("div", { class: "field" }, el("label", { for: id, text: "Value" }), control);
  if (!spec)
    return labelled(el("input", { id, disabled: true, placeholder: "choose an option first" }));
  if (spec.kind === "bool") {
    const select = el(
      "select",
      { id },
      el("option", { value: "yes", text: "yes" }),
      el("option", { value: "no", text: "no" }),
    );
    const truthy = ["yes", "true", "on", "1"].includes(
      String(current || spec.default || "").toLowerCase(),
    );
    select.value = truthy ? "yes" : "no";
    return labelled(select);
  }
  if (spec.values.length) {
    const multiple = spec.kind === "enum_list" || spec.multiple;
    const select = el("select", {
      id,
      multiple: multiple || null,
      size: multiple ? Math.min(6, spec.values.length) : null,
    });
    const selected = new Set(
      String(current || (multiple ? "" : (spec.default ?? "")))
        .split(",")
        .map((v) => v.trim()),
    );
    for (const value of spec.values) {
      const option = el("option", {
        value,
        text: value === spec.default ? `${value} (default)` : value,
      });
      option.selected = selected.has(value);
      select.append(option);
    }
    return labelled(select);
  }
  if (spec.multiple) {
    return labelled(el("textarea", { id, rows: 3, text: String(current).split(",").join("\n") }));
  }
  const numeric = spec.kind === "integer" || spec.kind === "number";
  const input = el("input", {
    id,
    type: numeric ? "number" : "text",
    step: spec.kind === "number" ? "any" : null,
    placeholder: spec.default ?? "",
    autocomplete: "off",
    spellcheck: "false",
  });
  input.value = current;
  return labelled(input);
}

function advancedValues() {
  const out = { endpoint: {}, auth: {}, aor: {} };
  for (const row of $("adv-rows").querySelectorAll(".adv-row")) {
    const { type, name } = row.dataset;
    if (!name) continue;
    if (row.querySelector(`#adv-unset-${row.dataset.row}`)?.checked) {
      out[type][name] = null;
      continue;
    }
    const control = row.querySelector(".adv-value select, .adv-value input, .adv-value textarea");
    if (control.tagName === "SELECT" && control.multiple) {
      out[type][name] = [...control.selectedOptions].map((o) => o.value);
    } else if (control.tagName === "TEXTAREA") {
      out[type][name] = control.value
        .split("\n")
        .map((v) => v.trim())
        .filter(Boolean);
    } else {
      out[type][name] = control.value.trim();
    }
  }
  return out;
}

// ---------------------------------------------------------------- the request body

function value(id) {
  return $(id).value.trim();
}

function createBody() {
  const body = { extension: value("f-extension") };
  for (const key of TEXT_FIELDS) if (value(`f-${key}`)) body[key] = value(`f-${key}`);
  if (value("f-transport")) body.transport = value("f-transport");
  const max = value("f-max-contacts");
  if (max) body.max_contacts = /^\d+$/.test(max) ? Number(max) : max;
  const password = $("f-password").value;
  if (password) body.password = password;
  const codecs = chosenCodecs();
  if (codecs.length) body.codecs = codecs;
  body.templates = [...$("f-templates").querySelectorAll("input:checked")].map((c) => c.value);
  const advanced = advancedValues();
  if (TYPES.some((t) => Object.keys(advanced[t]).length)) body.options = advanced;
  return body;
}

function patchBody() {
  const initial = form.initial;
  const patch = advancedValues();
  const changed = (key, now) =>
    now !== String(initial[key] ?? "") ? [true, now === "" ? null : now] : [false];
  for (const key of [...TEXT_FIELDS, "transport"]) {
    const [yes, now] = changed(key, value(`f-${key}`));
    if (yes) patch.endpoint[key] = now;
  }
  const codecs = chosenCodecs();
  if (codecs.join(",") !== initial.codecs.join(","))
    patch.endpoint.allow = codecs.length ? codecs : null;
  const [maxChanged, max] = changed("max_contacts", value("f-max-contacts"));
  if (maxChanged) patch.aor.max_contacts = max != null && /^\d+$/.test(max) ? Number(max) : max;
  if ($("f-password").value) patch.auth.password = $("f-password").value;
  for (const type of TYPES) if (!Object.keys(patch[type]).length) delete patch[type];
  return patch;
}

function send(body, { dryRun, ifMatch }) {
  const query = dryRun ? "?dry_run=true" : "";
  const headers = ifMatch ? { "If-Match": ifMatch } : {};
  if (form.mode === "create") return api(`endpoints${query}`, { method: "POST", body, headers });
  return api(`endpoints/${seg(form.ext)}${query}`, { method: "PATCH", body, headers });
}

// ---------------------------------------------------------------- preview, apply, errors

function showForm() {
  $("editor-fieldset").disabled = false;
  $("editor-preview").hidden = true;
  $("editor-preview-btn").hidden = false;
  $("editor-back").hidden = true;
  $("editor-apply").hidden = true;
  $("editor-reload").hidden = true;
}

async function preview() {
  if (!form) return;
  clearFieldErrors();
  showAlert($("editor-errors"), null);
  const body = form.mode === "create" ? createBody() : patchBody();
  if (form.mode === "edit" && !Object.keys(body).length) {
    showAlert($("editor-errors"), "Nothing to change: the fields are as the files have them.");
    return;
  }
  form.body = body;
  await runPreview();
}

async function runPreview() {
  const current = form;
  $("editor-preview-btn").disabled = true;
  try {
    const { body: result } = await send(current.body, { dryRun: true, ifMatch: current.etag });
    if (current !== form) return;
    current.previewEtag = result.etag;
    showPreview(result);
  } catch (error) {
    if (current === form) failed(error);
  } finally {
    $("editor-preview-btn").disabled = false;
  }
}

function showPreview(result) {
  const { added, removed } = diffStats(result.diff);
  const parts = [
    el("p", {
      text: `${added} line(s) added, ${removed} removed. Nothing is written until you apply.`,
    }),
  ];
  if (result.warnings?.length) {
    parts.push(
      el("ul", { class: "warnings" }, ...result.warnings.map((w) => el("li", { text: w }))),
    );
  }
  parts.push(diffView(withoutDryRunPasswords(result.diff, [result.password])));
  $("editor-diff").replaceChildren(...parts);
  $("editor-fieldset").disabled = true;
  $("editor-preview").hidden = false;
  $("editor-preview-btn").hidden = true;
  $("editor-back").hidden = false;
  $("editor-apply").hidden = false;
  $("editor-reload").hidden = true;
  $("editor-preview-title").focus();
  announce(`Preview ready: ${added} line(s) added, ${removed} removed`);
}

async function apply() {
  const current = form;
  if (!current?.body) return;
  $("editor-apply").disabled = true;
  showAlert($("editor-errors"), null);
  try {
    const { body: result } = await send(current.body, {
      dryRun: false,
      ifMatch: current.previewEtag,
    });
    if (current !== form) return;
    showResult(current, result);
    hooks.applied(result.extensions[0], result);
  } catch (error) {
    if (current === form) failed(error);
  } finally {
    $("editor-apply").disabled = false;
  }
}

function showResult(current, result) {
  const ext = result.extensions[0];
  const loaded = result.endpoint?.in_asterisk;
  const verb = current.mode === "create" ? "Created" : "Changed";
  const parts = [
    el("p", {
      class: loaded ? "done" : "note",
      text: `${verb} extension ${ext} (config version ${result.version}). ${
        loaded ? "Asterisk has it loaded." : "Asterisk does not show it loaded yet."
      }`,
    }),
  ];
  const password = result.password ?? current.body.password ?? current.body.auth?.password;
  if (password) parts.push(secretOnce(`Password of ${ext}`, password));
  parts.push(el("details", {}, el("summary", { text: "What was changed" }), diffView(result.diff)));
  $("editor-result").replaceChildren(...parts);
  $("editor-result").hidden = false;
  $("editor-preview").hidden = true;
  $("editor-fields").hidden = true;
  for (const id of ["editor-preview-btn", "editor-back", "editor-apply", "editor-reload"])
    $(id).hidden = true;
  $("editor-done").hidden = false;
  $("editor-done").focus();
  announce(parts[0].textContent);
  form = null;
}

async function reloadAndReapply() {
  const current = form;
  if (!current) return;
  showAlert($("editor-errors"), null);
  $("editor-reload").hidden = true;
  try {
    if (current.mode === "edit") {
      const config = await api(`endpoints/${seg(current.ext)}/config`);
      current.etag = config.response.headers.get("ETag");
    } else {
      current.etag = null;
    }
  } catch (error) {
    failed(error);
    return;
  }
  await runPreview();
}

function failed(error) {
  if (error instanceof ApiError && error.status === 412) {
    showAlert($("editor-errors"), CONFLICT_TEXT);
    $("editor-apply").hidden = true;
    $("editor-reload").hidden = false;
    $("editor-reload").focus();
    return;
  }
  if (error instanceof ApiError && error.status === 422 && error.fields.length) {
    showForm();
    const unplaced = placeFieldErrors(error.fields);
    const count = error.fields.length;
    const problems = `${count} problem${count > 1 ? "s" : ""}`;
    const where = unplaced.length < count ? ", shown next to the fields" : "";
    showAlert(
      $("editor-errors"),
      `The change was refused: ${problems}${where}.`,
      ...(unplaced.length ? [el("ul", {}, ...unplaced.map((e) => el("li", { text: e.msg })))] : []),
    );
    $("editor-form").querySelector("[aria-invalid=true]")?.focus();
    return;
  }
  const { text, extra } = refusal(error);
  showAlert($("editor-errors"), text, ...extra);
}

// Where a loc points: a common field, an advanced row (type, option), or nothing.
export function targetOf(loc) {
  let parts = (loc ?? []).slice(loc?.[0] === "body" ? 1 : 0).filter((p) => typeof p === "string");
  if (parts[0] === "options") parts = parts.slice(1);
  const two = parts.slice(0, 2).join(".");
  if (FIELD_OF[two]) return { field: FIELD_OF[two] };
  if (parts.length && FIELD_OF[parts[0]] && !TYPES.includes(parts[0]))
    return { field: FIELD_OF[parts[0]] };
  if (TYPES.includes(parts[0]) && parts[1]) return { type: parts[0], name: parts[1] };
  return null;
}

function placeFieldErrors(errors) {
  const unplaced = [];
  for (const error of errors) {
    const target = targetOf(error.loc);
    let box = null;
    if (target?.field) {
      box = $("editor-form").querySelector(`[data-field="${target.field}"]`);
    } else if (target?.type) {
      box = [...$("adv-rows").querySelectorAll(".adv-row")].find(
        (row) => row.dataset.type === target.type && row.dataset.name === target.name,
      );
    }
    const message = box?.querySelector(".field-error");
    if (!message) {
      unplaced.push(error);
      continue;
    }
    message.textContent = message.textContent ? `${message.textContent} ${error.msg}` : error.msg;
    const control = box.querySelector(
      ".adv-value input, .adv-value select, .adv-value textarea, input, select, textarea",
    );
    control?.setAttribute("aria-invalid", "true");
    if (control && !control.getAttribute("aria-describedby")?.includes(message.id)) {
      control.setAttribute(
        "aria-describedby",
        `${control.getAttribute("aria-describedby") ?? ""} ${message.id}`.trim(),
      );
    }
  }
  return unplaced;
}

function clearFieldErrors() {
  for (const message of $("editor-form").querySelectorAll(".field-error")) message.textContent = "";
  for (const control of $("editor-form").querySelectorAll("[aria-invalid]"))
    control.removeAttribute("aria-invalid");
}

export function generatePassword(length = 20) {
  const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return [...bytes].map((b) => alphabet[b % alphabet.length]).join("");
}

// ---------------------------------------------------------------- delete

export function confirmDelete(ext) {
  confirmChange({
    title: `Delete extension ${ext}`,
    intro:
      `The endpoint ${ext} and the auth and AOR sections only it uses are removed from the files, ` +
      "then Asterisk reloads them.",
    confirmLabel: `Delete ${ext}`,
    etag: async () => (await api(`endpoints/${seg(ext)}/config`)).response.headers.get("ETag"),
    request: (dryRun, ifMatch) =>
      api(`endpoints/${seg(ext)}${dryRun ? "?dry_run=true" : ""}`, {
        method: "DELETE",
        headers: ifMatch ? { "If-Match": ifMatch } : {},
      }),
    doneText: (result) => {
      const kept = result.kept?.length
        ? `; kept, as others use them: ${result.kept.join(", ")}`
        : "";
      return `Deleted extension ${ext} (config version ${result.version})${kept}.`;
    },
    done: () => hooks.deleted(ext),
  });
}
