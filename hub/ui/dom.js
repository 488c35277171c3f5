// Helpers every part of the page builds with: elements (the el() helper,
// the only way data reaches the DOM: through textContent or attributes,
// never innerHTML), paths, sizes and dates, the page's addresses, and the
// pieces every view is made of (its heading, breadcrumbs, tables).

export const $ = (id) => document.getElementById(id);

// Builds an element. attrs: class, text, on<event> handlers, booleans, the
// rest as attributes; children: nodes or strings (text nodes).
export function el(tag, attrs, ...children) {
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

export const baseName = (path) => path.slice(path.lastIndexOf('/') + 1);
export const parentOf = (path) => (path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '');
export const joinPath = (dir, name) => (dir ? dir + '/' + name : name);

// Code point order, which is the hub's order (UTF-8 bytes).
export function cmp(a, b) {
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
export const numberFormat = new Intl.NumberFormat();
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const fullDateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });
export const sizeNode = (n) => el('span', { title: numberFormat.format(n) + ' bytes' }, fmtSize(n));
export function timeNode(ms) {
  if (!ms) return '—';
  const d = new Date(ms);
  return el('time', { datetime: d.toISOString(), title: fullDateFormat.format(d) }, dateFormat.format(d));
}
// The writer's modification time when known, else when the hub committed it.
export const modifiedMs = (e) => (e.mtime_ns ? Math.floor(e.mtime_ns / 1e6) : e.committed_ms);

export function hashFor(view, path) {
  return '#/' + view + '/' + (path ? path.split('/').map(encodeURIComponent).join('/') : '');
}
export function fileUrl(path, version) {
  const q = new URLSearchParams({ path });
  if (version != null) q.set('version', version);
  return '/v1/file?' + q;
}
export const url = (path, params) => path + '?' + new URLSearchParams(params);

// ------------------------------------------------------- a view's pieces

// Starts a view: clears the content area and returns it with its heading.
export function page(title, ...intro) {
  const content = $('content');
  content.replaceChildren();
  content.className = '';
  document.title = title + ' · synced-folder';
  const h1 = el('h1', { tabindex: '-1', dir: 'auto' }, title);
  content.append(h1, ...intro.filter(Boolean));
  return content;
}

export function breadcrumbs(path, last) {
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
export function dataTable(caption, cls, columns) {
  const body = el('tbody');
  const table = el('table', { class: 'list ' + cls }, el('caption', { class: 'visually-hidden' }, caption),
    el('thead', {}, el('tr', {}, columns.map(([label, c]) => el('th', { scope: 'col', class: c }, label)))), body);
  const row = (item, rowClass) => el('tr', { class: rowClass },
    columns.map(([label, c, content]) => el('td', { 'data-label': label, class: c }, content(item))));
  return { table, body, row };
}
// A file or folder icon beside its name (a block inside the cell: a
// flex table cell would stop being a table cell).
export const nameCell = (isDir, name) => el('div', { class: 'name-cell' },
  el('span', { class: 'icon ' + (isDir ? 'i-dir' : 'i-file'), 'aria-hidden': 'true' }), name);
