// The real npm `cent.js` 6.x CentClient against a live Rotor.
//
// Every method cent.js has (publish, broadcast, subscribe, unsubscribe, disconnect,
// refresh, getPresence, getPresenceStats, getHistory, removeHistory, getChannels,
// getInfo) and its effect on a live client: a unidirectional HTTP stream
// (POST /connection/uni_http_stream) for user 42, read with fetch, with an HS256 token
// signed here.
//
// Environment: ROTOR_HTTP (e.g. http://127.0.0.1:8000), ROTOR_API_KEY, ROTOR_SECRET.
// Prints `ok <name>` or `FAIL <name>: reason` per scenario; exits 1 if any failed (2 on
// a setup error, 3 at the whole-run deadline). cent.js's own `timeout` option is not
// implemented, so every call here gets its own limit.

import { createHmac, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let CentClient, CentException;
try {
  ({ CentClient, CentException } = require('cent.js'));
} catch (e) {
  console.log(`FAIL setup: cannot load cent.js (${e.message}); install with: npm ci --prefix tests/compat/js`);
  process.exit(2);
}

const SCRIPT_DEADLINE_MS = 90_000;
const WAIT_MS = 5_000;
const CALL_MS = 10_000;
const USER = '42';

const HTTP = (process.env.ROTOR_HTTP ?? 'http://127.0.0.1:8000').replace(/\/+$/, '');
const API_KEY = process.env.ROTOR_API_KEY ?? '';
const SECRET = process.env.ROTOR_SECRET ?? '';

const deadline = setTimeout(() => {
  console.log(`FAIL deadline: the run took longer than ${SCRIPT_DEADLINE_MS / 1000}s`);
  process.exit(3);
}, SCRIPT_DEADLINE_MS);

const b64url = (buf) => Buffer.from(buf).toString('base64url');

function signHs256(claims, secret) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

function withTimeout(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms}ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** A uni_http_stream connection: pushes (one JSON object per line) arrive in `queue`. */
class UniStream {
  constructor() {
    this.queue = [];
    this.waiters = [];
    this.ended = false;
    this.controller = new AbortController();
  }

  static async open(token, name) {
    const s = new UniStream();
    const res = await withTimeout(
      fetch(`${HTTP}/connection/uni_http_stream`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ token, name, version: '6.x' }),
        signal: s.controller.signal,
      }),
      CALL_MS,
      'opening the uni_http_stream',
    );
    if (res.status !== 200) throw new Error(`uni_http_stream answered ${res.status}`);
    s.pump(res.body);
    return s;
  }

  async pump(body) {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of body) {
        buf += decoder.decode(chunk, { stream: true });
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) this.deliver(JSON.parse(line));
        }
      }
    } catch (e) {
      if (e.name !== 'AbortError') this.deliver({ __error__: String(e) });
    }
    this.ended = true;
    this.deliver(null);
  }

  deliver(msg) {
    this.queue.push(msg);
    for (const w of this.waiters.splice(0)) w();
  }

  /** The next push (pings `{}` skipped) satisfying `pred`; earlier ones are dropped. */
  async next(pred, what, ms = WAIT_MS) {
    const end = Date.now() + ms;
    const seen = [];
    for (;;) {
      while (this.queue.length) {
        const msg = this.queue.shift();
        if (msg === null) {
          this.queue.unshift(null);
          throw new Error(`stream ended before ${what}; saw ${JSON.stringify(seen)}`);
        }
        if (msg.__error__) throw new Error(`stream broke before ${what}: ${msg.__error__}`);
        if (Object.keys(msg).length === 0) continue;
        if (pred(msg)) return msg;
        seen.push(msg);
      }
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${ms}ms; saw ${JSON.stringify(seen)}`);
      await new Promise((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async waitEnd(ms = WAIT_MS) {
    const end = Date.now() + ms;
    while (!this.ended) {
      if (Date.now() > end) throw new Error(`stream still open ${ms}ms after the disconnect push`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close() {
    this.controller.abort();
  }
}

const failures = [];

async function scenario(name, fn) {
  try {
    await fn();
    console.log(`ok ${name}`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e?.message ?? e}`);
    failures.push(name);
  }
}

/**
 * cent.js rejects an `{"error":…}` answer with a CentException whose message is
 * literally "[object Object]" (it passes the error object to Error()), so the code is
 * checked on the same request sent without cent.js.
 */
async function expectApiError(promise, method, params, code, what) {
  let rejected;
  try {
    const r = await withTimeout(promise, CALL_MS, what);
    throw new Error(`${what} succeeded: ${JSON.stringify(r)}`);
  } catch (e) {
    rejected = e;
  }
  check(rejected instanceof CentException, `${what}: expected a CentException, got ${rejected}`);
  const res = await withTimeout(
    fetch(`${HTTP}/api/${method}`, { method: 'POST', headers: { 'X-API-Key': API_KEY }, body: JSON.stringify(params) }),
    CALL_MS,
    what,
  );
  const body = await res.json();
  check(res.status === 200 && body.error?.code === code, `${what}: expected 200 with error ${code}, got ${res.status} ${JSON.stringify(body)}`);
}

async function main() {
  if (!API_KEY || !SECRET) {
    console.log('FAIL setup: ROTOR_API_KEY and ROTOR_SECRET must be set');
    return 2;
  }
  const api = new CentClient({ url: `${HTTP}/api`, apiKey: API_KEY });
  const call = (method, params) => withTimeout(api[method](params), CALL_MS, method);
  const runId = randomUUID().slice(0, 8);
  const chan = `cent-js-${runId}`;
  const chan2 = `cent-js-${runId}-b`;
  const now = Math.floor(Date.now() / 1000);
  const token = signHs256({ sub: USER, iat: now, exp: now + 3600, info: { name: 'Bob' } }, SECRET);

  let stream, clientId, session;
  try {
    stream = await UniStream.open(token, 'cent-js');
    const first = await stream.next(() => true, 'connect push');
    check(first.connect?.client, `first line is not a connect push: ${JSON.stringify(first)}`);
    clientId = first.connect.client;
    session = first.connect.session;
  } catch (e) {
    console.log(`FAIL setup: cannot open the uni_http_stream connection for user ${USER}: ${e.message}`);
    return 2;
  }
  console.log(`ok uni_http_stream connect (client ${clientId})`);
  const state = { offset: 0, epoch: '' };

  await scenario('getInfo', async () => {
    const r = await call('getInfo', {});
    check(Array.isArray(r.nodes) && r.nodes.length >= 1, `nodes ${JSON.stringify(r)}`);
    const n = r.nodes[0];
    check(n.uid && n.name && n.version, `node ${JSON.stringify(n)}`);
    check(n.num_clients >= 1 && n.num_users >= 1, `the live connection is not counted: ${JSON.stringify(n)}`);
  });

  await scenario('subscribe', async () => {
    const r = await call('subscribe', { user: USER, channel: chan, data: { welcome: 1 }, info: { role: 'writer' } });
    check(same(r, {}), `result ${JSON.stringify(r)}`);
    const p = await stream.next((m) => m.channel === chan && m.subscribe, 'subscribe push');
    check(same(p.subscribe.data, { welcome: 1 }), `subscribe push ${JSON.stringify(p)}`);
    await call('subscribe', { user: USER, channel: chan2 });
    await stream.next((m) => m.channel === chan2 && m.subscribe, 'second subscribe push');
  });

  await scenario('getPresence', async () => {
    const r = await call('getPresence', { channel: chan });
    const ci = r.presence?.[clientId];
    check(ci, `${clientId} not present: ${JSON.stringify(r)}`);
    check(ci.user === USER && ci.client === clientId, `client info ${JSON.stringify(ci)}`);
    check(same(ci.conn_info, { name: 'Bob' }) && same(ci.chan_info, { role: 'writer' }), `infos ${JSON.stringify(ci)}`);
  });

  await scenario('getPresenceStats', async () => {
    const r = await call('getPresenceStats', { channel: chan });
    check(r.num_clients === 1 && r.num_users === 1, `stats ${JSON.stringify(r)}`);
  });

  await scenario('publish', async () => {
    const r = await call('publish', { channel: chan, data: { n: 1 }, tags: { kind: 'js' } });
    check(r.offset === 1 && typeof r.epoch === 'string' && r.epoch.length > 0, `result ${JSON.stringify(r)}`);
    state.offset = r.offset;
    state.epoch = r.epoch;
    const p = await stream.next((m) => m.channel === chan && m.pub, 'publication');
    check(same(p.pub.data, { n: 1 }) && same(p.pub.tags, { kind: 'js' }) && p.pub.offset === 1, `publication ${JSON.stringify(p)}`);
  });

  await scenario('publish error rejects with CentException', async () => {
    const params = { channel: `nope-${runId}:x`, data: {} };
    await expectApiError(api.publish(params), 'publish', params, 102, 'publish into an unknown namespace');
  });

  await scenario('broadcast', async () => {
    const r = await call('broadcast', { channels: [chan, chan2], data: { n: 2 } });
    check(Array.isArray(r.responses) && r.responses.length === 2, `responses ${JSON.stringify(r)}`);
    check(r.responses.every((x) => x.result && !x.error), `responses ${JSON.stringify(r)}`);
    check(r.responses[0].result.offset === 2, `offset ${JSON.stringify(r.responses[0])}`);
    state.offset = 2;
    await stream.next((m) => m.channel === chan && m.pub && same(m.pub.data, { n: 2 }), 'broadcast publication');
    await stream.next((m) => m.channel === chan2 && m.pub && same(m.pub.data, { n: 2 }), 'broadcast publication (2nd channel)');
  });

  await scenario('getHistory', async () => {
    const r = await call('getHistory', { channel: chan, limit: 10 });
    check(r.epoch === state.epoch && r.offset === state.offset, `position ${JSON.stringify(r)}`);
    check(r.publications.length === state.offset, `publications ${JSON.stringify(r.publications)}`);
    check(same(r.publications[0].data, { n: 1 }) && r.publications[0].offset === 1, `first ${JSON.stringify(r.publications[0])}`);
    const pos = await call('getHistory', { channel: chan });
    check(same(pos.publications, []) && pos.offset === state.offset, `position only ${JSON.stringify(pos)}`);
  });

  await scenario('removeHistory', async () => {
    const r = await call('removeHistory', { channel: chan });
    check(same(r, {}), `result ${JSON.stringify(r)}`);
    const h = await call('getHistory', { channel: chan, limit: -1 });
    check(same(h.publications, []) && h.offset === state.offset && h.epoch === state.epoch, `after remove ${JSON.stringify(h)}`);
  });

  await scenario('getChannels', async () => {
    const r = await call('getChannels', { pattern: `cent-js-${runId}*` });
    check(r.channels?.[chan]?.num_clients === 1, `channels ${JSON.stringify(r)}`);
    const none = await call('getChannels', { pattern: `none-${runId}-*` });
    check(same(none.channels, {}), `empty channels ${JSON.stringify(none)}`);
  });

  await scenario('refresh', async () => {
    const at = Math.floor(Date.now() / 1000) + 3600;
    const r = await call('refresh', { user: USER, expire_at: at });
    check(same(r, {}), `result ${JSON.stringify(r)}`);
    const p = await stream.next((m) => m.refresh, 'refresh push');
    check(p.refresh.expires === true && p.refresh.ttl > 3500 && p.refresh.ttl <= 3600, `refresh push ${JSON.stringify(p)}`);
  });

  await scenario('unsubscribe', async () => {
    const r = await call('unsubscribe', { user: USER, channel: chan });
    check(same(r, {}), `result ${JSON.stringify(r)}`);
    const p = await stream.next((m) => m.channel === chan && m.unsubscribe, 'unsubscribe push');
    check(same(p.unsubscribe, { code: 2000, reason: 'server unsubscribe' }), `unsubscribe push ${JSON.stringify(p)}`);
    const st = await call('getPresenceStats', { channel: chan });
    check(st.num_clients === 0, `still present ${JSON.stringify(st)}`);
  });

  await scenario('disconnect', async () => {
    const r = await call('disconnect', { user: USER, session, disconnect: { code: 4502, reason: 'bye from cent.js' } });
    check(same(r, {}), `result ${JSON.stringify(r)}`);
    const p = await stream.next((m) => m.disconnect, 'disconnect push');
    check(same(p.disconnect, { code: 4502, reason: 'bye from cent.js' }), `disconnect push ${JSON.stringify(p)}`);
    await stream.waitEnd();
  });

  await scenario('disconnect default code', async () => {
    const s = await UniStream.open(signHs256({ sub: USER, iat: now, exp: now + 3600 }, SECRET), 'cent-js-2');
    try {
      await s.next((m) => m.connect, 'connect push');
      await call('disconnect', { user: USER });
      const p = await s.next((m) => m.disconnect, 'disconnect push');
      check(same(p.disconnect, { code: 3503, reason: 'force disconnect' }), `disconnect push ${JSON.stringify(p)}`);
      await s.waitEnd();
    } finally {
      s.close();
    }
  });

  stream.close();
  if (failures.length) {
    console.log(`${failures.length} scenario(s) failed: ${failures.join(', ')}`);
    return 1;
  }
  console.log('all scenarios passed (cent.js)');
  return 0;
}

main()
  .then((code) => {
    clearTimeout(deadline);
    process.exit(code);
  })
  .catch((e) => {
    console.log(`FAIL setup: ${e?.stack ?? e}`);
    process.exit(2);
  });
