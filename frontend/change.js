// A change that is previewed first and applied only on confirm: the API's dry run shows the diff,
// the confirm sends the same request with If-Match = the dry run's ETag (so what is applied is
// what was shown), and a 412 (the files changed meanwhile) offers to reload and re-apply.
// Used for deletes and reverts; the endpoint form has its own preview beside its fields.

import { ApiError } from "./api.js";
import { $, announce, diffStats, diffView, el, openDialog, showAlert, wireDialog } from "./dom.js";

export const CONFLICT_TEXT =
  "The configuration files changed since this was shown (another change, or a hand edit on the " +
  "PBX). Reload them and apply the change again?";

// The words for a refusal of the write API, with what Asterisk did differently (a 409 rolled
// back carries ``mismatches``).
export function refusal(error) {
  const parts = [];
  if (error instanceof ApiError && error.status === 409 && error.body?.mismatches?.length) {
    const list = el("ul", { class: "mismatches" });
    for (const m of error.body.mismatches) {
      const where = `${m.object_type} ${m.object_id}`;
      list.append(
        el("li", {
          text: m.option
            ? `${where}: ${m.option} is ${shown(m.actual)} in Asterisk, not ${shown(m.expected)}`
            : `${where} ${m.actual == null ? "is missing" : "still exists"} after the reload`,
        }),
      );
    }
    parts.push(list);
  }
  const prefix = error instanceof ApiError ? `Refused (${error.status}): ` : "Failed: ";
  return { text: prefix + error.message, extra: parts };
}

const shown = (value) => (value == null ? "absent" : JSON.stringify(value));

let flow = null; // the change the confirm dialog is showing

export function initConfirm() {
  const dialog = $("confirm");
  wireDialog(dialog, () => {
    flow = null;
  });
  $("confirm-apply").addEventListener("click", () => apply());
  $("confirm-reload").addEventListener("click", () => preview());
}

// ``etag()``: the If-Match for the dry run (null: none needed); ``request(dryRun, ifMatch)``:
// the API call; ``done(result)``: after it applied (the dialog shows ``doneText``).
export function confirmChange({ title, intro, confirmLabel, etag, request, done, doneText }) {
  flow = { etag, request, done, doneText, previewEtag: null };
  $("confirm-title").textContent = title;
  $("confirm-intro").textContent = intro;
  $("confirm-apply").textContent = confirmLabel;
  openDialog($("confirm"));
  preview();
}

function setButtons({ apply = false, reload = false }) {
  $("confirm-apply").hidden = !apply;
  $("confirm-reload").hidden = !reload;
}

async function preview() {
  const current = flow;
  if (!current) return;
  showAlert($("confirm-errors"), null);
  setButtons({});
  $("confirm-diff").replaceChildren(el("p", { class: "muted", text: "Loading the preview…" }));
  try {
    const ifMatch = await current.etag();
    const { body } = await current.request(true, ifMatch);
    if (current !== flow) return;
    current.previewEtag = body.etag;
    const { added, removed } = diffStats(body.diff);
    $("confirm-diff").replaceChildren(
      el("p", {
        text: `Preview: ${added} line(s) added, ${removed} removed. Nothing is written until you confirm.`,
      }),
      diffView(body.diff),
    );
    setButtons({ apply: true });
    announce(`Preview ready: ${added} added, ${removed} removed`);
  } catch (error) {
    if (current === flow) failed(error);
  }
}

async function apply() {
  const current = flow;
  if (!current) return;
  setButtons({});
  showAlert($("confirm-errors"), null);
  try {
    const { body } = await current.request(false, current.previewEtag);
    if (current !== flow) return;
    $("confirm-diff").replaceChildren(el("p", { class: "done", text: current.doneText(body) }));
    announce(current.doneText(body));
    current.done(body);
    $("confirm").querySelector("[data-close]").focus();
  } catch (error) {
    if (current === flow) failed(error);
  }
}

function failed(error) {
  if (error instanceof ApiError && error.status === 412) {
    showAlert($("confirm-errors"), CONFLICT_TEXT);
    setButtons({ reload: true });
    $("confirm-reload").focus();
    return;
  }
  const { text, extra } = refusal(error);
  showAlert($("confirm-errors"), text, ...extra);
}
