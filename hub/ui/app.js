// synced-folder's web page: browse, search, download, upload, history,
// restore, conflicts and activity, over the hub's JSON API.
//
// Plain JavaScript with no build step and no dependencies: the hub embeds
// this file and serves it under a strict CSP (no inline code or styles).
// Every piece of data reaches the DOM through textContent or attributes
// (the el() helper), never through innerHTML.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const PAGE = 200; // listing page size: a 10,000-entry folder opens at once
  const EMPTY_SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
  const UNREACHABLE = 'The hub cannot be reached. Check that it is running and that this device is online, then try again.';

  const state = {
    session: null, // {auth, token_name, scope, csrf}
    route: { view: 'browse', dir: '' },
    gen: 0, // bumped on every render; late answers for an old view are dropped
    listing: null, // the folder shown: see renderBrowse
    ws: null,
    wsDelay: 1000, // the next reconnection's delay
    wsWasDown: false, // a reconnection must reload what is shown
    wsTimer: 0,
    refreshTimer: 0,
    pollTimer: 0,
  };

  // ---------------------------------------------------------------- helpers

  // Builds an element. attrs: class, text, on<event> handlers, booleans, the
  // rest as attributes; children: nodes or strings (text nodes).
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value == null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child == null || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const canWrite = () => state.session && state.session.scope === 'write';
  const baseName = (path) => path.slice(path.lastIndexOf('/') + 1);
  const parentOf = (path) => (path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '');
  const joinPath = (dir, name) => (dir ? dir + '/' + name : name);

  // Code point order, which is the hub's order (UTF-8 bytes).
  function cmp(a, b) {
    const x = Array.from(a), y = Array.from(b);
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const d = x[i].codePointAt(0) - y[i].codePointAt(0);
      if (d) return d;
    }
    return x.length - y.length;
  }

  function fmtSize(n) {
    if (n < 1024) return n + ' B';
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = n, i = -1;
    do { v /= 1024; i++; } while (v >= 1024 && i < units.length - 1);
    return (v < 10 ? v.toFixed(1) : Math.round(v)) + ' ' + units[i];
  }
  // Formatters made once: toLocaleString() makes a new one per call, which
  // is most of the cost of drawing a page of rows.
  const numberFormat = new Intl.NumberFormat();
  const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  const fullDateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });
  const sizeNode = (n) => el('span', { title: numberFormat.format(n) + ' bytes' }, fmtSize(n));
  function timeNode(ms) {
    if (!ms) return '—';
    const d = new Date(ms);
    return el('time', { datetime: d.toISOString(), title: fullDateFormat.format(d) }, dateFormat.format(d));
  }
  // The writer's modification time when known, else when the hub committed it.
  const modifiedMs = (e) => (e.mtime_ns ? Math.floor(e.mtime_ns / 1e6) : e.committed_ms);

  function hashFor(view, path) {
    return '#/' + view + '/' + (path ? path.split('/').map(encodeURIComponent).join('/') : '');
  }
  function fileUrl(path, version) {
    const q = new URLSearchParams({ path });
    if (version != null) q.set('version', version);
    return '/v1/file?' + q;
  }
  const url = (path, params) => path + '?' + new URLSearchParams(params);

  // ------------------------------------------------------------------- API

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
  function errorFromBody(status, text) {
    let detail = '';
    try {
      detail = JSON.parse(text).detail || '';
    } catch (_) { /* not JSON: a proxy's page */ }
    return new ApiError(detail || fallbackMessage(status), status);
  }

  async function api(method, path, body) {
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

  // --------------------------------------------------------- status, errors

  const say = (...parts) => $('status').replaceChildren(...parts);
  // Sets a message element's text; no text hides it.
  function tell(node, text) {
    node.textContent = text || '';
    node.hidden = !text;
  }
  const showError = (err) => { tell($('error-text'), err.message || String(err)); $('error').hidden = false; };
  const clearError = () => { $('error').hidden = true; };
  // Runs an action from a button: errors go to the alert region.
  async function attempt(action) {
    try {
      await action();
    } catch (err) {
      if (err.status !== 401) showError(err);
    }
  }

  // A modal dialog. With `label`, asks for a value; `action(value)` runs on
  // OK, and if it throws, its message shows in the dialog, which stays open.
  function ask({ title, text, label, value, ok, danger, action }) {
    const [dialog, form, input, error, okButton] = ['dialog', 'dialog-form', 'dialog-input', 'dialog-error', 'dialog-ok'].map($);
    $('dialog-title').textContent = title;
    tell($('dialog-text'), text);
    $('dialog-field').hidden = !label;
    $('dialog-label').textContent = label || '';
    input.value = value || '';
    okButton.textContent = ok || 'OK';
    okButton.classList.toggle('danger', !!danger);
    tell(error, '');
    return new Promise((resolve) => {
      const finish = (result) => {
        form.onsubmit = null;
        $('dialog-cancel').onclick = null;
        dialog.onclose = null;
        if (dialog.open) dialog.close();
        resolve(result);
      };
      form.onsubmit = async (event) => {
        event.preventDefault();
        const v = input.value.trim();
        if (label && !v) return tell(error, 'Enter a name.');
        okButton.disabled = true;
        try {
          if (action) await action(v);
          finish(label ? v : true);
        } catch (err) {
          tell(error, err.message);
        } finally {
          okButton.disabled = false;
        }
      };
      $('dialog-cancel').onclick = () => finish(null);
      dialog.onclose = () => finish(null);
      dialog.showModal();
      if (label) {
        input.focus();
        // Select the name without its extension, as file managers do.
        const dot = input.value.lastIndexOf('.');
        input.setSelectionRange(0, dot > 0 ? dot : input.value.length);
      } else {
        okButton.focus();
      }
    });
  }

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

  function sessionEnded() {
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

  function render() {
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

  // Starts a view: clears the content area and returns it with its heading.
  function page(title, ...intro) {
    const content = $('content');
    content.replaceChildren();
    content.className = '';
    document.title = title + ' · synced-folder';
    const h1 = el('h1', { tabindex: '-1', dir: 'auto' }, title);
    content.append(h1, ...intro.filter(Boolean));
    return content;
  }

  function breadcrumbs(path, last) {
    const nav = el('nav', { class: 'crumbs', 'aria-label': 'Folder path' });
    const list = el('ol');
    list.append(el('li', {}, el('a', { href: hashFor('browse', '') }, 'All files')));
    const parts = path ? path.split('/') : [];
    parts.forEach((part, i) => {
      const here = parts.slice(0, i + 1).join('/');
      const isLast = i === parts.length - 1 && last !== false;
      list.append(el('li', { dir: 'auto' }, isLast
        ? el('span', { 'aria-current': 'location' }, part)
        : el('a', { href: hashFor('browse', here) }, part)));
    });
    nav.append(list);
    return nav;
  }

  // A table from columns [label, class, (item) => content]; row(item)
  // makes a row. Each cell carries its label for phones, where rows become
  // cards.
  function dataTable(caption, cls, columns) {
    const body = el('tbody');
    const table = el('table', { class: 'list ' + cls }, el('caption', { class: 'visually-hidden' }, caption),
      el('thead', {}, el('tr', {}, columns.map(([label, c]) => el('th', { scope: 'col', class: c }, label)))), body);
    const row = (item, rowClass) => el('tr', { class: rowClass },
      columns.map(([label, c, content]) => el('td', { 'data-label': label, class: c }, content(item))));
    return { table, body, row };
  }
  // A file or folder icon beside its name (a block inside the cell: a
  // flex table cell would stop being a table cell).
  const nameCell = (isDir, name) => el('div', { class: 'name-cell' },
    el('span', { class: 'icon ' + (isDir ? 'i-dir' : 'i-file'), 'aria-hidden': 'true' }), name);

  // --------------------------------------------------------- browse a folder

  // The columns of a folder's listing (showPath: of search results).
  function listColumns(showPath) {
    return [
      [showPath ? 'Path' : 'Name', 'c-name', (e) => nameCell(e.kind === 'dir', el('span', { class: 'name', dir: 'auto' }, entryLink(e, showPath)))],
      ['Size', 'c-size', (e) => (e.kind === 'dir' ? '—' : sizeNode(e.size))],
      // Version 0: a folder known only from the files under it.
      ['Modified', 'c-time', (e) => (e.version ? timeNode(modifiedMs(e)) : '—')],
      ['Version', 'c-version', (e) => (e.version ? String(e.version) : '—')],
      ['Changed by', 'c-origin', (e) => el('span', { dir: 'auto' }, e.origin || '—')],
      ['Actions', 'c-actions', (e) => entryActions(e, showPath ? e.path : e.name)],
    ];
  }
  const entryClass = (e) => (e.kind === 'dir' ? 'dir' : 'file');

  function entryLink(e, showPath) {
    const label = showPath ? e.path : e.name;
    return e.kind === 'dir'
      ? el('a', { href: hashFor('browse', e.path), title: e.path }, label)
      : el('a', { href: fileUrl(e.path), download: e.name, title: 'Download ' + e.path }, label);
  }

  function entryActions(e, label) {
    const actions = el('div', { class: 'actions' });
    if (e.version) actions.append(el('a', { href: hashFor('history', e.path), class: 'button', 'aria-label': 'History of ' + label }, 'History'));
    if (canWrite()) {
      actions.append(
        el('button', { type: 'button', 'aria-label': 'Rename ' + label, onclick: () => renameEntry(e) }, 'Rename'),
        el('button', { type: 'button', class: 'danger', 'aria-label': 'Delete ' + label, onclick: () => deleteEntry(e) }, 'Delete'));
    }
    return actions;
  }

  async function renderBrowse(route, gen) {
    const dir = route.dir;
    const title = dir ? baseName(dir) : 'All files';
    // At the top the heading says it all: no one-item breadcrumb.
    const content = page(title, dir ? breadcrumbs(dir) : null);
    if (canWrite()) {
      const picker = el('input', { type: 'file', multiple: true, id: 'file-input', class: 'visually-hidden', tabindex: '-1', 'aria-hidden': 'true' });
      picker.addEventListener('change', () => {
        const files = Array.from(picker.files);
        picker.value = '';
        uploadFiles(files, dir);
      });
      content.append(el('div', { class: 'toolbar' },
        el('button', { type: 'button', class: 'primary', id: 'upload-button', onclick: () => picker.click() }, 'Upload files'),
        el('button', { type: 'button', id: 'mkdir-button', onclick: () => makeFolder(dir) }, 'New folder'),
        el('span', { class: 'hint' }, 'or drop files onto the list'),
        picker));
    }
    const { table: t, body, row } = dataTable('Contents of ' + (dir || 'the top folder'), 'files', listColumns(false));
    const empty = el('p', { class: 'empty', hidden: true },
      canWrite() ? 'This folder is empty. Drop files here or use “Upload files”.' : 'This folder is empty.');
    const sentinel = el('div', { class: 'sentinel', 'aria-hidden': 'true' });
    const more = el('button', { type: 'button', id: 'load-more', hidden: true, onclick: () => loadPage(L) }, 'Load more');
    const count = el('p', { class: 'count', id: 'count' });
    const zone = el('div', { class: 'drop-zone', id: 'listing' }, t, empty, sentinel, el('div', { class: 'more' }, count, more));
    content.append(zone);
    const L = (state.listing = { dir, body, empty, more, count, row: (e) => row(e, entryClass(e)),
      rows: new Map(), next: undefined, loading: false, visible: false, lastName: '' });
    if (canWrite()) dropTarget(zone, dir);
    // Loads the next page when the end of the list comes near; the button
    // does the same where IntersectionObserver is missing or for keyboards.
    if ('IntersectionObserver' in window) {
      L.observer = new IntersectionObserver((seen) => {
        L.visible = seen.some((s) => s.isIntersecting);
        if (L.visible) loadPage(L);
      }, { rootMargin: '800px 0px' });
      L.observer.observe(sentinel);
    }
    await loadPage(L);
  }

  async function loadPage(L) {
    if (L.loading || L.next === null || state.listing !== L) return;
    L.loading = true;
    L.more.disabled = true;
    try {
      const params = { dir: L.dir, limit: PAGE };
      if (L.next) params.after = L.next;
      const answer = await api('GET', url('/v1/list', params));
      if (state.listing !== L) return;
      const fragment = document.createDocumentFragment();
      for (const e of answer.entries) {
        if (L.rows.has(e.name)) continue; // already added by a live update
        const row = L.row(e);
        L.rows.set(e.name, { entry: e, row });
        fragment.append(row);
      }
      L.body.append(fragment);
      if (answer.entries.length) L.lastName = answer.entries[answer.entries.length - 1].name;
      L.next = answer.next || null;
    } finally {
      L.loading = false;
      L.more.disabled = false;
    }
    updateListingFooter(L);
    // A short page can leave the end in sight: the observer does not fire
    // again for it, so keep going.
    if (L.next && L.visible) requestAnimationFrame(() => loadPage(L));
  }

  function updateListingFooter(L) {
    L.more.hidden = L.next === null;
    L.empty.hidden = L.rows.size > 0 || L.next !== null;
    const n = L.rows.size;
    L.count.textContent = n === 0 ? '' : (n === 1 ? '1 item' : numberFormat.format(n) + ' items') + (L.next ? ' so far; more load as you scroll' : '');
  }

  // A change frame for a path under the folder shown: update its row in
  // place, so a folder of thousands of entries never reloads.
  function applyToListing(L, e) {
    const prefix = L.dir ? L.dir + '/' : '';
    if (!e.path.startsWith(prefix) || e.path === prefix) return;
    const rest = e.path.slice(prefix.length);
    const slash = rest.indexOf('/');
    if (slash >= 0) {
      // Something deeper: its top folder must be listed.
      const name = rest.slice(0, slash);
      if (!e.deleted && !L.rows.has(name)) {
        upsertRow(L, { name, path: prefix + name, kind: 'dir', size: 0, mtime_ns: 0, version: 0, origin: '', committed_ms: 0 });
      }
      return;
    }
    if (e.deleted) {
      const known = L.rows.get(rest);
      if (known) {
        known.row.remove();
        L.rows.delete(rest);
        updateListingFooter(L);
      }
      return;
    }
    upsertRow(L, { name: rest, path: e.path, kind: e.kind, size: e.size, mtime_ns: e.mtime_ns, version: e.version, origin: e.origin, committed_ms: e.committed_ms });
  }

  function upsertRow(L, e) {
    const known = L.rows.get(e.name);
    if (known && known.entry.version > e.version && e.version) return; // an older frame
    // Not loaded yet and beyond the pages loaded: paging brings it later.
    if (!known && L.next && cmp(e.name, L.lastName) > 0) return;
    const row = L.row(e);
    row.classList.add('changed');
    if (known) known.row.replaceWith(row);
    else {
      // Before the first row whose name sorts after it.
      let before = null, beforeName = null;
      for (const [name, item] of L.rows) {
        if (cmp(name, e.name) > 0 && (beforeName === null || cmp(name, beforeName) < 0)) [before, beforeName] = [item.row, name];
      }
      L.body.insertBefore(row, before);
    }
    L.rows.set(e.name, { entry: e, row });
    updateListingFooter(L);
  }

  // ---------------------------------------------------- uploads (drop, pick)

  function dropTarget(zone, dir) {
    let depth = 0; // dragenter/leave fire for every child crossed
    const hasFiles = (event) => Array.from(event.dataTransfer.types || []).includes('Files');
    zone.addEventListener('dragenter', (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      depth++;
      zone.classList.add('dropping');
    });
    zone.addEventListener('dragover', (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = 'copy';
    });
    zone.addEventListener('dragleave', () => {
      if (--depth <= 0) { depth = 0; zone.classList.remove('dropping'); }
    });
    zone.addEventListener('drop', (event) => {
      event.preventDefault();
      depth = 0;
      zone.classList.remove('dropping');
      const items = Array.from(event.dataTransfer.items || []);
      const folders = items.filter((i) => i.webkitGetAsEntry && i.webkitGetAsEntry() && i.webkitGetAsEntry().isDirectory);
      const files = Array.from(event.dataTransfer.files || []).filter((f) => !folders.some((i) => i.getAsFile() && i.getAsFile().name === f.name));
      if (folders.length) showError('Folders cannot be dropped here: make the folder with “New folder”, open it, and drop its files.');
      uploadFiles(files, dir);
    });
  }

  async function uploadFiles(files, dir) {
    if (!files.length) return;
    $('uploads').hidden = false;
    const outcomes = { ok: 0, conflict: 0, failed: 0 };
    for (const file of files) outcomes[await uploadOne(file, dir)]++;
    say([outcomes.ok && (outcomes.ok === 1 ? '1 file uploaded' : outcomes.ok + ' files uploaded'),
      outcomes.conflict && outcomes.conflict + ' kept as conflict copies',
      outcomes.failed && outcomes.failed + ' failed'].filter(Boolean).join(', ') + '.');
  }

  function uploadOne(file, dir) {
    const path = joinPath(dir, file.name);
    const L = state.listing && state.listing.dir === dir ? state.listing : null;
    const known = L && L.rows.get(file.name);
    const bar = el('progress', { max: file.size || 1, value: 0, 'aria-label': 'Uploading ' + file.name });
    const note = el('span', { class: 'note' }, 'uploading…');
    const item = el('li', {}, el('span', { class: 'name', dir: 'auto', title: path }, file.name), bar, note);
    $('upload-list').prepend(item);
    const fail = (message) => {
      item.classList.add('failed');
      bar.remove();
      note.textContent = message;
      return 'failed';
    };
    if (known && known.entry.kind === 'dir') {
      return Promise.resolve(fail('A folder named “' + file.name + '” is here already: rename the file and try again.'));
    }
    // The version this page showed: the hub keeps the upload as a conflict
    // copy if someone changed the file since, instead of overwriting.
    const base = known ? known.entry.version : 0;
    return new Promise((resolve) => {
      // XMLHttpRequest, not fetch: only it reports upload progress.
      const xhr = new XMLHttpRequest();
      xhr.open('POST', url('/v1/upload', { path, base_version: base, mtime_ms: file.lastModified || Date.now() }));
      xhr.setRequestHeader('X-SF-CSRF', state.session.csrf);
      xhr.upload.onprogress = (event) => { bar.value = event.loaded; };
      xhr.onerror = () => resolve(fail(UNREACHABLE));
      xhr.onload = () => {
        if (xhr.status < 200 || xhr.status > 299) {
          if (xhr.status === 401) sessionEnded();
          resolve(fail(errorFromBody(xhr.status, xhr.responseText).message));
          return;
        }
        const answer = JSON.parse(xhr.responseText);
        bar.remove();
        const entry = answer.entry;
        if (state.listing && state.listing.dir === dir) applyToListing(state.listing, entry);
        if (answer.conflict) {
          item.classList.add('conflict');
          note.replaceChildren('Conflict: “' + file.name + '” was changed on the hub since this page showed it. Your upload was kept as “' + baseName(entry.path) + '”. ',
            el('a', { href: '#/conflicts' }, 'Review conflicts'));
          resolve('conflict');
        } else {
          item.classList.add('done');
          note.textContent = 'uploaded, version ' + entry.version;
          resolve('ok');
        }
      };
      xhr.send(file);
    });
  }

  // ------------------------------------------------ folder, rename, delete

  function makeFolder(dir) {
    return ask({
      title: 'New folder', label: 'Folder name', ok: 'Create',
      text: dir ? 'In ' + dir : 'In the top folder',
      action: async (name) => {
        const path = joinPath(dir, name.replace(/^\/+|\/+$/g, ''));
        const entry = await api('POST', '/v1/commit', { path, kind: 'dir', base_version: 0, sha256: EMPTY_SHA, size: 0, origin: 'web' });
        if (state.listing && state.listing.dir === dir) applyToListing(state.listing, entry);
        say('Created the folder ' + path + '.');
      },
    });
  }

  function renameEntry(e) {
    const name = baseName(e.path);
    return ask({
      title: 'Rename', ok: 'Rename',
      label: 'New name (a name with “/” is a path from the top folder)', value: name,
      text: e.kind === 'dir' ? 'The folder keeps everything in it.' : '',
      action: async (value) => {
        const to = value.includes('/') ? value.replace(/^\/+|\/+$/g, '') : joinPath(parentOf(e.path), value);
        if (to === e.path) return;
        await api('POST', '/v1/move', { from: e.path, to });
        say('Renamed ' + e.path + ' to ' + to + '.');
        if (!liveIsUp()) render();
      },
    });
  }

  function deleteEntry(e) {
    const isDir = e.kind === 'dir';
    return ask({
      title: 'Delete ' + (isDir ? 'folder' : 'file') + '?', ok: 'Delete', danger: true,
      text: '“' + e.path + '”' + (isDir ? ' and everything in it' : '') +
        ' will be deleted here and on every synced device. You can restore it from Recently deleted.',
      action: async () => {
        const answer = await api('POST', '/v1/remove', { path: e.path });
        const L = state.listing;
        if (L && L.rows.has(e.name || baseName(e.path))) applyToListing(L, { path: e.path, deleted: true });
        const n = answer && answer.removed;
        say('Deleted ' + e.path + (n > 1 ? ' (' + n + ' items)' : '') + '. ', el('a', { href: '#/deleted' }, 'Restore it from Recently deleted'));
      },
    });
  }

  // ----------------------------------------------------------------- search

  async function renderSearch(route, gen) {
    if (!route.q) {
      location.hash = '#/browse/';
      return;
    }
    const content = page('Search: ' + route.q);
    const status = el('p', { class: 'count' }, 'Searching…');
    content.append(status);
    const answer = await api('GET', url('/v1/search', { q: route.q, limit: 100 }));
    if (gen !== state.gen) return;
    const { table: t, body, row } = dataTable('Paths containing ' + route.q, 'files search', listColumns(true));
    for (const e of answer.entries) body.append(row({ ...e, name: baseName(e.path) }, entryClass(e)));
    status.textContent = answer.entries.length === 0
      ? 'Nothing matches “' + route.q + '”.'
      : answer.entries.length + (answer.more ? ' matches shown; there are more: type more of the name to narrow it down.' : answer.entries.length === 1 ? ' match.' : ' matches.');
    if (answer.entries.length) content.append(t);
  }

  // ---------------------------------------------------------------- history

  async function renderHistory(route, gen) {
    const path = route.path;
    // The breadcrumbs lead to the file's folder, every part a link.
    const content = page(baseName(path) || 'History', breadcrumbs(parentOf(path), false),
      el('p', { class: 'subtitle' }, 'Every version of ', el('span', { dir: 'auto', class: 'path' }, path), ', newest first.'));
    let versions = [];
    const current = () => versions[versions.length - 1];
    const { table: t, body, row } = dataTable('Versions of ' + path, 'history', [
      ['Version', 'c-version', (v) => [String(v.version), v === current() ? el('span', { class: 'badge' }, 'current') : '']],
      ['Saved', 'c-time', (v) => timeNode(v.committed_ms)],
      ['Size', 'c-size', (v) => (v.deleted || v.kind === 'dir' ? '—' : sizeNode(v.size))],
      ['From', 'c-origin', (v) => el('span', { dir: 'auto' }, v.origin || '—')],
      ['Change', 'c-change', (v) => (v.deleted ? 'Deleted' : v.version === 1 ? 'Created' : 'Changed')],
      ['Actions', 'c-actions', (v) => el('div', { class: 'actions' },
        !v.deleted && v.kind === 'file' ? el('a', { class: 'button', href: fileUrl(path, v.version), download: baseName(path),
          'aria-label': 'Download version ' + v.version }, 'Download') : null,
        canWrite() && !v.deleted && v !== current() ? el('button', { type: 'button', 'aria-label': 'Restore version ' + v.version,
          onclick: () => restoreVersion(path, v.version) }, 'Restore') : null)],
    ]);
    const older = el('button', { type: 'button', hidden: true }, 'Show older versions');
    const note = el('p', { class: 'note', hidden: true });
    content.append(note, t, el('div', { class: 'more' }, older));
    const load = async (before) => {
      const answer = await api('GET', url('/v1/history', before ? { path, before } : { path }));
      if (gen !== state.gen) return;
      versions = answer.versions.concat(versions);
      older.hidden = !answer.more;
      const last = current();
      tell(note, !last ? 'Nothing has been saved at this path.'
        : last.deleted ? 'This ' + last.kind + ' is deleted. Restore a version to bring it back.' : '');
      body.replaceChildren(...versions.slice().reverse().map((v) => row(v, v === last ? 'current' : '')));
    };
    older.addEventListener('click', () => attempt(() => load(versions[0].version)));
    await load();
  }

  function restoreVersion(path, version) {
    return attempt(async () => {
      const entry = await api('POST', '/v1/restore', { path, version, origin: 'web' });
      say('Restored version ' + version + ' of ' + path + ' as version ' + entry.version + '.');
      render();
    });
  }

  // -------------------------------------------------------- recently deleted

  async function renderDeleted(route, gen) {
    const content = page('Recently deleted', el('p', { class: 'subtitle' },
      'Deleted files and folders, newest first. Restoring brings back the last version with content, everywhere.'));
    const { table: t, body, row } = dataTable('Recently deleted', 'deleted', [
      ['Path', 'c-name', (d) => nameCell(d.kind === 'dir', el('span', { class: 'name', dir: 'auto', title: d.path }, d.path))],
      ['Deleted', 'c-time', (d) => timeNode(d.deleted_ms)],
      ['By', 'c-origin', (d) => el('span', { dir: 'auto' }, d.deleted_by || '—')],
      ['Size', 'c-size', (d) => (d.restorable_version == null ? '—' : sizeNode(d.size))],
      ['Actions', 'c-actions', (d) => el('div', { class: 'actions' },
        el('a', { class: 'button', href: hashFor('history', d.path), 'aria-label': 'History of ' + d.path }, 'History'),
        canWrite() && (d.restorable_version != null || d.kind === 'dir') ? el('button', { type: 'button', class: 'primary', 'aria-label': 'Restore ' + d.path,
          onclick: () => restoreDeleted(d) }, 'Restore') : null)],
    ]);
    const empty = el('p', { class: 'empty', hidden: true }, 'Nothing has been deleted.');
    const more = el('button', { type: 'button', hidden: true }, 'Load more');
    content.append(t, empty, el('div', { class: 'more' }, more));
    let cursor = null;
    const load = async () => {
      const answer = await api('GET', url('/v1/deleted', cursor ? { limit: 100, before: cursor } : { limit: 100 }));
      if (gen !== state.gen) return;
      body.append(...answer.entries.map((d) => row(d, d.kind)));
      cursor = answer.next || null;
      more.hidden = !cursor;
      empty.hidden = body.children.length > 0;
    };
    more.addEventListener('click', () => attempt(load));
    await load();
  }

  function restoreDeleted(d) {
    return attempt(async () => {
      if (d.restorable_version != null) {
        await api('POST', '/v1/restore', { path: d.path, version: d.restorable_version, origin: 'web' });
      } else {
        // A folder has no content to restore: make it again. (Its files
        // are listed, and restored, one by one.)
        await api('POST', '/v1/commit', { path: d.path, kind: 'dir', base_version: 0, sha256: EMPTY_SHA, size: 0, origin: 'web' });
      }
      say('Restored ' + d.path + '. ', el('a', { href: hashFor('browse', parentOf(d.path)) }, 'Open its folder'));
      render();
    });
  }

  // -------------------------------------------------------------- conflicts

  async function renderConflicts(route, gen) {
    const content = page('Conflicts', el('p', { class: 'subtitle' },
      'When a file changed in two places at once, both versions were kept. Pick the one to keep; the other stays in history.'));
    const answer = await api('GET', '/v1/conflicts');
    if (gen !== state.gen) return;
    if (!answer.conflicts.length) {
      content.append(el('p', { class: 'empty' }, 'No conflicts. Everything is in agreement.'));
      return;
    }
    const list = el('ul', { class: 'conflicts' });
    for (const c of answer.conflicts) {
      const side = (title, e, keep, extra) => el('section', { class: 'side side-' + keep },
        el('h3', {}, title),
        e ? el('p', { class: 'name', dir: 'auto' },
          el('a', { href: fileUrl(e.path), download: baseName(e.path), title: 'Download ' + e.path }, baseName(e.path))) : null,
        e ? el('dl', {},
          el('dt', {}, 'Size'), el('dd', {}, sizeNode(e.size)),
          el('dt', {}, 'Modified'), el('dd', {}, timeNode(modifiedMs(e))),
          el('dt', {}, 'From'), el('dd', { dir: 'auto' }, e.origin || '—'),
          el('dt', {}, 'Version'), el('dd', {}, String(e.version))) : el('p', { class: 'note' }, 'The original is gone (deleted or renamed).'),
        extra,
        canWrite() && (e || keep === 'copy') ? el('button', { type: 'button', class: 'primary',
          'aria-label': 'Keep ' + (keep === 'copy' ? 'the copy ' + c.copy.path : 'the original ' + (e ? e.path : '')),
          onclick: () => resolveConflict(c, keep) }, 'Keep this one') : null);
      const originalPath = c.original ? c.original.path : c.copy.path;
      list.append(el('li', { class: 'conflict' },
        el('h2', { dir: 'auto' }, el('a', { href: hashFor('browse', parentOf(originalPath)) }, parentOf(originalPath) || 'All files'), ' / ', baseName(originalPath)),
        el('div', { class: 'sides' },
          side('Original', c.original, 'original'),
          side('Conflict copy', c.copy, 'copy', el('p', { class: 'note' }, 'Made by ', el('span', { dir: 'auto' }, c.copy_origin), ', ',
            Date.parse(c.copy_made) ? timeNode(Date.parse(c.copy_made)) : c.copy_made)))));
    }
    content.append(list);
    if (answer.more) content.append(el('p', { class: 'note' }, 'More conflicts exist than are shown: resolve these to see the rest.'));
  }

  function resolveConflict(c, keep) {
    return attempt(async () => {
      await api('POST', '/v1/conflicts/resolve', { copy: c.copy.path, keep });
      const target = c.original ? c.original.path : c.copy.path;
      say(keep === 'copy'
        ? 'Kept the copy: it is now the current version of ' + target + '. The previous version stays in its history.'
        : 'Kept the original ' + target + '. The copy was removed; it stays in Recently deleted.');
      render();
    });
  }

  // --------------------------------------------------------------- activity

  async function renderActivity(route, gen) {
    const content = page('Activity');
    const answer = await api('GET', '/v1/activity');
    if (gen !== state.gen) return;
    const agents = dataTable('Clients connected now', 'agents', [
      ['Agent', 'c-name', (a) => el('span', { class: 'name', dir: 'auto' }, a.agent === 'web' ? 'web page' : a.agent || 'unnamed client')],
      ['Token', 'c-origin', (a) => el('span', { dir: 'auto' }, a.token || '—')],
      ['Address', 'c-address', (a) => a.address || '—'],
      ['Connected since', 'c-time', (a) => timeNode(a.connected_ms)],
    ]);
    agents.body.append(...answer.agents.map((a) => agents.row(a)));
    const recent = dataTable('Recent changes, newest first', 'recent', [
      ['When', 'c-time', (e) => timeNode(e.committed_ms)],
      ['Path', 'c-name', (e) => el('span', { class: 'name', dir: 'auto' },
        el('a', { href: hashFor('history', e.path), title: 'History of ' + e.path }, e.path))],
      ['Change', 'c-change', (e) => (e.deleted ? 'deleted' : e.version === 1 ? 'created' : 'changed to version ' + e.version)],
      ['Size', 'c-size', (e) => (e.deleted || e.kind === 'dir' ? '—' : sizeNode(e.size))],
      ['From', 'c-origin', (e) => el('span', { dir: 'auto' }, e.origin)],
    ]);
    recent.body.append(...answer.recent.map((e) => recent.row(e)));
    content.append(el('h2', {}, 'Connected now'),
      answer.agents.length ? agents.table : el('p', { class: 'empty' }, 'No agent or page is connected to this hub.'),
      el('h2', {}, 'Recent changes'),
      answer.recent.length ? recent.table : el('p', { class: 'empty' }, 'No changes yet.'));
    // Connections come and go without change frames: look again now and then.
    state.pollTimer = setInterval(() => { if (gen === state.gen) refreshSoon(0); }, 10000);
  }

  // ------------------------------------------------------------ live updates

  const liveIsUp = () => state.ws && state.ws.readyState === WebSocket.OPEN;

  function setLive(text, up) {
    $('live').textContent = text;
    $('live').classList.toggle('up', up);
  }

  // Re-renders the current view once changes stop arriving for a moment,
  // keeping the scroll position.
  function refreshSoon(delay) {
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

  function connectLive() {
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

  function stopLive() {
    clearTimeout(state.wsTimer);
    const ws = state.ws;
    state.ws = null;
    if (ws) ws.close();
    setLive('offline', false);
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
})();
