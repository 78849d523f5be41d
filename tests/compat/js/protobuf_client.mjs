// centrifuge-js's protobuf build (`centrifuge/build/protobuf`) against a live Rotor,
// next to the JSON build on the same channel.
//
// Scenarios: over WebSocket (the `centrifuge-protobuf` subprotocol) connect,
// subscribe, a publication from POST /api/publish (JSON in, bytes out), a protobuf
// client's publish reaching a JSON subscriber and a JSON client's publish reaching the
// protobuf one, presence, presence_stats, history, rpc with no handler (104), and the
// connections API reporting `protocol: "protobuf"`; then the same client over the
// http_stream emulation (protobuf bodies and protobuf POST /emulation).
//
// Environment: ROTOR_HTTP, ROTOR_WS, ROTOR_API_KEY, ROTOR_SECRET.
// Prints `ok <name>` or `FAIL <name>: reason` per scenario; exits 1 if any failed.

import { createHmac, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let PbCentrifuge, JsonCentrifuge, WebSocket;
try {
  ({ Centrifuge: PbCentrifuge } = require('centrifuge/build/protobuf'));
  ({ Centrifuge: JsonCentrifuge } = require('centrifuge'));
  WebSocket = require('ws');
} catch (e) {
  console.log(`FAIL setup: cannot load centrifuge/build/protobuf (${e.message})`);
  process.exit(2);
}

const WAIT_MS = 5_000;
const HTTP = (process.env.ROTOR_HTTP ?? 'http://127.0.0.1:8000').replace(/\/+$/, '');
const WS = process.env.ROTOR_WS ?? `${HTTP.replace(/^http/, 'ws')}/connection/websocket`;
const API_KEY = process.env.ROTOR_API_KEY ?? '';
const SECRET = process.env.ROTOR_SECRET ?? '';

const deadline = setTimeout(() => {
  console.log('FAIL deadline: the run took longer than 90s');
  process.exit(3);
}, 90_000);

const now = () => Math.floor(Date.now() / 1000);
const enc = (v) => new TextEncoder().encode(JSON.stringify(v));
const dec = (b) => JSON.parse(new TextDecoder().decode(b));

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
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

async function api(method, params) {
  const r = await fetch(`${HTTP}/api/${method}`, {
    method: 'POST',
    headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify(params),
  });
  check(r.status === 200, `api ${method}: HTTP ${r.status}`);
  const body = await r.json();
  check(!body.error, `api ${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

const next = (emitter, name, what) => within(new Promise((r) => emitter.once(name, r)), what);

async function subscribed(c, channel) {
  const sub = c.newSubscription(channel);
  const done = next(sub, 'subscribed', `subscribed to ${channel}`);
  sub.subscribe();
  await done;
  return sub;
}

async function mixedOverWebSocket() {
  const user = `pb-${randomUUID()}`;
  const pb = new PbCentrifuge(WS, { websocket: WebSocket, token: token(user), name: 'rotor-pb' });
  const js = new JsonCentrifuge(WS, { websocket: WebSocket, token: token('json-side') });
  for (const c of [pb, js]) c.on('error', () => {});
  try {
    const connected = next(pb, 'connected', 'protobuf connected');
    pb.connect();
    js.connect();
    check((await connected).transport === 'websocket', 'transport');
    const channel = `pb-mixed-${randomUUID()}`;
    const pbSub = await subscribed(pb, channel);
    const jsSub = await subscribed(js, channel);

    let got = next(pbSub, 'publication', 'API publication on the protobuf client');
    await api('publish', { channel, data: { from: 'api' } });
    const fromApi = await got;
    check(fromApi.data instanceof Uint8Array, `data is ${typeof fromApi.data}`);
    check(dec(fromApi.data).from === 'api', 'API publication data');

    got = within(
      new Promise((r) => jsSub.on('publication', (ctx) => ctx.data.from === 'protobuf' && r(ctx))),
      'protobuf publish on the JSON client',
    );
    await within(pbSub.publish(enc({ from: 'protobuf' })), 'protobuf publish');
    const atJson = await got;
    check(atJson.data.from === 'protobuf', `JSON side got ${JSON.stringify(atJson.data)}`);
    check(atJson.info && atJson.info.user === user, 'publisher info');

    // The protobuf client's own publication arrives too: wait for the JSON one.
    const fromJson = within(
      new Promise((r) => pbSub.on('publication', (ctx) => dec(ctx.data).from === 'json' && r(ctx))),
      'JSON publish on the protobuf client',
    );
    await within(jsSub.publish({ from: 'json' }), 'JSON publish');
    check((await fromJson).info.user === 'json-side', 'JSON publisher info');

    const presence = await within(pbSub.presence(), 'presence');
    check(Object.keys(presence.clients).length === 2, `presence ${JSON.stringify(presence)}`);
    const stats = await within(pbSub.presenceStats(), 'presence stats');
    check(stats.numClients === 2 && stats.numUsers === 2, `stats ${JSON.stringify(stats)}`);
    const history = await within(pbSub.history({ limit: 10 }), 'history');
    check(history.publications.length === 3, `history has ${history.publications.length}`);
    check(dec(history.publications[1].data).from === 'protobuf', 'history data');
    let rpcError = null;
    await within(pb.rpc('anything', enc({})).catch((e) => (rpcError = e)), 'rpc');
    check(rpcError && rpcError.code === 104, `rpc error ${JSON.stringify(rpcError)}`);

    const conns = await api('connections', { user });
    const infos = Object.values(conns.connections);
    check(infos.length === 1 && infos[0].protocol === 'protobuf', `connections ${JSON.stringify(conns)}`);
  } finally {
    pb.disconnect();
    js.disconnect();
  }
}

async function overHttpStream() {
  const c = new PbCentrifuge([{ transport: 'http_stream', endpoint: `${HTTP}/connection/http_stream` }], {
    token: token('pb-emu'),
    emulationEndpoint: `${HTTP}/emulation`,
  });
  c.on('error', () => {});
  try {
    const connected = next(c, 'connected', 'connected over http_stream');
    c.connect();
    check((await connected).transport === 'http_stream', 'transport');
    const channel = `pb-emu-${randomUUID()}`;
    const sub = await subscribed(c, channel);
    const got = next(sub, 'publication', 'publication over http_stream');
    await api('publish', { channel, data: { over: 'http_stream' } });
    check(dec((await got).data).over === 'http_stream', 'publication data');
    await within(sub.publish(enc({ from: 'emulation' })), 'publish through /emulation');
    const history = await within(sub.history({ limit: 10 }), 'history');
    check(history.publications.length === 2, `history has ${history.publications.length}`);
  } finally {
    c.disconnect();
  }
}

let failed = false;
for (const [name, run] of [
  ['protobuf_and_json_over_websocket', mixedOverWebSocket],
  ['protobuf_over_http_stream', overHttpStream],
]) {
  try {
    await run();
    console.log(`ok ${name}`);
  } catch (e) {
    failed = true;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}
clearTimeout(deadline);
process.exit(failed ? 1 : 0);
