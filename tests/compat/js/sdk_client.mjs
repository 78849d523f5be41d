// The real npm `centrifuge` SDK (5.x, over the `ws` package) against a live Rotor.
//
// Scenarios: token connect; a subscription created before connect() (the SDK then
// batches connect + subscribe in one frame); a publication sent through
// POST /api/publish; server-side subscriptions from the token's `channels`; staying
// connected across several ping intervals while publications flow; token expiry with
// getToken (refresh while connected, and an expired token at connect); a bad signature
// (3500, no reconnect); presence, presence_stats, history and client publish shapes;
// rpc with no handler (104); an unknown namespace (102); the tagsFilter subscription
// option (publications filtered by tags on the server); API disconnect (3503).
//
// Environment: ROTOR_HTTP, ROTOR_WS (ws://…/connection/websocket), ROTOR_API_KEY,
// ROTOR_SECRET, ROTOR_PING_SECONDS (the server's client.ping_interval).
// Prints `ok <name>` or `FAIL <name>: reason` per scenario; exits 1 if any failed (2 on
// a setup error, 3 at the whole-run deadline).

import { createHmac, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let Centrifuge, WebSocket;
try {
  ({ Centrifuge } = require('centrifuge'));
  WebSocket = require('ws');
} catch (e) {
  console.log(`FAIL setup: cannot load centrifuge/ws (${e.message}); install with: npm ci --prefix tests/compat/js`);
  process.exit(2);
}

const SCRIPT_DEADLINE_MS = 120_000;
const WAIT_MS = 5_000;

const HTTP = (process.env.ROTOR_HTTP ?? 'http://127.0.0.1:8000').replace(/\/+$/, '');
const WS = process.env.ROTOR_WS ?? `${HTTP.replace(/^http/, 'ws')}/connection/websocket`;
const API_KEY = process.env.ROTOR_API_KEY ?? '';
const SECRET = process.env.ROTOR_SECRET ?? '';
const PING_SECONDS = Number(process.env.ROTOR_PING_SECONDS ?? '1');

const deadline = setTimeout(() => {
  console.log(`FAIL deadline: the run took longer than ${SCRIPT_DEADLINE_MS / 1000}s`);
  process.exit(3);
}, SCRIPT_DEADLINE_MS);

const now = () => Math.floor(Date.now() / 1000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function signHs256(claims, secret = SECRET) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64(claims);
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

function token(user, extra = {}) {
  return signHs256({ sub: user, iat: now(), exp: now() + 3600, ...extra });
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

function withTimeout(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms}ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** Resolves with the first event `name` emitted by `emitter` that satisfies `pred`. */
function once(emitter, name, what, pred = () => true, ms = WAIT_MS) {
  return withTimeout(
    new Promise((resolve) => {
      const handler = (ctx) => {
        if (pred(ctx)) {
          emitter.removeListener(name, handler);
          resolve(ctx);
        }
      };
      emitter.on(name, handler);
    }),
    ms,
    what,
  );
}

async function api(method, params) {
  const res = await withTimeout(
    fetch(`${HTTP}/api/${method}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-API-Key': API_KEY },
      body: JSON.stringify(params),
    }),
    WAIT_MS,
    `POST /api/${method}`,
  );
  check(res.status === 200, `/api/${method} answered HTTP ${res.status}`);
  const body = await res.json();
  check(!body.error, `/api/${method} failed: ${JSON.stringify(body.error)}`);
  return body.result;
}

const clients = [];

function client(opts) {
  const c = new Centrifuge(WS, { websocket: WebSocket, name: 'rotor-compat-js', timeout: WAIT_MS, ...opts });
  // A final error would otherwise be an unhandled 'error' event.
  c.on('error', () => {});
  clients.push(c);
  return c;
}

/** Records every teardown event, so a scenario can assert the client never reconnected. */
function watchTeardown(c) {
  const seen = [];
  c.on('connecting', (ctx) => {
    // Code 0 is the client's own connect() call, not a reconnect.
    if (ctx.code !== 0) seen.push(`connecting ${ctx.code} ${ctx.reason}`);
  });
  c.on('disconnected', (ctx) => seen.push(`disconnected ${ctx.code} ${ctx.reason}`));
  return seen;
}

const scenarios = {
  async token_connect() {
    const c = client({ token: token('js-1') });
    const connected = once(c, 'connected', 'connected event');
    c.connect();
    const ctx = await connected;
    check(typeof ctx.client === 'string' && ctx.client.length > 0, `no client id in ${JSON.stringify(ctx)}`);
    check(ctx.transport === 'websocket', `transport ${ctx.transport}`);
    c.disconnect();
  },

  async batched_subscribe_and_api_publication() {
    const channel = `sdk-batch-${randomUUID()}`;
    const c = client({ token: token('js-2') });
    // Created before connect(): centrifuge-js sends connect + subscribe in one frame.
    const sub = c.newSubscription(channel);
    const subscribed = once(sub, 'subscribed', 'subscribed event');
    sub.subscribe();
    c.connect();
    await subscribed;
    const got = once(sub, 'publication', 'publication from /api/publish');
    await api('publish', { channel, data: { text: 'from the api' } });
    const pub = await got;
    check(pub.data && pub.data.text === 'from the api', `publication data ${JSON.stringify(pub.data)}`);
    check(pub.channel === channel, `publication channel ${pub.channel}`);
    c.disconnect();
  },

  async server_side_subscription_from_token() {
    const channel = `sdk-server-${randomUUID()}`;
    const c = client({ token: token('js-3', { channels: [channel] }) });
    const subscribed = once(c, 'subscribed', 'server-side subscribed event', (ctx) => ctx.channel === channel);
    c.connect();
    await subscribed;
    const got = once(c, 'publication', 'server-side publication', (ctx) => ctx.channel === channel);
    await api('publish', { channel, data: { n: 7 } });
    const pub = await got;
    check(pub.data.n === 7, `publication data ${JSON.stringify(pub.data)}`);
    c.disconnect();
  },

  async stays_connected_across_pings_while_publications_flow() {
    const channel = `sdk-busy-${randomUUID()}`;
    // A short watchdog: with no ping within interval + 1.5 s the SDK would reconnect.
    const c = client({ token: token('js-4'), maxServerPingDelay: 1500 });
    const teardown = watchTeardown(c);
    const sub = c.newSubscription(channel);
    const received = [];
    sub.on('publication', (ctx) => received.push(ctx.data.n));
    const subscribed = once(sub, 'subscribed', 'subscribed event');
    sub.subscribe();
    c.connect();
    await subscribed;
    const total = Math.ceil((PING_SECONDS * 4 * 1000) / 150);
    for (let n = 0; n < total; n++) {
      await api('publish', { channel, data: { n } });
      await sleep(150);
    }
    await sleep(300);
    check(teardown.length === 0, `client reconnected: ${teardown.join('; ')}`);
    check(c.state === 'connected', `state ${c.state}`);
    check(received.length === total, `received ${received.length} of ${total}`);
    check(received.every((n, i) => n === i), 'publications out of order');
    c.disconnect();
  },

  async refresh_with_get_token_while_connected() {
    let calls = 0;
    const c = client({
      token: token('js-5', { exp: now() + 2 }),
      getToken: async () => {
        calls += 1;
        return token('js-5');
      },
    });
    const teardown = watchTeardown(c);
    const connected = once(c, 'connected', 'connected event');
    c.connect();
    await connected;
    await sleep(4000);
    check(calls >= 1, 'getToken was never called before expiry');
    check(teardown.length === 0, `client reconnected: ${teardown.join('; ')}`);
    check(c.state === 'connected', `state ${c.state}`);
    c.disconnect();
  },

  async expired_token_at_connect_calls_get_token() {
    let calls = 0;
    const c = client({
      token: token('js-6', { exp: now() - 30 }),
      getToken: async () => {
        calls += 1;
        return token('js-6');
      },
    });
    const connected = once(c, 'connected', 'connected event after getToken');
    c.connect();
    await connected;
    check(calls === 1, `getToken called ${calls} times`);
    c.disconnect();
  },

  async bad_signature_is_final_3500() {
    const c = client({ token: signHs256({ sub: 'js-7', exp: now() + 60 }, 'not-the-secret') });
    const connecting = [];
    c.on('connecting', (ctx) => {
      if (ctx.code !== 0) connecting.push(ctx.code);
    });
    const disconnected = once(c, 'disconnected', 'disconnected event');
    c.connect();
    const ctx = await disconnected;
    check(ctx.code === 3500, `disconnect code ${ctx.code} (${ctx.reason})`);
    check(connecting.length === 0, `client tried to reconnect: ${connecting}`);
    check(c.state === 'disconnected', `state ${c.state}`);
  },

  async presence_history_and_client_publish() {
    const channel = `sdk-state-${randomUUID()}`;
    const c = client({ token: token('js-8') });
    const sub = c.newSubscription(channel);
    const subscribed = once(sub, 'subscribed', 'subscribed event');
    const connected = once(c, 'connected', 'connected event');
    sub.subscribe();
    c.connect();
    const { client: id } = await connected;
    await subscribed;

    const presence = await sub.presence();
    check(presence.clients[id], `own client missing from presence ${JSON.stringify(presence)}`);
    check(presence.clients[id].user === 'js-8', `presence user ${JSON.stringify(presence.clients[id])}`);
    const stats = await sub.presenceStats();
    check(stats.numClients === 1 && stats.numUsers === 1, `presence stats ${JSON.stringify(stats)}`);

    const echo = once(sub, 'publication', 'own publication');
    await sub.publish({ from: 'client' });
    const pub = await echo;
    check(pub.data.from === 'client', `publication ${JSON.stringify(pub.data)}`);
    check(pub.info && pub.info.user === 'js-8', `publication info ${JSON.stringify(pub.info)}`);
    await api('publish', { channel, data: { from: 'api' } });

    const history = await sub.history({ limit: 10 });
    check(history.publications.length === 2, `history has ${history.publications.length} publications`);
    check(history.publications[0].data.from === 'client', 'history order');
    check(history.publications[1].offset === 2, `offset ${history.publications[1].offset}`);
    check(typeof history.epoch === 'string' && history.epoch.length > 0, `epoch ${history.epoch}`);
    check(history.offset === 2, `stream top offset ${history.offset}`);
    c.disconnect();
  },

  async rpc_without_handler_and_unknown_namespace() {
    const c = client({ token: token('js-9') });
    const connected = once(c, 'connected', 'connected event');
    c.connect();
    await connected;
    let rpcError = null;
    try {
      await c.rpc('anything', { x: 1 });
    } catch (e) {
      rpcError = e;
    }
    check(rpcError && rpcError.code === 104, `rpc error ${JSON.stringify(rpcError)}`);

    const sub = c.newSubscription('no_such_namespace:room');
    const unsubscribed = once(sub, 'unsubscribed', 'unsubscribed after 102');
    const errors = [];
    sub.on('error', (ctx) => errors.push(ctx.error.code));
    sub.subscribe();
    const ctx = await unsubscribed;
    check(ctx.code === 102 || errors.includes(102), `unsubscribed ${JSON.stringify(ctx)} errors ${errors}`);
    check(c.state === 'connected', 'connection survived the failed subscribe');
    c.disconnect();
  },

  async tags_filter_option() {
    const channel = `tags:sdk-${randomUUID()}`;
    const c = client({ token: token('js-11') });
    const sub = c.newSubscription(channel, {
      tagsFilter: { op: 'and', nodes: [{ key: 'ticker', cmp: 'eq', val: 'AAPL' }, { key: 'price', cmp: 'gt', val: '10' }] },
    });
    const got = [];
    sub.on('publication', (ctx) => got.push(ctx.data.n));
    const subscribed = once(sub, 'subscribed', 'subscribed with tagsFilter');
    sub.subscribe();
    c.connect();
    await subscribed;
    const last = once(sub, 'publication', 'the matching publication', (ctx) => ctx.data.n === 3);
    await api('publish', { channel, data: { n: 1 }, tags: { ticker: 'MSFT', price: '300' } });
    await api('publish', { channel, data: { n: 2 }, tags: { ticker: 'AAPL', price: '9.99' } });
    await api('publish', { channel, data: { n: 3 }, tags: { ticker: 'AAPL', price: '10.01' } });
    const pub = await last;
    check(pub.tags && pub.tags.ticker === 'AAPL', `tags ${JSON.stringify(pub.tags)}`);
    check(got.length === 1 && got[0] === 3, `delivered ${got}`);
    c.disconnect();
  },

  async api_disconnect_is_final_3503() {
    const user = `js-10-${randomUUID()}`;
    const c = client({ token: token(user) });
    const connected = once(c, 'connected', 'connected event');
    c.connect();
    await connected;
    const disconnected = once(c, 'disconnected', 'disconnected event');
    await api('disconnect', { user });
    const ctx = await disconnected;
    check(ctx.code === 3503, `disconnect code ${ctx.code} (${ctx.reason})`);
  },
};

let failed = 0;
for (const [name, run] of Object.entries(scenarios)) {
  try {
    await withTimeout(run(), 30_000, name);
    console.log(`ok ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}
for (const c of clients) c.disconnect();
clearTimeout(deadline);
process.exit(failed ? 1 : 0);
