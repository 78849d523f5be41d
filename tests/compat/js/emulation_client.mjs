// The real npm `centrifuge` SDK (5.x) over Rotor's bidirectional emulation: the
// `http_stream` transport (fetch + ReadableStream) and the `sse` transport (the
// `eventsource` package), each: connect, subscribe, a publication sent through
// POST /api/publish, a client publish, history and presence — every command after
// the connect going through POST /emulation. Then the fallback: a transport list
// starting with the WebSocket endpoint (disabled on this server) ends up on http_stream.
//
// Environment: ROTOR_HTTP, ROTOR_API_KEY, ROTOR_SECRET.
// Prints `ok <name>` or `FAIL <name>: reason`; exits 1 if any failed (2 on a setup
// error, 3 at the whole-run deadline).

import { createHmac, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let Centrifuge, WebSocket, EventSource;
try {
  ({ Centrifuge } = require('centrifuge'));
  WebSocket = require('ws');
  ({ EventSource } = require('eventsource'));
} catch (e) {
  console.log(`FAIL setup: cannot load centrifuge/ws/eventsource (${e.message})`);
  process.exit(2);
}

const HTTP = (process.env.ROTOR_HTTP ?? 'http://127.0.0.1:8000').replace(/\/+$/, '');
const API_KEY = process.env.ROTOR_API_KEY ?? '';
const SECRET = process.env.ROTOR_SECRET ?? '';
const WAIT_MS = 5_000;

const deadline = setTimeout(() => {
  console.log('FAIL deadline: the run took longer than 90s');
  process.exit(3);
}, 90_000);

const now = () => Math.floor(Date.now() / 1000);

function token(user) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64({ sub: user, iat: now(), exp: now() + 3600 });
  const sig = createHmac('sha256', SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

function within(promise, what) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS)),
  ]);
}

async function apiPublish(channel, data) {
  const r = await fetch(`${HTTP}/api/publish`, {
    method: 'POST',
    headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify({ channel, data }),
  });
  check(r.status === 200, `api publish: HTTP ${r.status}`);
}

function client(transports) {
  return new Centrifuge(transports, {
    token: token('emu-user'),
    websocket: WebSocket,
    eventsource: EventSource,
    emulationEndpoint: `${HTTP}/emulation`,
  });
}

async function scenario(transportName) {
  const c = client([{ transport: transportName, endpoint: `${HTTP}/connection/${transportName}` }]);
  try {
    const connected = within(new Promise((r) => c.once('connected', r)), 'connected');
    c.connect();
    const ctx = await connected;
    check(ctx.transport === transportName, `connected over ${ctx.transport}`);
    const channel = `emu-${randomUUID()}`;
    const sub = c.newSubscription(channel);
    const subscribed = within(new Promise((r) => sub.once('subscribed', r)), 'subscribed');
    sub.subscribe();
    await subscribed;
    const got = within(new Promise((r) => sub.once('publication', r)), 'publication from the API');
    await apiPublish(channel, { from: 'api' });
    check((await got).data.from === 'api', 'publication data');
    await within(sub.publish({ from: 'client' }), 'client publish');
    const history = await within(sub.history({ limit: 10 }), 'history');
    check(history.publications.length === 2, `history has ${history.publications.length} publications`);
    const presence = await within(sub.presence(), 'presence');
    check(Object.keys(presence.clients).length === 1, 'one client in presence');
  } finally {
    c.disconnect();
  }
}

async function fallback() {
  const c = client([
    { transport: 'websocket', endpoint: `${HTTP.replace(/^http/, 'ws')}/connection/websocket` },
    { transport: 'http_stream', endpoint: `${HTTP}/connection/http_stream` },
  ]);
  try {
    const connected = within(new Promise((r) => c.once('connected', r)), 'connected after fallback');
    c.connect();
    const ctx = await connected;
    check(ctx.transport === 'http_stream', `fell back to ${ctx.transport}`);
  } finally {
    c.disconnect();
  }
}

let failed = false;
for (const [name, run] of [
  ['http_stream', () => scenario('http_stream')],
  ['sse', () => scenario('sse')],
  ['websocket_fallback_to_http_stream', fallback],
]) {
  try {
    await run();
    console.log(`ok ${name}`);
  } catch (e) {
    failed = true;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}
clearTimeout(deadline);
process.exit(failed ? 1 : 0);
