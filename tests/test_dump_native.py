"""The native RESTORE / RESTORE-ASKING / DUMP (``payload/_speedups.c``, run by the C request loop)
against their Python handlers, which stay the reference.

The same request streams run three ways in process: the C loop with the native handlers, the C
loop with them declining everything (the Python handlers through the general path), and the pure
Python dispatcher (no C loop).  Replies, the keyspace (values as DUMP images, TTLs, LRU fields),
command statistics, the dirty counter, hits/misses, expires and the sanitization counter must be
identical; a counting wrapper proves the natives really ran the common forms and declined the rest.
Replies are compared with Redis 7.0 in test_commands_dump.py, which runs through the same loop.
"""

from __future__ import annotations

from hashlib import sha256
from typing import Any

import pytest

from dumpling import accel
from dumpling import server as server_module
from dumpling.commands import dump as dump_commands
from dumpling.config import Config
from dumpling.dispatch import Server
from dumpling.payload.envelope import reseal
from dumpling.server import Client
from tests.servers import encode_command
from tests.test_fastpath_fuzz import Transport

pytestmark = pytest.mark.skipif(accel.fastpath is None or dump_commands.bulk.speedups is None,
                                reason="the native handlers need the C request loop and payload speedups")

ABS_FUTURE = 4_102_444_800_000  # 2100-01-01, as an ABSTTL


def _client() -> tuple[Server, Client, Transport]:
    config = Config()
    config.load_text("enable-debug-command yes")  # DEBUG SLEEP, SET-SKIP-CHECKSUM-VALIDATION below
    server = Server(config)
    client = Client(server)
    transport = Transport()
    client.connection_made(transport)  # type: ignore[arg-type]
    return server, client, transport


def _payloads() -> dict[str, bytes]:
    """DUMP images of small values of every kind (and a few bigger ones), made by an in-process server."""
    server, client, transport = _client()
    setup = [
        ["SET", "string", "value-00000000000001"], ["SET", "int", "123456"], ["SET", "neg", "-7"],
        ["SET", "long", "abc" * 30], ["APPEND", "raw", "xyz"],
        ["HSET", "hash", *[x for i in range(10) for x in (f"f{i}", f"v{i}")]],
        ["ZADD", "zset", *[x for i in range(10) for x in (f"{i / 3:.2f}", f"m{i}")]],
        ["RPUSH", "list", *[f"item-{i}" for i in range(10)]],
        ["SADD", "intset", *[str(i * 13) for i in range(10)]],
        ["SADD", "set", *[f"member-{i}" for i in range(10)]],
        ["XADD", "stream", "1-1", "f", "v"],
        # over 64 KiB after LZF: beyond what the natives open
        ["HSET", "bighash", *[x for i in range(1000) for x in (f"field:{i:06d}", sha256(b"%d" % i).hexdigest() * 2)]],
        ["CONFIG", "SET", "dump-rdb-version", "12"],
    ]
    for argv in setup:
        client.data_received(encode_command(*argv))
    keys = ["string", "int", "neg", "long", "raw", "hash", "zset", "list", "intset", "set", "stream", "bighash"]
    db = server.keyspace.dbs[0]
    out = {key: dump_commands.dump_value(server, db.data[key.encode()]) for key in keys}
    server.dump_state.writer = None  # type: ignore[attr-defined]
    out["hash12"] = dump_commands.dump_value(server, db.data[b"hash"])
    return out


PAYLOADS = _payloads()
BAD_CRC = PAYLOADS["hash"][:-1] + bytes([PAYLOADS["hash"][-1] ^ 1])
BAD_BODY = reseal(PAYLOADS["hash"][:3] + b"\xff" + PAYLOADS["hash"][4:])  # a listpack that is not one
FOOTER_13 = reseal(PAYLOADS["string"][:-10] + b"\x0d\x00" + PAYLOADS["string"][-8:])


def _restore(key: str, payload: bytes, *options: Any, ttl: Any = 0, command: str = "RESTORE") -> list:
    return [command, key, ttl, payload, *options]


def _stream() -> list[list]:
    """Common forms and every decline: options, TTLs, BUSYKEY, REPLACE, bad payloads, other dbs."""
    reqs: list[list] = []
    for name, payload in PAYLOADS.items():
        reqs.append(_restore(f"k:{name}", payload))
        reqs.append(["DUMP", f"k:{name}"])
        reqs.append(_restore(f"k:{name}", payload))  # BUSYKEY
        reqs.append(_restore(f"k:{name}", payload, "REPLACE"))
        reqs.append(_restore(f"abs:{name}", payload, "absttl", "replace", ttl=ABS_FUTURE))
        reqs.append(_restore(f"rel:{name}", payload, "REPLACE", ttl=100_000, command="RESTORE-ASKING"))
        reqs.append(["DUMP", f"abs:{name}"])
    reqs += [
        ["DUMP", "missing"], ["dump", "k:string"], ["DUMP", "k:string", "extra"],
        _restore("t", PAYLOADS["string"], ttl=-1), _restore("t", PAYLOADS["string"], ttl="1.5"),
        _restore("t", PAYLOADS["string"], ttl="0x1"), _restore("t", PAYLOADS["string"], "BOGUS"),
        _restore("t", PAYLOADS["string"], "REPLACE", "IDLETIME", 100), _restore("t2", PAYLOADS["string"], "FREQ", 5),
        _restore("bad", BAD_CRC), _restore("bad", BAD_BODY), _restore("bad", FOOTER_13), _restore("bad", b"short"),
        _restore("bad", b""), _restore("bad", PAYLOADS["string"][:-11] + PAYLOADS["string"][-10:]),
        # a TTL already past: +OK and no key (an existing one is deleted)
        _restore("past", PAYLOADS["hash"], "ABSTTL", ttl=1), _restore("k:hash", PAYLOADS["hash"], "REPLACE",
                                                                       "ABSTTL", ttl=1),
        _restore("wrap", PAYLOADS["string"], ttl=9223372036854775807),  # wraps into the past
        # REPLACE over a key with a TTL (the TTL goes unless one is given), over another type
        ["SET", "ttl", "x", "PX", 100_000], _restore("ttl", PAYLOADS["zset"], "REPLACE"), ["PTTL", "ttl"],
        ["LPUSH", "other", "a"], _restore("other", PAYLOADS["string"], "REPLACE"), ["TYPE", "other"],
        # an expired key: the Python lookup deletes it
        ["DEBUG", "SET-ACTIVE-EXPIRE", "0"], ["SET", "gone", "x", "PX", 1], ["DEBUG", "SLEEP", "0.01"],
        ["DUMP", "gone"], ["SET", "gone2", "x", "PX", 1], ["DEBUG", "SLEEP", "0.01"],
        _restore("gone2", PAYLOADS["list"]), ["SET", "gone3", "x", "PX", 1], ["DEBUG", "SLEEP", "0.01"],
        _restore("gone3", PAYLOADS["list"], "REPLACE"),
        # SCAN's order object, then new keys; another database
        ["SCAN", 0, "COUNT", 1], _restore("scanned", PAYLOADS["set"]), ["SCAN", 0, "COUNT", 1000],
        ["SELECT", 3], _restore("db3", PAYLOADS["intset"]), ["DUMP", "db3"], ["DUMP", "k:string"],
        ["SELECT", 0],
        # the natives remember the database they last stored into: SWAPDB moves the dicts
        # between databases, FLUSHDB gives one a new dict
        ["SWAPDB", 0, 3], _restore("swapped", PAYLOADS["hash"]), ["DUMP", "db3"], ["SELECT", 3],
        _restore("swapped3", PAYLOADS["zset"]), ["SWAPDB", 3, 0], _restore("back", PAYLOADS["list"]),
        ["SELECT", 0], _restore("back0", PAYLOADS["set"]), ["FLUSHDB"], _restore("flushed", PAYLOADS["hash"]),
        ["DBSIZE"], ["SELECT", 3], ["DBSIZE"], ["SELECT", 0],
        # the codec's settings: sanitization counted, checksums skipped
        ["CONFIG", "SET", "sanitize-dump-payload", "yes"], _restore("san", PAYLOADS["hash"]),
        _restore("san2", PAYLOADS["zset"]), _restore("bad", BAD_BODY),
        ["CONFIG", "SET", "sanitize-dump-payload", "no"],
        ["DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", "1"], _restore("nocrc", BAD_CRC), _restore("bad", BAD_BODY),
        ["DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", "0"],
        ["CONFIG", "SET", "rdbcompression", "no"], ["DUMP", "k:long"], ["DUMP", "k:hash"],
        ["CONFIG", "SET", "dump-rdb-version", "12"], ["DUMP", "k:string"], ["DUMP", "k:zset"],
        ["HELLO", "3"], ["DUMP", "missing"], ["DUMP", "k:int"],
        ["INFO", "stats"],
    ]
    return reqs


def _run(reqs: list[list], fast: bool, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """Feed ``reqs`` (in pipelines of 16) to a fresh server; everything the handlers may change."""
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(server_module, "_fast_run", None)
        server, client, transport = _client()
        commands = {cmd.name: cmd for cmd in server.fast_table.values()}
        before = {name: (cmd.calls, cmd.failed_calls, cmd.rejected_calls) for name, cmd in commands.items()}
        replies = []
        for at in range(0, len(reqs), 16):
            client.data_received(b"".join(encode_command(*argv) for argv in reqs[at:at + 16]))
            replies.append(bytes(transport.data))
            transport.data.clear()
        after = {name: (cmd.calls, cmd.failed_calls, cmd.rejected_calls) for name, cmd in commands.items()}
        stats = sorted((name, *(a - b for a, b in zip(after[name], before[name], strict=True)))
                       for name in commands if after[name] != before[name])
        ks = server.keyspace
        state = []
        for db in ks.dbs:
            for key, value in sorted(db.data.items()):
                image = bytes(value) if isinstance(value, bytes | bytearray) else dump_commands.dump_value(server, value)
                ttl = db.expires.get(key)
                state.append((db.index, key, image, ttl if key.startswith(b"abs:") else ttl is not None,
                              db.field(key) is not None))
        # INFO's text holds times and memory figures: compare the counters that matter
        info = replies[-1].split(b"\r\n")
        counters = (server.stat_commands, ks.dirty, ks.stat_hits, ks.stat_misses, ks.stat_expired,
                    server.stat_sanitizations, dict(server.errorstats), server.skip_checksum)  # type: ignore[attr-defined]
        return [r for r in replies[:-1]], [x for x in info if x.startswith(b"dump_payload")], state, stats, counters


def test_native_restore_and_dump_agree_with_python(monkeypatch: pytest.MonkeyPatch) -> None:
    reqs = _stream()
    with_native = _run(reqs, True, monkeypatch)
    dump_commands.use_native_handlers(False)
    try:
        without = _run(reqs, True, monkeypatch)
    finally:
        dump_commands.use_native_handlers(True)
    pure = _run(reqs, False, monkeypatch)
    assert with_native == without
    assert with_native == pure
    replies = b"".join(with_native[0])
    assert replies.count(b"-BUSYKEY") == len(PAYLOADS)  # the stream meant what it says
    assert b"dump_payload_sanitizations:2" in with_native[1]  # san, san2 (a refused payload counts none)


def test_natives_run_the_common_forms_and_decline_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Count the requests that reach the Python handlers' codec calls: none of the common forms."""
    opened: list[bytes] = []
    encoded: list[Any] = []
    real_open, real_encode = dump_commands.open_value, dump_commands.encode_payload

    def counting_open(payload: bytes, options: Any) -> Any:
        opened.append(payload)
        return real_open(payload, options)

    def counting_encode(value: Any, *args: Any) -> Any:
        encoded.append(value)
        return real_encode(value, *args)

    monkeypatch.setattr(dump_commands, "open_value", counting_open)
    monkeypatch.setattr(dump_commands, "encode_payload", counting_encode)
    server, client, transport = _client()
    common = [_restore(f"k:{name}", p, "REPLACE") for name, p in PAYLOADS.items() if name != "bighash"]
    common += [_restore("abs", PAYLOADS["zset"], "ABSTTL", ttl=ABS_FUTURE), _restore("n", PAYLOADS["list"]),
               ["DUMP", "k:string"], ["DUMP", "k:int"], ["DUMP", "missing"]]
    client.data_received(b"".join(encode_command(*argv) for argv in common))
    # the first RESTORE and DUMP ran in Python: they cached the codec settings the natives read
    assert (len(opened), len(encoded)) == (1, 1)
    opened.clear()
    encoded.clear()
    client.data_received(b"".join(encode_command(*argv) for argv in common[:-5] + common[-3:]))
    restores = len(PAYLOADS) - 1  # the small ones, REPLACEd twice; abs and n once
    assert transport.data.count(b"+OK\r\n") == 2 * restores + 2
    assert opened == []
    assert encoded == []
    declined = [_restore("k:string", PAYLOADS["string"], "REPLACE", "IDLETIME", 5), _restore("big", PAYLOADS["bighash"]),
                _restore("bad", BAD_CRC), _restore("bad", FOOTER_13)]
    client.data_received(b"".join(encode_command(*argv) for argv in declined))
    assert len(opened) == len(declined)


def test_natives_of_two_servers_taking_turns() -> None:
    """Each server's keys land in its own databases when two servers' RESTOREs alternate."""
    servers = [_client(), _client()]
    for n in range(6):
        server, client, transport = servers[n % 2]
        client.data_received(encode_command(*_restore(f"k{n}", PAYLOADS["hash" if n % 3 else "zset"])))
        assert transport.data.endswith(b"+OK\r\n")
    for n, (server, _, _) in enumerate(servers):
        assert sorted(server.keyspace.dbs[0].data) == [b"k%d" % i for i in range(n, 6, 2)]
