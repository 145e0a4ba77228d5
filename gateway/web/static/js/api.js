// The public HTTP API (sections 1, 4, 6 and 7 of API.md), and its problem+json errors.

export const PROBLEM_BASE = "https://riffle.dev/problems/";

/** An error answer of the API: the RFC 9457 problem document, and what the headers add. */
export class Problem extends Error {
  constructor(status, body, headers) {
    const problem = body && typeof body === "object" ? body : {};
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.type = problem.type || "about:blank";
    this.title = problem.title || "";
    this.detail = problem.detail || "";
    this.retryAfter = parseRetryAfter(headers?.get?.("Retry-After") ?? null);
  }

  /** The last segment of ``type``: ``not-a-wav``, ``audio-too-long``, … */
  get slug() {
    return this.type.startsWith(PROBLEM_BASE) ? this.type.slice(PROBLEM_BASE.length) : "";
  }

  /** Whether the same request may work later: the service is busy or a part of it is down. */
  get transient() {
    return [423, 429, 502, 503, 504].includes(this.status) && this.slug !== "transcode-timeout";
  }
}

/** No answer at all: the connection failed or was cut. */
export class NetworkError extends Error {
  constructor(message = "The connection to riffle was lost.") {
    super(message);
    this.transient = true;
  }
}

/** Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), else null. */
export function parseRetryAfter(value) {
  if (value === null || value === undefined || value === "") return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** A Problem from a fetch Response that is not ok (problem+json or not). */
export async function problemOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = { title: response.statusText, detail: "" };
  }
  return new Problem(response.status, body, response.headers);
}

async function call(method, path, { token, json, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new NetworkError();
  }
  if (!response.ok) throw await problemOf(response);
  return response;
}

/** ``POST /users`` → ``{id, name, token}`` (the token, this once). */
export async function createUser(name) {
  return (await call("POST", "/users", { json: { name } })).json();
}

/** ``GET /users/<id>/records`` → ``{items, next_cursor}``, newest first. */
export async function listRecords(session, { limit = 20, cursor = null } = {}) {
  const query = new URLSearchParams({ limit: String(limit) });
  if (cursor) query.set("cursor", cursor);
  const path = `/users/${encodeURIComponent(session.userId)}/records?${query}`;
  return (await call("GET", path, { token: session.token })).json();
}

/** ``DELETE /record?id&user`` with the owner's token. */
export async function deleteRecord(session, recordId) {
  const query = new URLSearchParams({ id: recordId, user: session.userId });
  await call("DELETE", `/record?${query}`, { token: session.token });
}

/** ``GET /jobs/<id>``: the job (status, progress, record or error). */
export async function getJob(session, jobUrl) {
  return (await call("GET", jobUrl, { token: session.token })).json();
}

/** ``OPTIONS /uploads/``: the largest upload the server takes (``Tus-Max-Size``), or null. */
export async function uploadLimits() {
  try {
    const response = await fetch("/uploads/", { method: "OPTIONS" });
    const max = response.headers.get("Tus-Max-Size");
    return { maxBytes: max ? Number(max) : null };
  } catch {
    return { maxBytes: null };
  }
}
