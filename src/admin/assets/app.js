// Rotor admin UI: plain JavaScript, no build step, no network access beyond this
// server. Every call goes to POST admin/api (the legacy method/params API) with the
// token in the Authorization header; the token lives in sessionStorage, never in a URL.
'use strict';

const TOKEN_KEY = 'rotor-admin-token';
const STATUS_EVERY_MS = 3000;
const CHART_POINTS = 100;
const MAX_PAGE = 1000; // largest page size a URL may ask for
const CMPS = ['eq', 'neq', 'in', 'nin', 'ex', 'nex', 'sw', 'ew', 'ct', 'lt', 'lte', 'gt', 'gte'];
const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  insecure: false,
  statusTimer: null,
  samples: [],
  cursors: [''], // cursor of each page shown so far; the last one is the current page
  starts: [0], // how many rows came before each of those pages
  pageRows: 0, // rows on the current page
  nextCursor: '',
  query: null,
  filterTree: null,
};

// ---- small helpers ----

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'onclick' || k === 'onchange' || k === 'oninput') e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

function showAlert(id, message) {
  const a = $(id);
  a.textContent = message || '';
  a.hidden = !message;
}

function clearAlerts(...ids) {
  for (const id of ids) showAlert(id, '');
}

class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

async function api(method, params) {
  const headers = { 'Content-Type': 'application/json' };
  if (state.token) headers.Authorization = 'token ' + state.token;
  const r = await fetch('admin/api', { method: 'POST', headers, body: JSON.stringify({ method, params }) });
  if (r.status === 401) {
    logout();
    throw new ApiError(0, 'Your session has expired: log in again.');
  }
  if (!r.ok) throw new ApiError(0, 'HTTP ' + r.status + ' ' + r.statusText);
  const reply = await r.json();
  if (reply.error) throw new ApiError(reply.error.code, reply.error.code + ': ' + reply.error.message);
  return reply.result || {};
}

// ---- login ----

async function start() {
  let init = { authenticated: false, insecure: false };
  try {
    const headers = state.token ? { Authorization: 'token ' + state.token } : {};
    init = await (await fetch('admin/init', { headers })).json();
  } catch (e) {
    showAlert('login-error', 'The server did not answer: ' + e.message);
  }
  state.insecure = !!init.insecure;
  if (init.authenticated) enterApp();
  else showLogin();
}

function showLogin() {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  stopStatus();
  $('app').hidden = true;
  $('login').hidden = false;
  $('password').focus();
}

async function login(ev) {
  ev.preventDefault();
  clearAlerts('login-error');
  const body = new URLSearchParams({ password: $('password').value });
  const r = await fetch('admin/auth', { method: 'POST', body });
  if (r.ok) {
    state.token = (await r.json()).token;
    sessionStorage.setItem(TOKEN_KEY, state.token);
    $('password').value = '';
    enterApp();
  } else if (r.status === 429) {
    const wait = r.headers.get('Retry-After') || 'a few';
    showAlert('login-error', 'Too many failed attempts. Try again in ' + wait + ' seconds.');
  } else {
    showAlert('login-error', 'Wrong password.');
  }
}

function logout() {
  showLogin();
}

function enterApp() {
  $('login').hidden = true;
  $('app').hidden = false;
  $('logout').hidden = state.insecure;
  if (!location.hash) location.hash = '#/status';
  route();
}

// ---- routing: #/<page>?<query> ----

function parseHash() {
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  return { page: path || 'status', params: new URLSearchParams(query || '') };
}

function route() {
  if ($('app').hidden) return;
  const { page, params } = parseHash();
  for (const p of ['status', 'connections', 'actions']) $('page-' + p).hidden = p !== page;
  for (const a of document.querySelectorAll('nav a[data-page]')) {
    if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (page === 'status') startStatus();
  else stopStatus();
  if (page === 'connections') loadQuery(params);
}

// ---- status ----

function startStatus() {
  if (state.statusTimer) return;
  refreshStatus();
  state.statusTimer = setInterval(refreshStatus, STATUS_EVERY_MS);
}

function stopStatus() {
  clearInterval(state.statusTimer);
  state.statusTimer = null;
}

function uptime(secs) {
  const d = Math.floor(secs / 86400), h = Math.floor((secs % 86400) / 3600), m = Math.floor((secs % 3600) / 60);
  return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + m + 'm ' + (secs % 60) + 's';
}

async function refreshStatus() {
  let result;
  try {
    result = await api('info', {});
  } catch (e) {
    showAlert('status-error', e.message);
    return;
  }
  clearAlerts('status-error');
  const nodes = (result.nodes || []).slice().sort((a, b) => a.name.localeCompare(b.name));
  const num = (v) => el('td', { class: 'num', text: String(v || 0) });
  $('nodes').replaceChildren(...nodes.map((n) => el('tr', {},
    el('td', { text: n.name }), el('td', { text: n.version || '' }), num(n.num_clients), num(n.num_users),
    num(n.num_subs), num(n.num_channels), el('td', { text: uptime(n.uptime || 0) }))));
  state.samples.push(nodes.reduce((s, n) => s + (n.num_clients || 0), 0));
  if (state.samples.length > CHART_POINTS) state.samples.shift();
  drawChart();
  $('status-updated').textContent = 'Updated ' + new Date().toLocaleTimeString() + '.';
}

function drawChart() {
  const svg = $('chart');
  const max = Math.max(1, ...state.samples);
  const step = 600 / (CHART_POINTS - 1);
  const points = state.samples.map((v, i) => (i * step).toFixed(1) + ',' + (115 - (v / max) * 105).toFixed(1));
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  line.setAttribute('points', points.join(' '));
  const label = document.createElementNS('http://www.w3.org/2000/svg', 'text');
  label.setAttribute('x', '6');
  label.setAttribute('y', '14');
  label.setAttribute('font-size', '12');
  label.textContent = 'max ' + max + ', now ' + (state.samples[state.samples.length - 1] || 0);
  svg.replaceChildren(line, label);
}

// ---- connections: query in the URL ----

function readForm() {
  return {
    user: $('q-user').value.trim(),
    filter: $('q-filter').value.trim(),
    expr: $('q-expr').value.trim(),
    limit: $('q-limit').value,
  };
}

function queryHash(q) {
  const p = new URLSearchParams();
  if (q.user) p.set('user', q.user);
  if (q.filter) p.set('filter', q.filter);
  if (q.expr) p.set('expr', q.expr);
  p.set('limit', q.limit);
  return '#/connections?' + p.toString();
}

function loadQuery(params) {
  const q = { user: params.get('user') || '', filter: params.get('filter') || '',
    expr: params.get('expr') || '', limit: params.get('limit') || '100' };
  if (state.query && JSON.stringify(q) === JSON.stringify(state.query)) return;
  $('q-user').value = q.user;
  $('q-filter').value = q.filter;
  $('q-expr').value = q.expr;
  setLimit(q.limit);
  if (!$('builder').hidden) openBuilder();
  state.query = q;
  if (q.user || q.filter || q.expr) runSearch([''], [0]);
}

// A page size from the URL: any whole number up to MAX_PAGE (the explorer never asks
// for an unbounded page), else the default.
function setLimit(text) {
  const n = Number(text);
  const limit = Number.isInteger(n) && n >= 1 && n <= MAX_PAGE ? String(n) : '100';
  const select = $('q-limit');
  if (![...select.options].some((o) => o.value === limit)) select.append(el('option', { value: limit }, limit));
  select.value = limit;
}

function submitSearch(ev) {
  ev.preventDefault();
  const q = readForm();
  state.query = q;
  const hash = queryHash(q);
  if (location.hash !== hash) history.replaceState(null, '', hash);
  runSearch([''], [0]);
}

// The request of the current query at `cursor`, or an error message.
function request(q, cursor, limit) {
  const params = { limit: Number(limit) };
  if (q.user) params.user = q.user;
  if (q.expr) params.expression = q.expr;
  if (q.filter) {
    try {
      params.label_filter = JSON.parse(q.filter);
    } catch (e) {
      return { field: 'filter-error', message: 'label_filter is not JSON: ' + e.message };
    }
  }
  if (cursor) params.cursor = cursor;
  if (!q.user && !q.expr && !q.filter) {
    return { field: 'search-error', message: 'Enter a user, a label filter or an expression.' };
  }
  return { params };
}

function errorField(e) {
  if (e.code === 107 && /^107: label_filter/.test(e.message)) return 'filter-error';
  if (e.code === 107 && /^107: expression/.test(e.message)) return 'expr-error';
  return 'search-error';
}

// Shows the page at the last of `cursors`; `starts` are the rows before each page.
async function runSearch(cursors, starts) {
  clearAlerts('filter-error', 'expr-error', 'search-error');
  const q = state.query;
  const req = request(q, cursors[cursors.length - 1], q.limit);
  if (!req.params) {
    showAlert(req.field, req.message);
    return;
  }
  let result;
  try {
    result = await api('connections', req.params);
  } catch (e) {
    showAlert(errorField(e), e.message);
    $('results').hidden = true;
    return;
  }
  state.cursors = cursors;
  state.starts = starts;
  state.nextCursor = result.next_cursor || '';
  renderRows(result.connections || {}, result.total, result.missing_nodes);
}

function chips(labels) {
  return Object.entries(labels || {}).map(([k, v]) => el('span', { class: 'chip', text: k + '=' + v }));
}

function plural(n, word) {
  return n + ' ' + word + (n === 1 ? '' : 's');
}

function renderRows(connections, total, missing) {
  const entries = Object.entries(connections);
  const page = state.cursors.length;
  const start = state.starts[page - 1] || 0;
  state.pageRows = entries.length;
  showUserActions(state.query && state.query.user);
  $('rows').replaceChildren(...entries.map(([id, info]) => row(id, info)));
  $('results-total').textContent = String(total || 0);
  let summary = (total === 1 ? 'connection matches' : 'connections match') + ' in all';
  summary += entries.length ? '; rows ' + (start + 1) + '–' + (start + entries.length) + ' on page ' + page + '.' : '; none on page ' + page + '.';
  if (missing && missing.length) summary += ' Nodes that did not answer (not counted): ' + missing.join(', ') + '.';
  $('results-summary').textContent = summary;
  $('page-no').textContent = 'Page ' + page;
  $('prev-page').disabled = page <= 1;
  $('next-page').disabled = !state.nextCursor;
  $('results').hidden = false;
}

function say(text) {
  $('results-summary').textContent = text;
}

function row(id, info) {
  const app = [info.app_name, info.app_version].filter(Boolean).join(' ');
  const channels = Object.keys((info.state && info.state.channels) || {}).length;
  const connected = info.connected_at_ms ? new Date(info.connected_at_ms).toISOString().replace('T', ' ').slice(0, 19) : '';
  const tr = el('tr', { class: 'row', tabindex: '0', 'aria-label': 'Connection ' + id },
    el('td', { class: 'mono', text: id }), el('td', { text: info.user || '' }), el('td', { text: app }),
    el('td', { text: info.transport || '' }), el('td', { text: info.protocol || '' }), el('td', { text: info.node || '' }),
    el('td', { text: connected }),
    el('td', {}, ...chips(info.labels)), el('td', { class: 'num', text: String(channels) }),
    el('td', { class: 'nowrap' },
      el('button', { type: 'button', class: 'small danger', onclick: (ev) => { ev.stopPropagation(); disconnectOne(id, info, tr); } }, 'Disconnect'),
      ' ',
      el('button', { type: 'button', class: 'small quiet', onclick: (ev) => { ev.stopPropagation(); refreshOne(id, info, tr); } }, 'Refresh'),
      ' ',
      revokeButton(info),
      ' ',
      el('button', userButton(info, 'Block', () => blockUser(info.user)), 'Block'),
      ' ',
      el('button', userButton(info, 'Invalidate tokens', () => invalidateTokens(info.user)), 'Invalidate tokens')));
  tr.addEventListener('click', () => showDetails(id, info));
  tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') showDetails(id, info); });
  return tr;
}

// The server API `disconnect` for exactly this client id (on every node).
async function disconnectOne(id, info, tr) {
  clearAlerts('search-error');
  try {
    await api('disconnect', { user: info.user || '', client: id });
    tr.remove();
    say('Disconnected ' + id + '.');
  } catch (e) {
    showAlert('search-error', e.message);
  }
}

// The server API `refresh` for this client id: it gets a refresh push and no longer
// expires (no expire_at). Then the row is read again.
async function refreshOne(id, info, tr) {
  clearAlerts('search-error');
  const params = { expression: 'client == ' + JSON.stringify(id), limit: 1 };
  if (info.user) params.user = info.user;
  try {
    await api('refresh', { user: info.user || '', client: id });
    const result = await api('connections', params);
    const fresh = (result.connections || {})[id];
    if (fresh) {
      tr.replaceWith(row(id, fresh));
      say('Refreshed ' + id + ': it no longer expires.');
    } else {
      tr.remove();
      say(id + ' is no longer connected.');
    }
  } catch (e) {
    showAlert('search-error', e.message);
  }
}

// ---- session management: entries that keep a terminated session terminated ----

// How long an entry lasts (expire_at = now + seconds; 0 = until removed).
const LASTS = [['1 hour', 3600], ['1 day', 86400], ['7 days', 604800], ['30 days', 2592000], ['Until removed', 0]];

// Asks in the `session` dialog; resolves to the chosen expire_at (Unix seconds, 0 =
// never) on Confirm, or null on Cancel.
function confirmSession(title, text, lasts) {
  $('session-title').textContent = title;
  $('session-text').textContent = text;
  $('session-lasts').replaceChildren(...LASTS.map(([name, secs]) =>
    el('option', secs === lasts ? { value: String(secs), selected: '' } : { value: String(secs) }, name)));
  const dialog = $('session');
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      if (dialog.returnValue !== 'yes') return resolve(null);
      const secs = Number($('session-lasts').value);
      resolve(secs ? Math.floor(Date.now() / 1000) + secs : 0);
    }, { once: true });
  });
}

// Runs a session method after confirmation; `done` is said on success.
async function sessionAction(title, text, lasts, method, params, done) {
  clearAlerts('search-error');
  const expire_at = await confirmSession(title, text, lasts);
  if (expire_at === null) return;
  try {
    await api(method, { ...params, expire_at });
    say(done);
  } catch (e) {
    showAlert('search-error', e.message);
  }
}

// "Revoke token" for a row: needs the token's uid (its `jti` claim).
function revokeButton(info) {
  const uid = info.state && info.state.connection_token && info.state.connection_token.uid;
  const attrs = { type: 'button', class: 'small danger', onclick: (ev) => { ev.stopPropagation(); revokeToken(uid); } };
  if (!uid) {
    attrs.disabled = '';
    attrs.title = 'This connection\'s token has no uid (jti claim) to revoke.';
  }
  return el('button', attrs, 'Revoke token');
}

// A row's per-user button; disabled for anonymous connections.
function userButton(info, name, action) {
  const attrs = { type: 'button', class: 'small danger', onclick: (ev) => { ev.stopPropagation(); action(); } };
  if (!info.user) {
    attrs.disabled = '';
    attrs.title = name + ' needs a user; this connection is anonymous.';
  }
  return attrs;
}

function revokeToken(uid) {
  return sessionAction('Revoke token ' + uid + '?',
    'Connections holding token ' + uid + ' are disconnected (code 3510) within seconds on every node, ' +
    'and the token cannot connect again while the revocation lasts. Let it last at least until the token expires.',
    2592000, 'revoke_token', { uid }, 'Revoked token ' + uid + '; its connections close within seconds.');
}

function blockUser(user) {
  return sessionAction('Block user ' + user + '?',
    'Every connection of ' + user + ' is disconnected (code 3511) on every node, and ' + user +
    ' cannot connect until unblocked or the block ends.',
    0, 'block_user', { user }, 'Blocked ' + user + '.');
}

// issued_before is left to the server's clock (its default: now).
function invalidateTokens(user) {
  return sessionAction('Invalidate tokens of ' + user + '?',
    'Connection tokens of ' + user + ' issued before now are refused, and connections holding one are ' +
    'disconnected (code 3510) within seconds on every node. The user needs a new token to connect.',
    2592000, 'invalidate_user_tokens', { user }, 'Invalidated the tokens of ' + user + ' issued before now.');
}

async function unblockUser(user) {
  clearAlerts('search-error');
  try {
    await api('unblock_user', { user });
    say('Unblocked ' + user + '.');
  } catch (e) {
    showAlert('search-error', e.message);
  }
}

// The bar of per-user actions, shown when the search names a user (it works for a
// user with no connection left, e.g. to unblock one).
function showUserActions(user) {
  const bar = $('user-actions');
  bar.hidden = !user;
  if (!user) return;
  bar.setAttribute('aria-label', 'User ' + user);
  $('user-actions-text').textContent = 'User ' + user + ':';
}

function showDetails(id, info) {
  const st = info.state || {};
  const dl = (pairs) => el('dl', {}, ...pairs.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', {}, v)]));
  const token = (t) => (t ? 'uid ' + (t.uid || '—') + ', issued at ' + (t.issued_at ? new Date(t.issued_at * 1000).toISOString() : '—') : '—');
  const channels = Object.entries(st.channels || {}).map(([ch, c]) => el('li', { text: ch + (c.source ? ' (server-side, source ' + c.source + ')' : '') }));
  const subTokens = Object.entries(st.subscription_tokens || {}).map(([ch, t]) => el('li', { text: ch + ': ' + token(t) }));
  $('details-title').textContent = 'Connection ' + id;
  $('details-body').replaceChildren(
    dl([['User', info.user || '(anonymous)'], ['App', [info.app_name, info.app_version].filter(Boolean).join(' ') || '—'],
      ['Transport', (info.transport || '') + ' · ' + (info.protocol || '')], ['Node', info.node || '—'],
      ['Connected at', info.connected_at_ms ? new Date(info.connected_at_ms).toISOString() : '—'],
      ['Labels', el('span', {}, ...chips(info.labels))], ['Connection token', token(st.connection_token)]]),
    el('h3', { text: 'Channels (' + channels.length + ')' }), el('ul', {}, ...channels),
    subTokens.length ? el('h3', { text: 'Subscription tokens' }) : null, subTokens.length ? el('ul', {}, ...subTokens) : null,
    el('h3', { text: 'Meta' }), el('pre', { text: st.meta === undefined ? '—' : JSON.stringify(st.meta, null, 2) }),
    el('h3', { text: 'ConnectionInfo' }), el('pre', { text: JSON.stringify(info, null, 2) }));
  $('details').showModal();
}

// ---- bulk disconnect ----

// How many connections a bulk disconnect would close: the `total` of a one-row page
// of the same selection (user and/or label filter, as `disconnect` takes them).
async function countMatching(q) {
  const req = request({ user: q.user, filter: q.filter, expr: '' }, '', 1);
  const result = await api('connections', req.params);
  return result.total || 0;
}

function bulkParams(q) {
  if (q.expr) return { message: 'Disconnect all matching works with a user and/or a label filter, not with an expression.' };
  if (q.filter) {
    const label_filter = JSON.parse(q.filter);
    return { params: q.user ? { user: q.user, label_filter } : { label_filter, all_users: true } };
  }
  return { params: { user: q.user } };
}

async function disconnectAll() {
  clearAlerts('search-error');
  const q = state.query;
  let bulk;
  try {
    bulk = bulkParams(q);
  } catch (e) {
    bulk = { message: 'label_filter is not JSON: ' + e.message };
  }
  if (!bulk.params) {
    showAlert('search-error', bulk.message);
    return;
  }
  let n;
  try {
    n = await countMatching(q);
  } catch (e) {
    showAlert('search-error', e.message);
    return;
  }
  $('confirm-text').textContent = 'This disconnects ' + plural(n, 'connection') +
    ' matching the current search, on every node. Clients may reconnect.';
  const dialog = $('confirm');
  dialog.returnValue = '';
  dialog.showModal();
  dialog.addEventListener('close', async () => {
    if (dialog.returnValue !== 'yes') return;
    try {
      await api('disconnect', bulk.params);
      await runSearch([''], [0]);
      say('Disconnected ' + plural(n, 'connection') + ' (as counted before confirming). ' + $('results-summary').textContent);
    } catch (e) {
      showAlert('search-error', e.message);
    }
  }, { once: true });
}

// ---- label filter builder (two-way with the JSON text) ----

function openBuilder() {
  const text = $('q-filter').value.trim();
  let tree = { op: 'and', nodes: [] };
  if (text) {
    try {
      tree = JSON.parse(text);
    } catch (e) {
      showAlert('filter-error', 'label_filter is not JSON: ' + e.message);
      return false;
    }
  }
  if (!tree.op) tree = { op: 'and', nodes: [tree] };
  state.filterTree = tree;
  clearAlerts('filter-error');
  renderBuilder();
  return true;
}

function setMode(builder) {
  if (builder && !openBuilder()) return;
  $('builder').hidden = !builder;
  $('q-filter').hidden = builder;
  $('mode-builder').setAttribute('aria-pressed', String(builder));
  $('mode-json').setAttribute('aria-pressed', String(!builder));
}

function syncJson() {
  const t = state.filterTree;
  $('q-filter').value = t && t.nodes && t.nodes.length === 0 ? '' : JSON.stringify(t);
}

function renderBuilder() {
  $('builder').replaceChildren(groupEditor(state.filterTree, null));
}

function groupEditor(node, parent) {
  node.nodes = node.nodes || [];
  const changed = () => { syncJson(); renderBuilder(); };
  const op = el('select', { 'aria-label': 'Group operator', onchange: (ev) => { node.op = ev.target.value; changed(); } },
    ...['and', 'or', 'not'].map((o) => el('option', o === node.op ? { value: o, selected: '' } : { value: o }, o)));
  const head = el('div', { class: 'group-head' }, op,
    el('button', { type: 'button', class: 'small quiet', onclick: () => { node.nodes.push({ key: '', cmp: 'eq', val: '' }); changed(); } }, 'Add condition'),
    el('button', { type: 'button', class: 'small quiet', onclick: () => { node.nodes.push({ op: 'and', nodes: [] }); changed(); } }, 'Add group'),
    parent ? el('button', { type: 'button', class: 'small quiet', onclick: () => { parent.nodes.splice(parent.nodes.indexOf(node), 1); changed(); } }, 'Remove group') : null);
  const kids = node.nodes.map((n) => (n.op ? groupEditor(n, node) : leafEditor(n, node)));
  return el('div', { class: 'group', role: 'group', 'aria-label': node.op + ' group' }, head, ...kids);
}

function leafEditor(leaf, parent) {
  const multi = () => leaf.cmp === 'in' || leaf.cmp === 'nin';
  const noValue = () => leaf.cmp === 'ex' || leaf.cmp === 'nex';
  const setValue = (text) => {
    delete leaf.val;
    delete leaf.vals;
    if (multi()) leaf.vals = text.split(',').map((s) => s.trim()).filter(Boolean);
    else if (!noValue()) leaf.val = text;
    syncJson();
  };
  const current = () => (multi() ? (leaf.vals || []).join(', ') : leaf.val || '');
  const value = el('input', { 'aria-label': 'Value', placeholder: 'value (comma-separated for in/nin)',
    oninput: (ev) => setValue(ev.target.value) });
  value.value = current();
  value.hidden = noValue();
  const key = el('input', { 'aria-label': 'Key', placeholder: 'label key', oninput: (ev) => { leaf.key = ev.target.value; syncJson(); } });
  key.value = leaf.key || '';
  const cmp = el('select', { 'aria-label': 'Comparison', onchange: (ev) => {
    const text = value.value;
    leaf.cmp = ev.target.value;
    value.hidden = noValue();
    setValue(text);
  } }, ...CMPS.map((c) => el('option', c === leaf.cmp ? { value: c, selected: '' } : { value: c }, c)));
  return el('div', { class: 'leaf' }, key, cmp, value,
    el('button', { type: 'button', class: 'small quiet', onclick: () => { parent.nodes.splice(parent.nodes.indexOf(leaf), 1); syncJson(); renderBuilder(); } }, 'Remove'));
}

// ---- actions: one form per server API method ----

// Field kinds: text (a string), list (comma-separated → array of strings), json (any
// JSON value), int (a whole number), bool (a checkbox). An empty optional field is
// left out of the params; a required one must be filled.
const f = (name, label, kind, extra) => ({ name, label, kind, ...(extra || {}) });
const ACTIONS = {
  publish: [f('channel', 'Channel', 'text', { required: true, value: 'news' }), f('data', 'Data', 'json', { required: true, value: '{"text": "hello"}' }),
    f('tags', 'Tags', 'json', { placeholder: '{"key": "value"}' }), f('idempotency_key', 'Idempotency key', 'text'),
    f('skip_history', 'Skip history', 'bool')],
  broadcast: [f('channels', 'Channels', 'list', { required: true, value: 'news, alerts' }), f('data', 'Data', 'json', { required: true, value: '{"text": "hello"}' }),
    f('tags', 'Tags', 'json', { placeholder: '{"key": "value"}' }), f('skip_history', 'Skip history', 'bool')],
  presence: [f('channel', 'Channel', 'text', { required: true, value: 'news' })],
  presence_stats: [f('channel', 'Channel', 'text', { required: true, value: 'news' })],
  history: [f('channel', 'Channel', 'text', { required: true, value: 'news' }), f('limit', 'Limit', 'int', { value: '10' }),
    f('reverse', 'Reverse', 'bool')],
  history_remove: [f('channel', 'Channel', 'text', { required: true, value: 'news' })],
  subscribe: [f('user', 'User', 'text', { required: true, keep: true }), f('channel', 'Channel', 'text', { required: true }),
    f('client', 'Client ID', 'text'), f('session', 'Session', 'text')],
  unsubscribe: [f('user', 'User', 'text', { required: true, keep: true }), f('channel', 'Channel', 'text', { required: true }),
    f('client', 'Client ID', 'text'), f('session', 'Session', 'text')],
  disconnect: [f('user', 'User', 'text', { required: true, keep: true }), f('client', 'Client ID', 'text'), f('session', 'Session', 'text'),
    f('code', 'Code', 'int', { placeholder: '4000–4999', group: 'disconnect' }), f('reason', 'Reason', 'text', { group: 'disconnect' })],
  channels: [f('pattern', 'Pattern', 'text', { value: '*' })],
  info: [],
  revoke_token: [f('uid', 'Token uid', 'text', { required: true }), f('expire_at', 'Expire at', 'int', { placeholder: 'Unix seconds; empty = never' })],
  invalidate_user_tokens: [f('user', 'User', 'text', { required: true }), f('issued_before', 'Issued before', 'int', { placeholder: 'Unix seconds; empty = now' }),
    f('channel', 'Channel', 'text', { placeholder: 'only this channel\'s subscription tokens' }), f('expire_at', 'Expire at', 'int', { placeholder: 'Unix seconds; empty = never' })],
  block_user: [f('user', 'User', 'text', { required: true }), f('expire_at', 'Expire at', 'int', { placeholder: 'Unix seconds; empty = never' })],
  unblock_user: [f('user', 'User', 'text', { required: true })],
  update_user_status: [f('users', 'Users', 'list', { required: true }), f('state', 'State', 'text', { placeholder: 'e.g. away' })],
  get_user_status: [f('users', 'Users', 'list', { required: true })],
  delete_user_status: [f('users', 'Users', 'list', { required: true })],
};

// The params of a filled action form, or throws an Error naming the field.
function actionParams(method, form) {
  const params = {};
  for (const fd of ACTIONS[method]) {
    const input = form.elements[fd.name];
    if (fd.kind === 'bool') {
      if (input.checked) params[fd.name] = true;
      continue;
    }
    const text = input.value.trim();
    if (!text && fd.required && !fd.keep) throw new Error(fd.label + ' is required.');
    if (!text && !fd.keep) continue;
    let v = text;
    if (fd.kind === 'json') {
      try {
        v = JSON.parse(text);
      } catch (e) {
        throw new Error(fd.label + ' is not JSON: ' + e.message);
      }
    } else if (fd.kind === 'list') {
      v = text.split(',').map((x) => x.trim()).filter(Boolean);
    } else if (fd.kind === 'int') {
      v = Number(text);
      if (!Number.isSafeInteger(v)) throw new Error(fd.label + ' must be a whole number.');
    }
    if (fd.group) (params[fd.group] = params[fd.group] || {})[fd.name] = v;
    else params[fd.name] = v;
  }
  return params;
}

function actionForm(method) {
  const form = $('action-form');
  form.setAttribute('aria-label', method);
  const fields = ACTIONS[method].map((fd) => {
    const id = 'a-' + method + '-' + fd.name;
    if (fd.kind === 'bool') {
      return el('div', { class: 'field check' }, el('input', { id, name: fd.name, type: 'checkbox' }), el('label', { for: id, text: fd.label }));
    }
    const attrs = { id, name: fd.name, autocomplete: 'off', spellcheck: 'false' };
    if (fd.placeholder) attrs.placeholder = fd.placeholder;
    if (fd.kind === 'int') attrs.inputmode = 'numeric';
    const input = el(fd.kind === 'json' ? 'textarea' : 'input', fd.kind === 'json' ? { ...attrs, rows: '3' } : attrs);
    input.value = fd.value || '';
    const label = fd.label + (fd.required ? '' : ' (optional)');
    return el('div', { class: fd.kind === 'json' ? 'field wide' : 'field' }, el('label', { for: id, text: label }), input);
  });
  if (!fields.length) fields.push(el('p', { class: 'muted', text: 'No parameters.' }));
  form.replaceChildren(...fields, el('div', { class: 'buttons' }, el('button', { type: 'submit' }, 'Send')));
}

function setupActions() {
  const select = $('a-method');
  select.replaceChildren(...Object.keys(ACTIONS).map((m) => el('option', { value: m }, m)));
  select.addEventListener('change', () => {
    clearAlerts('action-error');
    $('action-reply').textContent = '';
    actionForm(select.value);
  });
  actionForm(select.value);
  $('action-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearAlerts('action-error');
    const method = select.value;
    let params;
    try {
      params = actionParams(method, ev.target);
    } catch (e) {
      showAlert('action-error', e.message);
      return;
    }
    try {
      $('action-reply').textContent = JSON.stringify(await api(method, params), null, 2);
    } catch (e) {
      $('action-reply').textContent = '';
      showAlert('action-error', e.message);
    }
  });
}

// ---- wiring ----

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('search-form').addEventListener('submit', submitSearch);
  $('mode-json').addEventListener('click', () => setMode(false));
  $('mode-builder').addEventListener('click', () => setMode(true));
  $('prev-page').addEventListener('click', () => runSearch(state.cursors.slice(0, -1), state.starts.slice(0, -1)));
  $('next-page').addEventListener('click', () => {
    const starts = [...state.starts, state.starts[state.starts.length - 1] + state.pageRows];
    runSearch([...state.cursors, state.nextCursor], starts);
  });
  $('disconnect-all').addEventListener('click', disconnectAll);
  $('user-block').addEventListener('click', () => blockUser(state.query.user));
  $('user-unblock').addEventListener('click', () => unblockUser(state.query.user));
  $('user-invalidate').addEventListener('click', () => invalidateTokens(state.query.user));
  setupActions();
  window.addEventListener('hashchange', route);
  start();
});
