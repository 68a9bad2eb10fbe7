// Warren management UI: a hash-routed single page over /api/.
// Credentials live in sessionStorage and go out as a basic-auth header.
'use strict';

const main = document.getElementById('main');
const REFRESH_MS = 5000;

// ---- DOM helpers ----

// h builds an element: attributes (on* become listeners) and children
// (strings become text nodes, so nothing is ever parsed as HTML).
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
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

// table renders rows with columns [{t: title, v: row => cell, num}].
function table(cols, rows, rowAttrs) {
  if (!rows.length) return h('p', { class: 'muted' }, 'None.');
  return h('table', {},
    h('thead', {}, h('tr', {}, cols.map(c => h('th', {}, c.t)))),
    h('tbody', {}, rows.map(r => h('tr', rowAttrs ? rowAttrs(r) : {},
      cols.map(c => h('td', c.num ? { class: 'num' } : {}, c.v(r)))))));
}

const rate = x => (x || 0).toFixed(1) + '/s';
const enc = encodeURIComponent;
const json = v => JSON.stringify(v, null, 2);
const exName = n => n === '' ? '(AMQP default)' : n;
const exURL = n => n === '' ? 'amq.default' : n;

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
    const bytes = new TextEncoder().encode(user + ':' + pw);
    sessionStorage.setItem('warren.auth', btoa(String.fromCharCode(...bytes)));
    sessionStorage.setItem('warren.user', user);
  },
  clear() { sessionStorage.removeItem('warren.auth'); sessionStorage.removeItem('warren.user'); },
};

// A login link (#/page?user=U&password=P, used by the tests) seeds the
// session; the credentials are then removed from the address.
function loginFromHash() {
  const i = location.hash.indexOf('?');
  if (i < 0) return;
  const p = new URLSearchParams(location.hash.slice(i + 1));
  if (p.has('user')) auth.set(p.get('user'), p.get('password') || '');
  history.replaceState(null, '', location.pathname + location.hash.slice(0, i));
}

class AuthError extends Error {}

async function api(method, path, body, headers) {
  const hd = Object.assign({ Authorization: 'Basic ' + auth.get() }, headers);
  const init = { method, headers: hd };
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

function loginForm(msg) {
  const user = h('input', { name: 'user', autocomplete: 'username', required: true });
  const pw = h('input', { name: 'password', type: 'password', autocomplete: 'current-password' });
  return h('form', {
    id: 'login', onsubmit: e => {
      e.preventDefault();
      auth.set(user.value, pw.value);
      flash('');
      render();
    },
  }, h('h1', {}, 'Log in'), msg && h('p', { class: 'muted' }, msg),
  h('label', {}, 'Username ', user), h('label', {}, 'Password ', pw), h('button', {}, 'Log in'));
}

// ---- pages: each returns a node ----

async function overview() {
  const o = await api('GET', '/overview');
  const ot = o.object_totals || {}, qt = o.queue_totals || {}, ms = o.message_stats || {};
  const card = (t, v) => h('div', { class: 'card' }, t, h('b', {}, v));
  return h('div', {}, h('h1', {}, 'Overview ', h('span', { class: 'muted' }, o.node, ' · ', 'Warren ', o.warren_version, ' (reports ', o.product_name, ' ', o.product_version, ')')),
    h('h2', {}, 'Totals'),
    h('div', { class: 'cards' }, ['connections', 'channels', 'exchanges', 'queues', 'consumers'].map(k => card(k, ot[k] ?? 0))),
    h('h2', {}, 'Queued messages'),
    h('div', { class: 'cards' }, card('Ready', qt.messages_ready ?? 0), card('Unacked', qt.messages_unacknowledged ?? 0), card('Total', qt.messages ?? 0)),
    h('h2', {}, 'Message rates'),
    h('div', { class: 'cards' },
      card('Publish', rate(ms.publish_details?.rate)), card('Deliver / get', rate(ms.deliver_get_details?.rate)), card('Ack', rate(ms.ack_details?.rate))));
}

async function connections() {
  const cs = await api('GET', '/connections');
  const close = c => {
    if (!confirm('Close connection ' + c.name + '?')) return;
    act(() => api('DELETE', '/connections/' + enc(c.name), undefined, { 'X-Reason': 'Closed via management UI' }), 'Connection closed.');
  };
  return h('div', {}, h('h1', {}, 'Connections'), table([
    { t: 'Name', v: c => c.name }, { t: 'User', v: c => c.user }, { t: 'Vhost', v: c => c.vhost },
    { t: 'Peer', v: c => c.peer_host + ':' + c.peer_port }, { t: 'TLS', v: c => c.ssl ? 'yes' : 'no' },
    { t: 'Channels', v: c => c.channels, num: true }, { t: 'State', v: c => c.state },
    { t: '', v: c => h('button', { class: 'danger', onclick: () => close(c) }, 'Close') },
  ], cs));
}

async function channels() {
  const cs = await api('GET', '/channels');
  return h('div', {}, h('h1', {}, 'Channels'), table([
    { t: 'Channel', v: c => c.name }, { t: 'User', v: c => c.user }, { t: 'Vhost', v: c => c.vhost },
    { t: 'Consumers', v: c => c.consumer_count, num: true }, { t: 'Unacked', v: c => c.messages_unacknowledged, num: true },
    { t: 'Prefetch', v: c => c.global_prefetch_count, num: true }, { t: 'State', v: c => c.state },
  ], cs));
}

async function exchanges() {
  const xs = await api('GET', '/exchanges');
  // The publish form: choose an exchange, a routing key and a payload.
  const sel = h('select', { name: 'exchange' }, xs.map((x, i) => h('option', { value: i }, exName(x.name) + ' (vhost ' + x.vhost + ')')));
  const key = h('input', { name: 'routing_key' });
  const body = h('textarea', { name: 'payload' });
  const persistent = h('input', { type: 'checkbox', name: 'persistent', checked: true });
  const publish = e => {
    e.preventDefault();
    const x = xs[sel.value];
    act(() => api('POST', '/exchanges/' + enc(x.vhost) + '/' + enc(exURL(x.name)) + '/publish', {
      properties: persistent.checked ? { delivery_mode: 2 } : {},
      routing_key: key.value, payload: body.value, payload_encoding: 'string',
    }), r => r && r.routed ? 'Published; routed.' : 'Published, but no queue was bound to receive it.');
  };
  return h('div', {}, h('h1', {}, 'Exchanges'), table([
    { t: 'Vhost', v: x => x.vhost }, { t: 'Name', v: x => exName(x.name) }, { t: 'Type', v: x => x.type },
    { t: 'Durable', v: x => x.durable ? 'yes' : 'no' }, { t: 'Auto-delete', v: x => x.auto_delete ? 'yes' : 'no' },
    { t: 'Internal', v: x => x.internal ? 'yes' : 'no' },
  ], xs), h('h2', {}, 'Publish a message'),
  h('form', { id: 'publish', onsubmit: publish }, h('label', {}, 'Exchange ', sel), h('label', {}, 'Routing key ', key),
    h('label', {}, 'Payload ', body), h('label', {}, persistent, ' persistent'), h('button', {}, 'Publish')));
}

const queueLink = q => h('a', { href: '#/queues/' + enc(q.vhost) + '/' + enc(q.name) }, q.name);
const dlqTag = q => q.dead_letter_queue ? h('span', { class: 'tag', title: 'dead-letter queue' }, 'DLQ') : null;

async function queues() {
  const qs = await api('GET', '/queues');
  const ms = q => q.message_stats || {};
  return h('div', {}, h('h1', {}, 'Queues'), table([
    { t: 'Vhost', v: q => q.vhost }, { t: 'Name', v: q => [queueLink(q), ' ', dlqTag(q)] },
    { t: 'Ready', v: q => q.messages_ready, num: true }, { t: 'Unacked', v: q => q.messages_unacknowledged, num: true },
    { t: 'Total', v: q => q.messages, num: true }, { t: 'Consumers', v: q => q.consumers, num: true },
    { t: 'Publish', v: q => rate(ms(q).publish_details?.rate), num: true },
    { t: 'Deliver / get', v: q => rate(ms(q).deliver_get_details?.rate), num: true },
    { t: 'Ack', v: q => rate(ms(q).ack_details?.rate), num: true },
  ], qs, q => ({ class: q.dead_letter_queue ? 'dlq' : null })));
}

// message renders one message from .../get or .../dead-letters.
function message(m, i) {
  const props = Object.assign({}, m.properties);
  const headers = Object.assign({}, props.headers);
  const death = m.x_death || headers['x-death'];
  delete headers['x-death'];
  if (props.headers) props.headers = headers;
  return h('div', { class: 'msg' }, h('h2', {}, 'Message ', i + 1),
    table([{ t: 'Exchange', v: m => exName(m.exchange) }, { t: 'Routing key', v: m => m.routing_key },
      { t: 'Redelivered', v: m => m.redelivered ? 'yes' : 'no' }, { t: 'Bytes', v: m => m.payload_bytes, num: true },
      { t: 'Encoding', v: m => m.payload_encoding }], [m]),
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
  return h('form', {
    id: 'replay', onsubmit: e => {
      e.preventDefault();
      if (!confirm('Replay dead letters to ' + to.value + '?')) return;
      const body = { to: to.value || 'original' };
      if (limit.value !== '') body.limit = Number(limit.value);
      act(() => api('POST', base + '/dead-letters/replay', body),
        r => `Replayed ${r.replayed}, skipped ${r.skipped}, ${r.remaining} remaining.`);
    },
  }, h('h2', {}, 'Replay dead letters'),
  h('label', {}, 'To ("original" or an exchange name) ', to), h('label', {}, 'Limit ', limit), h('button', {}, 'Replay'));
}

async function queueDetail(vh, name) {
  const base = '/queues/' + enc(vh) + '/' + enc(name);
  const [q, bs] = await Promise.all([api('GET', base), api('GET', base + '/bindings')]);
  const ms = q.message_stats || {};
  const out = h('div', { id: 'messages' });
  const count = h('input', { name: 'count', type: 'number', min: 1, value: 5 });
  const getMsgs = async e => {
    e.preventDefault();
    try {
      const got = await api('POST', base + '/get', { count: Number(count.value), ackmode: 'ack_requeue_true', encoding: 'auto', truncate: 50000 });
      out.replaceChildren(got.length ? h('div', {}, got.map(message)) : h('p', { class: 'muted' }, 'The queue is empty.'));
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
    h('h1', {}, 'Queue ', h('span', { id: 'q-name' }, q.name), ' ', dlqTag(q), h('span', { class: 'muted' }, ' in vhost ', q.vhost)),
    h('table', {}, h('tbody', {},
      [['Ready', 'q-ready', q.messages_ready], ['Unacked', 'q-unacked', q.messages_unacknowledged],
        ['Total', 'q-messages', q.messages], ['Consumers', 'q-consumers', q.consumers],
        ['Publish', 'q-publish', rate(ms.publish_details?.rate)], ['Deliver / get', 'q-deliver', rate(ms.deliver_get_details?.rate)],
        ['Ack', 'q-ack', rate(ms.ack_details?.rate)],
        ['Durable', 'q-durable', q.durable ? 'yes' : 'no'], ['Arguments', 'q-args', json(q.arguments || {})],
      ].map(([t, id, v]) => h('tr', {}, h('th', {}, t), h('td', { id }, v))))),
    h('p', {}, h('button', { onclick: purge }, 'Purge'), ' ', h('button', { class: 'danger', onclick: del }, 'Delete'),
      q.dead_letter_queue && [' ', h('a', { href: '#/queues/' + enc(vh) + '/' + enc(name) + '/dead-letters' }, 'Inspect dead letters')]),
    h('h2', {}, 'Bindings'), table([
      { t: 'From exchange', v: b => exName(b.source) }, { t: 'Routing key', v: b => b.routing_key },
      { t: 'Arguments', v: b => json(b.arguments || {}) }], bs),
    h('h2', {}, 'Get messages'),
    h('form', { id: 'get', onsubmit: getMsgs }, h('label', {}, 'Count ', count),
      h('p', { class: 'muted' }, 'Messages are requeued (ack mode ack_requeue_true).'), h('button', {}, 'Get messages')),
    out,
    q.dead_letter_queue && replayForm(base));
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
    { t: 'Vhost', v: b => b.vhost }, { t: 'Source', v: b => exName(b.source) },
    { t: 'Destination', v: b => b.destination_type === 'queue' ? queueLink({ vhost: b.vhost, name: b.destination }) : b.destination },
    { t: 'Type', v: b => b.destination_type }, { t: 'Routing key', v: b => b.routing_key },
    { t: 'Arguments', v: b => json(b.arguments || {}) },
  ], bs));
}

async function users() {
  const us = await api('GET', '/users');
  return h('div', {}, h('h1', {}, 'Users'), table([
    { t: 'Name', v: u => u.name }, { t: 'Tags', v: u => [].concat(u.tags || []).join(', ') },
  ], us));
}

async function vhosts() {
  const vs = await api('GET', '/vhosts');
  return h('div', {}, h('h1', {}, 'Virtual hosts'), table([
    { t: 'Name', v: v => v.name }, { t: 'Ready', v: v => v.messages_ready, num: true },
    { t: 'Unacked', v: v => v.messages_unacknowledged, num: true }, { t: 'Total', v: v => v.messages, num: true },
  ], vs));
}

async function policies() {
  const ps = await api('GET', '/policies');
  const vhs = await api('GET', '/vhosts');
  // The form adds or replaces a policy: RabbitMQ's keys (dead-letter-exchange,
  // message-ttl, max-length, delivery-limit, alternate-exchange, ...) as JSON.
  const vhost = h('select', { name: 'vhost' }, vhs.map(v => h('option', { value: v.name }, v.name)));
  const name = h('input', { name: 'name', required: true });
  const pattern = h('input', { name: 'pattern', required: true });
  const applyTo = h('select', { name: 'apply-to' }, ['all', 'queues', 'exchanges'].map(a => h('option', { value: a }, a)));
  const priority = h('input', { name: 'priority', type: 'number', value: '0' });
  const def = h('textarea', { name: 'definition', placeholder: '{"max-length": 1000}' });
  const save = e => {
    e.preventDefault();
    act(() => api('PUT', '/policies/' + enc(vhost.value) + '/' + enc(name.value), {
      pattern: pattern.value, 'apply-to': applyTo.value, priority: Number(priority.value) || 0,
      definition: JSON.parse(def.value || '{}'),
    }), 'Policy saved.');
  };
  const del = p => act(() => api('DELETE', '/policies/' + enc(p.vhost) + '/' + enc(p.name)), 'Policy deleted.');
  return h('div', {}, h('h1', {}, 'Policies'), table([
    { t: 'Vhost', v: p => p.vhost }, { t: 'Name', v: p => p.name }, { t: 'Pattern', v: p => p.pattern },
    { t: 'Apply to', v: p => p['apply-to'] }, { t: 'Priority', v: p => p.priority, num: true },
    { t: 'Definition', v: p => json(p.definition || {}) },
    { t: '', v: p => h('button', { class: 'danger', onclick: () => del(p) }, 'Delete') },
  ], ps), h('h2', {}, 'Add or replace a policy'),
  h('form', { id: 'policy', onsubmit: save }, h('label', {}, 'Vhost ', vhost), h('label', {}, 'Name ', name),
    h('label', {}, 'Pattern ', pattern), h('label', {}, 'Apply to ', applyTo), h('label', {}, 'Priority ', priority),
    h('label', {}, 'Definition ', def), h('button', {}, 'Save')));
}

// ---- routing ----

// routes: [pattern, page, refreshes every REFRESH_MS]
const routes = [
  [/^\/overview$/, overview, true],
  [/^\/connections$/, connections, true],
  [/^\/channels$/, channels, true],
  [/^\/exchanges$/, exchanges, false],
  [/^\/queues$/, queues, true],
  [/^\/queues\/([^/]+)\/([^/]+)$/, queueDetail, false],
  [/^\/queues\/([^/]+)\/([^/]+)\/dead-letters$/, deadLetters, false],
  [/^\/bindings$/, bindings, true],
  [/^\/users$/, users, false],
  [/^\/vhosts$/, vhosts, true],
  [/^\/policies$/, policies, false],
];

function current() {
  const path = location.hash.slice(1).split('?')[0] || '/overview';
  for (const [re, page, refresh] of routes) {
    const m = re.exec(path);
    if (m) return { page, refresh, args: m.slice(1).map(decodeURIComponent) };
  }
  return null;
}

let seq = 0; // drops renders overtaken by a newer one

async function render(background) {
  loginFromHash();
  const top = '#/' + ((location.hash.slice(2).split(/[/?]/)[0]) || 'overview');
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.getAttribute('href') === top);
  const who = document.getElementById('who');
  who.replaceChildren();
  if (!auth.get()) {
    main.replaceChildren(loginForm());
    return;
  }
  who.append(auth.user(), h('button', { onclick: () => { auth.clear(); flash(''); render(); } }, 'Log out'));
  const my = ++seq;
  const r = current();
  try {
    const node = r ? await r.page(...r.args) : h('p', {}, 'No such page.');
    if (my === seq) main.replaceChildren(node);
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

window.addEventListener('hashchange', () => { flash(''); render(); });
setInterval(() => {
  const r = current();
  if (r && r.refresh && auth.get() && !document.hidden) render(true);
}, REFRESH_MS);
render();
