// synced-folder's web page: browse, search, download, upload, history,
// restore, conflicts and activity, over the hub's JSON API. This module
// signs in and out, routes the address's #/view/path to a view, and wires
// the page's controls; the others are imported from here.
//
// Plain JavaScript modules with no build step and no dependencies: the hub
// embeds them and serves them under a strict CSP (no inline code or
// styles). The modules import each other's functions where they call them
// (a view calls render() after a change, api() calls sessionEnded()):
// such cycles are safe because no module runs code when loaded but this
// one, last, in boot().

import { api } from './api.js';
import { renderActivity } from './activity.js';
import { renderConflicts } from './conflicts.js';
import { $, el } from './dom.js';
import { renderBrowse, renderSearch } from './files.js';
import { renderDeleted, renderHistory } from './history.js';
import { connectLive, stopLive } from './live.js';
import { attempt, clearError, say, showError, tell } from './messages.js';
import { canWrite, state } from './state.js';

// ------------------------------------------------------- session, sign-in

function showSignIn(message) {
  stopLive();
  state.session = null;
  state.listing = null;
  for (const id of ['nav', 'search-form', 'account', 'content', 'uploads']) $(id).hidden = true;
  $('sign-in').hidden = false;
  tell($('sign-in-error'), message);
  document.title = 'Sign in · synced-folder';
  $('token').focus();
}

export function sessionEnded() {
  showSignIn('Your session has ended (signed out elsewhere, expired, or the token was revoked). Sign in again.');
}

async function signIn(event) {
  event.preventDefault();
  const input = $('token');
  const token = input.value.trim();
  if (!token) {
    tell($('sign-in-error'), 'Paste an access token to sign in.');
    return input.focus();
  }
  const button = event.submitter || $('sign-in-form').querySelector('button');
  button.disabled = true;
  try {
    const session = await api('POST', '/ui/session', { token });
    input.value = '';
    start(session);
  } catch (e) {
    tell($('sign-in-error'), e.message); // the hub's detail says why
    input.select();
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  await attempt(async () => {
    await api('DELETE', '/ui/session');
    showSignIn();
    say('Signed out.');
  });
}

function start(session) {
  state.session = session;
  $('sign-in').hidden = true;
  for (const id of ['nav', 'search-form', 'account', 'content']) $(id).hidden = false;
  document.body.classList.toggle('read-only', !canWrite());
  const who = $('who');
  who.replaceChildren();
  if (session.auth) who.append(el('span', { class: 'token-name', title: 'Signed in with this token' }, session.token_name || 'token'));
  else who.append('no sign-in (--no-auth)');
  if (!canWrite()) who.append(' ', el('span', { class: 'badge' }, 'read-only'));
  $('sign-out').hidden = !session.auth;
  connectLive();
  render();
}

// ----------------------------------------------------------------- routes

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  const view = parts.shift();
  let rest;
  try {
    rest = parts.filter((p) => p !== '').map(decodeURIComponent).join('/');
  } catch (_) {
    rest = '';
  }
  switch (view) {
    case 'history': return { view, path: rest };
    case 'search': return { view, q: rest };
    case 'deleted': case 'conflicts': case 'activity': return { view };
    default: return { view: 'browse', dir: rest };
  }
}

export function render() {
  if (!state.session) return;
  const route = (state.route = parseRoute());
  const gen = ++state.gen;
  clearTimeout(state.refreshTimer);
  clearInterval(state.pollTimer);
  if (state.listing && state.listing.observer) state.listing.observer.disconnect();
  state.listing = null;
  for (const a of $('nav').querySelectorAll('a')) {
    const current = a.dataset.view === route.view || (route.view === 'history' && a.dataset.view === 'browse');
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  $('search-input').value = route.view === 'search' ? route.q : '';
  const views = { browse: renderBrowse, history: renderHistory, search: renderSearch,
    deleted: renderDeleted, conflicts: renderConflicts, activity: renderActivity };
  return views[route.view](route, gen).catch((err) => {
    if (gen === state.gen && err.status !== 401) showError(err);
  });
}

// ------------------------------------------------------------------ start

function keyboard(event) {
  const t = event.target;
  const typing = t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t.isContentEditable;
  if (event.key === '/' && !typing && !event.ctrlKey && !event.metaKey && !event.altKey && !$('search-form').hidden && !$('dialog').open) {
    event.preventDefault();
    $('search-input').focus();
    $('search-input').select();
  }
}

async function boot() {
  $('sign-in-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  $('error-close').addEventListener('click', clearError);
  $('uploads-close').addEventListener('click', () => {
    $('uploads').hidden = true;
    $('upload-list').replaceChildren();
  });
  $('search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const q = $('search-input').value.trim();
    location.hash = q ? '#/search/' + encodeURIComponent(q) : '#/browse/';
  });
  document.addEventListener('keydown', keyboard);
  // A file dropped outside the list must not make the browser open it.
  window.addEventListener('dragover', (event) => event.preventDefault());
  window.addEventListener('drop', (event) => event.preventDefault());
  window.addEventListener('hashchange', () => {
    // Messages belong to the view they were said in.
    clearError();
    say();
    const p = render();
    if (p) p.then(() => { const h1 = $('content').querySelector('h1'); if (h1) h1.focus({ preventScroll: true }); });
  });
  try {
    start(await api('GET', '/ui/session'));
  } catch (err) {
    showSignIn(err.status === 401 ? '' : err.message);
  }
}

boot();
