// Conflicts: both versions of a file changed in two places at once, side
// by side, and keeping one of them.

import { api } from './api.js';
import { render } from './app.js';
import { baseName, el, fileUrl, hashFor, modifiedMs, page, parentOf, sizeNode, timeNode } from './dom.js';
import { attempt, say } from './messages.js';
import { canWrite, state } from './state.js';

export async function renderConflicts(route, gen) {
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
