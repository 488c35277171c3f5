// The hub's JSON API: one fetch wrapper that sends the anti-forgery header
// with every change, and turns the hub's errors (or its absence) into
// messages a person can act on.

import { sessionEnded } from './app.js';
import { state } from './state.js';

// The sha256 of nothing: what a folder's commit carries.
export const EMPTY_SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
// The message for no answer at all (the hub down, or this device offline).
export const UNREACHABLE = 'The hub cannot be reached. Check that it is running and that this device is online, then try again.';

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

function fallbackMessage(status) {
  if (status === 401) return 'You are not signed in, or your session has ended. Sign in again.';
  if (status === 403) return 'This action is not allowed with your token.';
  if (status === 404) return 'Not found: it may have been moved or deleted meanwhile.';
  if (status === 413) return 'The file is larger than this hub accepts.';
  if (status === 502 || status === 503 || status === 504) return UNREACHABLE;
  return 'The hub answered with an error (HTTP ' + status + '). Try again; if it persists, see the hub\'s log.';
}

// The hub's error body is {"error": code, "detail": sentence}: show detail.
export function errorFromBody(status, text) {
  let detail = '';
  try {
    detail = JSON.parse(text).detail || '';
  } catch (_) { /* not JSON: a proxy's page */ }
  return new ApiError(detail || fallbackMessage(status), status);
}

export async function api(method, path, body) {
  const init = { method, headers: {}, credentials: 'same-origin', cache: 'no-store' };
  // The hub refuses cookie-authenticated changes without this header:
  // another site's page can send the cookie but cannot know the value.
  if (method !== 'GET' && state.session) init.headers['X-SF-CSRF'] = state.session.csrf;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (_) {
    throw new ApiError(UNREACHABLE, 0);
  }
  if (!res.ok) {
    const err = errorFromBody(res.status, await res.text().catch(() => ''));
    if (res.status === 401 && state.session && path !== '/ui/session') sessionEnded();
    throw err;
  }
  return res.status === 204 ? null : res.json();
}
