"""The cluster bus wire format (spec cluster.md §7.2-§7.5): bytes in, ``Message`` out, and back.

Every message is a 2256-byte header followed by a type-specific body; all integers are
big-endian except the MODULE id (host order, kept as raw bytes here).  ``frame_length``
is what a link's reader checks on the first 8 bytes of a message (a bad signature or a
length below the header size closes the link); ``decode`` applies Redis's per-type
length rules (a mismatch drops only that message) and ``encode`` builds the exact bytes
Redis would send for the same fields.

Pure: no sockets, no cluster state, so it can be fuzzed and compared with captured
traffic.  ``BusError.close_link`` says what the link must do with a refused message.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

SIGNATURE = b"RCmb"
PROTO_VERSION = 1
HEADER_SIZE = 2256
GOSSIP_SIZE = 104
NAME_LEN = 40
IP_LEN = 46
SLOTS_BYTES = 2048
UPDATE_SIZE = HEADER_SIZE + 8 + NAME_LEN + SLOTS_BYTES  # 4352, sizeof(clusterMsg)

PING, PONG, MEET, FAIL, PUBLISH, AUTH_REQUEST, AUTH_ACK, UPDATE, MFSTART, MODULE, PUBLISHSHARD = range(11)
TYPE_COUNT = 11
TYPE_NAMES = ("ping", "pong", "meet", "fail", "publish", "auth-req", "auth-ack", "update", "mfstart", "module",
              "publishshard")

# mflags[0] bits
MF_PAUSED = 1
MF_FORCEACK = 2
MF_EXT_DATA = 4

# ping extension types
EXT_HOSTNAME = 0
EXT_HUMAN_NODENAME = 1
EXT_FORGOTTEN_NODE = 2
EXT_SHARDID = 3

NULL_NAME = b"\0" * NAME_LEN

# sig totlen ver port type count currentEpoch configEpoch offset sender myslots slaveof myip
# extensions notused1 pport cport flags state mflags
_HEADER = struct.Struct(">4sIHHHHQQQ40s2048s40s46sH30sHHHB3s")
_GOSSIP = struct.Struct(">40sII46sHHHH2s")
_EXT_HEADER = struct.Struct(">IHH")
assert _HEADER.size == HEADER_SIZE and _GOSSIP.size == GOSSIP_SIZE


class BusError(Exception):
    """A refused message: ``close_link`` for a broken stream, else only this message is dropped.

    ``log`` is Redis's warning line for it (None when Redis drops it silently)."""

    def __init__(self, log: str | None, close_link: bool = False) -> None:
        super().__init__(log or "ignored message")
        self.log = log
        self.close_link = close_link


def type_name(kind: int) -> str:
    return TYPE_NAMES[kind] if 0 <= kind < TYPE_COUNT else "unknown"


@dataclass
class Gossip:
    """One entry of a PING/PONG/MEET gossip section (what the sender knows about a node)."""

    node_id: str
    ping_sent: int = 0  # seconds
    pong_received: int = 0  # seconds
    ip: str = ""
    port: int = 0
    cport: int = 0
    flags: int = 0
    pport: int = 0


@dataclass
class Extension:
    """A ping extension: its type and its data as sent (zero padding included)."""

    kind: int
    data: bytes

    def text(self) -> str:
        """HOSTNAME / HUMAN_NODENAME: the NUL-terminated text."""
        return self.data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")

    def node_id(self) -> str:
        """SHARDID / FORGOTTEN_NODE: the 40-byte id."""
        return self.data[:NAME_LEN].decode("latin-1")

    def ttl(self) -> int:
        """FORGOTTEN_NODE: seconds the node stays forgotten."""
        return int.from_bytes(self.data[NAME_LEN : NAME_LEN + 8], "big")


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 8)


def text_extension(kind: int, text: str) -> Extension:
    """HOSTNAME / HUMAN_NODENAME: the text, its NUL, padding to 8 bytes."""
    return Extension(kind, _padded(text.encode("utf-8", "surrogateescape") + b"\0"))


def shard_id_extension(shard_id: str) -> Extension:
    return Extension(EXT_SHARDID, shard_id.encode("latin-1"))


def forgotten_node_extension(node_id: str, ttl_s: int) -> Extension:
    return Extension(EXT_FORGOTTEN_NODE, node_id.encode("latin-1") + ttl_s.to_bytes(8, "big"))


@dataclass
class Message:
    """A whole bus message; the body fields used depend on ``type``."""

    type: int
    sender: str
    port: int = 0
    cport: int = 0
    pport: int = 0
    flags: int = 0
    state: int = 1  # 0 ok, 1 fail
    mflags: int = 0  # mflags[0]
    current_epoch: int = 0
    config_epoch: int = 0
    offset: int = 0
    myslots: bytes = bytes(SLOTS_BYTES)
    slaveof: str = ""  # "" for a master
    myip: str = ""
    version: int = PROTO_VERSION
    gossip: list[Gossip] = field(default_factory=list)
    extensions: list[Extension] = field(default_factory=list)
    about: str = ""  # FAIL: the failing node
    channel: bytes = b""  # PUBLISH / PUBLISHSHARD
    payload: bytes = b""  # PUBLISH message, MODULE payload, or an unknown type's body
    update_epoch: int = 0  # UPDATE
    update_node: str = ""
    update_slots: bytes = bytes(SLOTS_BYTES)
    module_id: bytes = bytes(8)  # MODULE (host order, opaque)
    module_type: int = 0


# ----------------------------------------------------------------------------- slot bitmaps


def slots_to_bitmap(slots: list[int] | range) -> bytes:
    bitmap = bytearray(SLOTS_BYTES)
    for slot in slots:
        bitmap[slot >> 3] |= 1 << (slot & 7)
    return bytes(bitmap)


def bitmap_int(bitmap: bytes | bytearray) -> int:
    """A slot bitmap as one integer whose bit j is slot j (set operations in a few C calls)."""
    return int.from_bytes(bitmap, "little")


def int_runs(bits: int) -> list[tuple[int, int]]:
    """Runs of set bits of ``bits``, ascending: each run costs a few big-int operations,
    so a node's ranges come in microseconds rather than a Python loop over 16384 slots."""
    runs = []
    while bits:
        first = (bits & -bits).bit_length() - 1
        carried = bits + (1 << first)  # the run's ones carry into the first zero above it
        end = (carried & -carried).bit_length() - 1
        runs.append((first, end - 1))
        bits &= carried  # clears that run
    return runs


def int_slots(bits: int) -> list[int]:
    return [slot for first, last in int_runs(bits) for slot in range(first, last + 1)]


def bitmap_runs(bitmap: bytes | bytearray) -> list[tuple[int, int]]:
    """Runs of slots set in a bitmap (slot j is bit j % 8 of byte j / 8), ascending."""
    return int_runs(bitmap_int(bitmap))


def bitmap_slots(bitmap: bytes | bytearray) -> list[int]:
    """The slots set in a bitmap, ascending."""
    return int_slots(bitmap_int(bitmap))


# ----------------------------------------------------------------------------- decoding


def _name(raw: bytes) -> str:
    return raw.decode("latin-1")


def _cstring(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("latin-1")


def frame_length(prefix: bytes) -> int:
    """The ``totlen`` of the message starting with these 8 bytes; BusError (close) if it is not one."""
    if prefix[:4] != SIGNATURE or int.from_bytes(prefix[4:8], "big") < HEADER_SIZE:
        raise BusError("Bad message length or signature received on the Cluster bus.", close_link=True)
    return int.from_bytes(prefix[4:8], "big")


def expected_length(kind: int, buf: bytes, count: int, extensions: int, mflags: int) -> int:
    """Redis's explen for a message whose whole bytes are ``buf`` (BusError on bad extensions)."""
    if kind in (PING, PONG, MEET):
        length = HEADER_SIZE + GOSSIP_SIZE * count
        if mflags & MF_EXT_DATA:
            for _ in range(extensions):
                if length + 8 > len(buf):
                    raise BusError(f"Received invalid {type_name(kind)} packet with extension data that exceeds "
                                   f"total packet length ({len(buf)})")
                ext_len = int.from_bytes(buf[length : length + 4], "big")
                if ext_len % 8 or ext_len < 8:
                    raise BusError(f"Received a {type_name(kind)} packet without proper padding ({ext_len} bytes)")
                if len(buf) - length < ext_len:
                    raise BusError(f"Received invalid {type_name(kind)} packet with extension data that exceeds "
                                   f"total packet length ({len(buf)})")
                length += ext_len
        return length
    if kind == FAIL:
        return HEADER_SIZE + NAME_LEN
    if kind in (PUBLISH, PUBLISHSHARD):
        if len(buf) < HEADER_SIZE + 8:
            return HEADER_SIZE + 8
        channel_len, message_len = struct.unpack_from(">II", buf, HEADER_SIZE)
        return HEADER_SIZE + 8 + channel_len + message_len
    if kind in (AUTH_REQUEST, AUTH_ACK, MFSTART):
        return HEADER_SIZE
    if kind == UPDATE:
        return UPDATE_SIZE
    if kind == MODULE:
        if len(buf) < HEADER_SIZE + 13:
            return HEADER_SIZE + 13
        return HEADER_SIZE + 13 + int.from_bytes(buf[HEADER_SIZE + 8 : HEADER_SIZE + 12], "big")
    return len(buf)  # unknown types are taken as well formed


def decode(buf: bytes) -> Message:
    """One whole message -> Message; BusError for what Redis refuses (see ``close_link``)."""
    if len(buf) < 8:
        raise BusError("Bad message length or signature received on the Cluster bus.", close_link=True)
    totlen = frame_length(buf[:8])
    if totlen != len(buf):
        raise BusError("Bad message length or signature received on the Cluster bus.", close_link=True)
    (_sig, _totlen, version, port, kind, count, current_epoch, config_epoch, offset, sender, myslots, slaveof, myip,
     extensions, _unused, pport, cport, flags, state, mflags) = _HEADER.unpack_from(buf)
    if version != PROTO_VERSION:
        raise BusError(None)  # Redis ignores other protocol versions silently
    mflag0 = mflags[0]
    explen = expected_length(kind, buf, count, extensions, mflag0)
    if explen != totlen:
        raise BusError(f"Received invalid {type_name(kind)} packet of length {totlen} but expected length {explen}")
    msg = Message(
        type=kind, sender=_name(sender), port=port, cport=cport, pport=pport, flags=flags, state=state,
        mflags=mflag0, current_epoch=current_epoch, config_epoch=config_epoch, offset=offset, myslots=myslots,
        slaveof="" if slaveof == NULL_NAME else _name(slaveof), myip=_cstring(myip), version=version,
    )
    body = HEADER_SIZE
    if kind in (PING, PONG, MEET):
        for _ in range(count):
            node, ping_sent, pong_received, ip, gport, gcport, gflags, gpport, _pad = _GOSSIP.unpack_from(buf, body)
            msg.gossip.append(Gossip(_name(node), ping_sent, pong_received, _cstring(ip), gport, gcport, gflags, gpport))
            body += GOSSIP_SIZE
        if mflag0 & MF_EXT_DATA:
            for _ in range(extensions):
                ext_len, ext_type, _pad2 = _EXT_HEADER.unpack_from(buf, body)
                msg.extensions.append(Extension(ext_type, bytes(buf[body + 8 : body + ext_len])))
                body += ext_len
    elif kind == FAIL:
        msg.about = _name(buf[body : body + NAME_LEN])
    elif kind in (PUBLISH, PUBLISHSHARD):
        channel_len = int.from_bytes(buf[body : body + 4], "big")
        msg.channel = bytes(buf[body + 8 : body + 8 + channel_len])
        msg.payload = bytes(buf[body + 8 + channel_len : totlen])
    elif kind == UPDATE:
        msg.update_epoch = int.from_bytes(buf[body : body + 8], "big")
        msg.update_node = _name(buf[body + 8 : body + 8 + NAME_LEN])
        msg.update_slots = bytes(buf[body + 8 + NAME_LEN : UPDATE_SIZE])
    elif kind == MODULE:
        msg.module_id = bytes(buf[body : body + 8])
        msg.module_type = buf[body + 12]
        msg.payload = bytes(buf[body + 13 : totlen])
    elif kind >= TYPE_COUNT:
        msg.payload = bytes(buf[body:totlen])
    return msg


# ----------------------------------------------------------------------------- encoding


def _fixed(text: str, size: int) -> bytes:
    raw = text.encode("latin-1", "replace")[: size - 1]
    return raw + b"\0" * (size - len(raw))


def encode(msg: Message) -> bytes:
    """Message -> the exact bytes on the wire (``count``, ``extensions`` and ``totlen`` computed)."""
    kind = msg.type
    mflags = msg.mflags
    if kind in (PING, PONG, MEET):
        parts = []
        for g in msg.gossip:
            parts.append(_GOSSIP.pack(g.node_id.encode("latin-1"), g.ping_sent & 0xFFFFFFFF,
                                      g.pong_received & 0xFFFFFFFF, _fixed(g.ip, IP_LEN), g.port, g.cport,
                                      g.flags, g.pport, b"\0\0"))
        for ext in msg.extensions:
            data = _padded(ext.data)
            parts.append(_EXT_HEADER.pack(8 + len(data), ext.kind, 0) + data)
        if msg.extensions:
            mflags |= MF_EXT_DATA
        body = b"".join(parts)
    elif kind == FAIL:
        body = msg.about.encode("latin-1")
    elif kind in (PUBLISH, PUBLISHSHARD):
        body = struct.pack(">II", len(msg.channel), len(msg.payload)) + msg.channel + msg.payload
    elif kind == UPDATE:
        body = msg.update_epoch.to_bytes(8, "big") + msg.update_node.encode("latin-1") + msg.update_slots
    elif kind == MODULE:
        body = msg.module_id + len(msg.payload).to_bytes(4, "big") + bytes((msg.module_type,)) + msg.payload
    elif kind >= TYPE_COUNT:
        body = msg.payload
    else:
        body = b""
    header = _HEADER.pack(
        SIGNATURE, HEADER_SIZE + len(body), msg.version, msg.port, kind,
        len(msg.gossip) if kind in (PING, PONG, MEET) else 0,
        msg.current_epoch, msg.config_epoch, msg.offset, msg.sender.encode("latin-1"), msg.myslots,
        msg.slaveof.encode("latin-1") if msg.slaveof else NULL_NAME, _fixed(msg.myip, IP_LEN) if msg.myip else
        bytes(IP_LEN), len(msg.extensions) if kind in (PING, PONG, MEET) else 0, bytes(30), msg.pport, msg.cport,
        msg.flags, msg.state, bytes((mflags & 0xFF, 0, 0)),
    )
    return header + body
