"""The real PyPI `centrifuge-python` SDK (0.7.x) against a live Rotor.

Scenarios: token connect; client-side subscribe and a publication sent through
POST /api/publish; server-side subscriptions from the token's `channels`; staying
connected across several ping intervals while publications flow (this SDK restarts its
ping watchdog only on a real `{}` ping, so a server that skips pings on a busy
connection fails here); token expiry with get_token (refresh while connected, and an
expired token at connect); a bad signature (3500, no reconnect); presence,
presence_stats, history and client publish; rpc with no handler (104); an unknown
namespace (102).

Environment: ROTOR_HTTP, ROTOR_WS, ROTOR_API_KEY, ROTOR_SECRET, ROTOR_PING_SECONDS.
Prints `ok <name>` or `FAIL <name>: reason` per scenario; exits 1 if any failed (2 on
a setup error).
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import traceback
import urllib.request
import uuid

try:
    from centrifuge import (
        Client,
        ClientEventHandler,
        ReplyError,
        SubscriptionEventHandler,
    )
except ImportError as e:  # pragma: no cover - setup failure
    print(f"FAIL setup: cannot import centrifuge ({e}); pip install -r tests/compat/py/requirements.txt")
    sys.exit(2)

HTTP = os.environ.get("ROTOR_HTTP", "http://127.0.0.1:8000").rstrip("/")
WS = os.environ.get("ROTOR_WS", HTTP.replace("http", "ws", 1) + "/connection/websocket")
API_KEY = os.environ.get("ROTOR_API_KEY", "")
SECRET = os.environ.get("ROTOR_SECRET", "")
PING_SECONDS = float(os.environ.get("ROTOR_PING_SECONDS", "1"))
WAIT = 5.0


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign_hs256(claims: dict, secret: str = SECRET) -> str:
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


def token(user: str, **extra) -> str:
    now = int(time.time())
    return sign_hs256({"sub": user, "iat": now, "exp": now + 3600, **extra})


def check(cond, msg: str) -> None:
    if not cond:
        raise AssertionError(msg)


def api_sync(method: str, params: dict) -> dict:
    req = urllib.request.Request(
        f"{HTTP}/api/{method}",
        data=json.dumps(params).encode(),
        headers={"Content-Type": "application/json", "X-API-Key": API_KEY},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=WAIT) as res:
        body = json.loads(res.read())
    check("error" not in body, f"/api/{method} failed: {body}")
    return body.get("result", {})


async def api(method: str, params: dict) -> dict:
    return await asyncio.get_running_loop().run_in_executor(None, api_sync, method, params)


class Events(ClientEventHandler):
    """Collects what the client reports, with futures for the first of each kind."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.connected = loop.create_future()
        self.disconnected = loop.create_future()
        self.reconnects = []
        self.server_subscribed = {}
        self.server_pubs = asyncio.Queue()

    async def on_connecting(self, ctx) -> None:
        if ctx.code != 0:  # 0 is the client's own connect() call
            self.reconnects.append((ctx.code, ctx.reason))

    async def on_connected(self, ctx) -> None:
        if not self.connected.done():
            self.connected.set_result(ctx)

    async def on_disconnected(self, ctx) -> None:
        if not self.disconnected.done():
            self.disconnected.set_result(ctx)

    async def on_subscribed(self, ctx) -> None:
        self.server_subscribed[ctx.channel] = ctx

    async def on_publication(self, ctx) -> None:
        await self.server_pubs.put(ctx)


class SubEvents(SubscriptionEventHandler):
    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.subscribed = loop.create_future()
        self.unsubscribed = loop.create_future()
        self.pubs = asyncio.Queue()

    async def on_subscribed(self, ctx) -> None:
        if not self.subscribed.done():
            self.subscribed.set_result(ctx)

    async def on_unsubscribed(self, ctx) -> None:
        if not self.unsubscribed.done():
            self.unsubscribed.set_result(ctx)

    async def on_publication(self, ctx) -> None:
        await self.pubs.put(ctx.pub)


CLIENTS = []


def new_client(events: Events, **kwargs) -> Client:
    kwargs.setdefault("max_server_ping_delay", 10.0)
    c = Client(WS, events=events, proxy=None, name="rotor-compat-py", timeout=WAIT, **kwargs)
    CLIENTS.append(c)
    return c


async def connected_client(user: str, **kwargs):
    events = Events()
    c = new_client(events, token=token(user, **kwargs.pop("claims", {})), **kwargs)
    await c.connect()
    ctx = await asyncio.wait_for(events.connected, WAIT)
    return c, events, ctx


async def subscribed(c: Client, channel: str):
    sub_events = SubEvents()
    sub = c.new_subscription(channel, events=sub_events)
    await sub.subscribe()
    await asyncio.wait_for(sub_events.subscribed, WAIT)
    return sub, sub_events


async def token_connect():
    c, _, ctx = await connected_client("py-1")
    check(isinstance(ctx.client, str) and ctx.client, f"no client id: {ctx}")
    await c.disconnect()


async def subscribe_and_api_publication():
    channel = f"sdk-py-{uuid.uuid4()}"
    c, _, _ = await connected_client("py-2")
    _, sub_events = await subscribed(c, channel)
    await api("publish", {"channel": channel, "data": {"text": "from the api"}})
    pub = await asyncio.wait_for(sub_events.pubs.get(), WAIT)
    check(pub.data == {"text": "from the api"}, f"publication data {pub.data}")
    check(pub.offset >= 1, f"offset {pub.offset}")
    await c.disconnect()


async def server_side_subscription_from_token():
    channel = f"sdk-py-server-{uuid.uuid4()}"
    c, events, _ = await connected_client("py-3", claims={"channels": [channel]})
    check(channel in events.server_subscribed, f"server-side subs {list(events.server_subscribed)}")
    await api("publish", {"channel": channel, "data": {"n": 7}})
    ctx = await asyncio.wait_for(events.server_pubs.get(), WAIT)
    check(ctx.channel == channel and ctx.pub.data == {"n": 7}, f"publication {ctx}")
    await c.disconnect()


async def stays_connected_across_pings_while_publications_flow():
    channel = f"sdk-py-busy-{uuid.uuid4()}"
    # The watchdog fires after ping interval + 1 s without a real ping.
    c, events, _ = await connected_client("py-4", max_server_ping_delay=1.0)
    _, sub_events = await subscribed(c, channel)
    total = int(PING_SECONDS * 4 / 0.15) + 1
    for n in range(total):
        await api("publish", {"channel": channel, "data": {"n": n}})
        await asyncio.sleep(0.15)
    await asyncio.sleep(0.3)
    check(not events.reconnects, f"client reconnected: {events.reconnects}")
    got = []
    while not sub_events.pubs.empty():
        got.append(sub_events.pubs.get_nowait().data["n"])
    check(got == list(range(total)), f"received {len(got)} of {total} in order")
    await c.disconnect()


async def refresh_with_get_token_while_connected():
    calls = []

    async def get_token() -> str:
        calls.append(1)
        return token("py-5")

    events = Events()
    c = new_client(events, token=token("py-5", exp=int(time.time()) + 2), get_token=get_token)
    await c.connect()
    await asyncio.wait_for(events.connected, WAIT)
    await asyncio.sleep(4)
    check(calls, "get_token was never called before expiry")
    check(not events.reconnects, f"client reconnected: {events.reconnects}")
    check(not events.disconnected.done(), "client disconnected")
    await c.disconnect()


async def expired_token_at_connect_calls_get_token():
    calls = []

    async def get_token() -> str:
        calls.append(1)
        return token("py-6")

    events = Events()
    c = new_client(events, token=token("py-6", exp=int(time.time()) - 30), get_token=get_token)
    await c.connect()
    await asyncio.wait_for(events.connected, WAIT)
    check(len(calls) == 1, f"get_token called {len(calls)} times")
    await c.disconnect()


async def bad_signature_is_final_3500():
    events = Events()
    bad = sign_hs256({"sub": "py-7", "exp": int(time.time()) + 60}, "not-the-secret")
    c = new_client(events, token=bad)
    await c.connect()
    ctx = await asyncio.wait_for(events.disconnected, WAIT)
    check(ctx.code == 3500, f"disconnect {ctx.code} {ctx.reason}")
    check(not events.reconnects, f"client tried to reconnect: {events.reconnects}")


async def presence_history_and_client_publish():
    channel = f"sdk-py-state-{uuid.uuid4()}"
    c, _, ctx = await connected_client("py-8")
    sub, sub_events = await subscribed(c, channel)
    presence = await sub.presence()
    check(ctx.client in presence.clients, f"own client missing from presence {presence}")
    check(presence.clients[ctx.client].user == "py-8", f"presence {presence.clients[ctx.client]}")
    stats = await sub.presence_stats()
    check(stats.num_clients == 1 and stats.num_users == 1, f"presence stats {stats}")
    await sub.publish({"from": "client"})
    pub = await asyncio.wait_for(sub_events.pubs.get(), WAIT)
    check(pub.data == {"from": "client"} and pub.info and pub.info.user == "py-8", f"publication {pub}")
    await api("publish", {"channel": channel, "data": {"from": "api"}})
    history = await sub.history(limit=10)
    check([p.data["from"] for p in history.publications] == ["client", "api"], f"history {history}")
    check(history.offset == 2 and history.epoch, f"stream position {history.offset} {history.epoch}")
    await c.disconnect()


async def rpc_without_handler_and_unknown_namespace():
    c, _, _ = await connected_client("py-9")
    try:
        await c.rpc("anything", {"x": 1})
        raise AssertionError("rpc succeeded without a handler")
    except ReplyError as e:
        check(e.code == 104, f"rpc error {e.code} {e.message}")
    sub_events = SubEvents()
    sub = c.new_subscription("no_such_namespace:room", events=sub_events)
    await sub.subscribe()
    ctx = await asyncio.wait_for(sub_events.unsubscribed, WAIT)
    check(ctx.code == 102, f"unsubscribed {ctx.code} {ctx.reason}")
    await c.disconnect()


SCENARIOS = [
    token_connect,
    subscribe_and_api_publication,
    server_side_subscription_from_token,
    stays_connected_across_pings_while_publications_flow,
    refresh_with_get_token_while_connected,
    expired_token_at_connect_calls_get_token,
    bad_signature_is_final_3500,
    presence_history_and_client_publish,
    rpc_without_handler_and_unknown_namespace,
]


async def main() -> int:
    failed = 0
    for scenario in SCENARIOS:
        try:
            await asyncio.wait_for(scenario(), 30)
            print(f"ok {scenario.__name__}", flush=True)
        except BaseException as e:  # noqa: BLE001 - report every failure and go on
            if isinstance(e, KeyboardInterrupt):
                raise
            failed += 1
            detail = "".join(traceback.format_exception_only(type(e), e)).strip()
            print(f"FAIL {scenario.__name__}: {detail}", flush=True)
    for c in CLIENTS:
        try:
            await asyncio.wait_for(c.disconnect(), 2)
        except BaseException:  # noqa: BLE001 - teardown only
            pass
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
