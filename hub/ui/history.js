// A file's history (every version, any of them downloaded or restored)
// and Recently deleted (what was removed, and bringing it back).

import { EMPTY_SHA, api } from './api.js';
import { render } from './app.js';
import {
  baseName, breadcrumbs, dataTable, el, fileUrl, hashFor, nameCell, page, parentOf, sizeNode, timeNode, url,
} from './dom.js';
import { attempt, say, tell } from './messages.js';
import { canWrite, state } from './state.js';

// ---------------------------------------------------------------- history

export async function renderHistory(route, gen) {
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

export async function renderDeleted(route, gen) {
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
