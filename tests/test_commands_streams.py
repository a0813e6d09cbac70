"""Stream commands and consumer groups, differentially against real Redis (RESP2/RESP3).

Replies that carry wall-clock times (delivery times, idle, seen/active times) are
compared after masking those fields.  Behaviour that changed after Redis 7.0 (the
oracle here) is asserted against the documented 7.2/7.4 replies: XINFO CONSUMERS
``inactive``, XINFO STREAM FULL ``active-time``, ``XREAD … +``, the unbalanced
STREAMS error text and consumers created by XCLAIM/XAUTOCLAIM/XREADGROUP.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.servers import Pair, parse_reply

TIME_KEYS = {b"seen-time", b"active-time", b"idle", b"inactive"}


def run(p: Pair, *cmds: tuple[object, ...]) -> None:
    for cmd in cmds:
        p.same(*cmd)


def masked(value: Any, pel_time_at: int | None = None) -> Any:
    """Replace wall-clock fields by 'T' so replies from two servers compare."""
    if isinstance(value, dict):
        return {k: ("T" if k in TIME_KEYS else masked(v, pel_time_at)) for k, v in value.items()}
    if isinstance(value, list):
        out = []
        skip = False
        for i, item in enumerate(value):
            if skip:
                out.append("T")
                skip = False
                continue
            if isinstance(item, bytes) and item in TIME_KEYS and i % 2 == 0:
                out.append(item)
                skip = True
                continue
            out.append(masked(item, pel_time_at))
        if pel_time_at is not None and len(out) in (3, 4) and isinstance(out[0], bytes) and b"-" in out[0]:
            if all(isinstance(x, int) for x in out[-2:]):
                out[pel_time_at if len(out) == 4 else 1] = "T"
        return out
    return value


def same_masked(p: Pair, *cmd: object, pel_time_at: int | None = 2) -> Any:
    ours, theirs = p.both(*cmd)
    a = masked(parse_reply(ours), pel_time_at)
    b = masked(parse_reply(theirs), pel_time_at)
    assert a == b, f"{cmd!r}\n  dumpling: {ours!r}\n  redis:    {theirs!r}"
    return a


@pytest.fixture
def small_nodes(pairs: Pair) -> Iterator[Pair]:
    """stream-node-max-entries 4 on both servers (restored afterwards)."""
    pairs.same("CONFIG", "SET", "stream-node-max-entries", "4")
    yield pairs
    pairs.both("CONFIG", "SET", "stream-node-max-entries", "100")
    pairs.both("CONFIG", "SET", "stream-node-max-bytes", "4096")


def fill(p: Pair, key: str, n: int, start_ms: int = 1) -> None:
    for i in range(n):
        p.same("XADD", key, f"{start_ms + i}-0", "f", str(i), "g", "x" * (i % 3))


# ----------------------------------------------------------------------------- XADD


def test_xadd_ids(pairs: Pair) -> None:
    run(
        pairs,
        ("XADD", "s", "5-1", "a", "1"),
        ("XADD", "s", "5-1", "a", "1"),
        ("XADD", "s", "5-0", "a", "1"),
        ("XADD", "s", "4", "a", "1"),
        ("XADD", "s", "5-*", "a", "2"),
        ("XADD", "s", "5-*", "a", "3"),
        ("XADD", "s", "6-*", "a", "4"),
        ("XADD", "s", "7", "a", "5"),
        ("XADD", "s", "7-18446744073709551615", "a", "6"),
        ("XADD", "s", "0-0", "a", "1"),
        ("XADD", "s", "0-*", "a", "1"),
        ("XADD", "s", "-", "a", "1"),
        ("XADD", "s", "+", "a", "1"),
        ("XADD", "s", "x-1", "a", "1"),
        ("XADD", "s", "1-x", "a", "1"),
        ("XADD", "s", "1-*-1", "a", "1"),
        ("XADD", "s", "*-1", "a", "1"),
        ("XADD", "s", "18446744073709551616-0", "a", "1"),
        ("XADD", "s", "-1-0", "a", "1"),
        ("XADD", "s", "10", "a"),
        ("XADD", "s", "10", "a", "1", "b"),
        ("XADD", "s", "10-0"),
        ("XADD", "s", "0010-0", "a", "1"),
        ("XADD", "s", "+20-0", "a", "1"),
        ("XADD", "s", "21-0010", "a", "1"),
        ("XRANGE", "s", "-", "+"),
        ("XLEN", "s"),
        ("XADD", "e", "0-*", "a", "1"),
        ("XADD", "n", "NOMKSTREAM", "1-1", "a", "1"),
        ("EXISTS", "n"),
        ("XADD", "m", "18446744073709551615-18446744073709551615", "a", "1"),
        ("XADD", "m", "*", "a", "1"),
        ("XADD", "m", "18446744073709551615-*", "a", "1"),
        ("SET", "str", "x"),
        ("XADD", "str", "*", "a", "1"),
        ("XLEN", "str"),
        ("XLEN", "nokey"),
    )


def test_xadd_auto_id(pairs: Pair) -> None:
    for conn in (pairs.ours, pairs.theirs):
        first = parse_reply(conn.call("XADD", "s", "*", "a", "1"))
        second = parse_reply(conn.call("XADD", "s", "*", "a", "2"))
        ms1, seq1 = map(int, first.split(b"-"))
        ms2, seq2 = map(int, second.split(b"-"))
        assert (ms2, seq2) > (ms1, seq1)
        conn.call("XADD", "f", "99999999999999-5", "a", "1")
        assert conn.call("XADD", "f", "*", "a", "1") == b"$16\r\n99999999999999-6\r\n"


def test_xadd_trim_options(pairs: Pair) -> None:
    fill(pairs, "s", 10)
    run(
        pairs,
        ("XADD", "s", "MAXLEN", "5", "100-0", "a", "1"),
        ("XLEN", "s"),
        ("XADD", "s", "MAXLEN", "=", "3", "101-0", "a", "1"),
        ("XRANGE", "s", "-", "+"),
        ("XADD", "s", "MINID", "101", "102-0", "a", "1"),
        ("XRANGE", "s", "-", "+"),
        ("XADD", "s", "MAXLEN", "~", "1", "103-0", "a", "1"),
        ("XLEN", "s"),
        ("XADD", "s", "MAXLEN", "1", "LIMIT", "10", "104-0", "a", "1"),
        ("XADD", "s", "LIMIT", "10", "104-0", "a", "1"),
        ("XADD", "s", "MAXLEN", "1", "MINID", "1", "104-0", "a", "1"),
        ("XADD", "s", "MAXLEN", "-1", "104-0", "a", "1"),
        ("XADD", "s", "MAXLEN", "x", "104-0", "a", "1"),
        ("XADD", "s", "MINID", "-", "104-0", "a", "1"),
        ("XADD", "s", "MINID", "~", "x", "104-0", "a", "1"),
        ("XADD", "s", "MAXLEN", "~", "0", "LIMIT", "-1", "104-0", "a", "1"),
        ("XADD", "s", "NOMKSTREAM", "MAXLEN", "0", "105-0", "a", "1"),
        ("XLEN", "s"),
        ("XINFO", "STREAM", "s"),
        ("XADD", "s", "MAXLEN", "0", "*"),
    )


def test_approximate_trimming_follows_nodes(small_nodes: Pair) -> None:
    p = small_nodes
    fill(p, "s", 23)
    run(
        p,
        ("XINFO", "STREAM", "s"),
        ("XADD", "s", "MAXLEN", "~", "10", "100-0", "a", "1"),
        ("XLEN", "s"),
        ("XINFO", "STREAM", "s"),
        ("XTRIM", "s", "MAXLEN", "~", "2"),
        ("XLEN", "s"),
        ("XTRIM", "s", "MINID", "~", "100"),
        ("XRANGE", "s", "-", "+"),
        ("XINFO", "STREAM", "s"),
    )
    fill(p, "t", 30)
    run(
        p,
        ("XTRIM", "t", "MAXLEN", "~", "5", "LIMIT", "8"),
        ("XLEN", "t"),
        ("XTRIM", "t", "MAXLEN", "~", "5", "LIMIT", "0"),
        ("XLEN", "t"),
        ("XTRIM", "t", "MINID", "22", "LIMIT", "3"),
        ("XTRIM", "t", "MINID", "=", "27"),
        ("XINFO", "STREAM", "t"),
        ("XDEL", "t", "28-0", "29-0"),
        ("XINFO", "STREAM", "t"),
        ("XTRIM", "t", "MAXLEN", "0"),
        ("XINFO", "STREAM", "t"),
    )


def test_node_layout_by_bytes(small_nodes: Pair) -> None:
    p = small_nodes
    p.same("CONFIG", "SET", "stream-node-max-entries", "0")
    p.same("CONFIG", "SET", "stream-node-max-bytes", "200")
    for i in range(40):
        p.same("XADD", "s", f"{i + 1}-{i % 3}", "field", "v" * (i % 17), f"k{i % 4}", str(i * 1000))
    run(p, ("XINFO", "STREAM", "s"), ("XTRIM", "s", "MAXLEN", "~", "17"), ("XLEN", "s"), ("XINFO", "STREAM", "s"))


def test_radix_tree_counts(small_nodes: Pair) -> None:
    """radix-tree-keys/-nodes for assorted ID layouts, with deletions emptying nodes."""
    p = small_nodes
    ids = ["1-0", "2-0", "3-0", "4-0", "5-0", "256-0", "257-0", "65536-0", "65537-0", "70000-5",
           "1099511627776-0", "1099511627777-3", "1099511627777-4", "1099511627777-300",
           "1099511627777-65536", "1099511627777-70000", "281474976710656-1", "281474976710656-2"]
    for i, entry_id in enumerate(ids):
        p.same("XADD", "s", entry_id, "n", str(i))
        p.same("XINFO", "STREAM", "s")
    for entry_id in ("256-0", "257-0", "65536-0", "65537-0", "1-0", "1099511627777-300"):
        p.same("XDEL", "s", entry_id)
        p.same("XINFO", "STREAM", "s")
    p.same("XADD", "s", "281474976710657-0", "n", "x")
    p.same("XINFO", "STREAM", "s")


# ----------------------------------------------------------------------------- ranges


def test_xrange(pairs: Pair) -> None:
    fill(pairs, "s", 8)
    pairs.same("XADD", "s", "8-1", "x", "y")
    pairs.same("XADD", "s", "8-18446744073709551615", "x", "z")
    for lo, hi in [("-", "+"), ("2", "5"), ("2-0", "5-0"), ("(2", "(5"), ("(2-0", "5"), ("8", "8"), ("8-1", "+"),
                   ("(8-1", "+"), ("5", "2"), ("-", "(-"), ("(+", "+"), ("(0-0", "+"), ("-", "(0-0"),
                   ("-", "(18446744073709551615-18446744073709551615"), ("(18446744073709551615-18446744073709551615", "+"),
                   ("(", "+"), ("x", "+"), ("-", "y"), ("1-", "+")]:
        pairs.same("XRANGE", "s", lo, hi)
        pairs.same("XREVRANGE", "s", hi, lo)
        pairs.same("XRANGE", "s", lo, hi, "COUNT", "2")
        pairs.same("XREVRANGE", "s", hi, lo, "COUNT", "3")
    run(
        pairs,
        ("XRANGE", "s", "-", "+", "COUNT", "0"),
        ("XRANGE", "s", "-", "+", "COUNT", "-5"),
        ("XRANGE", "s", "-", "+", "COUNT"),
        ("XRANGE", "s", "-", "+", "COUNT", "x"),
        ("XRANGE", "s", "-", "+", "FOO", "1"),
        ("XRANGE", "s", "-", "+", "COUNT", "1", "COUNT", "2"),
        ("XRANGE", "nokey", "-", "+"),
        ("XRANGE", "nokey", "-", "+", "COUNT", "0"),
        ("XRANGE", "nokey", "x", "+"),
        ("SET", "str", "v"),
        ("XRANGE", "str", "-", "+"),
    )


def test_xdel_xtrim(pairs: Pair) -> None:
    fill(pairs, "s", 10)
    run(
        pairs,
        ("XDEL", "s", "1-0", "3-0", "99-0", "3-0"),
        ("XDEL", "s", "x"),
        ("XDEL", "s", "4-0", "x"),
        ("XLEN", "s"),
        ("XINFO", "STREAM", "s"),
        ("XDEL", "s", "2-0"),
        ("XINFO", "STREAM", "s"),
        ("XTRIM", "s", "MAXLEN", "5"),
        ("XTRIM", "s", "MAXLEN", "5"),
        ("XTRIM", "s", "MINID", "8"),
        ("XINFO", "STREAM", "s"),
        ("XTRIM", "s"),
        ("XTRIM", "s", "FOO"),
        ("XTRIM", "s", "MAXLEN"),
        ("XTRIM", "s", "MAXLEN", "1", "LIMIT", "1"),
        ("XTRIM", "s", "LIMIT", "1"),
        ("XTRIM", "s", "NOMKSTREAM", "MAXLEN", "1"),
        ("XTRIM", "s", "MAXLEN", "0"),
        ("EXISTS", "s"),
        ("XINFO", "STREAM", "s"),
        ("XDEL", "nokey", "1-0"),
        ("XTRIM", "nokey", "MAXLEN", "0"),
        ("XDEL", "s", "9-0", "10-0"),
        ("XINFO", "STREAM", "s"),
    )


# ----------------------------------------------------------------------------- XREAD


def test_xread_nonblocking(pairs: Pair) -> None:
    fill(pairs, "a", 5)
    fill(pairs, "b", 3, 10)
    run(
        pairs,
        ("XREAD", "STREAMS", "a", "0"),
        ("XREAD", "COUNT", "2", "STREAMS", "a", "b", "2", "0-0"),
        ("XREAD", "STREAMS", "a", "b", "$", "$"),
        ("XREAD", "STREAMS", "a", "nokey", "3", "0"),
        ("XREAD", "STREAMS", "nokey", "0"),
        ("XREAD", "COUNT", "-1", "STREAMS", "a", "4"),
        ("XREAD", "STREAMS", "a", "5-0"),
        ("XREAD", "STREAMS", "a", ">"),
        ("XREAD", "STREAMS", "a", "x"),
        ("XREAD", "STREAMS", "a", "-"),
        ("XREAD", "STREAMS", "a"),
        ("XREAD", "STREAMS"),
        ("XREAD", "COUNT", "x", "STREAMS", "a", "0"),
        ("XREAD", "BLOCK", "x", "STREAMS", "a", "0"),
        ("XREAD", "BLOCK", "-1", "STREAMS", "a", "0"),
        ("XREAD", "FOO", "STREAMS", "a", "0"),
        ("XREAD", "GROUP", "g", "c", "STREAMS", "a", "0"),
        ("XREAD", "NOACK", "STREAMS", "a", "0"),
        ("XREAD", "BLOCK", "10", "STREAMS", "a", "5-0"),
        ("MULTI",),
        ("XREAD", "BLOCK", "0", "STREAMS", "a", "$"),
        ("EXEC",),
        ("SET", "str", "v"),
        ("XREAD", "STREAMS", "a", "str", "0", "0"),
    )


def test_help_and_id_exhaustion_are_7_2(pairs: Pair) -> None:
    """7.2+ HELP footers say 'Print this help.'; 7.2+ report a full sequence as a too-small ID."""
    ours = pairs.ours
    for container in ("XGROUP", "XINFO"):
        lines = parse_reply(ours.call(container, "HELP"))
        assert lines[0].startswith(container.encode() + b" <subcommand>")
        assert lines[-2:] == [b"HELP", b"    Print this help."]
    ours.call("XADD", "s", "7-18446744073709551615", "a", "6")
    assert ours.call("XADD", "s", "7-*", "a", "7") == (
        b"-ERR The ID specified in XADD is equal or smaller than the target stream top item\r\n")


def test_xread_plus_and_errors_are_7_4(pairs: Pair) -> None:
    """XREAD ... + (7.4) returns the last entry; 7.2+ names the command in 'Unbalanced' errors."""
    ours = pairs.ours
    ours.call("XADD", "a", "1-1", "f", "v")
    ours.call("XADD", "a", "2-5", "f", "w")
    reply = parse_reply(ours.call("XREAD", "STREAMS", "a", "nokey", "+", "+"))
    expected = [b"a", [[b"2-5", [b"f", b"w"]]]]
    assert (reply == [expected]) if pairs.resp == 2 else (reply == {b"a": expected[1]})
    assert ours.call("XREAD", "STREAMS", "a", "b", "0") == (
        b"-ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified.\r\n")
    assert ours.call("XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", "b", "0") == (
        b"-ERR Unbalanced 'xreadgroup' list of streams: for each stream key an ID or '>' must be specified.\r\n")
    ours.call("XGROUP", "CREATE", "a", "g", "0")
    assert ours.call("XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", "+").startswith(b"-ERR The + ID is meaningless")


# ----------------------------------------------------------------------------- consumer groups


def test_xgroup(pairs: Pair) -> None:
    fill(pairs, "s", 3)
    run(
        pairs,
        ("XGROUP", "CREATE", "s", "g1", "$"),
        ("XGROUP", "CREATE", "s", "g1", "0"),
        ("XGROUP", "CREATE", "s", "g2", "0", "ENTRIESREAD", "2"),
        ("XGROUP", "CREATE", "s", "g3", "1-0", "ENTRIESREAD", "-1"),
        ("XGROUP", "CREATE", "s", "g4", "1-0", "ENTRIESREAD", "-2"),
        ("XGROUP", "CREATE", "s", "g4", "x"),
        ("XGROUP", "CREATE", "s", "g4", "-"),
        ("XGROUP", "CREATE", "s", "g4", "0", "FOO"),
        ("XGROUP", "CREATE", "s", "g4", "0", "MKSTREAM", "MKSTREAM", "MKSTREAM", "MKSTREAM"),
        ("XGROUP", "CREATE", "s", "g5", "0", "MKSTREAM", "MKSTREAM", "MKSTREAM"),
        ("XGROUP", "CREATE", "nokey", "g", "$"),
        ("XGROUP", "CREATE", "nokey", "g", "$", "MKSTREAM"),
        ("XINFO", "STREAM", "nokey"),
        ("XGROUP", "CREATE", "new2", "g", "5-5", "MKSTREAM", "ENTRIESREAD", "3"),
        ("XINFO", "GROUPS", "new2"),
        ("XGROUP", "SETID", "s", "g1", "0"),
        ("XGROUP", "SETID", "s", "g1", "$", "ENTRIESREAD", "3"),
        ("XGROUP", "SETID", "s", "g2", "+"),
        ("XGROUP", "SETID", "s", "nog", "0"),
        ("XGROUP", "SETID", "s", "g1", "0", "MKSTREAM"),
        ("XGROUP", "SETID", "s", "g1", "0", "ENTRIESREAD"),
        ("XGROUP", "SETID", "s", "g1", "0", "ENTRIESREAD", "1", "x"),
        ("XINFO", "GROUPS", "s"),
        ("XGROUP", "CREATECONSUMER", "s", "g1", "alice"),
        ("XGROUP", "CREATECONSUMER", "s", "g1", "alice"),
        ("XGROUP", "CREATECONSUMER", "s", "nog", "alice"),
        ("XGROUP", "DELCONSUMER", "s", "g1", "bob"),
        ("XGROUP", "DELCONSUMER", "s", "g1", "alice"),
        ("XGROUP", "DELCONSUMER", "s", "nog", "alice"),
        ("XGROUP", "DESTROY", "s", "g3"),
        ("XGROUP", "DESTROY", "s", "g3"),
        ("XGROUP", "DESTROY", "nokey2", "g3"),
        ("XGROUP", "FOO", "s", "g"),
        ("XGROUP", "CREATE", "s"),
        ("XGROUP", "DESTROY", "s", "g", "x"),
        ("XGROUP",),
        ("SET", "str", "v"),
        ("XGROUP", "CREATE", "str", "g", "$"),
        ("XINFO", "GROUPS", "s"),
    )


def test_readgroup_ack_pending(pairs: Pair) -> None:
    fill(pairs, "s", 6)
    run(
        pairs,
        ("XGROUP", "CREATE", "s", "g", "0"),
        ("XREADGROUP", "GROUP", "g", "alice", "COUNT", "2", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "bob", "COUNT", "1", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "carol", "NOACK", "COUNT", "1", "STREAMS", "s", ">"),
        ("XINFO", "GROUPS", "s"),
        ("XPENDING", "s", "g"),
        ("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"),
        ("XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "s", "1-0"),
        ("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "99"),
        ("XACK", "s", "g", "1-0", "5-0", "1-0"),
        ("XACK", "s", "g", "x"),
        ("XACK", "s", "nog", "1-0"),
        ("XACK", "nokey", "g", "1-0"),
        ("XPENDING", "s", "g"),
        ("XDEL", "s", "2-0"),
        ("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"),
        ("XINFO", "GROUPS", "s"),
        ("XREADGROUP", "GROUP", "g", "dave", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "dave", "STREAMS", "s", ">"),
        ("XINFO", "GROUPS", "s"),
        ("XREADGROUP", "GROUP", "nog", "dave", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "dave", "STREAMS", "nokey", ">"),
        ("XREADGROUP", "GROUP", "g", "dave", "STREAMS", "s", "$"),
        ("XREADGROUP", "GROUP", "g", "dave", "STREAMS", "s", "x"),
        ("XREADGROUP", "GROUP", "g", "dave", "STREAMS", "s"),
        ("XREADGROUP", "GROUP", "g", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "dave", "BLOCK", "10", "STREAMS", "s", ">"),
        ("XPENDING", "s", "g"),
        ("XPENDING", "s", "nog"),
        ("XPENDING", "nokey", "g"),
        ("XPENDING", "s", "g", "-", "+"),
        ("XPENDING", "s", "g", "IDLE", "0", "-", "+"),
        ("XPENDING", "s", "g", "-", "+", "x"),
        ("XPENDING", "s", "g", "x", "+", "10"),
        ("XPENDING", "s", "g", "(-", "+", "10"),
        ("XPENDING", "s", "g", "IDLE", "x", "-", "+", "10"),
        ("XPENDING", "s", "g", "-", "+", "10", "nobody"),
        ("XPENDING", "s", "g", "IDLE", "100000000", "-", "+", "10"),
    )
    for args in (("-", "+", "10"), ("-", "+", "2"), ("(1-0", "+", "10"), ("-", "(6", "10"), ("-", "+", "10", "dave"),
                 ("IDLE", "0", "-", "+", "3", "alice"), ("-", "+", "0"), ("-", "+", "-5"), ("5", "1", "10"),
                 ("-", "+", "10", "alice", "ignored")):
        same_masked(pairs, "XPENDING", "s", "g", *args)


def test_group_lag_and_entries_read(pairs: Pair) -> None:
    fill(pairs, "s", 5)
    run(
        pairs,
        ("XGROUP", "CREATE", "s", "g", "0"),
        ("XGROUP", "CREATE", "s", "h", "$"),
        ("XGROUP", "CREATE", "s", "i", "3-0"),
        ("XINFO", "GROUPS", "s"),
        ("XREADGROUP", "GROUP", "g", "c", "COUNT", "2", "STREAMS", "s", ">"),
        ("XINFO", "GROUPS", "s"),
        ("XDEL", "s", "4-0"),
        ("XINFO", "GROUPS", "s"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "i", "c", "STREAMS", "s", ">"),
        ("XINFO", "GROUPS", "s"),
        ("XADD", "s", "9-0", "a", "b"),
        ("XINFO", "GROUPS", "s"),
        ("XTRIM", "s", "MAXLEN", "1"),
        ("XINFO", "GROUPS", "s"),
        ("XSETID", "s", "20-0", "ENTRIESADDED", "50", "MAXDELETEDID", "15-0"),
        ("XINFO", "GROUPS", "s"),
        ("XGROUP", "SETID", "s", "g", "20-0", "ENTRIESREAD", "50"),
        ("XINFO", "GROUPS", "s"),
        ("XINFO", "STREAM", "s"),
    )


def test_xinfo(pairs: Pair) -> None:
    fill(pairs, "s", 14)
    run(
        pairs,
        ("XGROUP", "CREATE", "s", "g", "0"),
        ("XGROUP", "CREATE", "s", "a", "0"),
        ("XREADGROUP", "GROUP", "g", "zed", "COUNT", "3", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "amy", "COUNT", "12", "STREAMS", "s", ">"),
        ("XINFO", "STREAM", "s"),
        ("XINFO", "STREAM", "nokey"),
        ("XINFO", "STREAM", "s", "FOO"),
        ("XINFO", "STREAM", "s", "FULL", "COUNT"),
        ("XINFO", "STREAM", "s", "FULL", "LIMIT", "1"),
        ("XINFO", "STREAM", "s", "FULL", "COUNT", "x"),
        ("XINFO", "GROUPS", "s"),
        ("XINFO", "GROUPS", "nokey"),
        ("XINFO", "GROUPS", "s", "x"),
        ("XINFO", "CONSUMERS", "s", "nog"),
        ("XINFO", "CONSUMERS", "nokey", "g"),
        ("XINFO", "FOO", "s"),
        ("SET", "str", "v"),
        ("XINFO", "STREAM", "str"),
    )
    for extra in ((), ("COUNT", "2"), ("COUNT", "0"), ("COUNT", "-3")):
        ours = parse_reply(pairs.ours.call("XINFO", "STREAM", "s", "FULL", *extra))
        theirs = parse_reply(pairs.theirs.call("XINFO", "STREAM", "s", "FULL", *extra))
        assert _full_7_0(masked(ours, 2)) == masked(theirs, 2)
    consumers = parse_reply(pairs.ours.call("XINFO", "CONSUMERS", "s", "g"))
    names = [(c[b"name"] if isinstance(c, dict) else c[1]) for c in consumers]
    assert names == [b"amy", b"zed"]
    for c in consumers:
        fields = c if isinstance(c, dict) else dict(zip(c[0::2], c[1::2], strict=True))
        assert set(fields) == {b"name", b"pending", b"idle", b"inactive"}
        assert 0 <= fields[b"inactive"] < 10_000


def _full_7_0(info: Any) -> Any:
    """Drop the 7.2+ ``active-time`` consumer field so a 7.4 reply compares with 7.0's."""
    if isinstance(info, dict):
        return {k: _full_7_0(v) for k, v in info.items() if k != b"active-time"}
    if isinstance(info, list):
        out = []
        skip = False
        for i, item in enumerate(info):
            if skip:
                skip = False
                continue
            if item == b"active-time" and i % 2 == 0:
                skip = True
                continue
            out.append(_full_7_0(item))
        return out
    return info


def test_xclaim(pairs: Pair) -> None:
    fill(pairs, "s", 6)
    run(
        pairs,
        ("XGROUP", "CREATE", "s", "g", "0"),
        ("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"),
        ("XCLAIM", "s", "g", "bob", "0", "1-0", "2-0", "JUSTID"),
        ("XCLAIM", "s", "g", "bob", "0", "3-0", "99-0"),
        ("XCLAIM", "s", "g", "bob", "100000000", "4-0"),
        ("XCLAIM", "s", "g", "bob", "0", "4-0", "RETRYCOUNT", "7", "JUSTID"),
        ("XCLAIM", "s", "g", "bob", "0", "5-0", "IDLE", "100000000", "JUSTID"),
        ("XCLAIM", "s", "g", "carol", "50000000", "5-0", "JUSTID"),
        ("XCLAIM", "s", "g", "carol", "0", "6-0", "TIME", "1000", "JUSTID"),
        ("XCLAIM", "s", "g", "carol", "0", "6-0", "TIME", "-1000", "JUSTID"),
        ("XDEL", "s", "6-0"),
        ("XCLAIM", "s", "g", "carol", "0", "6-0"),
        ("XPENDING", "s", "g"),
        ("XADD", "s", "7-0", "a", "b"),
        ("XCLAIM", "s", "g", "dave", "0", "7-0"),
        ("XCLAIM", "s", "g", "dave", "0", "7-0", "FORCE", "JUSTID"),
        ("XCLAIM", "s", "g", "dave", "0", "99-0", "FORCE"),
        ("XCLAIM", "s", "g", "dave", "0", "1-0", "LASTID", "50-0", "JUSTID"),
        ("XINFO", "GROUPS", "s"),
        ("XCLAIM", "s", "g", "dave", "x", "1-0"),
        ("XCLAIM", "s", "g", "dave", "0", "1-0", "FOO"),
        ("XCLAIM", "s", "g", "dave", "0", "1-0", "IDLE", "x"),
        ("XCLAIM", "s", "g", "dave", "0", "1-0", "TIME", "x"),
        ("XCLAIM", "s", "g", "dave", "0", "1-0", "RETRYCOUNT", "x"),
        ("XCLAIM", "s", "g", "dave", "0", "1-0", "LASTID", "x"),
        ("XCLAIM", "s", "g", "dave", "0", "1-0", "IDLE"),
        ("XCLAIM", "s", "nog", "dave", "0", "1-0"),
        ("XCLAIM", "nokey", "g", "dave", "x", "1-0"),
    )
    same_masked(pairs, "XPENDING", "s", "g", "-", "+", "10")


def test_xautoclaim(pairs: Pair) -> None:
    fill(pairs, "s", 8)
    run(
        pairs,
        ("XGROUP", "CREATE", "s", "g", "0"),
        ("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"),
        ("XAUTOCLAIM", "s", "g", "bob", "0", "0", "COUNT", "2"),
        ("XAUTOCLAIM", "s", "g", "bob", "0", "3-0", "COUNT", "2", "JUSTID"),
        ("XDEL", "s", "5-0", "6-0"),
        ("XAUTOCLAIM", "s", "g", "bob", "0", "(4-0", "COUNT", "3"),
        ("XAUTOCLAIM", "s", "g", "bob", "100000000", "-", "JUSTID"),
        ("XAUTOCLAIM", "s", "g", "carol", "0", "-"),
        ("XAUTOCLAIM", "s", "g", "carol", "0", "-", "COUNT", "0"),
        ("XAUTOCLAIM", "s", "g", "carol", "0", "-", "COUNT", "x"),
        ("XAUTOCLAIM", "s", "g", "carol", "0", "-", "COUNT", "1152921504606846976"),
        ("XAUTOCLAIM", "s", "g", "carol", "x", "-"),
        ("XAUTOCLAIM", "s", "g", "carol", "0", "x"),
        ("XAUTOCLAIM", "s", "g", "carol", "0", "(18446744073709551615-18446744073709551615"),
        ("XAUTOCLAIM", "s", "g", "carol", "0", "-", "FOO"),
        ("XAUTOCLAIM", "s", "nog", "carol", "0", "-"),
        ("XAUTOCLAIM", "nokey", "g", "carol", "0", "-"),
        ("XPENDING", "s", "g"),
    )


def test_consumers_created_by_claims_are_7_2(pairs: Pair) -> None:
    """7.2+ create the claiming consumer even when nothing is claimed, and XREADGROUP
    creates it even when nothing is served; active-time tracks successful claims."""
    ours = pairs.ours
    ours.call("XADD", "s", "1-0", "a", "b")
    ours.call("XGROUP", "CREATE", "s", "g", "$")
    assert ours.call("XCLAIM", "s", "g", "c1", "0", "1-0") == b"*0\r\n"
    assert ours.call("XAUTOCLAIM", "s", "g", "c2", "0", "-") == b"*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n"
    assert parse_reply(ours.call("XREADGROUP", "GROUP", "g", "c3", "STREAMS", "s", ">")) is None
    info = parse_reply(ours.call("XINFO", "CONSUMERS", "s", "g"))
    assert len(info) == 3
    for c in info:
        fields = c if isinstance(c, dict) else dict(zip(c[0::2], c[1::2], strict=True))
        assert fields[b"inactive"] == -1
    full = parse_reply(ours.call("XINFO", "STREAM", "s", "FULL"))
    full = full if isinstance(full, dict) else dict(zip(full[0::2], full[1::2], strict=True))
    group = full[b"groups"][0]
    group = group if isinstance(group, dict) else dict(zip(group[0::2], group[1::2], strict=True))
    consumer = group[b"consumers"][0]
    consumer = consumer if isinstance(consumer, dict) else dict(zip(consumer[0::2], consumer[1::2], strict=True))
    assert list(consumer) == [b"name", b"seen-time", b"active-time", b"pel-count", b"pending"]
    assert consumer[b"active-time"] == -1


def test_xsetid(pairs: Pair) -> None:
    fill(pairs, "s", 3)
    run(
        pairs,
        ("XSETID", "s", "2-0"),
        ("XSETID", "s", "3-0"),
        ("XSETID", "s", "10-0", "ENTRIESADDED", "2"),
        ("XSETID", "s", "10-0", "ENTRIESADDED", "-1"),
        ("XSETID", "s", "10-0", "ENTRIESADDED", "x"),
        ("XSETID", "s", "10-0", "MAXDELETEDID", "11-0"),
        ("XSETID", "s", "10-0", "MAXDELETEDID", "5-0", "ENTRIESADDED", "7"),
        ("XINFO", "STREAM", "s"),
        ("XSETID", "s", "10-0", "FOO", "1"),
        ("XSETID", "s", "-"),
        ("XSETID", "s", "x"),
        ("XSETID", "nokey", "1-0"),
        ("XADD", "s", "9-0", "a", "1"),
        ("XADD", "s", "10-1", "a", "1"),
        ("XDEL", "s", "1-0", "2-0", "3-0", "10-1"),
        ("XINFO", "STREAM", "s"),
    )
    # 7.2+: the last ID may not go below the recorded max deleted ID
    assert pairs.ours.call("XSETID", "s", "0-1") == (
        b"-ERR The ID specified in XSETID is smaller than current max_deleted_entry_id\r\n")


# ----------------------------------------------------------------------------- generic and events


def test_type_object_copy(pairs: Pair) -> None:
    fill(pairs, "s", 3)
    run(
        pairs,
        ("XGROUP", "CREATE", "s", "g", "0"),
        ("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", ">"),
        ("TYPE", "s"),
        ("OBJECT", "ENCODING", "s"),
        ("COPY", "s", "t"),
        ("XADD", "t", "9-0", "x", "y"),
        ("XLEN", "s"),
        ("XLEN", "t"),
        ("XINFO", "GROUPS", "t"),
        ("XACK", "t", "g", "1-0"),
        ("XPENDING", "s", "g"),
        ("XPENDING", "t", "g"),
        ("RENAME", "t", "u"),
        ("XLEN", "u"),
    )
    pairs.same_unordered("SCAN", "0", "TYPE", "stream")


def test_stream_keyspace_events(pairs: Pair, dumpling_server, redis_server) -> None:
    from tests.servers import same_keyspace_events

    with same_keyspace_events(pairs, dumpling_server, redis_server):
        run(
            pairs,
            ("XADD", "s", "1-0", "a", "1"),
            ("XADD", "s", "MAXLEN", "1", "2-0", "a", "1"),
            ("XADD", "s", "MAXLEN", "5", "3-0", "a", "1"),
            ("XDEL", "s", "99-0"),
            ("XDEL", "s", "2-0"),
            ("XTRIM", "s", "MAXLEN", "0"),
            ("XGROUP", "CREATE", "s", "g", "0"),
            ("XGROUP", "CREATE", "m", "g", "0", "MKSTREAM"),
            ("XGROUP", "SETID", "s", "g", "0"),
            ("XGROUP", "CREATECONSUMER", "s", "g", "c"),
            ("XGROUP", "CREATECONSUMER", "s", "g", "c"),
            ("XADD", "s", "4-0", "a", "1"),
            ("XREADGROUP", "GROUP", "g", "d", "STREAMS", "s", ">"),
            ("XGROUP", "DELCONSUMER", "s", "g", "c"),
            ("XGROUP", "DESTROY", "s", "g"),
            ("XSETID", "s", "10-0"),
            ("XADD", "n", "NOMKSTREAM", "*", "a", "1"),
        )


# ----------------------------------------------------------------------------- state machine


class StreamMachine(RuleBasedStateMachine):
    """Random XADD/XDEL/XTRIM/group sequences on small nodes: replies must match Redis."""

    pair: Pair

    @initialize()
    def setup(self) -> None:
        self.pair.both("FLUSHALL")
        self.next_ms = 1

    @rule(step=st.integers(0, 3), seq=st.integers(0, 2), nfields=st.integers(1, 3),
          trim=st.sampled_from([[], ["MAXLEN", "5"], ["MAXLEN", "~", "4"], ["MINID", "~", "3"]]))
    def xadd(self, step: int, seq: int, nfields: int, trim: list[str]) -> None:
        self.next_ms += step
        flat = []
        for i in range(nfields):
            flat += [f"f{i}", str(self.next_ms * i)]
        self.pair.same("XADD", "s", *trim, f"{self.next_ms}-{seq}", *flat)

    @rule(ms=st.integers(1, 40), seq=st.integers(0, 2))
    def xdel(self, ms: int, seq: int) -> None:
        self.pair.same("XDEL", "s", f"{ms}-{seq}")

    @rule(how=st.sampled_from(["MAXLEN", "MINID"]), approx=st.booleans(), value=st.integers(0, 30))
    def xtrim(self, how: str, approx: bool, value: int) -> None:
        self.pair.same("XTRIM", "s", how, *(["~"] if approx else []), str(value))

    @rule(name=st.sampled_from(["g1", "g2"]))
    def group(self, name: str) -> None:
        self.pair.same("XGROUP", "CREATE", "s", name, "0")
        # 7.2+ XREADGROUP creates its consumer even when nothing is served; 7.0 does
        # not, so the consumers exist up front to keep the oracle comparable.
        self.pair.same("XGROUP", "CREATECONSUMER", "s", name, "a")
        self.pair.same("XGROUP", "CREATECONSUMER", "s", name, "b")

    @rule(name=st.sampled_from(["g1", "g2"]), consumer=st.sampled_from(["a", "b"]), count=st.integers(1, 3))
    def readgroup(self, name: str, consumer: str, count: int) -> None:
        self.pair.same("XREADGROUP", "GROUP", name, consumer, "COUNT", str(count), "STREAMS", "s", ">")

    @rule(name=st.sampled_from(["g1", "g2"]), ms=st.integers(1, 40))
    def ack(self, name: str, ms: int) -> None:
        self.pair.same("XACK", "s", name, f"{ms}-0", f"{ms}-1")

    @invariant()
    def same_state(self) -> None:
        self.pair.same("XINFO", "STREAM", "s")
        self.pair.same("XRANGE", "s", "-", "+")
        self.pair.same("XINFO", "GROUPS", "s")


def test_stream_state_machine(pairs: Pair) -> None:
    pairs.both("CONFIG", "SET", "stream-node-max-entries", "3")
    try:
        StreamMachine.pair = pairs
        StreamMachine.TestCase.settings = settings(max_examples=12, stateful_step_count=30, deadline=None)
        StreamMachine.TestCase().runTest()
    finally:
        pairs.both("CONFIG", "SET", "stream-node-max-entries", "100")


def test_memory_usage_close_to_redis(pairs: Pair) -> None:
    """MEMORY USAGE models Redis's accounting (preallocated tail node, radix tree, PELs)."""
    for i in range(250):
        pairs.same("XADD", "s", f"{i // 3 + 1}-{i % 3}", f"field{i % 3}", f"value{i}")
    pairs.same("XGROUP", "CREATE", "s", "g", "0")
    pairs.same("XREADGROUP", "GROUP", "g", "c", "COUNT", "20", "STREAMS", "s", ">")
    pairs.same("XADD", "one", "1-1", "a", "1")
    for key in ("s", "one"):
        ours = parse_reply(pairs.ours.call("MEMORY", "USAGE", key))
        theirs = parse_reply(pairs.theirs.call("MEMORY", "USAGE", key))
        assert abs(ours - theirs) <= theirs * 0.05, (key, ours, theirs)


# ----------------------------------------------------------------------------- uint64 counters from payloads
# A DUMP payload may carry any 64-bit value in a stream's counters.  Redis keeps them in
# C integers (entries_added and delivery counts uint64_t, times int64_t), wraps when
# they overflow, and replies every integer with addReplyLongLong: signed.


def _sealed(body: bytes, rdb_version: int = 10) -> bytes:
    import struct

    from dumpling.payload.crc64 import crc64

    body += struct.pack("<H", rdb_version)
    return body + struct.pack("<Q", crc64(body))


def _empty_stream(entries_added: int, last_ms: int = 0) -> bytes:
    """A type-19 (7.0) stream with no entries: the counters are all there is."""
    import struct

    def length(v: int) -> bytes:
        return bytes([v]) if v < 64 else b"\x81" + struct.pack(">Q", v)

    return _sealed(b"\x13\x00\x00" + length(last_ms) + b"\x00" * 5 + length(entries_added) + b"\x00")


def test_entries_added_above_int64_prints_signed(pairs: Pair) -> None:
    crafted = bytes.fromhex("13000000000000000081fffffffffeffffff00000a0086fe18ab7f40c4b1")  # from the report
    pairs.same("RESTORE", "s", "0", crafted)
    pairs.same("XINFO", "STREAM", "s")
    pairs.same("XINFO", "STREAM", "s", "FULL")
    pairs.same("DUMP", "s")


def test_entries_added_wraps_at_2_64(pairs: Pair) -> None:
    pairs.same("RESTORE", "s", "0", _empty_stream(2**64 - 1, last_ms=5))
    pairs.same("XGROUP", "CREATE", "s", "g", "0")
    pairs.same("XINFO", "GROUPS", "s")  # estimate_distance's 2**64-1 reads as -1: no lag
    pairs.same("XADD", "s", "7-1", "f", "v")  # entries_added wraps to 0
    pairs.same("XINFO", "STREAM", "s")
    pairs.same("XINFO", "GROUPS", "s")
    pairs.same("XGROUP", "SETID", "s", "g", "0", "ENTRIESREAD", "9223372036854775807")
    pairs.same("XINFO", "GROUPS", "s")
    pairs.same("DUMP", "s")
    pairs.same("RESTORE", "t", "0", _empty_stream(2**64 - 16777217))
    pairs.same("XADD", "t", "7-1", "f", "v")
    pairs.same("XGROUP", "CREATE", "t", "g", "0", "ENTRIESREAD", "9223372036854775807")
    pairs.same("XINFO", "GROUPS", "t")


def test_pending_entry_counters_from_a_payload(pairs: Pair) -> None:
    # A PEL entry: raw ID (16 bytes), delivery time (8 bytes LE), delivery count (RDB length).
    pairs.same("XADD", "s", "1-1", "f", "v")
    pairs.same("XGROUP", "CREATE", "s", "g", "0")
    pairs.same("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", ">")
    ours, theirs = pairs.both("DUMP", "s")
    payload = theirs.split(b"\r\n", 1)[1][:-2]
    raw_id = (1).to_bytes(8, "big") * 2
    at = payload.index(raw_id, payload.index(raw_id) + 1)  # after the node's key: the group's PEL entry
    assert payload[at + 24] == 1  # delivered once
    body = payload[: at + 16] + b"\x00" * 7 + b"\x80" + b"\x81" + b"\xff" * 8 + payload[at + 25 : -10]
    crafted = _sealed(body, int.from_bytes(payload[-10:-8], "little"))
    pairs.same("RESTORE", "s2", "0", crafted)
    pairs.same("XPENDING", "s2", "g")
    pairs.same("XPENDING", "s2", "g", "-", "+", "10")  # idle: now - INT64_MIN wraps, then 0
    pairs.same("XPENDING", "s2", "g", "IDLE", "1", "-", "+", "10")
    pairs.same("XCLAIM", "s2", "g", "c2", "0", "1-1", "TIME", "5", "JUSTID")
    pairs.same("XCLAIM", "s2", "g", "c2", "0", "1-1", "TIME", "5")  # the count wraps to 0
    ours, theirs = pairs.both("XPENDING", "s2", "g", "-", "+", "10")
    assert parse_reply(ours)[0][3] == parse_reply(theirs)[0][3] == 0  # type: ignore[index]


def test_client_libraries_read_the_counters(r: Any) -> None:
    # hiredis (redis-py's parser) refused the unsigned value: "Bad integer value", connection lost.
    crafted = bytes.fromhex("13000000000000000081fffffffffeffffff00000a0086fe18ab7f40c4b1")
    r.restore("s", 0, crafted)
    assert r.xinfo_stream("s")["entries-added"] == -16777217
    assert r.ping()


# ----------------------------------------------------------------------------- native appends

def test_native_appends_read_as_redis_stream(pair: Pair) -> None:
    """A stream grown by ``XADD key * ...`` (dumpling's native handler and C append: IDs from
    its clock) reads, trims and DUMPs as the Redis stream given the same IDs explicitly: over
    1000 entries (the ID index's chunks) in nodes of 7, then XDEL, the trimming forms of XADD and
    XTRIM with explicit IDs, and automatic IDs again after them under a new node limit."""
    p = pair
    p.same("CONFIG", "SET", "stream-node-max-entries", "7")
    try:
        p.same("XADD", "s", "1-1", "f", "v")
        ids = []
        for i in range(1100):
            fields = ["f", str(i)] if i % 3 else ["g", "x" * (i % 50), "h", "-7"]
            entry_id = p.ours.call("XADD", "s", "*", *fields).split(b"\r\n")[1]
            assert p.theirs.call("XADD", "s", entry_id, *fields).split(b"\r\n")[1] == entry_id
            ids.append(entry_id)
        def reads() -> None:
            for cmd in (("XLEN", "s"), ("XRANGE", "s", "-", "+"), ("XRANGE", "s", ids[500], ids[520]),
                        ("XREVRANGE", "s", "+", "-", "COUNT", "5"), ("XREVRANGE", "s", ids[1005], ids[990]),
                        ("XREAD", "COUNT", "3", "STREAMS", "s", ids[998]), ("XINFO", "STREAM", "s"),
                        ("XINFO", "STREAM", "s", "FULL", "COUNT", "0"), ("DUMP", "s")):
                p.same(*cmd)
        reads()
        for victim in (ids[0], ids[999], ids[1000], ids[1099], ids[3], b"1-1"):
            p.same("XDEL", "s", victim)
        reads()
        ms = int(ids[-1].split(b"-")[0]) + 10
        p.same("XADD", "s", "MAXLEN", "~", "900", f"{ms}-0", "f", "v")
        p.same("XADD", "s", "MINID", "~", ids[300], "LIMIT", "20", f"{ms}-1", "f", "v")
        p.same("XTRIM", "s", "MINID", ids[400])
        p.same("XTRIM", "s", "MAXLEN", "=", "650")
        reads()
        p.same("CONFIG", "SET", "stream-node-max-entries", "3")  # (the C handler reads it again)
        for _ in range(20):  # past the explicit IDs' millisecond: the next sequence numbers
            entry_id = p.ours.call("XADD", "s", "*", "f", "v").split(b"\r\n")[1]
            assert p.theirs.call("XADD", "s", entry_id, "f", "v").split(b"\r\n")[1] == entry_id
        reads()
    finally:
        p.both("CONFIG", "SET", "stream-node-max-entries", "100")
