// Activity: the agents and pages connected now, and the recent changes.

import { api } from './api.js';
import { dataTable, el, hashFor, page, sizeNode, timeNode } from './dom.js';
import { refreshSoon } from './live.js';
import { state } from './state.js';

export async function renderActivity(route, gen) {
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
