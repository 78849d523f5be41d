#!/usr/bin/env python3
"""The real PyPI `cent` 5.x sync Client against a live Rotor.

Every server API method `cent` offers that Rotor serves, and its effect on a live
client: a unidirectional HTTP stream (``POST /connection/uni_http_stream``) for user
42, read line by line with ``http.client``, with an HS256 token signed here.

Environment: ROTOR_HTTP (e.g. http://127.0.0.1:8000), ROTOR_API_KEY, ROTOR_SECRET (the
HMAC key of connection tokens). Prints ``ok <name>`` or ``FAIL <name>: reason`` per
scenario and exits 1 if any failed (2 on a setup error). Every wait has a deadline and
the whole run is cut off after SCRIPT_DEADLINE seconds.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import queue
import sys
import threading
import time
import traceback
import urllib.parse
import uuid

try:
    import cent
    from cent import (
        BatchRequest,
        BroadcastRequest,
        ChannelsRequest,
        Client,
        Disconnect,
        DisconnectRequest,
        HistoryRemoveRequest,
        HistoryRequest,
        InfoRequest,
        PresenceRequest,
        PresenceStatsRequest,
        PublishRequest,
        RefreshRequest,
        SubscribeRequest,
        UnsubscribeRequest,
    )
    from cent.dto import ConnectionsRequest
    from cent.exceptions import CentApiResponseError, CentUnauthorizedError
except ImportError as e:  # pragma: no cover - reported to the Rust test
    print(f"FAIL setup: cannot import cent ({e}); install with: pip install -r tests/compat/py/requirements.txt")
    sys.exit(2)

SCRIPT_DEADLINE = 90  # seconds for the whole run
WAIT = 5.0  # seconds for any single expected push
USER = "42"

HTTP = os.environ.get("ROTOR_HTTP", "http://127.0.0.1:8000").rstrip("/")
API_KEY = os.environ.get("ROTOR_API_KEY", "")
SECRET = os.environ.get("ROTOR_SECRET", "")

failures = []


def watchdog():
    time.sleep(SCRIPT_DEADLINE)
    print(f"FAIL deadline: the run took longer than {SCRIPT_DEADLINE}s", flush=True)
    os._exit(3)


threading.Thread(target=watchdog, daemon=True).start()


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign_hs256(claims, secret):
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    sig = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(sig)}"


class UniStream:
    """A uni_http_stream connection; a thread reads pushes (one JSON per line) into a queue."""

    def __init__(self, token, name):
        url = urllib.parse.urlsplit(HTTP)
        self.conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=60)
        body = json.dumps({"token": token, "name": name, "version": "5.x"})
        self.conn.request("POST", "/connection/uni_http_stream", body=body, headers={"Content-Type": "application/json"})
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise RuntimeError(f"uni_http_stream answered {self.resp.status}: {self.resp.read()[:200]!r}")
        self.lines = queue.Queue()
        self.ended = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                line = line.strip()
                if line:
                    self.lines.put(json.loads(line))
        except Exception as e:  # the stream broke; the waiting side reports it
            self.lines.put({"__error__": repr(e)})
        finally:
            self.ended.set()
            self.lines.put(None)

    def next_push(self, pred, what, timeout=WAIT):
        """The next push (pings `{}` skipped) satisfying `pred`; pushes before it are dropped."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} within {timeout}s; saw {seen}")
            try:
                msg = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if msg is None:
                raise AssertionError(f"stream ended before {what}; saw {seen}")
            if "__error__" in msg:
                raise AssertionError(f"stream broke before {what}: {msg['__error__']}")
            if msg == {}:
                continue
            if pred(msg):
                return msg
            seen.append(msg)

    def wait_end(self, timeout=WAIT):
        if not self.ended.wait(timeout):
            raise AssertionError(f"stream still open {timeout}s after the disconnect push")

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass


def scenario(name):
    def wrap(fn):
        def run(*args):
            try:
                fn(*args)
                print(f"ok {name}", flush=True)
                return True
            except Exception as e:
                detail = str(e) or type(e).__name__
                if not isinstance(e, AssertionError):
                    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == __file__]
                    where = f" (at line {frames[-1].lineno}: {frames[-1].line})" if frames else ""
                    detail = f"{type(e).__name__}: {detail}{where}"
                print(f"FAIL {name}: {detail}", flush=True)
                failures.append(name)
                return False

        return run

    return wrap


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def main():
    if not API_KEY or not SECRET:
        print("FAIL setup: ROTOR_API_KEY and ROTOR_SECRET must be set")
        return 2
    client = Client(f"{HTTP}/api", API_KEY, timeout=10)
    run_id = uuid.uuid4().hex[:8]
    chan = f"cent-py-{run_id}"
    chan2 = f"cent-py-{run_id}-b"
    now = int(time.time())
    meta = {"device": "phone", "run": run_id}
    token = sign_hs256({"sub": USER, "iat": now, "exp": now + 3600, "jti": f"jti-{run_id}", "meta": meta, "info": {"name": "Alice"}}, SECRET)

    try:
        stream = UniStream(token, "cent-py")
        first = stream.next_push(lambda m: True, "connect push")
        check("connect" in first and first["connect"].get("client"), f"first line is not a connect push: {first}")
        client_id = first["connect"]["client"]
        session = first["connect"].get("session")
    except Exception as e:
        print(f"FAIL setup: cannot open the uni_http_stream connection for user {USER}: {e}")
        return 2
    print(f"ok uni_http_stream connect (client {client_id})", flush=True)
    state = {"offset": 0, "epoch": ""}

    @scenario("info")
    def info():
        r = client.info(InfoRequest())
        check(len(r.nodes) >= 1, f"no nodes: {r}")
        n = r.nodes[0]
        check(n.uid and n.name, f"node without uid/name: {n}")
        check(n.num_clients >= 1 and n.num_users >= 1, f"the live connection is not counted: {n}")

    @scenario("connections by user")
    def connections():
        r = client.connections(ConnectionsRequest(user=USER, expression=""))
        check(client_id in r.connections, f"{client_id} not among {list(r.connections)}")
        c = r.connections[client_id]
        check(c.transport == "uni_http_stream", f"transport {c.transport!r}")
        check(c.protocol == "json", f"protocol {c.protocol!r}")
        check(c.user == USER, f"user {c.user!r}")
        check(c.app_name == "cent-py", f"app_name {c.app_name!r}")
        check(c.state is not None and c.state.meta == meta, f"state.meta {c.state}")
        check(c.state.connection_token is not None and c.state.connection_token.uid == f"jti-{run_id}", f"connection_token {c.state.connection_token}")
        r = client.connections(ConnectionsRequest(user=f"nobody-{run_id}", expression=""))
        check(r.connections == {}, f"unknown user has connections: {r.connections}")

    @scenario("connections blank request rejected")
    def connections_blank():
        try:
            client.connections(ConnectionsRequest(user="", expression=""))
        except CentApiResponseError as e:
            check(e.code == 107, f"code {e.code} ({e.message})")
            return
        raise AssertionError("a blank connections request was answered")

    @scenario("subscribe")
    def subscribe():
        r = client.subscribe(SubscribeRequest(user=USER, channel=chan, data={"welcome": True}, info={"role": "reader"}))
        check(r is not None, "no result")
        p = stream.next_push(lambda m: m.get("channel") == chan and "subscribe" in m, "subscribe push")
        check(p["subscribe"].get("data") == {"welcome": True}, f"subscribe push data: {p}")
        client.subscribe(SubscribeRequest(user=USER, channel=chan2))
        stream.next_push(lambda m: m.get("channel") == chan2 and "subscribe" in m, "second subscribe push")

    @scenario("presence")
    def presence():
        r = client.presence(PresenceRequest(channel=chan))
        check(client_id in r.presence, f"{client_id} not present: {r.presence}")
        ci = r.presence[client_id]
        check(ci.user == USER and ci.client == client_id, f"client info {ci}")
        check(ci.conn_info == {"name": "Alice"}, f"conn_info {ci.conn_info}")
        check(ci.chan_info == {"role": "reader"}, f"chan_info {ci.chan_info}")

    @scenario("presence_stats")
    def presence_stats():
        r = client.presence_stats(PresenceStatsRequest(channel=chan))
        check((r.num_clients, r.num_users) == (1, 1), f"stats {r}")

    @scenario("publish")
    def publish():
        r = client.publish(PublishRequest(channel=chan, data={"n": 1}, tags={"kind": "test"}))
        check(r.offset == 1 and r.epoch, f"result {r}")
        state["offset"], state["epoch"] = r.offset, r.epoch
        p = stream.next_push(lambda m: m.get("channel") == chan and "pub" in m, "publication")
        check(p["pub"]["data"] == {"n": 1}, f"publication {p}")
        check(p["pub"].get("tags") == {"kind": "test"}, f"tags {p}")
        check(p["pub"].get("offset") == 1, f"offset {p}")

    @scenario("publish error unknown namespace")
    def publish_error():
        try:
            client.publish(PublishRequest(channel=f"nope-{run_id}:x", data={}))
        except CentApiResponseError as e:
            check(e.code == 102, f"code {e.code} ({e.message})")
            return
        raise AssertionError("publish into an unknown namespace succeeded")

    @scenario("broadcast")
    def broadcast():
        r = client.broadcast(BroadcastRequest(channels=[chan, chan2], data={"n": 2}))
        check(len(r.responses) == 2, f"responses {r.responses}")
        check(all(x.error is None and x.result is not None for x in r.responses), f"responses {r.responses}")
        check(r.responses[0].result.offset == 2, f"offset {r.responses[0]}")
        state["offset"] = 2
        stream.next_push(lambda m: m.get("channel") == chan and "pub" in m and m["pub"]["data"] == {"n": 2}, "broadcast publication")
        stream.next_push(lambda m: m.get("channel") == chan2 and "pub" in m and m["pub"]["data"] == {"n": 2}, "broadcast publication (2nd channel)")

    @scenario("history")
    def history():
        r = client.history(HistoryRequest(channel=chan, limit=10))
        check(r.epoch == state["epoch"], f"epoch {r.epoch} != {state['epoch']}")
        check(r.offset == state["offset"], f"offset {r.offset} != {state['offset']}")
        check(len(r.publications) == state["offset"], f"publications {r.publications}")
        check(r.publications[0].data == {"n": 1} and r.publications[0].offset == 1, f"first {r.publications[0]}")
        check(r.publications[0].tags == {"kind": "test"}, f"tags {r.publications[0]}")
        r = client.history(HistoryRequest(channel=chan))
        check(r.publications == [] and r.offset == state["offset"], f"position only: {r}")

    @scenario("history_remove")
    def history_remove():
        r = client.history_remove(HistoryRemoveRequest(channel=chan))
        check(r is not None, "no result")
        r = client.history(HistoryRequest(channel=chan, limit=-1))
        check(r.publications == [], f"publications left: {r.publications}")
        check(r.offset == state["offset"] and r.epoch == state["epoch"], f"position changed: {r}")

    @scenario("channels")
    def channels():
        r = client.channels(ChannelsRequest(pattern=f"cent-py-{run_id}*"))
        check(chan in r.channels and r.channels[chan].num_clients == 1, f"channels {r.channels}")
        r = client.channels(ChannelsRequest(pattern=f"none-{run_id}-*"))
        check(r.channels == {}, f"channels {r.channels}")

    @scenario("batch")
    def batch():
        r = client.batch(
            BatchRequest(
                requests=[
                    PublishRequest(channel=chan, data={"n": "batch"}),
                    PresenceStatsRequest(channel=chan),
                    InfoRequest(),
                ],
                parallel=False,
            )
        )
        replies = r.replies
        check(len(replies) == 3, f"replies {replies}")
        check(replies[0].offset == state["offset"] + 1, f"publish reply {replies[0]}")
        state["offset"] += 1
        check(replies[1].num_clients == 1, f"presence_stats reply {replies[1]}")
        check(len(replies[2].nodes) >= 1, f"info reply {replies[2]}")
        stream.next_push(lambda m: m.get("channel") == chan and "pub" in m and m["pub"]["data"] == {"n": "batch"}, "batch publication")

    @scenario("refresh")
    def refresh():
        at = int(time.time()) + 3600
        client.refresh(RefreshRequest(user=USER, expire_at=at))
        p = stream.next_push(lambda m: "refresh" in m, "refresh push")
        check(p["refresh"].get("expires") is True and 3500 < p["refresh"].get("ttl", 0) <= 3600, f"refresh push {p}")

    @scenario("unsubscribe")
    def unsubscribe():
        client.unsubscribe(UnsubscribeRequest(user=USER, channel=chan))
        p = stream.next_push(lambda m: m.get("channel") == chan and "unsubscribe" in m, "unsubscribe push")
        check(p["unsubscribe"] == {"code": 2000, "reason": "server unsubscribe"}, f"unsubscribe push {p}")
        r = client.presence_stats(PresenceStatsRequest(channel=chan))
        check(r.num_clients == 0, f"still present: {r}")

    @scenario("wrong api key")
    def wrong_key():
        try:
            Client(f"{HTTP}/api", API_KEY + "-wrong", timeout=10).info(InfoRequest())
        except CentUnauthorizedError:
            return
        raise AssertionError("a wrong key was accepted")

    @scenario("disconnect")
    def disconnect():
        client.disconnect(DisconnectRequest(user=USER, session=session, disconnect=Disconnect(code=4501, reason="bye from cent")))
        p = stream.next_push(lambda m: "disconnect" in m, "disconnect push")
        check(p["disconnect"] == {"code": 4501, "reason": "bye from cent"}, f"disconnect push {p}")
        stream.wait_end()
        r = client.connections(ConnectionsRequest(user=USER, expression=""))
        check(client_id not in r.connections, f"still listed: {list(r.connections)}")

    @scenario("disconnect default code")
    def disconnect_default():
        t = sign_hs256({"sub": USER, "iat": now, "exp": now + 3600}, SECRET)
        s = UniStream(t, "cent-py-2")
        try:
            s.next_push(lambda m: "connect" in m, "connect push")
            client.disconnect(DisconnectRequest(user=USER))
            p = s.next_push(lambda m: "disconnect" in m, "disconnect push")
            check(p["disconnect"] == {"code": 3503, "reason": "force disconnect"}, f"disconnect push {p}")
            s.wait_end()
        finally:
            s.close()

    for step in [
        info,
        connections,
        connections_blank,
        subscribe,
        presence,
        presence_stats,
        publish,
        publish_error,
        broadcast,
        history,
        history_remove,
        channels,
        batch,
        refresh,
        unsubscribe,
        wrong_key,
        disconnect,
        disconnect_default,
    ]:
        step()
    stream.close()
    if failures:
        print(f"{len(failures)} scenario(s) failed: {', '.join(failures)}")
        return 1
    print(f"all scenarios passed (cent {getattr(cent, '__version__', '5.x')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
