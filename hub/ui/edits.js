// Changing files from the page: uploads (dropped or picked, with progress,
// and a conflict copy when the file changed meanwhile), new folder, rename
// and delete.

import { EMPTY_SHA, UNREACHABLE, api, errorFromBody } from './api.js';
import { render, sessionEnded } from './app.js';
import { $, baseName, el, joinPath, parentOf, url } from './dom.js';
import { applyToListing } from './files.js';
import { liveIsUp } from './live.js';
import { ask, say, showError } from './messages.js';
import { state } from './state.js';

// ---------------------------------------------------- uploads (drop, pick)

export function dropTarget(zone, dir) {
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

export async function uploadFiles(files, dir) {
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

export function makeFolder(dir) {
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

export function renameEntry(e) {
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

export function deleteEntry(e) {
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
