"""The cluster bus codec (dumpling.cluster.busproto): layouts from spec cluster.md §7,
byte-exact round trips of traffic captured between real Redis 7.0 nodes, and refusals.

The capture puts a logging TCP proxy in front of one real node's bus port (announced
with ``cluster-announce-bus-port``), as the spec's own capture did (§7.11).
"""

from __future__ import annotations

import random
import socket
import threading
import time

import pytest

from dumpling.cluster import busproto as bp
from tests.servers import free_port, parse_reply, start_redis

# The annotated PING of spec §7.11: C (port 24003, bus 35003, slot 16000) -> B, gossip about A.
SENDER = "a85d74eb28c1be86681e7724e23339512d4e5831"
GOSSIPED = "d8a52764d92e527027cf1fadfaec29fd94aafd8c"


def spec_ping() -> bytes:
    header = bytearray(bp.HEADER_SIZE)
    header[0:4] = b"RCmb"
    header[4:8] = (2360).to_bytes(4, "big")
    header[8:10] = (1).to_bytes(2, "big")
    header[10:12] = (24003).to_bytes(2, "big")
    header[12:14] = (0).to_bytes(2, "big")
    header[14:16] = (1).to_bytes(2, "big")
    header[16:24] = (8).to_bytes(8, "big")
    header[40:80] = SENDER.encode()
    header[0x820] = 0x01
    header[0x8C8:0x8CA] = (35003).to_bytes(2, "big")
    header[0x8CA:0x8CC] = (0x11).to_bytes(2, "big")
    header[0x8CC] = 1
    gossip = bytearray(bp.GOSSIP_SIZE)
    gossip[0:40] = GOSSIPED.encode()
    gossip[44:48] = bytes.fromhex("6b012a77")
    gossip[48:57] = b"127.0.0.1"
    gossip[94:96] = (24001).to_bytes(2, "big")
    gossip[96:98] = (35001).to_bytes(2, "big")
    gossip[98:100] = (1).to_bytes(2, "big")
    return bytes(header + gossip)


def test_spec_ping_layout_decodes_and_round_trips() -> None:
    raw = spec_ping()
    msg = bp.decode(raw)
    assert (msg.type, msg.port, msg.cport, msg.flags, msg.state) == (bp.PING, 24003, 35003, 0x11, 1)
    assert (msg.current_epoch, msg.config_epoch, msg.sender, msg.slaveof, msg.myip) == (8, 0, SENDER, "", "")
    assert bp.bitmap_slots(msg.myslots) == [16000]
    assert msg.gossip == [bp.Gossip(GOSSIPED, 0, 0x6B012A77, "127.0.0.1", 24001, 35001, 1, 0)]
    assert msg.extensions == []
    assert bp.encode(msg) == raw


def test_every_type_round_trips() -> None:
    base = {"sender": SENDER, "port": 7000, "cport": 17000, "flags": 17, "current_epoch": 5, "config_epoch": 3,
            "myslots": bp.slots_to_bitmap(range(0, 5461)), "offset": 1234, "myip": "10.0.0.1"}
    messages = [
        bp.Message(bp.PING, gossip=[bp.Gossip(GOSSIPED, 1, 2, "::1", 1, 2, 3, 4)],
                   extensions=[bp.text_extension(bp.EXT_HOSTNAME, "nodeb.example"),
                               bp.text_extension(bp.EXT_HUMAN_NODENAME, "humanB"),
                               bp.forgotten_node_extension(GOSSIPED, 59), bp.shard_id_extension(GOSSIPED)], **base),
        bp.Message(bp.PONG, **base),
        bp.Message(bp.MEET, slaveof=GOSSIPED, **base),
        bp.Message(bp.FAIL, about=GOSSIPED, **base),
        bp.Message(bp.PUBLISH, channel=b"ch", payload=b"hello\0world", **base),
        bp.Message(bp.PUBLISHSHARD, channel=b"", payload=b"", **base),
        bp.Message(bp.AUTH_REQUEST, mflags=bp.MF_FORCEACK, **base),
        bp.Message(bp.AUTH_ACK, **base),
        bp.Message(bp.UPDATE, update_epoch=9, update_node=GOSSIPED, update_slots=bp.slots_to_bitmap([1, 16383]),
                   **base),
        bp.Message(bp.MFSTART, mflags=bp.MF_PAUSED, **base),
        bp.Message(bp.MODULE, module_id=b"\1\2\3\4\5\6\7\x08", module_type=7, payload=b"xyz", **base),
        bp.Message(42, payload=b"opaque body", **base),
    ]
    for msg in messages:
        raw = bp.encode(msg)
        back = bp.decode(raw)
        if msg.extensions:
            msg.mflags |= bp.MF_EXT_DATA
        assert back == msg, msg.type
        assert bp.encode(back) == raw
    update = bp.encode(messages[8])
    assert len(update) == bp.UPDATE_SIZE == 4352
    ext_ping = bp.encode(messages[0])
    # hostname 24 bytes, human nodename 16, forgotten node 56, shard id 48 (spec §7.5)
    assert len(ext_ping) == bp.HEADER_SIZE + bp.GOSSIP_SIZE + 24 + 16 + 56 + 48
    assert bp.decode(ext_ping).extensions[0].text() == "nodeb.example"
    assert bp.decode(ext_ping).extensions[2].ttl() == 59


def test_refusals_follow_redis() -> None:
    ping = bp.encode(bp.Message(bp.PING, sender=SENDER))
    with pytest.raises(bp.BusError) as e:
        bp.frame_length(b"XCmb" + ping[4:8])
    assert e.value.close_link and e.value.log == "Bad message length or signature received on the Cluster bus."
    with pytest.raises(bp.BusError) as e:
        bp.frame_length(b"RCmb" + (100).to_bytes(4, "big"))
    assert e.value.close_link
    wrong_version = ping[:8] + b"\0\2" + ping[10:]
    with pytest.raises(bp.BusError) as e:
        bp.decode(wrong_version)
    assert not e.value.close_link and e.value.log is None
    # a FAIL without its body: dropped with Redis's line, the link stays
    short_fail = bytearray(ping)
    short_fail[12:14] = (bp.FAIL).to_bytes(2, "big")
    with pytest.raises(bp.BusError) as e:
        bp.decode(bytes(short_fail))
    assert not e.value.close_link
    assert e.value.log == "Received invalid fail packet of length 2256 but expected length 2296"
    # a gossip count the message does not hold
    many = bytearray(ping)
    many[14:16] = (3).to_bytes(2, "big")
    with pytest.raises(bp.BusError) as e:
        bp.decode(bytes(many))
    assert e.value.log == "Received invalid ping packet of length 2256 but expected length 2568"
    # an extension whose length is not a multiple of 8
    bad_ext = bytearray(bp.encode(bp.Message(bp.PING, sender=SENDER, extensions=[bp.shard_id_extension(SENDER)])))
    bad_ext[bp.HEADER_SIZE : bp.HEADER_SIZE + 4] = (47).to_bytes(4, "big")
    with pytest.raises(bp.BusError) as e:
        bp.decode(bytes(bad_ext))
    assert e.value.log == "Received a ping packet without proper padding (47 bytes)"


def test_fuzzed_messages_decode_or_refuse() -> None:
    """Random corruptions of valid messages never raise anything but BusError, and what decodes re-encodes."""
    rng = random.Random(15)
    seeds = [spec_ping(), bp.encode(bp.Message(bp.PUBLISH, sender=SENDER, channel=b"c", payload=b"m")),
             bp.encode(bp.Message(bp.UPDATE, sender=SENDER, update_node=GOSSIPED)),
             bp.encode(bp.Message(bp.PING, sender=SENDER, extensions=[bp.text_extension(0, "h")]))]
    for _ in range(3000):
        raw = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            pos = rng.choice([rng.randrange(len(raw)), rng.randrange(16), rng.randrange(2200, min(len(raw), 2400))])
            raw[pos] = rng.randrange(256)
        if rng.random() < 0.2:
            raw = raw[: rng.randrange(len(raw))]
        try:
            msg = bp.decode(bytes(raw))
        except bp.BusError:
            continue
        again = bp.decode(bp.encode(msg))
        assert again.type == msg.type and again.gossip == msg.gossip and again.channel == msg.channel


# ----------------------------------------------------------------------------- capture from real Redis 7.0


class CaptureProxy:
    """A TCP proxy that forwards to ``target`` and records every byte each way."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(8)
        self.streams: list[bytearray] = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for src, dst in ((client, upstream), (upstream, client)):
                buf = bytearray()
                with self.lock:
                    self.streams.append(buf)
                threading.Thread(target=self._pump, args=(src, dst, buf), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, buf: bytearray) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                for s in (src, dst):
                    try:
                        s.close()
                    except OSError:
                        pass
                return
            with self.lock:
                buf += data
            try:
                dst.sendall(data)
            except OSError:
                return

    def messages(self) -> list[bytes]:
        out = []
        with self.lock:
            streams = [bytes(s) for s in self.streams]
        for stream in streams:
            pos = 0
            while pos + 8 <= len(stream):
                total = bp.frame_length(stream[pos : pos + 8])
                if pos + total > len(stream):
                    break
                out.append(stream[pos : pos + total])
                pos += total
        return out

    def close(self) -> None:
        self.closed = True
        self.listener.close()


def test_round_trip_of_traffic_captured_between_real_redis_nodes() -> None:
    bus_a, bus_b = free_port(), free_port()
    proxy = CaptureProxy(bus_b)
    a = start_redis("--cluster-enabled", "yes", "--cluster-port", str(bus_a), "--cluster-node-timeout", "1000",
                    "--cluster-announce-hostname", "node-a.example")
    b = start_redis("--cluster-enabled", "yes", "--cluster-port", str(bus_b), "--cluster-node-timeout", "1000",
                    "--cluster-announce-bus-port", str(proxy.port))
    try:
        with a.raw() as ca, b.raw() as cb:
            assert ca.call("CLUSTER", "ADDSLOTSRANGE", 0, 99) == b"+OK\r\n"
            assert cb.call("CLUSTER", "ADDSLOTS", 16000) == b"+OK\r\n"
            assert ca.call("CLUSTER", "MEET", "127.0.0.1", b.port, proxy.port) == b"+OK\r\n"
            deadline = time.monotonic() + 10
            while b"cluster_known_nodes:2" not in ca.call("CLUSTER", "INFO") or b"handshake" in ca.call(
                    "CLUSTER", "NODES"):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            id_a = parse_reply(ca.call("CLUSTER", "MYID")).decode()
            id_b = parse_reply(cb.call("CLUSTER", "MYID")).decode()
            cb.call("SUBSCRIBE", "news")
            ca.call("PUBLISH", "news", "hello")
            time.sleep(1.2)
        captured = proxy.messages()
        kinds = set()
        for raw in captured:
            msg = bp.decode(raw)
            kinds.add(msg.type)
            assert bp.encode(msg) == raw
            assert msg.sender in (id_a, id_b)
            if msg.sender == id_a and msg.type in (bp.PING, bp.PONG, bp.MEET):
                assert [e.text() for e in msg.extensions] == ["node-a.example"]
                assert bp.bitmap_slots(msg.myslots) == list(range(100))
            if msg.type == bp.PUBLISH:
                assert (msg.channel, msg.payload) == (b"news", b"hello")
        assert {bp.MEET, bp.PING, bp.PONG, bp.PUBLISH} <= kinds
    finally:
        proxy.close()
        a.stop()
        b.stop()
