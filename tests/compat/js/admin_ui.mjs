// The admin UI in headless Chromium, driven by npm `playwright-core`, against a live
// Rotor with real WebSocket connections opened by the Rust test
// (`tests/it/admin_browser.rs`). Elements are found as a person finds them: by role
// and accessible name (`getByRole`, `getByLabel`), never by CSS class.
//
// Environment: ROTOR_URL (http://127.0.0.1:<port>), ROTOR_ADMIN_PASSWORD, CHROMIUM
// (the browser binary), ROTOR_NODE (the server's node name), ROTOR_CONNS (JSON: client
// ids of alice1, alice2, bob, carol, dave), ROTOR_ADMIN_SCREENSHOT (optional: write a
// PNG of the connections explorer there).
//
// What only the sockets can tell (a connection closed, a push received) is checked by
// the Rust side: at each such point the script prints `STEP {"step":…}` on stdout and
// waits for one line on stdin (`{"ok":true}`, or `{"ok":false,"error":…}`). It prints
// `DONE` at the end; any failure exits non-zero with the reason on stderr.

import { createRequire } from 'node:module';
import * as readline from 'node:readline';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const WAIT_MS = 15_000;
const SCRIPT_DEADLINE_MS = 180_000;
const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const BASE = env('ROTOR_URL');
const PASSWORD = env('ROTOR_ADMIN_PASSWORD');
const NODE = env('ROTOR_NODE');
const C = JSON.parse(env('ROTOR_CONNS'));
const ALL = [C.alice1, C.alice2, C.bob, C.carol, C.dave];

setTimeout(() => {
  console.error('FAIL: the whole run passed its deadline');
  process.exit(3);
}, SCRIPT_DEADLINE_MS).unref();

// ---- the conversation with the Rust test ----

const stdinLines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function check(step, data) {
  process.stdout.write('STEP ' + JSON.stringify({ step, ...(data || {}) }) + '\n');
  const { value, done } = await stdinLines.next();
  if (done) throw new Error(`the test closed stdin at step ${step}`);
  const reply = JSON.parse(value);
  if (!reply.ok) throw new Error(`step ${step}: ${reply.error}`);
  return reply;
}

// ---- small helpers ----

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Waits until the text of `locator` is `want`.
async function textIs(what, locator, want) {
  let last;
  await until(`${what} (text ${JSON.stringify(want)})`, async () => {
    last = await locator.textContent();
    return last === want;
  }).catch((e) => {
    throw new Error(`${e.message}; it says ${JSON.stringify(last)}`);
  });
}

async function until(what, fn) {
  const end = Date.now() + WAIT_MS;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e.message;
    }
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

function assert(ok, message) {
  if (!ok) throw new Error('assertion failed: ' + message);
}

// ---- the scenario ----

function textbox(name) {
  return page.getByRole('textbox', { name, exact: true });
}

function button(name) {
  return page.getByRole('button', { name, exact: true });
}

const results = () => page.getByRole('table', { name: 'Connections', exact: true });
const rowOf = (id) => results().getByRole('row', { name: 'Connection ' + id, exact: true });
const total = () => page.getByRole('status', { name: 'Total matched' });

async function rowNames() {
  // Read in one go: the rows may be replaced by a new search between two reads.
  const rows = results().getByRole('row', { name: /^Connection / });
  return (await rows.evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')))).map((n) => n.replace('Connection ', ''));
}

// Waits until the result table lists exactly `ids` (any order) and the total is `n`.
async function expectRows(what, ids, n) {
  const want = [...ids].sort().join(',');
  await until(`${what}: rows ${want}`, async () => (await rowNames()).sort().join(',') === want);
  if (n !== undefined) await textIs(`${what}: total`, total(), String(n));
}

async function search({ user = '', filter = '', expr = '' }) {
  if (!(await textbox('Label filter').isVisible())) await button('JSON').click();
  await textbox('User').fill(user);
  await textbox('Label filter').fill(filter);
  await textbox('Expression').fill(expr);
  await button('Search').click();
}

async function run() {
  // Login: a wrong password shows an alert; the right one opens the Status page.
  await page.goto(BASE + '/');
  await page.getByLabel('Password').fill('not the password');
  await button('Log in').click();
  await page.getByRole('alert').filter({ hasText: 'Wrong password' }).waitFor();
  await page.getByLabel('Password').fill(PASSWORD);
  await button('Log in').click();

  // Status: this node with its 5 clients, and the chart.
  await page.getByRole('link', { name: 'Status' }).waitFor();
  const nodes = page.getByRole('table', { name: 'Nodes' });
  const nodeRow = nodes.getByRole('row').filter({ has: page.getByRole('cell', { name: NODE, exact: true }) });
  await until('the node in the Nodes table with 5 clients', async () =>
    (await nodeRow.getByRole('cell', { name: '5', exact: true }).count()) >= 1);
  await page.getByRole('img', { name: 'Clients over time' }).waitFor();

  // Search by user.
  await page.getByRole('link', { name: 'Connections' }).click();
  await search({ user: 'alice' });
  await expectRows('by user', [C.alice1, C.alice2], 2);
  const aliceRow = rowOf(C.alice1);
  await aliceRow.getByRole('cell', { name: NODE, exact: true }).waitFor();
  await aliceRow.getByRole('cell', { name: 'plan=free region=eu' }).waitFor();

  // Search by label filter (JSON).
  await search({ filter: '{"key":"region","cmp":"eq","val":"us"}' });
  await expectRows('by label filter', [C.bob, C.carol], 2);

  // The same filter language in the builder: plan == pro AND region == eu, then OR.
  await textbox('Label filter').fill('');
  await button('Builder').click();
  await button('Add condition').click();
  await page.getByRole('textbox', { name: 'Key' }).fill('plan');
  await page.getByRole('combobox', { name: 'Comparison' }).selectOption('eq');
  await page.getByRole('textbox', { name: 'Value' }).fill('pro');
  await button('Add condition').click();
  await page.getByRole('textbox', { name: 'Key' }).nth(1).fill('region');
  await page.getByRole('textbox', { name: 'Value' }).nth(1).fill('eu');
  await button('Search').click();
  await expectRows('builder: and', [C.dave], 1);
  await page.getByRole('combobox', { name: 'Group operator' }).selectOption('or');
  await button('Search').click();
  await expectRows('builder: or', [C.alice1, C.alice2, C.bob, C.dave], 4);
  if (process.env.ROTOR_ADMIN_SCREENSHOT) {
    await page.screenshot({ path: process.env.ROTOR_ADMIN_SCREENSHOT, fullPage: true });
  }
  await button('JSON').click();
  const json = JSON.parse(await textbox('Label filter').inputValue());
  assert(json.op === 'or' && json.nodes.length === 2 && json.nodes[0].key === 'plan', 'builder wrote ' + JSON.stringify(json));

  // Search by CEL expression.
  await search({ expr: 'labels.region == "us" && user != "bob"' });
  await expectRows('by expression', [C.carol], 1);

  // A bad filter: 107 with the offending path, in an alert next to the field.
  await search({ filter: '{"op":"and","nodes":[{"key":"region","cmp":"bogus","val":"x"}]}' });
  const filterAlert = page.getByRole('group', { name: 'Label filter', exact: true }).getByRole('alert');
  await until('the label filter alert', async () => {
    const t = await filterAlert.textContent();
    return t.includes('107') && t.includes('label_filter.nodes[0]');
  });
  await search({ expr: 'labels.region ==' });
  const exprAlert = page.getByRole('group', { name: 'Expression', exact: true }).getByRole('alert');
  await until('the expression alert', async () => (await exprAlert.textContent()).includes('107: expression'));
  // Not JSON at all: said before anything is sent.
  await search({ filter: '{"key": ' });
  await until('the not-JSON alert', async () => (await filterAlert.textContent()).includes('not JSON'));

  // Paging with next_cursor: a query in the URL (page size 2) that survives a reload.
  const query = new URLSearchParams({ expr: 'user != ""', limit: '2' });
  await page.goto(BASE + '/#/connections?' + query);
  await page.reload();
  await until('the expression from the URL', async () => (await textbox('Expression').inputValue()) === 'user != ""');
  const seen = [];
  for (const size of [2, 2, 1]) {
    if (seen.length) await button('Next page').click();
    const rows = await until(`a page of ${size}`, async () => {
      const r = await rowNames();
      return r.length === size && !r.some((id) => seen.includes(id)) ? r : null;
    });
    seen.push(...rows);
    await textIs('the total on every page', total(), '5');
  }
  assert(seen.slice().sort().join() === ALL.slice().sort().join(), 'paging visited ' + seen);
  assert(await button('Next page').isDisabled(), 'the last page has no next page');
  await button('Previous page').click();
  await expectRows('back one page', seen.slice(2, 4), 5);

  // A row's details: meta, token info, channels.
  await search({ user: 'dave' });
  await expectRows('dave', [C.dave], 1);
  await rowOf(C.dave).getByRole('cell').first().click();
  const details = page.getByRole('dialog', { name: 'Connection ' + C.dave });
  await details.waitFor();
  const text = await details.innerText();
  for (const want of ['"device": "phone"', 'uid tok-dave', 'news', 'region=eu', '"node": "' + NODE + '"']) {
    assert(text.includes(want), `details show ${want}: ${text}`);
  }
  assert(new RegExp('Node\\s+' + NODE.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).test(text), 'details show the node: ' + text);
  await details.getByRole('button', { name: 'Close' }).click();
  await details.waitFor({ state: 'hidden' });

  // A row's Refresh calls the refresh API for that client.
  await rowOf(C.dave).getByRole('button', { name: 'Refresh' }).click();
  await page.getByText('Refreshed ' + C.dave).waitFor();
  await check('refreshed', { client: C.dave });

  // Actions: publish reaching real subscribers, presence showing them, and more.
  await page.getByRole('link', { name: 'Actions' }).click();
  const method = page.getByRole('combobox', { name: 'Method' });
  const reply = page.getByRole('status', { name: 'Reply' });
  const form = (name) => page.getByRole('form', { name, exact: true });
  const send = async (name) => {
    await reply.evaluate((e) => { e.textContent = ''; });
    await form(name).getByRole('button', { name: 'Send' }).click();
  };
  const replyHas = (what, needle) => until(what, async () => (await reply.textContent()).includes(needle));

  await method.selectOption('publish');
  await form('publish').getByLabel('Channel', { exact: true }).fill('news');
  await form('publish').getByLabel('Data', { exact: true }).fill('{"text": "not json');
  await send('publish');
  await page.getByRole('alert').filter({ hasText: 'Data is not JSON' }).waitFor();
  await form('publish').getByLabel('Data', { exact: true }).fill('{"text": "from the admin UI"}');
  await send('publish');
  await replyHas('the publish reply', '"offset"');
  await check('published', { channel: 'news', data: { text: 'from the admin UI' } });

  await method.selectOption('presence');
  await form('presence').getByLabel('Channel', { exact: true }).fill('news');
  await send('presence');
  await replyHas('presence lists alice1', C.alice1);
  await replyHas('presence lists dave', C.dave);

  await method.selectOption('presence_stats');
  await send('presence_stats');
  await replyHas('presence stats', '"num_clients": 2');

  await method.selectOption('history');
  await send('history');
  await replyHas('history holds the publication', 'from the admin UI');

  await method.selectOption('subscribe');
  await form('subscribe').getByLabel('User', { exact: true }).fill('carol');
  await form('subscribe').getByLabel('Channel', { exact: true }).fill('room');
  await send('subscribe');
  await replyHas('the subscribe reply', '{}');
  await check('subscribed', { client: C.carol, channel: 'room' });

  await method.selectOption('channels');
  await send('channels');
  await replyHas('channels lists room', '"room"');

  await method.selectOption('info');
  await send('info');
  await replyHas('info', '"num_clients": 5');

  // A row's Disconnect closes that connection and no other.
  await page.getByRole('link', { name: 'Connections' }).click();
  await search({ filter: '{"key":"region","cmp":"eq","val":"us"}' });
  await expectRows('region us', [C.bob, C.carol], 2);
  await rowOf(C.bob).getByRole('button', { name: 'Disconnect' }).click();
  await page.getByText('Disconnected ' + C.bob).waitFor();
  await check('row-disconnected', { client: C.bob });
  await button('Search').click();
  await expectRows('bob gone', [C.carol], 1);

  // Disconnect all matching: the confirmation shows the count; cancel, then confirm.
  await search({ filter: '{"key":"plan","cmp":"eq","val":"free"}' });
  await expectRows('plan free', [C.alice1, C.alice2, C.carol], 3);
  await button('Disconnect all matching').click();
  const confirm = page.getByRole('dialog', { name: 'Disconnect all matching?' });
  await confirm.getByText('This disconnects 3 connections').waitFor();
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await confirm.waitFor({ state: 'hidden' });
  await check('bulk-cancelled');
  await button('Disconnect all matching').click();
  await confirm.getByText('This disconnects 3 connections').waitFor();
  await confirm.getByRole('button', { name: 'Confirm' }).click();
  await page.getByText('Disconnected 3 connections').waitFor();
  // The test answers with two new connections of user erin (token uids tok-e1, tok-e2).
  const more = await check('bulk-confirmed', { closed: [C.alice1, C.alice2, C.carol] });
  Object.assign(C, more.conns);
  await button('Search').click();
  await expectRows('none left', [], 0);

  // Revoke token: exactly the connection holding that token closes (3510), for good.
  await search({ user: 'erin' });
  await expectRows('erin', [C.erin1, C.erin2], 2);
  await page.getByRole('group', { name: 'User erin', exact: true }).waitFor();
  await rowOf(C.erin1).getByRole('button', { name: 'Revoke token', exact: true }).click();
  const revoke = page.getByRole('dialog', { name: 'Revoke token tok-e1?' });
  await revoke.getByLabel('Lasts').selectOption({ label: '1 day' });
  await revoke.getByRole('button', { name: 'Confirm' }).click();
  await page.getByText('Revoked token tok-e1').waitFor();
  await check('token-revoked', { client: C.erin1, uid: 'tok-e1' });

  // Invalidate tokens from erin2's row: tokens issued before now stop working.
  await button('Search').click();
  await expectRows('erin2 left', [C.erin2], 1);
  await rowOf(C.erin2).getByRole('button', { name: 'Invalidate tokens', exact: true }).click();
  const invalidate = page.getByRole('dialog', { name: 'Invalidate tokens of erin?' });
  await invalidate.getByRole('button', { name: 'Confirm' }).click();
  await page.getByText('Invalidated the tokens of erin').waitFor();
  await check('tokens-invalidated', { client: C.erin2 });

  // Block from dave's row: Cancel changes nothing; Confirm closes him (3511) for good.
  await search({ user: 'dave' });
  await expectRows('dave', [C.dave], 1);
  const block = page.getByRole('dialog', { name: 'Block user dave?' });
  await rowOf(C.dave).getByRole('button', { name: 'Block', exact: true }).click();
  await block.getByRole('button', { name: 'Cancel' }).click();
  await block.waitFor({ state: 'hidden' });
  await check('block-cancelled', { client: C.dave });
  await rowOf(C.dave).getByRole('button', { name: 'Block', exact: true }).click();
  await block.getByRole('button', { name: 'Confirm' }).click();
  await page.getByText('Blocked dave.').waitFor();
  await check('blocked', { client: C.dave });

  // Unblock from the user bar: it is there for a user with no connection left.
  await button('Search').click();
  await expectRows('dave gone', [], 0);
  const userBar = page.getByRole('group', { name: 'User dave', exact: true });
  await userBar.getByRole('button', { name: 'Unblock', exact: true }).click();
  await page.getByText('Unblocked dave.').waitFor();
  await check('unblocked');
}

// ---- main ----

const browser = await chromium.launch({
  executablePath: env('CHROMIUM'),
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
});
const problems = [];
let page;

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  page = await context.newPage();
  // Any script error or console error (a CSP violation is one) fails the run.
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource.*(400|401)/.test(m.text())) problems.push('console error: ' + m.text());
  });
  // The explorer never asks for an unbounded page: every `connections` call it makes
  // carries a limit between 1 and 1000.
  let listings = 0;
  page.on('request', (r) => {
    if (!r.url().endsWith('/admin/api') || r.method() !== 'POST') return;
    const body = JSON.parse(r.postData() || '{}');
    if (body.method !== 'connections') return;
    listings += 1;
    const limit = body.params && body.params.limit;
    if (!(Number.isInteger(limit) && limit >= 1 && limit <= 1000)) problems.push('unbounded listing: ' + r.postData());
  });
  await run();
  assert(listings >= 10, 'the explorer listed connections ' + listings + ' times');
  assert(problems.length === 0, problems.join('; '));
  console.log('DONE');
} catch (e) {
  console.error('FAIL: ' + (e.stack || e.message));
  if (problems.length) console.error('browser problems: ' + problems.join('; '));
  process.exitCode = 1;
} finally {
  await browser.close();
  process.stdin.destroy();
}
