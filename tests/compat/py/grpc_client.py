#!/usr/bin/env python3
"""A Python gRPC client generated from the repo's proto/rotor_api.proto (grpcio-tools,
at run time into a temporary directory) against a live Rotor: every method of
CentrifugoApi, Connections by label filter over real WebSocket connections carrying
labels, Disconnect by label filter closing exactly those, auth failures and an
oversized message.

Environment: ROTOR_WS, ROTOR_SECRET, ROTOR_GRPC (host:port), ROTOR_GRPC_KEY,
ROTOR_PROTO_DIR. Prints ``ok <name>`` per scenario; exits 1 on a failure.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import tempfile
import time

import grpc
from grpc_tools import protoc
from websockets.sync.client import connect as ws_connect

WS = os.environ["ROTOR_WS"]
SECRET = os.environ["ROTOR_SECRET"]
TARGET = os.environ["ROTOR_GRPC"]
KEY = os.environ["ROTOR_GRPC_KEY"]
PROTO_DIR = os.environ["ROTOR_PROTO_DIR"]

out = tempfile.mkdtemp(prefix="rotor-grpc-py-")
rc = protoc.main(["protoc", f"-I{PROTO_DIR}", f"--python_out={out}", f"--grpc_python_out={out}",
                  os.path.join(PROTO_DIR, "rotor_api.proto")])
if rc != 0:
    print("FAIL setup: protoc failed")
    sys.exit(2)
sys.path.insert(0, out)
import rotor_api_pb2 as api  # noqa: E402
import rotor_api_pb2_grpc as rpc  # noqa: E402

AUTH = [("authorization", "apikey " + KEY)]
stub = rpc.CentrifugoApiStub(grpc.insecure_channel(TARGET, options=[("grpc.max_send_message_length", 64 << 20)]))


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(user, labels):
    now = int(time.time())
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": user, "iat": now, "exp": now + 3600, "labels": labels}).encode())
    sig = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


class Client:
    def __init__(self, user, labels):
        self.ws = ws_connect(WS, open_timeout=5)
        self.id = 0
        self.pending = []
        r = self.call("connect", {"token": token(user, labels)})
        assert "connect" in r, r
        self.client = r["connect"]["client"]

    def frames(self, timeout=5.0):
        for line in self.ws.recv(timeout=timeout).split("\n"):
            if line:
                self.pending.append(json.loads(line))

    def call(self, method, params):
        self.id += 1
        self.ws.send(json.dumps({"id": self.id, method: params}))
        deadline = time.time() + 5
        while time.time() < deadline:
            for m in self.pending:
                if m.get("id") == self.id:
                    self.pending.remove(m)
                    return m
            self.frames()
        raise AssertionError(f"no reply to {method}")

    def push(self, pred):
        deadline = time.time() + 5
        while time.time() < deadline:
            for m in self.pending:
                if "push" in m and pred(m["push"]):
                    self.pending.remove(m)
                    return m["push"]
            self.frames()
        raise AssertionError("no matching push")

    def close_code(self):
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                self.frames(timeout=deadline - time.time())
            except Exception:  # closed
                return self.ws.close_code
        raise AssertionError("not closed")


failures = 0


def scenario(name, fn):
    global failures
    try:
        fn()
        print(f"ok {name}")
    except Exception as e:  # report and go on
        failures += 1
        print(f"FAIL {name}: {e!r}")


clients = {}


def setup():
    for user, region in [("ann", "eu"), ("ben", "eu"), ("cat", "us")]:
        c = Client(user, {"region": region})
        assert "subscribe" in c.call("subscribe", {"channel": "py"})
        clients[user] = c


def publish_history():
    data = b'{"k":  [1, 2],"s":"\\u00e9"}'
    r = stub.Publish(api.PublishRequest(channel="py", data=data), metadata=AUTH)
    assert not r.HasField("error") and r.result.offset >= 1, r
    for c in clients.values():
        p = c.push(lambda p: p.get("channel") == "py" and "pub" in p)
        assert p["pub"]["data"] == json.loads(data), p
    h = stub.History(api.HistoryRequest(channel="py", limit=-1), metadata=AUTH)
    assert h.result.publications[-1].data == data, h
    b = stub.Broadcast(api.BroadcastRequest(channels=["py", ""], data=b"{}"), metadata=AUTH)
    assert b.result.responses[0].HasField("result") and b.result.responses[1].error.code == 107, b


def channel_state():
    p = stub.Presence(api.PresenceRequest(channel="py"), metadata=AUTH)
    assert sorted(i.user for i in p.result.presence.values()) == ["ann", "ben", "cat"], p
    s = stub.PresenceStats(api.PresenceStatsRequest(channel="py"), metadata=AUTH)
    assert (s.result.num_clients, s.result.num_users) == (3, 3), s
    ch = stub.Channels(api.ChannelsRequest(pattern="py"), metadata=AUTH)
    assert ch.result.channels["py"].num_clients == 3, ch
    i = stub.Info(api.InfoRequest(), metadata=AUTH)
    assert i.result.nodes[0].num_clients == 3, i
    r = stub.RPC(api.RPCRequest(method="getUserConnections", params=b'{"user":"ann"}'), metadata=AUTH)
    assert list(json.loads(r.result.data)) == [clients["ann"].client], r


def connections():
    eu = api.FilterNode(key="region", cmp="eq", val="eu")
    r = stub.Connections(api.ConnectionsRequest(label_filter=eu), metadata=AUTH)
    got = r.result.connections
    assert set(got) == {clients["ann"].client, clients["ben"].client}, r
    assert all(i.labels["region"] == "eu" and i.transport == "websocket" for i in got.values())
    page = stub.Connections(api.ConnectionsRequest(label_filter=eu, limit=1), metadata=AUTH)
    assert len(page.result.connections) == 1 and page.result.next_cursor
    rest = stub.Connections(api.ConnectionsRequest(label_filter=eu, limit=1, cursor=page.result.next_cursor),
                            metadata=AUTH)
    assert set(rest.result.connections) | set(page.result.connections) == set(got)
    cel = stub.Connections(api.ConnectionsRequest(expression='labels.region == "us"'), metadata=AUTH)
    assert list(cel.result.connections) == [clients["cat"].client], cel
    bad = stub.Connections(api.ConnectionsRequest(), metadata=AUTH)
    assert bad.error.code == 107, bad


def targeted():
    eu = api.FilterNode(key="region", cmp="eq", val="eu")
    r = stub.Subscribe(api.SubscribeRequest(channel="py2", label_filter=eu, all_users=True), metadata=AUTH)
    assert not r.HasField("error"), r
    clients["ann"].push(lambda p: p.get("channel") == "py2" and "subscribe" in p)
    r = stub.Unsubscribe(api.UnsubscribeRequest(channel="py2", user="ann"), metadata=AUTH)
    assert not r.HasField("error"), r
    clients["ann"].push(lambda p: p.get("channel") == "py2" and "unsubscribe" in p)
    r = stub.Refresh(api.RefreshRequest(user="cat"), metadata=AUTH)
    assert not r.HasField("error"), r
    r = stub.HistoryRemove(api.HistoryRemoveRequest(channel="py"), metadata=AUTH)
    assert not r.HasField("error"), r
    batch = stub.Batch(api.BatchRequest(commands=[
        api.Command(publish=api.PublishRequest(channel="py", data=b'{"b":1}')),
        api.Command(presence_stats=api.PresenceStatsRequest(channel="py")),
        api.Command(publish=api.PublishRequest(channel="")),
    ]), metadata=AUTH)
    assert batch.replies[0].HasField("publish") and batch.replies[1].presence_stats.num_clients == 3, batch
    assert batch.replies[2].error.code == 107, batch


def disconnect_by_labels():
    eu = api.FilterNode(key="region", cmp="eq", val="eu")
    r = stub.Disconnect(api.DisconnectRequest(label_filter=eu, all_users=True,
                                              disconnect=api.Disconnect(code=4001, reason="bye")), metadata=AUTH)
    assert not r.HasField("error"), r
    assert clients["ann"].close_code() == 4001
    assert clients["ben"].close_code() == 4001
    assert "presence_stats" in clients["cat"].call("presence_stats", {"channel": "py"})
    left = stub.Connections(api.ConnectionsRequest(label_filter=api.FilterNode(key="region", cmp="ex")),
                            metadata=AUTH)
    assert list(left.result.connections) == [clients["cat"].client], left


def auth_failures():
    for md in [None, [("authorization", "apikey wrong")], [("authorization", KEY)]]:
        try:
            stub.Info(api.InfoRequest(), metadata=md)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
        else:
            raise AssertionError(f"{md} was let in")


def oversized():
    try:
        stub.Publish(api.PublishRequest(channel="py", data=b"1" * (5 << 20)), metadata=AUTH)
    except grpc.RpcError as e:
        # tonic: OUT_OF_RANGE (grpc-go: RESOURCE_EXHAUSTED)
        assert e.code() in (grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.RESOURCE_EXHAUSTED), e
    else:
        raise AssertionError("oversized message accepted")
    assert stub.Info(api.InfoRequest(), metadata=AUTH).result.nodes


scenario("setup", setup)
scenario("publish_history_broadcast", publish_history)
scenario("presence_stats_channels_info_rpc", channel_state)
scenario("connections_by_label_filter", connections)
scenario("subscribe_unsubscribe_refresh_history_remove_batch", targeted)
scenario("disconnect_by_label_filter", disconnect_by_labels)
scenario("auth_failures", auth_failures)
scenario("oversized", oversized)
sys.exit(1 if failures else 0)
