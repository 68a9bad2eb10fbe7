// Warren management UI: a hash-routed single page over /api/, in plain
// JavaScript with no build step and nothing fetched from elsewhere: charts
// are drawn here as SVG from the API's samples (RabbitMQ's lengths_age,
// msg_rates_age, data_rates_age windows), lists are paged, sorted and
// filtered by the server (page, page_size, name, use_regex, sort,
// sort_reverse, columns), so they stay fast with 10 000 queues.
// Credentials live in sessionStorage and go out as a basic-auth header.
'use strict';

const main = document.getElementById('main');
const REFRESH_MS = 5000;

// ---- DOM helpers ----

// h builds an element: attributes (on* become listeners) and children
// (strings become text nodes, so nothing is ever parsed as HTML).
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  return fill(el, attrs, kids);
}

const SVG = 'http://www.w3.org/2000/svg';
// s builds an SVG element the same way.
function s(tag, attrs, ...kids) {
  return fill(document.createElementNS(SVG, tag), attrs, kids);
}

function fill(el, attrs, kids) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

// table renders rows with columns [{t: title, v: row => cell, num, sort}];
// sortable columns call onSort(key) when their header is clicked.
function table(cols, rows, rowAttrs, sorting) {
  if (!rows.length) return h('p', { class: 'muted' }, 'None.');
  const head = c => {
    if (!sorting || !c.sort) return h('th', {}, c.t);
    const on = sorting.sort === c.sort;
    return h('th', { class: 'sortable' + (on ? ' sorted' : ''), 'data-sort': c.sort, onclick: () => sorting.onSort(c.sort) },
      c.t, on ? (sorting.rev ? ' ▼' : ' ▲') : '');
  };
  return h('table', { class: 'list' },
    h('thead', {}, h('tr', {}, cols.map(head))),
    h('tbody', {}, rows.map(r => h('tr', rowAttrs ? rowAttrs(r) : {},
      cols.map(c => h('td', c.num ? { class: 'num' } : {}, c.v(r)))))));
}

// facts renders [title, value, id] rows as a two-column table.
function facts(rows, cls) {
  return h('table', { class: 'facts ' + (cls || '') }, h('tbody', {},
    rows.filter(Boolean).map(([t, v, id]) => h('tr', {}, h('th', {}, t), h('td', id ? { id } : {}, v)))));
}

const num = x => (x === undefined || x === null) ? '' : Number(x).toLocaleString('en');
const rate = x => (x || 0).toFixed(1) + '/s';
const enc = encodeURIComponent;
const json = v => JSON.stringify(v, null, 2);
const exName = n => n === '' ? '(AMQP default)' : n;
const exURL = n => n === '' ? 'amq.default' : n;
const yes = b => b ? 'yes' : 'no';

function bytes(n) {
  if (n === undefined || n === null) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(Math.round(n))) + ' ' + units[i];
}

function duration(ms) {
  let sec = Math.floor(ms / 1000);
  const d = Math.floor(sec / 86400); sec %= 86400;
  const hr = Math.floor(sec / 3600); sec %= 3600;
  const m = Math.floor(sec / 60); sec %= 60;
  if (d) return d + 'd ' + hr + 'h';
  if (hr) return hr + 'h ' + m + 'm';
  if (m) return m + 'm ' + sec + 's';
  return sec + 's';
}

function flash(text, ok) {
  const f = document.getElementById('flash');
  f.textContent = text;
  f.className = ok ? 'ok' : '';
  f.hidden = !text;
}

// ---- credentials and the API ----

const auth = {
  get: () => sessionStorage.getItem('warren.auth'),
  user: () => sessionStorage.getItem('warren.user'),
  set(user, pw) {
    const b = new TextEncoder().encode(user + ':' + pw);
    sessionStorage.setItem('warren.auth', btoa(String.fromCharCode(...b)));
    sessionStorage.setItem('warren.user', user);
  },
  clear() { sessionStorage.removeItem('warren.auth'); sessionStorage.removeItem('warren.user'); },
};

// loginFromHash takes RabbitMQ's login link, #/login/USER/PASS, and the
// older #/page?user=U&password=P; the credentials are then removed from
// the address (and from the browser's history).
function loginFromHash() {
  const m = /^#\/login\/([^/]*)\/([^/?]*)/.exec(location.hash);
  if (m) {
    auth.set(decodeURIComponent(m[1]), decodeURIComponent(m[2]));
    history.replaceState(null, '', location.pathname + '#/');
    return;
  }
  const i = location.hash.indexOf('?');
  if (i < 0) return;
  const p = new URLSearchParams(location.hash.slice(i + 1));
  if (!p.has('user')) return;
  auth.set(p.get('user'), p.get('password') || '');
  p.delete('user');
  p.delete('password');
  const rest = p.toString();
  history.replaceState(null, '', location.pathname + location.hash.slice(0, i) + (rest ? '?' + rest : ''));
}

class AuthError extends Error {}

async function api(method, path, body, headers) {
  const hd = Object.assign({ Authorization: 'Basic ' + auth.get() }, headers);
  // credentials: 'omit' keeps the browser from answering a 401 with its
  // own login dialog; the Authorization header still goes out.
  const init = { method, headers: hd, credentials: 'omit' };
  if (body !== undefined) {
    hd['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch('/api' + path, init);
  if (r.status === 401) {
    auth.clear();
    throw new AuthError('login failed');
  }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { /* not JSON */ }
  if (!r.ok) throw new Error(r.status + ' ' + ((data && (data.reason || data.error)) || r.statusText));
  return data;
}

// act runs a change, flashes its outcome and re-renders the page.
async function act(fn, okText) {
  try {
    const res = await fn();
    flash(typeof okText === 'function' ? okText(res) : okText, true);
  } catch (e) {
    flash(e.message);
  }
  render();
}

// parseArgs reads a JSON object typed into a form ("" is {}).
function parseArgs(text) {
  const t = (text || '').trim();
  if (!t) return {};
  const v = JSON.parse(t);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('arguments must be a JSON object');
  return v;
}

function loginForm(msg) {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true });
  const pw = h('input', { name: 'password', type: 'password', autocomplete: 'current-password' });
  return h('form', {
    id: 'login', onsubmit: e => {
      e.preventDefault();
      auth.set(user.value, pw.value);
      flash('');
      render();
    },
  }, h('h1', {}, 'Log in'), msg && h('p', { class: 'error' }, msg),
  h('label', {}, 'Username ', user), h('label', {}, 'Password ', pw), h('button', { type: 'submit' }, 'Log in'));
}

// ---- chart ranges and samples ----

// The statistics interval (ms) the node samples at, from the overview.
let statsInterval = 5000, statsIntervalKnown = false;

async function learnInterval() {
  if (statsIntervalKnown) return;
  try {
    const o = await api('GET', '/overview?columns=statistics_interval');
    if (o && o.statistics_interval) statsInterval = o.statistics_interval;
    statsIntervalKnown = true;
  } catch (e) {
    if (e instanceof AuthError) throw e;
  }
}

// RabbitMQ's chart ranges at its 5 s interval; scaled to the node's.
const RANGES = [[60, 5], [600, 5], [3600, 60], [28800, 600], [86400, 1800]];

function rangeIndex() { return Number(localStorage.getItem('warren.range') || 0) || 0; }

function currentWindow() {
  const [age, incr] = RANGES[Math.min(rangeIndex(), RANGES.length - 1)];
  const f = statsInterval / 5000;
  const i = Math.max(1, Math.round(incr * f));
  return { age: Math.max(i, Math.round(age * f / i) * i), incr: i };
}

// windowQuery asks for samples of the given kinds over the chosen range.
function windowQuery(...kinds) {
  const w = currentWindow();
  return kinds.map(k => `${k}_age=${w.age}&${k}_incr=${w.incr}`).join('&');
}

function rangeSelect() {
  const label = ([age, incr]) => {
    const f = statsInterval / 5000;
    return 'last ' + duration(Math.max(Math.round(incr * f), 1) * Math.round(age / incr) * 1000);
  };
  return h('label', { class: 'range' }, 'Charts: ',
    h('select', {
      id: 'range', onchange: e => { localStorage.setItem('warren.range', e.target.value); render(); },
    }, RANGES.map((r, i) => h('option', { value: i, selected: i === rangeIndex() }, label(r)))));
}

const COLORS = ['#e8a33d', '#4a90c2', '#6cb56c', '#c2554a', '#8a6cc2', '#3db3b3', '#c28a3d', '#7a7a7a', '#c24a8a', '#4ac28a', '#2d5ca8', '#a8a82d'];

// chart draws series [{key, label, d: X_details}] as lines. With rates, a
// point is the change between consecutive samples per second; otherwise
// the samples themselves. fmt formats values (counts by default).
function chart(id, title, series, opts) {
  opts = opts || {};
  const fmt = opts.fmt || (v => num(Math.round(v * 10) / 10));
  const W = 520, H = 170, L = 60, R = 10, T = 10, B = 24;
  const lines = series.map((sr, i) => {
    const ss = (sr.d && sr.d.samples) || [];
    let pts = [];
    if (opts.rates) {
      for (let k = 0; k + 1 < ss.length; k++) {
        const dt = (ss[k].timestamp - ss[k + 1].timestamp) / 1000;
        pts.push([ss[k].timestamp, dt > 0 ? Math.max(0, (ss[k].sample - ss[k + 1].sample) / dt) : 0]);
      }
    } else {
      pts = ss.map(x => [x.timestamp, x.sample]);
    }
    pts.reverse(); // oldest first
    const now = opts.rates ? (sr.d ? sr.d.rate : 0) : (pts.length ? pts[pts.length - 1][1] : 0);
    return { key: sr.key, label: sr.label, pts, now: now || 0, color: COLORS[i % COLORS.length] };
  });
  const all = lines.flatMap(l => l.pts);
  const t0 = Math.min(...all.map(p => p[0])), t1 = Math.max(...all.map(p => p[0]));
  const top = Math.max(1, ...all.map(p => p[1])) * 1.1;
  const x = t => L + (t1 > t0 ? (t - t0) / (t1 - t0) : 1) * (W - L - R);
  const y = v => T + (1 - v / top) * (H - T - B);
  const grid = [0, 0.5, 1].map(f => [
    s('line', { x1: L, x2: W - R, y1: y(top * f), y2: y(top * f), class: 'grid' }),
    s('text', { x: L - 4, y: y(top * f) + 4, 'text-anchor': 'end', class: 'axis' }, fmt(top * f))]);
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': title },
    grid,
    s('line', { x1: L, x2: L, y1: T, y2: H - B, class: 'axis-line' }),
    all.length ? [
      s('text', { x: L, y: H - 6, class: 'axis' }, new Date(t0).toLocaleTimeString()),
      s('text', { x: W - R, y: H - 6, 'text-anchor': 'end', class: 'axis' }, new Date(t1).toLocaleTimeString()),
    ] : s('text', { x: L + 10, y: H / 2, class: 'axis' }, 'No samples yet.'),
    lines.map(l => s('path', {
      class: 'series', 'data-series': l.key, 'data-points': l.pts.length, 'data-max': Math.max(0, ...l.pts.map(p => p[1])),
      stroke: l.color, fill: 'none',
      d: l.pts.map((p, i) => (i ? 'L' : 'M') + x(p[0]).toFixed(1) + ' ' + y(p[1]).toFixed(1)).join(' '),
    })));
  const legend = h('table', { class: 'legend' }, h('tbody', {}, lines.map(l => {
    const sw = h('span', { class: 'swatch' });
    sw.style.background = l.color;
    return h('tr', {}, h('td', {}, sw, ' ', l.label), h('td', { class: 'num', 'data-legend': l.key }, fmt(l.now) + (opts.rates ? '/s' : '')));
  })));
  return h('div', { class: 'chart-box', id }, h('h3', {}, title), h('div', { class: 'chart-row' }, svg, legend));
}

// ---- paged lists ----

// listState reads a list page's state from the hash: #/queues?page=2&...
function listState() {
  const i = location.hash.indexOf('?');
  const p = new URLSearchParams(i < 0 ? '' : location.hash.slice(i + 1));
  return {
    page: Math.max(1, Number(p.get('page')) || 1), size: Number(p.get('size')) || 100,
    name: p.get('name') || '', regex: p.get('regex') === '1', sort: p.get('sort') || '', rev: p.get('rev') === '1',
  };
}

function setListState(st) {
  const path = location.hash.slice(1).split('?')[0];
  const p = new URLSearchParams();
  if (st.page > 1) p.set('page', st.page);
  if (st.size !== 100) p.set('size', st.size);
  if (st.name) p.set('name', st.name);
  if (st.regex) p.set('regex', '1');
  if (st.sort) p.set('sort', st.sort);
  if (st.rev) p.set('rev', '1');
  const q = p.toString();
  location.hash = '#' + path + (q ? '?' + q : '');
}

// pagedList fetches one page of resource as the server pages it and
// renders filter, sort, page controls and the table.
async function pagedList(resource, cols, opts) {
  opts = opts || {};
  const st = listState();
  const qs = new URLSearchParams({ page: st.page, page_size: st.size, name: st.name, use_regex: st.regex });
  if (st.sort) qs.set('sort', st.sort);
  if (st.rev) qs.set('sort_reverse', 'true');
  if (opts.columns) qs.set('columns', opts.columns);
  let res = await api('GET', '/' + resource + '?' + qs);
  if (Array.isArray(res)) { // a server without paging
    res = { items: res, page: 1, page_count: 1, filtered_count: res.length, total_count: res.length, item_count: res.length };
  }
  const filter = h('input', { name: 'filter', type: 'search', value: st.name, placeholder: 'Filter by name', id: resource + '-filter' });
  const regex = h('input', { name: 'regex', type: 'checkbox', checked: st.regex });
  const apply = e => {
    e.preventDefault();
    setListState(Object.assign(st, { name: filter.value, regex: regex.checked, page: 1 }));
  };
  const size = h('select', { name: 'page_size', onchange: e => setListState(Object.assign(st, { size: Number(e.target.value), page: 1 })) },
    [20, 50, 100, 500].map(n => h('option', { value: n, selected: n === st.size }, n)));
  const pageSel = h('select', { name: 'page', onchange: e => setListState(Object.assign(st, { page: Number(e.target.value) })) },
    Array.from({ length: Math.max(1, res.page_count) }, (_, i) => h('option', { value: i + 1, selected: i + 1 === res.page }, i + 1)));
  const pager = h('div', { class: 'pager' },
    h('button', { type: 'button', name: 'prev', disabled: res.page <= 1, onclick: () => setListState(Object.assign(st, { page: res.page - 1 })) }, '‹ Previous'),
    ' Page ', pageSel, ' of ', Math.max(1, res.page_count), ' ',
    h('button', { type: 'button', name: 'next', disabled: res.page >= res.page_count, onclick: () => setListState(Object.assign(st, { page: res.page + 1 })) }, 'Next ›'),
    ' · ', h('span', { class: 'counts', id: resource + '-counts' },
      `${num(res.filtered_count)} matching of ${num(res.total_count)}`), ' · Page size ', size);
  const sorting = {
    sort: st.sort, rev: st.rev,
    onSort: key => setListState(Object.assign(st, { sort: key, rev: st.sort === key ? !st.rev : false, page: 1 })),
  };
  return h('div', { class: 'paged' },
    h('form', { class: 'filter', onsubmit: apply }, filter, h('label', { class: 'inline' }, regex, ' Regex'), ' ', h('button', { type: 'submit' }, 'Filter')),
    pager, table(cols, res.items, opts.rowAttrs, sorting));
}

// vhostNames lists the vhosts for forms' selects.
async function vhostNames() {
  const vs = await api('GET', '/vhosts?columns=name');
  return (Array.isArray(vs) ? vs : vs.items).map(v => v.name);
}

function select(name, values, selected) {
  return h('select', { name }, values.map(v => h('option', { value: v, selected: v === selected }, v)));
}

// section is a collapsible form block, as RabbitMQ's "Add a new ..." ones.
function section(title, node, open) {
  return h('details', { class: 'section', open: open !== false }, h('summary', {}, title), node);
}

// ---- pages: each returns a node ----

async function overview() {
  const o = await api('GET', '/overview?' + windowQuery('lengths', 'msg_rates'));
  if (o.statistics_interval) statsInterval = o.statistics_interval;
  let nodes = [];
  try { nodes = await api('GET', '/nodes'); } catch (e) { /* monitoring-only data */ }
  const ot = o.object_totals || {}, qt = o.queue_totals || {}, ms = o.message_stats || {}, cr = o.churn_rates || {};
  const card = (t, v, id) => h('div', { class: 'card', id }, t, h('b', {}, v));
  const msgSeries = [['publish', 'Publish'], ['confirm', 'Publisher confirm'], ['deliver', 'Deliver (manual ack)'],
    ['deliver_no_ack', 'Deliver (auto ack)'], ['ack', 'Consumer ack'], ['redeliver', 'Redelivered'],
    ['get', 'Get (manual ack)'], ['get_no_ack', 'Get (auto ack)'], ['get_empty', 'Get (empty)'],
    ['return_unroutable', 'Unroutable (return)'], ['drop_unroutable', 'Unroutable (drop)']]
    .map(([k, l]) => ({ key: k, label: l, d: ms[k + '_details'] }));
  const alarms = [];
  for (const n of nodes) {
    if (n.mem_alarm) alarms.push('memory alarm on ' + n.name);
    if (n.disk_free_alarm) alarms.push('disk alarm on ' + n.name);
  }
  return h('div', {},
    h('h1', {}, 'Overview ', h('span', { class: 'muted' }, o.node, ' · Warren ', o.warren_version, ' (reports ', o.product_name, ' ', o.product_version, ')')),
    alarms.length ? h('p', { class: 'alarm', id: 'alarms' }, 'Resource alarms in effect: ', alarms.join(', '), '. Publishers are blocked.')
      : h('p', { class: 'ok-note', id: 'alarms' }, 'No resource alarms.'),
    rangeSelect(),
    h('h2', {}, 'Queued messages'),
    chart('chart-queued', 'Queued messages', [
      { key: 'messages_ready', label: 'Ready', d: qt.messages_ready_details },
      { key: 'messages_unacknowledged', label: 'Unacked', d: qt.messages_unacknowledged_details },
      { key: 'messages', label: 'Total', d: qt.messages_details }]),
    h('h2', {}, 'Message rates'),
    chart('chart-rates', 'Message rates', msgSeries, { rates: true }),
    h('h2', {}, 'Global counts'),
    h('div', { class: 'cards' }, ['connections', 'channels', 'exchanges', 'queues', 'consumers'].map(k => card(k, num(ot[k] ?? 0), 'total-' + k))),
    h('h2', {}, 'Nodes'),
    table([
      { t: 'Name', v: n => n.name },
      { t: 'File descriptors', v: n => usage(n.fd_used, n.fd_total, num) },
      { t: 'Socket descriptors', v: n => usage(n.sockets_used, n.sockets_total, num) },
      { t: 'Memory', v: n => usage(n.mem_used, n.mem_limit, bytes, n.mem_alarm) },
      { t: 'Disk space', v: n => usage(n.disk_free, n.disk_free_limit, bytes, n.disk_free_alarm, true) },
      { t: 'Uptime', v: n => duration(n.uptime || 0) },
      { t: 'Cores', v: n => n.processors, num: true },
    ], nodes, () => ({ class: 'node' })),
    h('h2', {}, 'Churn statistics'),
    table([{ t: 'Event', v: r => r[0] }, { t: 'Rate', v: r => rate(cr[r[1] + '_details']?.rate), num: true }, { t: 'Total', v: r => num(cr[r[1]]), num: true }],
      [['Connections opened', 'connection_created'], ['Connections closed', 'connection_closed'], ['Channels opened', 'channel_created'],
        ['Channels closed', 'channel_closed'], ['Queues declared', 'queue_declared'], ['Queues created', 'queue_created'], ['Queues deleted', 'queue_deleted']]),
    h('h2', {}, 'Ports and contexts'),
    table([{ t: 'Protocol', v: l => l.protocol }, { t: 'Bound to', v: l => l.ip_address }, { t: 'Port', v: l => l.port, num: true }],
      o.listeners || [], () => ({ class: 'listener' })),
    h('h2', {}, 'Export definitions'),
    h('p', {}, h('button', { type: 'button', id: 'export', onclick: exportDefinitions }, 'Download broker definitions')));
}

// usage renders used of limit with a bar; for disk, free below limit is bad.
function usage(used, limit, fmt, alarm, freeSpace) {
  if (used === undefined) return '';
  const bar = h('div', { class: 'bar' + (alarm ? ' alarm' : '') }, h('div', { class: 'fill' }));
  if (limit) bar.firstChild.style.width = Math.min(100, freeSpace ? (limit / Math.max(used, 1)) * 100 : (used / limit) * 100).toFixed(1) + '%';
  return h('div', { class: 'usage' }, bar, fmt(used), limit ? [' ', h('span', { class: 'muted' }, (freeSpace ? 'limit ' : 'of ') + fmt(limit))] : '');
}

async function exportDefinitions() {
  try {
    const defs = await api('GET', '/definitions');
    const a = h('a', { href: URL.createObjectURL(new Blob([json(defs)], { type: 'application/json' })), download: 'warren-definitions.json' });
    document.body.append(a);
    a.click();
    a.remove();
  } catch (e) { flash(e.message); }
}

// ---- connections and channels ----

const connLink = name => h('a', { href: '#/connections/' + enc(name) }, name);
const chanLink = name => h('a', { href: '#/channels/' + enc(name) }, name);

async function connections() {
  return h('div', {}, h('h1', {}, 'Connections'), await pagedList('connections', [
    { t: 'Name', v: c => [connLink(c.name), c.user_provided_name ? [' ', h('span', { class: 'muted' }, c.user_provided_name)] : ''], sort: 'name' },
    { t: 'User', v: c => c.user, sort: 'user' }, { t: 'Vhost', v: c => c.vhost, sort: 'vhost' },
    { t: 'Client', v: c => clientName(c.client_properties) },
    { t: 'TLS', v: c => yes(c.ssl) }, { t: 'Channels', v: c => c.channels, num: true, sort: 'channels' },
    { t: 'From client', v: c => bytes(c.recv_oct_details?.rate) + '/s', num: true, sort: 'recv_oct_details.rate' },
    { t: 'To client', v: c => bytes(c.send_oct_details?.rate) + '/s', num: true, sort: 'send_oct_details.rate' },
    { t: 'State', v: c => c.state },
  ]));
}

function clientName(p) {
  if (!p) return '';
  return [p.product, p.version].filter(Boolean).join(' ') + (p.platform ? ' (' + p.platform + ')' : '');
}

async function connectionDetail(name) {
  const c = await api('GET', '/connections/' + enc(name) + '?' + windowQuery('data_rates'));
  let chs = await api('GET', '/channels');
  if (!Array.isArray(chs)) chs = chs.items;
  chs = chs.filter(ch => ch.connection_details && ch.connection_details.name === name);
  const close = () => {
    if (!confirm('Close connection ' + name + '?')) return;
    api('DELETE', '/connections/' + enc(name), undefined, { 'X-Reason': 'Closed via management UI' })
      .then(() => { flash('Connection closed.', true); location.hash = '#/connections'; }, e => flash(e.message));
  };
  return h('div', {},
    h('h1', {}, 'Connection ', h('span', { id: 'conn-name' }, name)),
    facts([['User', c.user], ['Virtual host', c.vhost], ['Client', clientName(c.client_properties)],
      ['Connection name', c.user_provided_name || ''], ['Authentication', c.auth_mechanism], ['TLS', yes(c.ssl)],
      ['Protocol', c.protocol], ['Connected at', c.connected_at ? new Date(c.connected_at).toLocaleString() : ''],
      ['Heartbeat', c.timeout + 's'], ['Frame max', num(c.frame_max)], ['Channel max', num(c.channel_max)],
      ['Received', bytes(c.recv_oct), 'conn-recv'], ['Sent', bytes(c.send_oct), 'conn-sent'], ['Channels', c.channels]]),
    rangeSelect(),
    chart('chart-data', 'Data rates', [
      { key: 'recv_oct', label: 'From client', d: c.recv_oct_details },
      { key: 'send_oct', label: 'To client', d: c.send_oct_details }], { rates: true, fmt: bytes }),
    h('h2', {}, 'Client properties'),
    h('table', { class: 'facts', id: 'client-properties' }, h('tbody', {}, Object.entries(c.client_properties || {}).map(([k, v]) =>
      h('tr', {}, h('th', {}, k), h('td', {}, typeof v === 'object' ? h('pre', {}, json(v)) : String(v)))))),
    h('h2', {}, 'Channels'),
    table([{ t: 'Channel', v: ch => chanLink(ch.name) }, { t: 'Consumers', v: ch => ch.consumer_count, num: true },
      { t: 'Unacked', v: ch => ch.messages_unacknowledged, num: true }, { t: 'Prefetch', v: ch => ch.prefetch_count, num: true }], chs),
    h('p', {}, h('button', { type: 'button', class: 'danger', id: 'close-connection', onclick: close }, 'Force close')));
}

async function channels() {
  return h('div', {}, h('h1', {}, 'Channels'), await pagedList('channels', [
    { t: 'Channel', v: c => chanLink(c.name), sort: 'name' }, { t: 'User', v: c => c.user, sort: 'user' },
    { t: 'Vhost', v: c => c.vhost, sort: 'vhost' },
    { t: 'Consumers', v: c => c.consumer_count, num: true, sort: 'consumer_count' },
    { t: 'Unacked', v: c => c.messages_unacknowledged, num: true, sort: 'messages_unacknowledged' },
    { t: 'Prefetch', v: c => c.prefetch_count, num: true },
    { t: 'Publish', v: c => rate(c.message_stats?.publish_details?.rate), num: true, sort: 'message_stats.publish_details.rate' },
    { t: 'Deliver / get', v: c => rate(c.message_stats?.deliver_get_details?.rate), num: true, sort: 'message_stats.deliver_get_details.rate' },
    { t: 'Ack', v: c => rate(c.message_stats?.ack_details?.rate), num: true },
    { t: 'State', v: c => c.state },
  ]));
}

async function channelDetail(name) {
  const c = await api('GET', '/channels/' + enc(name) + '?' + windowQuery('msg_rates'));
  let cons = await api('GET', '/consumers');
  cons = (Array.isArray(cons) ? cons : cons.items).filter(x => x.channel_details && x.channel_details.name === name);
  const ms = c.message_stats || {};
  return h('div', {},
    h('h1', {}, 'Channel ', h('span', { id: 'chan-name' }, name)),
    facts([['Connection', connLink(c.connection_details?.name || '')], ['User', c.user], ['Virtual host', c.vhost],
      ['Prefetch (consumer)', c.prefetch_count], ['Prefetch (global)', c.global_prefetch_count],
      ['Unacked', c.messages_unacknowledged, 'chan-unacked'], ['Unconfirmed', c.messages_unconfirmed], ['State', c.state]]),
    rangeSelect(),
    chart('chart-channel', 'Message rates', [['publish', 'Publish'], ['confirm', 'Confirm'], ['deliver_get', 'Deliver / get'],
      ['ack', 'Ack'], ['redeliver', 'Redelivered'], ['return_unroutable', 'Unroutable (return)'], ['drop_unroutable', 'Unroutable (drop)']]
      .map(([k, l]) => ({ key: k, label: l, d: ms[k + '_details'] })), { rates: true }),
    h('h2', {}, 'Consumers'),
    table([{ t: 'Tag', v: x => x.consumer_tag }, { t: 'Queue', v: x => queueLink({ vhost: x.queue.vhost, name: x.queue.name }) },
      { t: 'Ack required', v: x => yes(x.ack_required) }, { t: 'Prefetch', v: x => x.prefetch_count, num: true }], cons));
}

// ---- exchanges ----

const exLink = x => h('a', { href: '#/exchanges/' + enc(x.vhost) + '/' + enc(exURL(x.name)) }, exName(x.name));
const EXCHANGE_TYPES = ['direct', 'fanout', 'topic', 'headers', 'x-consistent-hash', 'x-random', 'x-delayed-message'];

async function exchanges() {
  const vhs = await vhostNames();
  const vh = select('vhost', vhs), name = h('input', { name: 'name', required: true });
  const type = select('type', EXCHANGE_TYPES);
  const durable = h('input', { type: 'checkbox', name: 'durable', checked: true });
  const autoDel = h('input', { type: 'checkbox', name: 'auto_delete' });
  const internal = h('input', { type: 'checkbox', name: 'internal' });
  const args = h('textarea', { name: 'arguments', placeholder: '{"alternate-exchange": "unrouted"}' });
  const add = e => {
    e.preventDefault();
    act(() => api('PUT', '/exchanges/' + enc(vh.value) + '/' + enc(name.value), {
      type: type.value, durable: durable.checked, auto_delete: autoDel.checked, internal: internal.checked, arguments: parseArgs(args.value),
    }), 'Exchange ' + name.value + ' added.');
  };
  return h('div', {}, h('h1', {}, 'Exchanges'),
    await pagedList('exchanges', [
      { t: 'Vhost', v: x => x.vhost, sort: 'vhost' }, { t: 'Name', v: x => exLink(x), sort: 'name' }, { t: 'Type', v: x => x.type, sort: 'type' },
      { t: 'Features', v: x => [x.durable ? 'D ' : '', x.auto_delete ? 'AD ' : '', x.internal ? 'I ' : '', Object.keys(x.arguments || {}).length ? 'Args' : ''] },
    ]),
    section('Add a new exchange', h('form', { id: 'add-exchange', onsubmit: add },
      h('label', {}, 'Virtual host ', vh), h('label', {}, 'Name ', name), h('label', {}, 'Type ', type),
      h('label', { class: 'inline' }, durable, ' Durable'), h('label', { class: 'inline' }, autoDel, ' Auto delete'),
      h('label', { class: 'inline' }, internal, ' Internal'), h('label', {}, 'Arguments (JSON) ', args),
      h('button', { type: 'submit' }, 'Add exchange'))));
}

// publishForm publishes to exchange x (the default exchange for a queue
// page, with the queue's name as routing key).
function publishForm(vh, exchange, key) {
  const rk = h('input', { name: 'routing_key', value: key || '' });
  const body = h('textarea', { name: 'payload' });
  const props = h('textarea', { name: 'properties', placeholder: '{"content_type": "text/plain", "headers": {}}' });
  const persistent = h('input', { type: 'checkbox', name: 'persistent', checked: true });
  const publish = e => {
    e.preventDefault();
    act(() => {
      const p = parseArgs(props.value);
      if (persistent.checked) p.delivery_mode = 2;
      return api('POST', '/exchanges/' + enc(vh) + '/' + enc(exURL(exchange)) + '/publish', {
        properties: p, routing_key: rk.value, payload: body.value, payload_encoding: 'string',
      });
    }, r => r && r.routed ? 'Message published.' : 'Message published, but not routed.');
  };
  return section('Publish message', h('form', { id: 'publish', onsubmit: publish },
    h('label', {}, 'Routing key ', rk), h('label', { class: 'inline' }, persistent, ' Persistent'),
    h('label', {}, 'Properties (JSON) ', props), h('label', {}, 'Payload ', body), h('button', { type: 'submit' }, 'Publish message')), false);
}

// bindingForm binds to (toQueue) or from the named object.
function bindingForm(vh, fixed, fixedIsDest) {
  const destType = select('destination_type', ['queue', 'exchange']);
  const other = h('input', { name: fixedIsDest ? 'source' : 'destination', required: true });
  const key = h('input', { name: 'routing_key' });
  const args = h('textarea', { name: 'arguments', placeholder: '{"x-match": "all"}' });
  const bind = e => {
    e.preventDefault();
    const src = fixedIsDest ? other.value : fixed.name;
    const dest = fixedIsDest ? fixed.name : other.value;
    const d = fixedIsDest ? fixed.kind : (destType.value === 'queue' ? 'q' : 'e');
    act(() => api('POST', '/bindings/' + enc(vh) + '/e/' + enc(exURL(src)) + '/' + d + '/' + enc(dest),
      { routing_key: key.value, arguments: parseArgs(args.value) }), 'Binding added.');
  };
  return section(fixedIsDest ? 'Add binding to this ' + (fixed.kind === 'q' ? 'queue' : 'exchange') : 'Add binding from this exchange',
    h('form', { id: fixedIsDest ? 'add-binding-to' : 'add-binding', onsubmit: bind },
      !fixedIsDest && h('label', {}, 'To ', destType),
      h('label', {}, fixedIsDest ? 'From exchange ' : 'Name ', other), h('label', {}, 'Routing key ', key),
      h('label', {}, 'Arguments (JSON) ', args), h('button', { type: 'submit' }, 'Bind')));
}

function bindingsTable(vh, bs, showSource) {
  const unbind = b => act(() => api('DELETE', '/bindings/' + enc(vh) + '/e/' + enc(exURL(b.source)) + '/' +
    (b.destination_type === 'queue' ? 'q' : 'e') + '/' + enc(b.destination) + '/' + enc(b.properties_key)), 'Binding removed.');
  return table([
    showSource ? { t: 'From', v: b => exLink({ vhost: vh, name: b.source }) }
      : { t: 'To', v: b => b.destination_type === 'queue' ? queueLink({ vhost: vh, name: b.destination }) : exLink({ vhost: vh, name: b.destination }) },
    { t: 'Routing key', v: b => b.routing_key }, { t: 'Arguments', v: b => Object.keys(b.arguments || {}).length ? json(b.arguments) : '' },
    { t: '', v: b => (b.source === '' ? '' : h('button', { type: 'button', class: 'unbind', onclick: () => unbind(b) }, 'Unbind')) },
  ], bs, () => ({ class: 'binding' }));
}

async function exchangeDetail(vh, name) {
  const base = '/exchanges/' + enc(vh) + '/' + enc(name);
  const real = name === 'amq.default' ? '' : name;
  const [x, src, dst] = await Promise.all([api('GET', base + '?' + windowQuery('msg_rates')), api('GET', base + '/bindings/source'), api('GET', base + '/bindings/destination')]);
  const ms = x.message_stats || {};
  const del = async () => {
    if (!confirm('Delete exchange ' + name + '?')) return;
    try {
      await api('DELETE', base);
      flash('Exchange deleted.', true);
      location.hash = '#/exchanges';
    } catch (err) { flash(err.message); }
  };
  return h('div', {},
    h('h1', {}, 'Exchange ', h('span', { id: 'x-name' }, exName(x.name)), h('span', { class: 'muted' }, ' in virtual host ', vh)),
    facts([['Type', x.type, 'x-type'], ['Durable', yes(x.durable)], ['Auto delete', yes(x.auto_delete)], ['Internal', yes(x.internal)],
      ['Arguments', json(x.arguments || {})], x.messages_delayed !== undefined && ['Messages delayed', x.messages_delayed],
      ['Published in', num(ms.publish_in), 'x-in'], ['Routed out', num(ms.publish_out), 'x-out']]),
    rangeSelect(),
    chart('chart-exchange', 'Message rates', [
      { key: 'publish_in', label: 'Publish (in)', d: ms.publish_in_details },
      { key: 'publish_out', label: 'Publish (out)', d: ms.publish_out_details }], { rates: true }),
    h('h2', {}, 'Bindings from this exchange'), bindingsTable(vh, src, false),
    real !== '' && bindingForm(vh, { name: real }, false),
    h('h2', {}, 'Bindings to this exchange'), bindingsTable(vh, dst, true),
    real !== '' && bindingForm(vh, { name: real, kind: 'e' }, true),
    publishForm(vh, real, ''),
    real !== '' && !real.startsWith('amq.') && h('p', {}, h('button', { type: 'button', class: 'danger', id: 'delete-exchange', onclick: del }, 'Delete this exchange')));
}

// ---- queues ----

const queueLink = q => h('a', { href: '#/queues/' + enc(q.vhost) + '/' + enc(q.name) }, q.name);
const dlqTag = q => q.dead_letter_queue ? h('span', { class: 'tag', title: 'dead-letter queue' }, 'DLQ') : null;

async function queues() {
  const vhs = await vhostNames();
  const vh = select('vhost', vhs), name = h('input', { name: 'name', required: true });
  const type = select('type', ['classic', 'quorum', 'stream']);
  const durable = h('input', { type: 'checkbox', name: 'durable', checked: true });
  const autoDel = h('input', { type: 'checkbox', name: 'auto_delete' });
  const args = h('textarea', { name: 'arguments', placeholder: '{"x-message-ttl": 60000, "x-dead-letter-exchange": "dlx"}' });
  const add = e => {
    e.preventDefault();
    act(() => {
      const a = parseArgs(args.value);
      if (type.value !== 'classic') a['x-queue-type'] = type.value;
      return api('PUT', '/queues/' + enc(vh.value) + '/' + enc(name.value), { durable: durable.checked, auto_delete: autoDel.checked, arguments: a });
    }, 'Queue ' + name.value + ' added.');
  };
  const ms = q => q.message_stats || {};
  return h('div', {}, h('h1', {}, 'Queues'),
    await pagedList('queues', [
      { t: 'Vhost', v: q => q.vhost, sort: 'vhost' }, { t: 'Name', v: q => [queueLink(q), ' ', dlqTag(q)], sort: 'name' },
      { t: 'Type', v: q => q.type }, { t: 'Policy', v: q => q.policy || '' }, { t: 'State', v: q => q.state },
      { t: 'Ready', v: q => num(q.messages_ready), num: true, sort: 'messages_ready' },
      { t: 'Unacked', v: q => num(q.messages_unacknowledged), num: true, sort: 'messages_unacknowledged' },
      { t: 'Total', v: q => num(q.messages), num: true, sort: 'messages' },
      { t: 'Consumers', v: q => q.consumers, num: true, sort: 'consumers' },
      { t: 'Incoming', v: q => rate(ms(q).publish_details?.rate), num: true, sort: 'message_stats.publish_details.rate' },
      { t: 'Deliver / get', v: q => rate(ms(q).deliver_get_details?.rate), num: true, sort: 'message_stats.deliver_get_details.rate' },
      { t: 'Ack', v: q => rate(ms(q).ack_details?.rate), num: true, sort: 'message_stats.ack_details.rate' },
    ], { rowAttrs: q => ({ class: q.dead_letter_queue ? 'dlq' : null }) }),
    section('Add a new queue', h('form', { id: 'add-queue', onsubmit: add },
      h('label', {}, 'Virtual host ', vh), h('label', {}, 'Type ', type), h('label', {}, 'Name ', name),
      h('label', { class: 'inline' }, durable, ' Durable'), h('label', { class: 'inline' }, autoDel, ' Auto delete'),
      h('label', {}, 'Arguments (JSON) ', args), h('button', { type: 'submit' }, 'Add queue'))));
}

// message renders one message from .../get or .../dead-letters.
function message(m, i) {
  const props = Object.assign({}, m.properties);
  const headers = Object.assign({}, props.headers);
  const death = m.x_death || headers['x-death'];
  delete headers['x-death'];
  if (props.headers) props.headers = headers;
  return h('div', { class: 'msg' }, h('h3', {}, 'Message ', i + 1),
    table([{ t: 'Exchange', v: m => exName(m.exchange) }, { t: 'Routing key', v: m => m.routing_key },
      { t: 'Redelivered', v: m => yes(m.redelivered) }, { t: 'Bytes', v: m => m.payload_bytes, num: true },
      { t: 'Encoding', v: m => m.payload_encoding }, { t: 'Remaining', v: m => m.message_count, num: true }], [m]),
    h('p', {}, 'Properties'), h('pre', {}, json(props)),
    death && [h('p', {}, 'x-death'), table([
      { t: 'Queue', v: d => d.queue }, { t: 'Reason', v: d => d.reason }, { t: 'Count', v: d => d.count, num: true },
      { t: 'Exchange', v: d => exName(d.exchange) }, { t: 'Routing keys', v: d => (d['routing-keys'] || []).join(', ') },
      { t: 'Time', v: d => typeof d.time === 'number' ? new Date(d.time * 1000).toISOString() : d.time },
    ], death)],
    h('p', {}, 'Payload'), h('pre', { class: 'payload' }, m.payload));
}

// replayForm moves a DLQ's messages back where they died.
function replayForm(base) {
  const to = h('input', { name: 'to', value: 'original' });
  const limit = h('input', { name: 'limit', type: 'number', min: 0, placeholder: 'all' });
  return section('Replay dead letters', h('form', {
    id: 'replay', onsubmit: e => {
      e.preventDefault();
      if (!confirm('Replay dead letters to ' + to.value + '?')) return;
      const body = { to: to.value || 'original' };
      if (limit.value !== '') body.limit = Number(limit.value);
      act(() => api('POST', base + '/dead-letters/replay', body),
        r => `Replayed ${r.replayed}, skipped ${r.skipped}, ${r.remaining} remaining.`);
    },
  }, h('label', {}, 'To ("original" or an exchange name) ', to), h('label', {}, 'Limit ', limit), h('button', { type: 'submit' }, 'Replay')));
}

async function queueDetail(vh, name) {
  const base = '/queues/' + enc(vh) + '/' + enc(name);
  const [q, bs] = await Promise.all([api('GET', base + '?' + windowQuery('lengths', 'msg_rates')), api('GET', base + '/bindings')]);
  let cons = [];
  try {
    cons = await api('GET', '/consumers/' + enc(vh));
    cons = (Array.isArray(cons) ? cons : cons.items).filter(c => c.queue && c.queue.name === name);
  } catch (e) { /* consumers are optional here */ }
  const ms = q.message_stats || {};
  const out = h('div', { id: 'messages' });
  const count = h('input', { name: 'count', type: 'number', min: 1, value: 1 });
  const ackmode = h('select', { name: 'ackmode' },
    [['ack_requeue_true', 'Nack message requeue true'], ['reject_requeue_true', 'Reject requeue true'],
      ['ack_requeue_false', 'Ack message requeue false (removes them)'], ['reject_requeue_false', 'Reject requeue false (dead-letters them)']]
      .map(([v, t]) => h('option', { value: v }, t)));
  const encoding = select('encoding', ['auto', 'base64']);
  const getMsgs = async e => {
    e.preventDefault();
    try {
      const got = await api('POST', base + '/get', { count: Number(count.value), ackmode: ackmode.value, encoding: encoding.value, truncate: 50000 });
      out.replaceChildren(got.length ? h('div', {}, got.map(message)) : h('p', { class: 'muted', id: 'queue-empty' }, 'Queue is empty.'));
    } catch (err) { flash(err.message); }
  };
  const purge = () => confirm('Purge all messages of ' + name + '?') &&
    act(() => api('DELETE', base + '/contents'), 'Queue purged.');
  const del = async () => {
    if (!confirm('Delete queue ' + name + '?')) return;
    try {
      await api('DELETE', base);
      flash('Queue deleted.', true);
      location.hash = '#/queues';
    } catch (err) { flash(err.message); }
  };
  return h('div', {},
    h('h1', {}, 'Queue ', h('span', { id: 'q-name' }, q.name), ' ', dlqTag(q), h('span', { class: 'muted' }, ' in virtual host ', q.vhost)),
    h('div', { class: 'cols' },
      facts([['Type', q.type], ['State', q.state], ['Policy', q.policy || ''],
        q.leader && ['Leader', q.leader], q.members && ['Members', [].concat(q.members).join(', ')],
        q.online && ['Online', [].concat(q.online).join(', ')], ['Durable', yes(q.durable), 'q-durable'],
        ['Auto delete', yes(q.auto_delete)], ['Exclusive', yes(q.exclusive)], ['Consumers', q.consumers, 'q-consumers'],
        ['Arguments', json(q.arguments || {}), 'q-args']]),
      h('table', { class: 'facts' }, h('tbody', {},
        [['Ready', 'q-ready', q.messages_ready], ['Unacked', 'q-unacked', q.messages_unacknowledged],
          ['Total', 'q-messages', q.messages], ['Ready bytes', 'q-bytes', bytes(q.message_bytes_ready)],
          ['Incoming', 'q-publish', rate(ms.publish_details?.rate)], ['Deliver / get', 'q-deliver', rate(ms.deliver_get_details?.rate)],
          ['Ack', 'q-ack', rate(ms.ack_details?.rate)],
        ].map(([t, id, v]) => h('tr', {}, h('th', {}, t), h('td', { id }, v)))))),
    rangeSelect(),
    h('div', { class: 'cols' },
      chart('chart-queue-lengths', 'Queued messages', [
        { key: 'messages_ready', label: 'Ready', d: q.messages_ready_details },
        { key: 'messages_unacknowledged', label: 'Unacked', d: q.messages_unacknowledged_details },
        { key: 'messages', label: 'Total', d: q.messages_details }]),
      chart('chart-queue-rates', 'Message rates', [['publish', 'Publish'], ['deliver_get', 'Deliver / get'], ['ack', 'Ack'], ['dead_lettered', 'Dead-lettered']]
        .filter(([k]) => ms[k + '_details']).map(([k, l]) => ({ key: k, label: l, d: ms[k + '_details'] })), { rates: true })),
    h('h2', {}, 'Consumers'),
    table([{ t: 'Tag', v: c => c.consumer_tag }, { t: 'Channel', v: c => chanLink(c.channel_details.name) },
      { t: 'Ack required', v: c => yes(c.ack_required) }, { t: 'Prefetch', v: c => c.prefetch_count, num: true }], cons),
    h('h2', {}, 'Bindings'), bindingsTable(vh, bs, true),
    bindingForm(vh, { name, kind: 'q' }, true),
    publishForm(vh, '', name),
    section('Get messages', h('div', {}, h('form', { id: 'get', onsubmit: getMsgs },
      h('label', {}, 'Ack mode ', ackmode), h('label', {}, 'Encoding ', encoding), h('label', {}, 'Messages ', count),
      h('button', { type: 'submit' }, 'Get message(s)')), out)),
    q.dead_letter_queue && [h('p', {}, h('a', { href: '#/queues/' + enc(vh) + '/' + enc(name) + '/dead-letters' }, 'Inspect dead letters')), replayForm(base)],
    section('Purge and delete', h('p', {}, h('button', { type: 'button', id: 'purge', onclick: purge }, 'Purge messages'), ' ',
      h('button', { type: 'button', class: 'danger', id: 'delete-queue', onclick: del }, 'Delete queue'))));
}

async function deadLetters(vh, name) {
  const base = '/queues/' + enc(vh) + '/' + enc(name);
  const ds = await api('GET', base + '/dead-letters?count=100');
  return h('div', {}, h('h1', {}, 'Dead letters in ', h('a', { href: '#' + base }, name)),
    h('p', { class: 'muted' }, 'Up to 100 messages, shown without being consumed.'),
    ds.length ? ds.map(message) : h('p', { class: 'muted' }, 'No dead letters.'),
    replayForm(base));
}

async function bindings() {
  const bs = await api('GET', '/bindings');
  return h('div', {}, h('h1', {}, 'Bindings'), table([
    { t: 'Vhost', v: b => b.vhost }, { t: 'Source', v: b => exLink({ vhost: b.vhost, name: b.source }) },
    { t: 'Destination', v: b => b.destination_type === 'queue' ? queueLink({ vhost: b.vhost, name: b.destination }) : exLink({ vhost: b.vhost, name: b.destination }) },
    { t: 'Type', v: b => b.destination_type }, { t: 'Routing key', v: b => b.routing_key },
    { t: 'Arguments', v: b => json(b.arguments || {}) },
  ], Array.isArray(bs) ? bs : bs.items));
}

// ---- admin: users, vhosts, permissions, policies ----

const TAGS = ['administrator', 'monitoring', 'policymaker', 'management', 'impersonator'];

async function users() {
  const us = await api('GET', '/users');
  const name = h('input', { name: 'username', required: true, autocomplete: 'off' });
  const pw = h('input', { name: 'password', type: 'password', autocomplete: 'new-password' });
  const tags = h('input', { name: 'tags', placeholder: 'administrator, monitoring' });
  const add = e => {
    e.preventDefault();
    const body = { tags: tags.value };
    if (pw.value) body.password = pw.value; else body.password_hash = '';
    act(() => api('PUT', '/users/' + enc(name.value), body), 'User ' + name.value + ' saved.');
  };
  return h('div', {}, h('h1', {}, 'Users'), table([
    { t: 'Name', v: u => h('a', { href: '#/users/' + enc(u.name) }, u.name) },
    { t: 'Tags', v: u => [].concat(u.tags || []).join(', ') },
    { t: 'Can access virtual hosts', v: u => u.vhosts === undefined ? '' : u.vhosts },
  ], Array.isArray(us) ? us : us.items, () => ({ class: 'user' })),
  section('Add a user', h('form', { id: 'add-user', onsubmit: add },
    h('label', {}, 'Username ', name), h('label', {}, 'Password ', pw),
    h('label', {}, 'Tags (comma-separated: ', TAGS.join(', '), ') ', tags), h('button', { type: 'submit' }, 'Add user'))));
}

async function userDetail(name) {
  const [u, perms, vhs] = await Promise.all([api('GET', '/users/' + enc(name)), api('GET', '/users/' + enc(name) + '/permissions'), vhostNames()]);
  const vh = select('vhost', vhs);
  const conf = h('input', { name: 'configure', value: '.*' }), write = h('input', { name: 'write', value: '.*' }), read = h('input', { name: 'read', value: '.*' });
  const setPerm = e => {
    e.preventDefault();
    act(() => api('PUT', '/permissions/' + enc(vh.value) + '/' + enc(name), { configure: conf.value, write: write.value, read: read.value }), 'Permission set.');
  };
  const clear = p => act(() => api('DELETE', '/permissions/' + enc(p.vhost) + '/' + enc(name)), 'Permission cleared.');
  const tags = h('input', { name: 'tags', value: [].concat(u.tags || []).join(', ') });
  const pw = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', placeholder: 'unchanged' });
  const update = e => {
    e.preventDefault();
    const body = { tags: tags.value };
    if (pw.value) body.password = pw.value; else Object.assign(body, { password_hash: u.password_hash, hashing_algorithm: u.hashing_algorithm });
    act(() => api('PUT', '/users/' + enc(name), body), 'User updated.');
  };
  const del = async () => {
    if (!confirm('Delete user ' + name + '?')) return;
    try {
      await api('DELETE', '/users/' + enc(name));
      flash('User deleted.', true);
      location.hash = '#/users';
    } catch (err) { flash(err.message); }
  };
  return h('div', {}, h('h1', {}, 'User ', h('span', { id: 'user-name' }, name)),
    facts([['Tags', [].concat(u.tags || []).join(', ') || '(none)', 'user-tags']]),
    h('h2', {}, 'Permissions'),
    table([{ t: 'Virtual host', v: p => p.vhost }, { t: 'Configure', v: p => p.configure }, { t: 'Write', v: p => p.write },
      { t: 'Read', v: p => p.read }, { t: '', v: p => h('button', { type: 'button', class: 'clear-permission', onclick: () => clear(p) }, 'Clear') }],
    perms, () => ({ class: 'permission' })),
    section('Set permission', h('form', { id: 'set-permission', onsubmit: setPerm },
      h('label', {}, 'Virtual host ', vh), h('label', {}, 'Configure regexp ', conf), h('label', {}, 'Write regexp ', write),
      h('label', {}, 'Read regexp ', read), h('button', { type: 'submit' }, 'Set permission'))),
    section('Update this user', h('form', { id: 'update-user', onsubmit: update },
      h('label', {}, 'Password ', pw), h('label', {}, 'Tags ', tags), h('button', { type: 'submit' }, 'Update user')), false),
    h('p', {}, h('button', { type: 'button', class: 'danger', id: 'delete-user', onclick: del }, 'Delete this user')));
}

async function vhosts() {
  const name = h('input', { name: 'name', required: true });
  const desc = h('input', { name: 'description' });
  const add = e => {
    e.preventDefault();
    act(() => api('PUT', '/vhosts/' + enc(name.value), { description: desc.value }), 'Virtual host ' + name.value + ' added.');
  };
  const del = v => confirm('Delete virtual host ' + v.name + ' and everything in it?') &&
    act(() => api('DELETE', '/vhosts/' + enc(v.name)), 'Virtual host deleted.');
  return h('div', {}, h('h1', {}, 'Virtual hosts'),
    await pagedList('vhosts', [
      { t: 'Name', v: v => v.name, sort: 'name' }, { t: 'Description', v: v => v.description || '' },
      { t: 'Ready', v: v => num(v.messages_ready), num: true, sort: 'messages_ready' },
      { t: 'Unacked', v: v => num(v.messages_unacknowledged), num: true, sort: 'messages_unacknowledged' },
      { t: 'Total', v: v => num(v.messages), num: true, sort: 'messages' },
      { t: '', v: v => h('button', { type: 'button', class: 'danger delete-vhost', 'data-name': v.name, onclick: () => del(v) }, 'Delete') },
    ], { rowAttrs: () => ({ class: 'vhost' }) }),
    section('Add a new virtual host', h('form', { id: 'add-vhost', onsubmit: add },
      h('label', {}, 'Name ', name), h('label', {}, 'Description ', desc), h('button', { type: 'submit' }, 'Add virtual host'))));
}

async function policies() {
  const [ps, vhs] = await Promise.all([api('GET', '/policies'), vhostNames()]);
  // RabbitMQ's keys (dead-letter-exchange, message-ttl, max-length,
  // delivery-limit, alternate-exchange, ...) as JSON.
  const vhost = select('vhost', vhs);
  const name = h('input', { name: 'name', required: true });
  const pattern = h('input', { name: 'pattern', required: true });
  const applyTo = select('apply-to', ['all', 'queues', 'exchanges', 'classic_queues', 'quorum_queues']);
  const priority = h('input', { name: 'priority', type: 'number', value: '0' });
  const def = h('textarea', { name: 'definition', placeholder: '{"max-length": 1000}' });
  const save = e => {
    e.preventDefault();
    act(() => api('PUT', '/policies/' + enc(vhost.value) + '/' + enc(name.value), {
      pattern: pattern.value, 'apply-to': applyTo.value, priority: Number(priority.value) || 0, definition: parseArgs(def.value),
    }), 'Policy saved.');
  };
  const del = p => act(() => api('DELETE', '/policies/' + enc(p.vhost) + '/' + enc(p.name)), 'Policy deleted.');
  return h('div', {}, h('h1', {}, 'Policies'), table([
    { t: 'Vhost', v: p => p.vhost }, { t: 'Name', v: p => p.name }, { t: 'Pattern', v: p => p.pattern },
    { t: 'Apply to', v: p => p['apply-to'] }, { t: 'Priority', v: p => p.priority, num: true },
    { t: 'Definition', v: p => json(p.definition || {}) },
    { t: '', v: p => h('button', { type: 'button', class: 'danger delete-policy', 'data-name': p.name, onclick: () => del(p) }, 'Delete') },
  ], Array.isArray(ps) ? ps : ps.items, () => ({ class: 'policy' })),
  section('Add / update a policy', h('form', { id: 'policy', onsubmit: save }, h('label', {}, 'Virtual host ', vhost), h('label', {}, 'Name ', name),
    h('label', {}, 'Pattern ', pattern), h('label', {}, 'Apply to ', applyTo), h('label', {}, 'Priority ', priority),
    h('label', {}, 'Definition (JSON) ', def), h('button', { type: 'submit' }, 'Add / update policy'))));
}

// ---- routing ----

// routes: [pattern, page, refresh]: 'list' pages refresh every REFRESH_MS,
// 'live' ones (charts) as often as the node samples, at least each second.
const routes = [
  [/^\/(?:overview)?$/, overview, 'live'],
  [/^\/connections$/, connections, 'list'],
  [/^\/connections\/([^/]+)$/, connectionDetail, 'live'],
  [/^\/channels$/, channels, 'list'],
  [/^\/channels\/([^/]+)$/, channelDetail, 'live'],
  [/^\/exchanges$/, exchanges, null],
  [/^\/exchanges\/([^/]+)\/([^/]+)$/, exchangeDetail, 'live'],
  [/^\/queues$/, queues, 'list'],
  [/^\/queues\/([^/]+)\/([^/]+)$/, queueDetail, 'live'],
  [/^\/queues\/([^/]+)\/([^/]+)\/dead-letters$/, deadLetters, null],
  [/^\/bindings$/, bindings, 'list'],
  [/^\/users$/, users, null],
  [/^\/users\/([^/]+)$/, userDetail, null],
  [/^\/vhosts$/, vhosts, 'list'],
  [/^\/policies$/, policies, null],
];

function current() {
  const path = location.hash.slice(1).split('?')[0] || '/';
  for (const [re, page, refresh] of routes) {
    const m = re.exec(path);
    if (m) return { page, refresh, args: m.slice(1).map(decodeURIComponent) };
  }
  return null;
}

let seq = 0; // drops renders overtaken by a newer one
let inflight = 0; // renders waiting for the API
let lastRender = 0; // when the last render began (ms)

async function render(background) {
  inflight++;
  lastRender = Date.now();
  try {
    await renderPage(background);
  } finally {
    inflight--;
  }
}

async function renderPage(background) {
  // Every render, the login form's too, overtakes those still waiting.
  const my = ++seq;
  loginFromHash();
  const top = '#/' + ((location.hash.slice(2).split(/[/?]/)[0]) || 'overview');
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.getAttribute('href') === top);
  const who = document.getElementById('who');
  if (!auth.get()) {
    who.replaceChildren();
    main.replaceChildren(loginForm());
    return;
  }
  who.replaceChildren(h('span', { id: 'user' }, auth.user()), ' ',
    h('button', { type: 'button', id: 'logout', onclick: () => { auth.clear(); flash(''); location.hash = '#/'; render(); } }, 'Log out'));
  const r = current();
  try {
    await learnInterval();
    const node = r ? await r.page(...r.args) : h('p', {}, 'No such page.');
    // A refresh that started before the user began typing must not throw
    // the typing away.
    if (my !== seq || (background && busy())) return;
    // Keep open sections open across refreshes.
    const open = new Set([...main.querySelectorAll('details.section')].map(d => d.open ? d.querySelector('summary').textContent : null));
    const closed = new Set([...main.querySelectorAll('details.section')].map(d => !d.open ? d.querySelector('summary').textContent : null));
    if (background) {
      for (const d of node.querySelectorAll('details.section')) {
        const t = d.querySelector('summary').textContent;
        if (open.has(t)) d.open = true;
        if (closed.has(t)) d.open = false;
      }
    }
    main.replaceChildren(node);
    main.dataset.page = r ? r.page.name : '';
    main.dataset.rendered = String(my);
  } catch (e) {
    if (my !== seq) return;
    if (e instanceof AuthError) {
      who.replaceChildren();
      main.replaceChildren(loginForm('Login failed: wrong user or password, or not allowed from here.'));
    } else if (!background) {
      main.replaceChildren(h('p', { class: 'muted' }, 'Could not load this page: ', e.message));
    } else {
      flash(e.message);
    }
  }
}

// busy: the user is typing or has a form half filled in; a background
// refresh would throw that away.
function busy() {
  const a = document.activeElement;
  if (a && main.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName)) return true;
  for (const el of main.querySelectorAll('form input:not([type=checkbox]):not([type=search]), form textarea')) {
    if (el.value !== el.defaultValue) return true;
  }
  return main.querySelector('#messages')?.childElementCount > 0;
}

window.addEventListener('hashchange', () => { flash(''); render(); });
// Pages refresh as often as the node samples, between 1 and 5 seconds.
// refresh re-renders the page in the background, never while another
// render waits for the API (a slow answer would otherwise be overtaken by
// the next refresh, and the one after, and never show).
async function refresh() {
  const r = current();
  const now = Date.now();
  const every = r && r.refresh === 'live' ? Math.min(REFRESH_MS, Math.max(1000, statsInterval)) : REFRESH_MS;
  if (r && r.refresh && now - lastRender >= every && auth.get() && !document.hidden && !busy() && inflight === 0) await render(true);
  setTimeout(refresh, 250);
}
setTimeout(refresh, 1000);
render();
