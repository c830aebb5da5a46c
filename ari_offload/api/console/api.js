// The REST API, with the access key from this tab's session storage as a Bearer header.
// The key never goes into a URL: no query string, no link, no form submission.

const STORAGE = 'ari-offload.accesskey';
let unauthorized = () => {};

export const session = {
  get key() { return sessionStorage.getItem(STORAGE); },
  set(key) { sessionStorage.setItem(STORAGE, key); },
  clear() { sessionStorage.removeItem(STORAGE); },
};

export function onUnauthorized(handler) { unauthorized = handler; }

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

export function authHeaders(extra = {}) {
  return { Authorization: `Bearer ${session.key}`, ...extra };
}

async function send(method, path, body) {
  const headers = authHeaders(body === undefined ? {} : { 'Content-Type': 'application/json' });
  try {
    return await fetch(`/v1.0${path}`, {
      method, headers, cache: 'no-store', credentials: 'omit',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'unreachable', 'The server cannot be reached; try again.', null);
  }
}

async function failure(resp) {
  let data = null;
  try { data = await resp.json(); } catch { /* not JSON: described by its status */ }
  const e = (data && data.error) || {};
  const error = new ApiError(resp.status, e.code || 'http_error',
    e.message || `The server answered HTTP ${resp.status}.`, e.field || null);
  if (resp.status === 401) unauthorized(error);
  return error;
}

export async function api(method, path, body) {
  const resp = await send(method, path, body);
  if (!resp.ok) throw await failure(resp);
  return resp.status === 204 ? null : resp.json();
}

export async function apiBlob(path) {
  const resp = await send('GET', path);
  if (!resp.ok) throw await failure(resp);
  return resp.blob();
}

export const seg = (id) => encodeURIComponent(id);
