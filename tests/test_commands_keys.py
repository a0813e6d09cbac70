"""Generic key commands, differentially against real Redis (RESP2 and RESP3)."""

from __future__ import annotations

import time

import pytest

from dumpling.commands.common import glob_match
from tests.servers import parse_reply


def test_del_exists_type(pairs):
    pairs.run([
        ("SET", "a", "1"), ("SET", "b", "2"),
        ("EXISTS", "a", "b", "nokey", "a"),
        ("TYPE", "a"), ("TYPE", "nokey"),
        ("DEL", "a", "nokey", "b", "a"),
        ("EXISTS", "a"), ("UNLINK", "a"), ("DEL",),
        ("EXISTS",), ("TYPE",), ("TYPE", "a", "b"),
    ])


def test_ttl_family(pairs):
    pairs.run([
        ("TTL", "nokey"), ("PTTL", "nokey"), ("EXPIRETIME", "nokey"), ("PEXPIRETIME", "nokey"),
        ("SET", "k", "v"), ("TTL", "k"), ("PTTL", "k"), ("EXPIRETIME", "k"),
        ("PEXPIREAT", "k", "4000000000499"), ("EXPIRETIME", "k"), ("PEXPIRETIME", "k"),
        ("PEXPIREAT", "k", "4000000000500"), ("EXPIRETIME", "k"),
        ("EXPIREAT", "k", "9223372036854775"), ("PERSIST", "k"), ("PERSIST", "k"), ("PERSIST", "nokey"),
        ("TTL", "k"),
    ])


def test_expire_options_and_errors(pairs):
    pairs.run([
        ("SET", "k", "v"),
        ("EXPIRE", "k", "100", "XX"), ("EXPIRE", "k", "100", "GT"), ("EXPIRE", "k", "100", "LT"),
        ("TTL", "k"), ("EXPIRE", "k", "200", "NX"), ("EXPIRE", "k", "50", "GT"), ("EXPIRE", "k", "300", "GT"),
        ("TTL", "k"), ("EXPIRE", "k", "10", "XX", "LT"), ("TTL", "k"),
        ("EXPIRE", "k", "10", "NX", "XX"), ("EXPIRE", "k", "10", "GT", "LT"), ("EXPIRE", "k", "10", "FOO"),
        ("EXPIRE", "k", "abc"), ("EXPIRE", "k", "9223372036854775"), ("PEXPIRE", "k", "9223372036854775807"),
        ("EXPIRE", "nokey", "10"), ("EXPIRE", "k", "-5", "GT"),
        ("SET", "p", "v"), ("EXPIRE", "p", "-5", "GT"), ("EXISTS", "p"),
        ("EXPIRE", "p", "0", "LT"), ("EXISTS", "p"),
        ("SET", "q", "v"), ("EXPIRE", "q", "-1"), ("EXISTS", "q"),
        ("SET", "r", "v"), ("PEXPIREAT", "r", "1"), ("EXISTS", "r"),
    ])


def test_lazy_expiry(pairs):
    pairs.same("DEBUG", "SET-ACTIVE-EXPIRE", "0")
    try:
        pairs.run([("SET", "k", "v", "PX", "50"), ("SET", "k2", "v", "PX", "50"), ("SET", "k3", "v")])
        time.sleep(0.12)
        pairs.same("DBSIZE")  # logically expired keys are still counted
        pairs.same_unordered("KEYS", "*")  # filtered without being deleted
        pairs.same("DBSIZE")
        pairs.run([("GET", "k"), ("DBSIZE"[:6],), ("EXISTS", "k2"), ("DBSIZE",), ("TTL", "k3")])
    finally:
        pairs.same("DEBUG", "SET-ACTIVE-EXPIRE", "1")


def test_active_expiry_removes_keys(r):
    for i in range(200):
        r.set(f"vol:{i}", "x", px=30)
    r.set("keep", "y")
    deadline = time.time() + 20
    while time.time() < deadline and r.dbsize() > 1:
        time.sleep(0.1)
    assert r.dbsize() == 1
    info = r.info("stats")
    assert info["expired_keys"] >= 200


def test_keys_patterns(pairs):
    names = ["a", "b", "c", "d", "-", "ab", "abc", "a*", "a\\", "hello", "hallo", "hxllo", "hllo", "h-llo",
             "[", "a[", "z", "]", "^", "\\", "aXb", "a]"]
    for n in names:
        pairs.same("SET", n, "1")
    for pattern in ["*", "h?llo", "h*llo", "h[ae]llo", "h[^e]llo", "h[a-b]llo", "h[e-]llo", "h[-e]llo", "[]]", "[^]",
                    "[a-]", "a\\*", "[\\]]", "a**", "[z-a]", "a[", "*[", "[abc", "a[b", "\\", "a\\"]:
        pairs.same_unordered("KEYS", pattern)


@pytest.mark.parametrize(
    "pattern,text,expected",
    [(b"h?llo", b"hello", True), (b"h[^e]llo", b"hello", False), (b"[z-a]", b"q", True), (b"a*", b"a", True),
     (b"*a*b", b"xaxxb", True), (b"[abc", b"b", True), (b"a[", b"a", False), (b"\\*", b"*", True)],
)
def test_glob_unit(pattern, text, expected):
    assert glob_match(pattern, text) is expected


def test_glob_is_linear_on_hostile_patterns():
    start = time.perf_counter()
    assert not glob_match(b"*a*a*a*a*a*a*a*a*a*a*a*a*b", b"a" * 60)
    assert time.perf_counter() - start < 1


def test_scan_arguments(pairs):
    pairs.run([
        ("SCAN", "0", "COUNT", "0"), ("SCAN", "0", "COUNT", "x"), ("SCAN", "x"), ("SCAN", " 0"),
        ("SCAN", "0", "COUNT"), ("SCAN", "0", "FOO", "bar"), ("SCAN", "0", "MATCH"),
    ])


def test_scan_returns_everything(pairs):
    for i in range(300):
        pairs.ours.call("SET", f"key:{i}", "v")
    pairs.ours.call("RPUSH", "alist", "x")
    seen: set[bytes] = set()
    cursor = b"0"
    from tests.servers import parse_reply

    while True:
        cursor, keys = parse_reply(pairs.ours.call("SCAN", cursor, "COUNT", "17"))
        seen.update(keys)
        if cursor == b"0":
            break
    assert {f"key:{i}".encode() for i in range(300)} <= seen


def test_scan_guarantee_while_keys_are_added_and_removed(r):
    present = {f"stay:{i}".encode() for i in range(500)}
    for key in present:
        r.set(key, "1")
    for i in range(500):
        r.set(f"gone:{i}", "1")
    seen: set[bytes] = set()
    cursor = 0
    step = 0
    while True:
        cursor, keys = r.scan(cursor, count=20)
        seen.update(keys)
        # churn: delete and add keys between calls, enough to force compactions
        for j in range(40):
            r.delete(f"gone:{step * 40 + j}")
            r.set(f"new:{step}:{j}", "1")
        step += 1
        if cursor == 0:
            break
    assert present <= seen


def test_scan_match_and_type(pairs):
    pairs.ours.call("SET", "s1", "v")
    pairs.ours.call("SET", "s2", "v")
    from tests.servers import parse_reply

    cursor, keys = parse_reply(pairs.ours.call("SCAN", "0", "MATCH", "s*", "COUNT", "100", "TYPE", "string"))
    assert cursor == b"0" and sorted(keys) == [b"s1", b"s2"]
    cursor, keys = parse_reply(pairs.ours.call("SCAN", "0", "COUNT", "100", "TYPE", "nosuchtype"))
    assert keys == []


def _scan_all(conn, *options: str) -> tuple[set[bytes], int]:
    """The keys a whole SCAN returned, as a set, and how many calls it took."""
    seen: set[bytes] = set()
    cursor, calls = b"0", 0
    while True:
        cursor, keys = parse_reply(conn.call("SCAN", cursor, *options))
        seen.update(keys)
        calls += 1
        if cursor == b"0":
            return seen, calls


def test_scan_keys_randomkey_match_redis_as_sets(pairs):
    """The same keyspace on both servers, grown through resizes and thinned out by deletes
    (a shrink): whole SCANs (COUNT, MATCH, TYPE), KEYS and RANDOMKEY give the same sets."""
    for start in range(0, 2000, 100):
        pairs.both("MSET", *[part for i in range(start, start + 100) for part in (f"key:{i}", "v")])
        pairs.both("RPUSH", f"list:{start}", "x")
    for start in range(0, 2000, 300):
        pairs.both("DEL", *[f"key:{i}" for i in range(start, start + 300, 3)])
    for options in [(), ("COUNT", "1"), ("COUNT", "50"), ("MATCH", "key:1*", "COUNT", "30"),
                    ("TYPE", "list", "COUNT", "100")]:
        ours, calls = _scan_all(pairs.ours, *options)
        theirs, _ = _scan_all(pairs.theirs, *options)
        assert ours == theirs, options
        if options == ("COUNT", "50"):
            assert calls < len(ours) // 10  # about COUNT keys a call, not one bucket a call
    assert set(parse_reply(pairs.ours.call("KEYS", "*"))) == set(parse_reply(pairs.theirs.call("KEYS", "*")))
    keys = set(parse_reply(pairs.ours.call("KEYS", "*")))
    picks = {parse_reply(pairs.ours.call("RANDOMKEY")) for _ in range(300)}
    assert picks <= keys and len(picks) > 200  # (each of ~1600 keys: nearly every pick new)


def test_scan_and_randomkey_follow_flushdb_and_swapdb(pairs):
    pairs.run([("SET", "a", "1"), ("SELECT", "1"), ("SET", "b", "2"), ("SWAPDB", "0", "1"), ("SELECT", "0"),
               ("RANDOMKEY",)])
    assert _scan_all(pairs.ours) == ({b"b"}, 1) and _scan_all(pairs.theirs)[0] == {b"b"}
    pairs.run([("FLUSHDB",), ("RANDOMKEY",), ("SCAN", "0")])


def test_randomkey(pairs):
    pairs.same("RANDOMKEY")
    pairs.same("SET", "only", "1")
    pairs.same("RANDOMKEY")


def test_rename_family(pairs):
    pairs.run([
        ("RENAME", "nokey", "x"), ("RENAMENX", "nokey", "x"),
        ("SET", "a", "1"), ("EXPIRE", "a", "100"), ("RENAME", "a", "a"), ("RENAMENX", "a", "a"),
        ("RENAME", "a", "b"), ("EXISTS", "a"), ("TTL", "b"), ("GET", "b"),
        ("SET", "c", "2"), ("RENAMENX", "b", "c"), ("RENAME", "b", "c"), ("GET", "c"), ("TTL", "c"),
    ])


def test_copy(pairs):
    pairs.run([
        ("COPY", "nokey", "x"), ("SET", "a", "1"), ("PEXPIRE", "a", "100000"),
        ("COPY", "a", "a"), ("COPY", "a", "b"), ("GET", "b"), ("COPY", "a", "b"), ("SET", "a", "2"),
        ("COPY", "a", "b", "REPLACE"), ("GET", "b"), ("COPY", "a", "b", "DB", "99"), ("COPY", "a", "b", "DB", "x"),
        ("COPY", "a", "b", "FOO"), ("COPY", "a", "a", "DB", "1"), ("SELECT", "1"), ("GET", "a"), ("SELECT", "0"),
    ])


def test_move_and_select(pairs):
    pairs.run([
        ("SET", "a", "1"), ("EXPIRE", "a", "100"), ("MOVE", "a", "0"), ("MOVE", "a", "99"), ("MOVE", "a", "x"),
        ("MOVE", "nokey", "1"), ("MOVE", "a", "1"), ("EXISTS", "a"), ("SELECT", "1"), ("GET", "a"), ("TTL", "a"),
        ("SET", "b", "x"), ("SELECT", "0"), ("SET", "b", "y"), ("MOVE", "b", "1"), ("GET", "b"),
        ("SELECT", "16"), ("SELECT", "-1"), ("SELECT", "x"),
    ])


def test_swapdb_and_flush(pairs):
    pairs.run([
        ("SET", "a", "1"), ("SELECT", "1"), ("SET", "b", "2"), ("SWAPDB", "0", "1"), ("GET", "a"), ("GET", "b"),
        ("SELECT", "0"), ("GET", "a"), ("SWAPDB", "0", "0"), ("SWAPDB", "x", "1"), ("SWAPDB", "0", "x"),
        ("SWAPDB", "0", "99"), ("DBSIZE",), ("FLUSHDB", "FOO"), ("FLUSHDB", "ASYNC"), ("DBSIZE",),
        ("SELECT", "1"), ("DBSIZE",), ("FLUSHALL", "SYNC"), ("DBSIZE",), ("FLUSHALL", "a", "b"),
    ])


def test_touch(pairs):
    pairs.run([("SET", "a", "1"), ("TOUCH", "a", "b", "a"), ("TOUCH",)])


def test_object_subcommands(pairs):
    pairs.run([
        ("OBJECT",), ("OBJECT", "FOO"), ("OBJECT", "HELP", "x"), ("OBJECT", "ENCODING"),
        ("OBJECT", "ENCODING", "nokey"), ("OBJECT", "REFCOUNT", "nokey"), ("OBJECT", "IDLETIME", "nokey"),
        ("OBJECT", "FREQ", "nokey"), ("SET", "n", "123"), ("OBJECT", "REFCOUNT", "n"), ("SET", "s", "abc"),
        ("OBJECT", "REFCOUNT", "s"), ("OBJECT", "FREQ", "s"),
    ])
    # A fresh key's idle time: 0, or 1 in either server when its 1 s LRU clock ticked since the SET.
    for reply in pairs.both("OBJECT", "IDLETIME", "s"):
        assert reply in (b":0\r\n", b":1\r\n"), reply


def test_object_help(pair):
    # Recorded from Redis 7.4.1 (7.0 ends with "Prints this help.")
    assert pair.same_help("OBJECT", "HELP") == (
        b"*15\r\n+OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n+ENCODING <key>\r\n"
        b"+    Return the kind of internal representation used in order to store the value\r\n"
        b"+    associated with a <key>.\r\n+FREQ <key>\r\n"
        b"+    Return the access frequency index of the <key>. The returned integer is\r\n"
        b"+    proportional to the logarithm of the recent access frequency of the key.\r\n+IDLETIME <key>\r\n"
        b"+    Return the idle time of the <key>, that is the approximated number of\r\n"
        b"+    seconds elapsed since the last access to the key.\r\n+REFCOUNT <key>\r\n"
        b"+    Return the number of references of the value associated with the specified\r\n"
        b"+    <key>.\r\n+HELP\r\n+    Print this help.\r\n")


@pytest.mark.parametrize("value", ["123", "-9223372036854775808", "9223372036854775807", "12345678901234567890",
                                   "a" * 44, "a" * 45, "", "01", "1.5", " 1"])
def test_object_encoding_strings(pairs, value):
    pairs.same("SET", "k", value)
    pairs.same("OBJECT", "ENCODING", "k")


def test_object_idletime_and_freq_follow_policy():
    from tests.servers import start_dumpling

    server = start_dumpling()
    try:
        conn = server.raw()
        conn.call("SET", "k", "v")
        conn.call("DEBUG", "SLEEP", "0")
        assert conn.call("OBJECT", "IDLETIME", "k") in (b":0\r\n", b":1\r\n")  # 1: the LRU clock ticked since
        assert conn.call("OBJECT", "FREQ", "k").startswith(b"-ERR An LFU maxmemory policy is not selected")
        conn.call("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
        conn.call("SET", "f", "v")
        assert conn.call("OBJECT", "FREQ", "f") == b":5\r\n"  # new keys start at LFU_INIT_VAL
        for _ in range(1000):
            conn.call("GET", "f")
        freq = int(conn.call("OBJECT", "FREQ", "f")[1:-2])
        # logarithmic counter (lfu-log-factor 10): reaching 10 takes ~105 hits on average, 13 ~290,
        # 17 ~800 (300 hits stayed under 10 about once in a few hundred runs); ~2000 give 25-29
        assert 10 <= freq <= 30
        assert conn.call("OBJECT", "IDLETIME", "f").startswith(b"-ERR An LFU maxmemory policy is selected")
        conn.close()
    finally:
        server.stop()


def test_idletime_grows_and_resets():
    from tests.servers import start_dumpling

    server = start_dumpling()
    try:
        conn = server.raw()

        def idle_within(elapsed_since: float) -> int:
            """OBJECT IDLETIME, at most the seconds elapsed (+1: the 1 s LRU clock's tick)."""
            idle = int(conn.call("OBJECT", "IDLETIME", "k")[1:-2])
            assert idle <= time.monotonic() - elapsed_since + 1, idle
            return idle

        start = time.monotonic()
        conn.call("SET", "k", "v")
        time.sleep(2.1)
        # TYPE, EXISTS, TTL and OBJECT do not touch the key
        for cmd in (("TYPE", "k"), ("EXISTS", "k"), ("TTL", "k"), ("OBJECT", "ENCODING", "k")):
            conn.call(*cmd)
        assert idle_within(start) >= 2
        conn.call("CLIENT", "NO-TOUCH", "ON")
        conn.call("GET", "k")
        assert idle_within(start) >= 2
        touched = time.monotonic()
        conn.call("TOUCH", "k")  # TOUCH updates even under NO-TOUCH
        idle_within(touched)
        conn.close()
    finally:
        server.stop()


# ----------------------------------------------------------------------------- glob: hostile patterns
# Redis's stringmatchlen gives up on the rest of a pattern reached through more than 1000
# stars, and once one star has tried every position, so do all the stars around it.

HOSTILE = [
    (b"*?" * 50000, b"x" * 50000, False),
    (b"*a" * 1000, b"a" * 1000, True),
    (b"*a" * 1001, b"a" * 1001, False),  # the last 'a' is reached through 1001 stars
    (b"*a" * 1000 + b"*", b"a" * 1001, True),  # ... unless a final star matches it at depth 1000
    (b"a*" * 1002, b"a" * 1002, False),
    (b"*" + b"a" * 2000 + b"b", b"a" * 4000, False),
]


@pytest.mark.parametrize("pattern,text,expected", HOSTILE, ids=range(len(HOSTILE)))
def test_glob_nesting_limit_and_give_up_rule(pattern, text, expected):
    assert glob_match(pattern, text) is expected


def test_glob_nocase_follows_redis():
    assert glob_match(b"G[D-F]T", b"get", nocase=True)
    assert not glob_match(b"[\\G]et", b"get", nocase=True)  # an escaped class member is compared as is
    assert glob_match(b"[^", b"x") and not glob_match(b"[^", b"")  # an unterminated "[^" is any byte


def test_hostile_patterns_match_redis(pair):
    for _, text, _ in HOSTILE:
        pair.same("SET", text, "1")
        pair.same("HSET", "h", text, "1")
        pair.same("SADD", "s", text)
        pair.same("ZADD", "z", "1", text)
    for pattern, _, _ in HOSTILE:
        pair.same_unordered("KEYS", pattern)
        pair.same_unordered("SCAN", "0", "MATCH", pattern, "COUNT", "1000")
        for scan, key in (("HSCAN", "h"), ("SSCAN", "s"), ("ZSCAN", "z")):
            pair.same_unordered(scan, key, "0", "MATCH", pattern, "COUNT", "1000")


def test_hostile_patterns_in_pubsub_match_redis(pair, dumpling_server, redis_server):
    subscribers = [server.raw() for server in (dumpling_server, redis_server)]
    try:
        for sub in subscribers:
            for pattern, _, _ in HOSTILE:
                sub.call("PSUBSCRIBE", pattern)
        for _, text, _ in HOSTILE:
            pair.same("PUBLISH", text, "m")
        for sub in subscribers:
            sub.call("SUBSCRIBE", b"a" * 1001)
        for pattern, _, _ in HOSTILE:
            pair.same_unordered("PUBSUB", "CHANNELS", pattern)
    finally:
        for sub in subscribers:
            sub.close()


def test_config_get_and_command_list_patterns_match_redis(pair):
    for pattern in ("[!m]axmemory", "MAXMEMORY-POLICY*", "maxmemory-p[^a]licy", "max\\memory", "*?" * 5000,
                    "maxmemory-polic[y", "maxmemory-[o-q]olicy"):
        pair.same_unordered("CONFIG", "GET", pattern)
    pair.same_unordered("COMMAND", "LIST", "FILTERBY", "PATTERN", "G[D-F]T")


def test_hostile_keys_pattern_leaves_the_server_responsive(dumpling_server):
    with dumpling_server.raw() as setup:
        for i in range(5):
            setup.call("SET", b"%d" % i + b"x" * 50000, "1")
    with dumpling_server.raw() as keys, dumpling_server.raw() as other:
        started = dumpling_server.cpu_seconds()
        keys.send(b"*2\r\n$4\r\nKEYS\r\n$100000\r\n" + b"*?" * 50000 + b"\r\n")
        assert other.call("PING") == b"+PONG\r\n"
        assert dumpling_server.cpu_seconds() - started < 5.0  # CPU, not wall time: a loaded machine stretches that
        assert keys.read_reply() == b"*0\r\n"
        assert other.call("FLUSHALL") == b"+OK\r\n"


# ----------------------------------------------------------------------------- time arguments at their limits
# Every command that takes a time, at the edges of Redis 7.4's overflow checks (C's
# LLONG_MIN / 1000 truncates: -9223372036854775, where Python's // gives ...776).

LL_MAX, LL_MIN = "9223372036854775807", "-9223372036854775808"
SEC_MAX, SEC_MIN = "9223372036854775", "-9223372036854775"


def test_expire_family_overflow_edges(pairs):
    for cmd in ("EXPIRE", "EXPIREAT", "PEXPIRE", "PEXPIREAT"):
        for when in (SEC_MAX, SEC_MIN, "9223372036854776", "-9223372036854776", LL_MAX, LL_MIN,
                     "9223372036854775806", "9223372036854775808", "-9223372036854775809"):
            pairs.same("SET", "k", "v")
            pairs.same(cmd, "k", when)
            pairs.same(cmd, "nokey", when)
            pairs.same("EXISTS", "k")
            _same_ttl_state(pairs, "k")


def _same_ttl_state(pairs, key):
    """The same TTL state (none, gone, or a TTL) whatever the clock said."""
    ours, theirs = (int(reply[1:-2]) for reply in pairs.both("PTTL", key))
    assert min(ours, 0) == min(theirs, 0), (ours, theirs)


def test_set_getex_setex_overflow_edges(pairs):
    pairs.same("SET", "k", "v")
    for when in (SEC_MAX, "9223372036854776", LL_MAX, "0", "-1", LL_MIN, "9223372036854775808"):
        for option in ("EX", "PX", "EXAT", "PXAT"):
            pairs.same("SET", "k", "v", option, when)
            pairs.same("GETEX", "k", option, when)
            _same_ttl_state(pairs, "k")
        pairs.same("SETEX", "k", when, "v")
        pairs.same("PSETEX", "k", when, "v")
        _same_ttl_state(pairs, "k")


def test_restore_ttl_overflow_edges(pairs):
    pairs.same("SET", "src", "v")
    payload = pairs.same("DUMP", "src")
    blob = payload.split(b"\r\n", 1)[1][:-2]
    for ttl in (LL_MAX, "9223372036854775806", "-1", LL_MIN, "9223372036854775808"):
        pairs.same("RESTORE", "k", ttl, blob, "REPLACE")
        pairs.same("EXISTS", "k")
        _same_ttl_state(pairs, "k")
        pairs.same("RESTORE", "k", ttl, blob, "REPLACE", "ABSTTL")
        pairs.same("PEXPIRETIME", "k")


def test_blocking_timeouts_shared_edges(pairs):
    # Where Redis 7.0 and 7.4 agree (7.0 lacks the now+timeout overflow check).
    for timeout in ("-1", "-1.5", LL_MIN, "x", "-inf", "nan", "-1e400"):
        pairs.same("BLPOP", "nolist", timeout)
        pairs.same("BZPOPMIN", "nolist", timeout)
    for timeout in ("-1", LL_MIN, "1.5", "9223372036854775808"):
        pairs.same("XREAD", "BLOCK", timeout, "STREAMS", "s", "$")
        pairs.same("WAIT", "0", timeout)


def test_timeout_overflow_is_out_of_range(r):
    # Redis 7.4's getTimeoutFromObjectOrReply: now + timeout must not overflow.
    import redis

    for args in (("BLPOP", "nolist", SEC_MAX), ("BLMOVE", "a", "b", "LEFT", "LEFT", "inf"), ("BZPOPMAX", "z", "1e400"),
                 ("XREAD", "BLOCK", LL_MAX, "STREAMS", "s", "$"), ("WAIT", "0", LL_MAX)):
        with pytest.raises(redis.ResponseError, match="^timeout is out of range$"):
            r.execute_command(*args)


def test_hexpire_family_overflow_edges(r):
    # Redis 7.4's hexpireGenericCommand (no HEXPIRE in the 7.0 oracle).
    import redis

    r.hset("h", "f", "v")
    max_ms = (0xFFFFFFFFFFFF >> 2)  # HFE_MAX_ABS_TIME_MSEC
    assert r.execute_command("HPEXPIREAT", "h", max_ms, "FIELDS", 1, "f") == [1]
    for args in (("HPEXPIREAT", "h", max_ms + 1), ("HEXPIREAT", "h", max_ms // 1000 + 1), ("HEXPIRE", "h", max_ms // 1000),
                 ("HPEXPIRE", "h", LL_MAX)):
        with pytest.raises(redis.ResponseError, match=f"^invalid expire time in '{args[0].lower()}' command$"):
            r.execute_command(*args, "FIELDS", 1, "f")
    for cmd in ("HEXPIRE", "HPEXPIRE", "HEXPIREAT", "HPEXPIREAT"):
        for when in (-1, LL_MIN, SEC_MIN):
            with pytest.raises(redis.ResponseError, match="^invalid expire time, must be >= 0$"):
                r.execute_command(cmd, "h", when, "FIELDS", 1, "f")
    assert r.hget("h", "f") == b"v"


def test_bad_expire_leaves_key_and_server_alone(dumpling_server):
    with dumpling_server.raw() as conn, dumpling_server.raw() as other:
        assert conn.call("SET", "foo", "v") == b"+OK\r\n"
        assert conn.call("EXPIRE", "foo", "-9223372036854776") == b"-ERR invalid expire time in 'expire' command\r\n"
        assert other.call("PING") == b"+PONG\r\n"
        assert conn.call("TTL", "foo") == b":-1\r\n"
        assert conn.call("DEL", "foo") == b":1\r\n"


def _lazyfreed(conn) -> int:
    info = parse_reply(conn.call("INFO", "memory")).decode()
    return int(info.split("lazyfreed_objects:")[1].split("\r\n")[0])


def test_lazyfreed_objects_counts_what_redis_74_frees_in_background(dumpling_server):
    """INFO's lazyfreed_objects, recorded on Redis 7.4.1 (read after its lazyfree thread settled):
    UNLINK (and DEL under lazyfree-lazy-user-del) counts a value whose freeing takes more than 64
    allocations; a flush counts every key, also a plain or SYNC one outside MULTI (7.4 runs it as
    a blocking ASYNC flush), but not a plain flush inside MULTI."""
    with dumpling_server.raw() as conn:
        conn.call("FLUSHALL")
        conn.call("CONFIG", "RESETSTAT")
        conn.call("SADD", "ints", *range(100))  # intset: one allocation
        conn.call("ZADD", "z", *[x for i in range(200) for x in (i, f"m{i}")])  # skiplist of 200
        conn.call("HSET", "h", *[x for i in range(1000) for x in (f"f{i}", i)])  # hashtable of 1000
        conn.call("CONFIG", "SET", "stream-node-max-entries", "5")
        try:
            for i in range(1000):
                conn.call("XADD", "st", "*", "f", i)  # 200 radix-tree nodes
            conn.call("XADD", "st2", "*", "a", "b")
        finally:
            conn.call("CONFIG", "SET", "stream-node-max-entries", "100")
        seen = []
        for key in ("ints", "z", "h", "st", "st2", "nokey"):
            conn.call("UNLINK", key)
            seen.append(_lazyfreed(conn))
        assert seen == [0, 1, 2, 3, 3, 3]
        conn.call("SADD", "big", *[f"m{i}" for i in range(200)])
        conn.call("DEL", "big")
        assert _lazyfreed(conn) == 3
        conn.call("CONFIG", "SET", "lazyfree-lazy-user-del", "yes")
        try:
            conn.call("SADD", "big", *[f"m{i}" for i in range(200)])
            conn.call("DEL", "big")
        finally:
            conn.call("CONFIG", "SET", "lazyfree-lazy-user-del", "no")
        assert _lazyfreed(conn) == 4
        for flush, expected in ((("FLUSHALL",), 7), (("FLUSHDB", "SYNC"), 10), (("FLUSHALL", "ASYNC"), 13)):
            conn.call("MSET", "x", 1, "y", 2, "z", 3)
            conn.call(*flush)
            assert _lazyfreed(conn) == expected, flush
        for flush, expected in ((("FLUSHALL",), 13), (("FLUSHALL", "ASYNC"), 15)):
            conn.call("MULTI")
            conn.call("MSET", "x", 1, "y", 2)
            conn.call(*flush)
            conn.call("EXEC")
            assert _lazyfreed(conn) == expected, ("MULTI", flush)
        conn.call("CONFIG", "RESETSTAT")
        assert _lazyfreed(conn) == 0
