// A folder's listing: its rows, loaded a page at a time as the reader
// scrolls, and kept current from change frames without reloading; and the
// search results, which are listed the same way.

import { api } from './api.js';
import {
  baseName, breadcrumbs, cmp, dataTable, el, fileUrl, hashFor, modifiedMs, nameCell, numberFormat,
  page, sizeNode, timeNode, url,
} from './dom.js';
import { deleteEntry, dropTarget, makeFolder, renameEntry, uploadFiles } from './edits.js';
import { canWrite, state } from './state.js';

const PAGE = 200; // listing page size: a 10,000-entry folder opens at once

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

export async function renderBrowse(route, gen) {
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
export function applyToListing(L, e) {
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

// ----------------------------------------------------------------- search

export async function renderSearch(route, gen) {
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
