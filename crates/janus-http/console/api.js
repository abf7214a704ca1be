// The console's one way to the server: the native API over fetch, with the
// token kept in this browser. Every failure becomes an ApiError whose message
// is a sentence a person can act on; nothing is swallowed.

const TOKEN_KEY = 'janus.token';

/** Who is signed in (from `/v1/auth/whoami`, read by the shell). */
export const session = { authEnabled: false, user: null, grants: [] };

/** A request the server refused or could not answer. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export function token() {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) {
    localStorage.setItem(TOKEN_KEY, value);
  } else {
    localStorage.removeItem(TOKEN_KEY);
  }
}

/** Called when the server answers 401: the app shows its login page. */
let onUnauthorized = () => {};
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

/** Listeners of the connection state (`ok` or a sentence saying what failed). */
const linkListeners = new Set();
export function onLink(listener) {
  linkListeners.add(listener);
}
function link(state) {
  for (const listener of linkListeners) listener(state);
}

/** Path segment, encoded. */
export const seg = (value) => encodeURIComponent(value);

/** Query string from an object, leaving out empty values. */
export function query(params) {
  const pairs = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '');
  if (pairs.length === 0) return '';
  return '?' + pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}

/**
 * Sends one request; resolves to `{ body, index, status }`, or throws an
 * ApiError. `signal` aborts it (an AbortError is thrown, not an ApiError).
 */
export async function request(method, path, { body, signal } = {}) {
  const headers = { accept: 'application/json' };
  const bearer = token();
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    link('the server cannot be reached');
    throw new ApiError(0, 'unreachable', `The server cannot be reached (${err.message}).`);
  }
  link('ok');
  const text = await response.text();
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  if (!response.ok) {
    const code = parsed && parsed.code ? parsed.code : `http_${response.status}`;
    const message = parsed && parsed.message ? parsed.message : text.trim() || response.statusText;
    if (response.status === 401) onUnauthorized(message);
    throw new ApiError(response.status, code, sentence(response.status, message));
  }
  const index = Number(response.headers.get('x-janus-index') || 0);
  return { body: parsed, index, status: response.status };
}

/** The server's message, with what the status means when it says little. */
function sentence(status, message) {
  const prefix = {
    401: 'Not signed in',
    403: 'Not allowed',
    404: 'Not found',
    409: 'Refused',
    429: 'Too many requests',
    503: 'The node cannot serve this now',
  }[status];
  const text = message.charAt(0).toUpperCase() + message.slice(1);
  return prefix ? `${prefix}: ${text}` : text;
}

export const get = (path, options) => request('GET', path, options);
export const post = (path, body) => request('POST', path, { body });
export const put = (path, body) => request('PUT', path, { body });
export const patch = (path, body) => request('PATCH', path, { body });
export const del = (path) => request('DELETE', path);

/**
 * Follows a list with blocking queries: calls `onData(body, index)` with the
 * current answer, then again each time the revision it watches moves, until
 * `signal` aborts. The server holds each query until something changes (up
 * to `wait`), so an idle page costs it nothing. Failures are passed to
 * `onError` and retried with a growing pause.
 */
export async function watch(path, onData, onError, signal, wait = '5m') {
  let index = 0;
  let pause = 500;
  const joiner = path.includes('?') ? '&' : '?';
  while (!signal.aborted) {
    const url = index ? `${path}${joiner}index=${index}&wait=${wait}` : path;
    try {
      const { body, index: next } = await get(url, { signal });
      pause = 500;
      if (signal.aborted) return;
      if (next !== index || index === 0) {
        index = next || index;
        await onData(body, index);
      }
    } catch (err) {
      if (signal.aborted || err.name === 'AbortError') return;
      onError(err);
      if (err.status === 401 || err.status === 403 || err.status === 404) return;
      await sleep(pause, signal);
      pause = Math.min(pause * 2, 10000);
      index = 0;
    }
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
