// Live updates: the WebSocket to the hub, reconnected with backoff, whose
// change frames update what is shown (the listing row by row, other views
// by reloading them).

import { api } from './api.js';
import { render, sessionEnded } from './app.js';
import { $ } from './dom.js';
import { applyToListing } from './files.js';
import { state } from './state.js';

export const liveIsUp = () => state.ws && state.ws.readyState === WebSocket.OPEN;

function setLive(text, up) {
  $('live').textContent = text;
  $('live').classList.toggle('up', up);
}

// Re-renders the current view once changes stop arriving for a moment,
// keeping the scroll position.
export function refreshSoon(delay) {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => {
    const y = window.scrollY;
    const p = render();
    if (p) p.then(() => window.scrollTo(0, y));
  }, delay == null ? 300 : delay);
}

function onChange(e) {
  const r = state.route;
  if (r.view === 'browse') {
    if (state.listing) applyToListing(state.listing, e);
  } else if (r.view === 'history') {
    if (e.path === r.path) refreshSoon();
  } else {
    refreshSoon(); // search, deleted, conflicts, activity: cheap to reload
  }
}

export function connectLive() {
  stopLive();
  let ws;
  try {
    ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/v1/ws');
  } catch (_) {
    return scheduleReconnect();
  }
  state.ws = ws;
  setLive('connecting…', false);
  ws.onopen = () => {
    state.wsDelay = 1000;
    setLive('live', true);
  };
  ws.onmessage = (event) => {
    let frame;
    try { frame = JSON.parse(event.data); } catch (_) { return; }
    if (frame.type === 'hello') {
      // After a gap, what was shown may be stale: reload it once.
      if (state.wsWasDown) refreshSoon(0);
      state.wsWasDown = false;
    } else if (frame.type === 'change') {
      onChange(frame);
    }
  };
  ws.onclose = () => {
    if (state.ws !== ws) return;
    state.ws = null;
    state.wsWasDown = true;
    setLive('reconnecting…', false);
    // The session may be why (signed out elsewhere, expired, revoked):
    // ask before reconnecting.
    api('GET', '/ui/session').then(() => scheduleReconnect(), (err) => {
      if (err.status === 401) sessionEnded();
      else scheduleReconnect();
    });
  };
}

function scheduleReconnect() {
  if (!state.session) return;
  clearTimeout(state.wsTimer);
  // Backoff with jitter, 1 s doubling to 30 s, so a restarted hub is not
  // hit by every page at once.
  const delay = state.wsDelay * (0.75 + Math.random() / 2);
  state.wsDelay = Math.min(state.wsDelay * 2, 30000);
  state.wsTimer = setTimeout(connectLive, delay);
}

export function stopLive() {
  clearTimeout(state.wsTimer);
  const ws = state.ws;
  state.ws = null;
  if (ws) ws.close();
  setLive('offline', false);
}
