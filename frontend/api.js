// The API client of the dashboard: one fetch wrapper that adds the token, reads JSON and turns
// refusals into ApiError (with the body, so a 422's per-field list and a 409's mismatches reach
// the form).

// The API lives one level above /ui/ (also behind a reverse proxy's path prefix).
const API = new URL("../", location.href);
export const apiUrl = (path) => new URL(path, API).href;

// The token in use, and what to do when the server no longer accepts it (the board asks again).
export const session = { token: null, onUnauthorized: () => {} };

export class ApiError extends Error {
  constructor(status, message, body = null, response = null) {
    super(message);
    this.status = status;
    this.body = body;
    this.response = response;
  }

  // FastAPI's validation shape: [{loc: [...], msg, type}], empty for any other refusal.
  get fields() {
    return Array.isArray(this.body?.detail) ? this.body.detail : [];
  }
}

function messageOf(status, body) {
  const detail = body?.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail) && detail.length) {
    return detail
      .map((e) => `${(e.loc ?? []).slice(1).join(".") || "request"}: ${e.msg}`)
      .join("; ");
  }
  return `HTTP ${status}`;
}

// ``body``: an object is sent as JSON; a string or Blob as it is (give its Content-Type in
// ``headers``). ``text``: return the answer's text (CSV) instead of parsing JSON.
export async function api(path, { method = "GET", headers = {}, body, text = false } = {}) {
  const init = {
    method,
    headers: { Authorization: `Bearer ${session.token}`, Accept: "application/json", ...headers },
    cache: "no-store",
  };
  if (body !== undefined) {
    if (typeof body === "string" || body instanceof Blob) {
      init.body = body;
    } else {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
  }
  const response = await fetch(apiUrl(path), init);
  if (response.status === 401) {
    session.onUnauthorized("The token was not accepted. Enter a valid API token.");
    throw new ApiError(401, "Unauthorized", null, response);
  }
  if (response.status === 304) return { response, body: null };
  if (text && response.ok) return { response, body: await response.text() };
  let parsed = null;
  try {
    parsed = await response.json();
  } catch {
    parsed = null;
  }
  if (!response.ok)
    throw new ApiError(response.status, messageOf(response.status, parsed), parsed, response);
  return { response, body: parsed };
}

export function isUnreachable(error) {
  return !(error instanceof ApiError) || [502, 503, 504].includes(error.status);
}

// A path segment for an extension (it may hold characters a URL path treats specially).
export const seg = (name) => encodeURIComponent(name);
