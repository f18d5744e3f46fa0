// Small DOM helpers shared by the dashboard's modules. Data from the API is only ever written
// with textContent or setAttribute (never as HTML), and no inline style is set (strict CSP).

export const $ = (id) => document.getElementById(id);

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  setProps(node, props);
  for (const child of children) {
    if (child != null && child !== false) node.append(child);
  }
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg(tag, props = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setProps(node, props);
  for (const child of children) {
    if (child != null && child !== false) node.append(child);
  }
  return node;
}

function setProps(node, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === "class") node.setAttribute("class", value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
}

const pad = (n) => String(n).padStart(2, "0");

export function clock(date) {
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  day: "numeric",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

export function when(iso) {
  return iso ? dateTime.format(new Date(iso)) : "";
}

// "2 Dec, 01:50:56 – 01:51:00": the date once when both ends are on the same day.
export function between(startIso, endIso) {
  const start = new Date(startIso);
  const end = new Date(endIso);
  const tail = start.toDateString() === end.toDateString() ? clock(end) : when(endIso);
  return `${when(startIso)} – ${tail}`;
}

// 4 s, 3 min 20 s, 2 h 5 min, 3 d 4 h: two units at most.
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const units = [
    ["d", 86400],
    ["h", 3600],
    ["min", 60],
    ["s", 1],
  ];
  const parts = [];
  let rest = s;
  for (const [name, size] of units) {
    const count = Math.floor(rest / size);
    rest -= count * size;
    if (count || parts.length) parts.push([count, name]);
    if (parts.length === 2) break;
  }
  return parts
    .filter(([count], i) => count || i === 0)
    .map(([count, name]) => `${count} ${name}`)
    .join(" ");
}

export function percent(share) {
  if (share == null || !Number.isFinite(share)) return "–";
  const value = share * 100;
  return `${value >= 99.95 || value === 0 ? value.toFixed(0) : value.toFixed(1)} %`;
}

// Screen readers hear this (a polite live region); the message also stays visible elsewhere.
export function announce(message) {
  const region = $("announcer");
  region.textContent = "";
  // A change of text after a tick is announced even when the message repeats.
  setTimeout(() => {
    region.textContent = message;
  }, 50);
}

// A unified diff per file, each line coloured by its first character.
export function diffView(diff) {
  const files = Object.entries(diff ?? {}).filter(([, text]) => text);
  if (!files.length) return el("p", { class: "muted", text: "No file changes." });
  const box = el("div", { class: "diffs" });
  for (const [path, text] of files) {
    const pre = el("pre", { class: "diff", tabindex: "0", "aria-label": `Changes to ${path}` });
    for (const line of text.replace(/\n$/, "").split("\n")) {
      const kind =
        line.startsWith("+++") || line.startsWith("---")
          ? "file"
          : line.startsWith("@@")
            ? "hunk"
            : line.startsWith("+")
              ? "add"
              : line.startsWith("-")
                ? "del"
                : "ctx";
      pre.append(el("span", { class: `d-${kind}`, text: line }), "\n");
    }
    box.append(el("h4", { class: "diff-file", text: path }), pre);
  }
  return box;
}

// A dry run generates passwords it never writes: the applied change makes new ones. Its diff says
// so instead of showing a password that will not be the one.
export function withoutDryRunPasswords(diff, passwords) {
  const generated = passwords.filter(Boolean);
  if (!generated.length) return diff;
  const out = {};
  for (const [path, text] of Object.entries(diff ?? {})) {
    out[path] = generated.reduce(
      (acc, password) => acc.split(password).join("(generated when applied, shown once)"),
      text,
    );
  }
  return out;
}

export function diffStats(diff) {
  let added = 0;
  let removed = 0;
  for (const text of Object.values(diff ?? {})) {
    for (const line of text.split("\n")) {
      if (line.startsWith("+") && !line.startsWith("+++")) added += 1;
      else if (line.startsWith("-") && !line.startsWith("---")) removed += 1;
    }
  }
  return { added, removed };
}

// A value shown once (a password) with a button that copies it.
export function secretOnce(labelText, value) {
  const code = el("code", { class: "secret", text: value });
  const button = el("button", { type: "button", class: "copy", text: "Copy" });
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(value);
      button.textContent = "Copied";
    } catch {
      // No clipboard (an insecure context): select it, so Ctrl+C copies it.
      const range = document.createRange();
      range.selectNodeContents(code);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      button.textContent = "Selected: press Ctrl+C";
    }
    announce("Password copied");
  });
  return el(
    "p",
    { class: "once" },
    el("span", { text: `${labelText}: ` }),
    code,
    " ",
    button,
    el("span", { class: "muted", text: " (shown this once)" }),
  );
}

// Modal dialogs (<dialog>): focus goes to the first heading when one opens and back to the
// element that opened it when it closes.
export function openDialog(dialog, opener = document.activeElement) {
  dialog._opener = opener;
  if (!dialog.open) dialog.showModal();
  dialog.querySelector("h2")?.focus();
}

export function wireDialog(dialog, onClose = () => {}) {
  dialog.addEventListener("close", () => {
    onClose();
    const opener = dialog._opener;
    dialog._opener = null;
    // The opener may be gone (a deleted extension's panel closed, a list redrawn): then the
    // dialog still open below this one, or the board.
    const below = document.querySelector("dialog[open] h2");
    const fallback = below ?? document.querySelector("#rows tr[data-ext]");
    if (opener?.isConnected && opener.checkVisibility()) opener.focus();
    else fallback?.focus();
  });
  for (const button of dialog.querySelectorAll("[data-close]")) {
    button.addEventListener("click", () => dialog.close());
  }
}

export function anyDialogOpen() {
  return document.querySelector("dialog[open]") != null;
}

// A message in a form's alert region: announced when it appears (role="alert").
export function showAlert(region, message, ...extra) {
  region.replaceChildren();
  region.hidden = !message;
  if (message) region.append(el("p", { text: message }), ...extra);
}
