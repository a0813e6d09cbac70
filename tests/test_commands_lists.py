"""List commands, differentially against real Redis (RESP2 and RESP3), plus the
Redis 7.2+/7.4 encoding rules (listpack <-> quicklist) asserted explicitly, since
the Redis 7.0 oracle always reports ``quicklist``."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from dumpling.datatypes.lists import ListValue, lp_entry_size
from tests.servers import Pair


def test_push_pop_range_index(pairs):
    pairs.run([
        ("LPUSH", "l", "a", "b", "c"), ("RPUSH", "l", "d", "e"), ("LRANGE", "l", "0", "-1"), ("LLEN", "l"),
        ("LINDEX", "l", "0"), ("LINDEX", "l", "-1"), ("LINDEX", "l", "10"), ("LINDEX", "l", "x"),
        ("LINDEX", "nokey", "x"), ("LPOP", "l"), ("RPOP", "l"), ("LPOP", "l", "2"), ("RPOP", "l", "0"),
        ("LPOP", "l", "-1"), ("LPOP", "l", "x"), ("LPOP", "l", "1", "2"), ("LPOP", "nokey"), ("LPOP", "nokey", "2"),
        ("RPOP", "nokey", "0"), ("LLEN", "nokey"), ("RPOP", "l", "5"), ("EXISTS", "l"),
        ("LPUSHX", "nokey", "a"), ("RPUSHX", "nokey", "a"), ("RPUSH", "x", "1"), ("LPUSHX", "x", "0", "-1"),
        ("RPUSHX", "x", "2", "3"), ("LRANGE", "x", "0", "-1"), ("LRANGE", "x", "-100", "100"),
        ("LRANGE", "x", "2", "1"), ("LRANGE", "x", "a", "1"), ("LRANGE", "x", "-2", "-1"), ("LRANGE", "x", "5", "10"),
        ("LRANGE", "nokey", "0", "-1"), ("LPUSH",), ("LPUSH", "k"), ("LPOP",), ("RPUSH", "k", ""), ("LINDEX", "k", "0"),
    ])


def test_long_lists_and_binary_elements(pairs):
    values = [str(i) for i in range(300)] + ["x" * 5000, "\x00\xff\r\n", "-0", "007", "9223372036854775808"]
    pairs.same("RPUSH", "big", *values)
    pairs.run([
        ("LRANGE", "big", "290", "310"), ("LINDEX", "big", "-3"), ("LINDEX", "big", "150"), ("LLEN", "big"),
        ("LPOS", "big", "007"), ("LPOS", "big", "-0", "RANK", "-1"), ("LRANGE", "big", "-200", "-150"),
        ("LSET", "big", "150", "y" * 9000), ("LINDEX", "big", "150"), ("LINSERT", "big", "AFTER", "150", "z" * 100),
        ("LRANGE", "big", "148", "153"), ("LREM", "big", "0", "y" * 9000), ("LTRIM", "big", "10", "-10"),
        ("LLEN", "big"), ("LRANGE", "big", "0", "3"), ("RPOP", "big", "3"), ("LPOP", "big", "3"),
    ])


def test_lset_linsert_lrem_ltrim(pairs):
    pairs.run([
        ("RPUSH", "l", "1", "2", "3", "1", "2", "3", "1"), ("LREM", "l", "2", "1"), ("LRANGE", "l", "0", "-1"),
        ("LREM", "l", "-1", "3"), ("LRANGE", "l", "0", "-1"), ("LREM", "l", "0", "2"), ("LREM", "l", "x", "2"),
        ("LREM", "nokey", "1", "a"), ("LSET", "l", "0", "z"),
        ("LSET", "l", "-1", "w"), ("LSET", "l", "100", "z"), ("LSET", "l", "x", "z"), ("LSET", "nokey", "0", "z"),
        ("LINSERT", "l", "BEFORE", "z", "y"), ("LINSERT", "l", "after", "w", "v"), ("LINSERT", "l", "AFTER", "nope", "y"),
        ("LINSERT", "l", "MIDDLE", "z", "y"), ("LINSERT", "nokey", "BEFORE", "a", "b"), ("LRANGE", "l", "0", "-1"),
        ("LTRIM", "l", "1", "-1"), ("LRANGE", "l", "0", "-1"), ("LTRIM", "l", "-100", "100"), ("LTRIM", "l", "x", "1"),
        ("LTRIM", "l", "5", "1"), ("EXISTS", "l"), ("LTRIM", "nokey", "0", "1"), ("RPUSH", "t", "a", "b", "c"),
        ("LTRIM", "t", "1", "1"), ("LRANGE", "t", "0", "-1"), ("LREM", "t", "0", "b"), ("EXISTS", "t"),
    ])


def test_lpos(pairs):
    pairs.same("RPUSH", "p", "a", "b", "c", "a", "b", "c", "a")
    pairs.run([
        ("LPOS", "p", "a"), ("LPOS", "p", "a", "RANK", "2"), ("LPOS", "p", "a", "RANK", "-1"),
        ("LPOS", "p", "a", "RANK", "-3"), ("LPOS", "p", "a", "RANK", "4"), ("LPOS", "p", "a", "COUNT", "0"),
        ("LPOS", "p", "a", "COUNT", "2", "RANK", "-1"), ("LPOS", "p", "a", "MAXLEN", "1"),
        ("LPOS", "p", "a", "MAXLEN", "4", "COUNT", "0"), ("LPOS", "p", "c", "RANK", "-1", "MAXLEN", "2", "COUNT", "0"),
        ("LPOS", "p", "a", "RANK", "0"), ("LPOS", "p", "a", "COUNT", "-1"), ("LPOS", "p", "a", "MAXLEN", "-1"),
        ("LPOS", "p", "x"), ("LPOS", "p", "x", "COUNT", "1"), ("LPOS", "nokey", "a"), ("LPOS", "nokey", "a", "COUNT", "1"),
        ("LPOS", "p", "a", "RANK"), ("LPOS", "p", "a", "FOO", "1"), ("LPOS", "p", "a", "RANK", "x"),
        ("LPOS", "p", "a", "COUNT", "x"), ("LPOS", "p", "a", "MAXLEN", "x"),
        ("LPOS", "p", "a", "RANK", "2", "RANK", "1"),
    ])


def test_long_min_counts_are_rejected(r):
    """Redis 7.2+ refuses LONG_MIN where the value is negated (7.0 accepted it and
    overflowed); text measured on 7.4.1."""
    r.rpush("p", "a")
    message = "value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    for cmd in (("LPOS", "p", "a", "RANK", "-9223372036854775808"), ("LREM", "p", "-9223372036854775808", "a"),
                ("SRANDMEMBER", "p", "-9223372036854775808")):
        try:
            r.execute_command(*cmd)
        except Exception as e:  # redis-py raises ResponseError (or WRONGTYPE for the set command)
            assert message in str(e) or "WRONGTYPE" in str(e)
        else:
            raise AssertionError(f"{cmd} accepted LONG_MIN")


def test_lmove_rpoplpush_lmpop(pairs):
    pairs.run([
        ("RPUSH", "p", "a", "b", "c", "d"), ("LMOVE", "p", "q", "LEFT", "RIGHT"), ("LMOVE", "p", "q", "RIGHT", "LEFT"),
        ("LMOVE", "p", "q", "left", "left"), ("LRANGE", "q", "0", "-1"), ("LRANGE", "p", "0", "-1"),
        ("LMOVE", "p", "q", "UP", "LEFT"), ("LMOVE", "nokey", "q", "LEFT", "LEFT"), ("RPOPLPUSH", "p", "q"),
        ("RPOPLPUSH", "nokey", "q"), ("EXISTS", "p"), ("RPUSH", "one", "x"), ("LMOVE", "one", "one", "LEFT", "RIGHT"),
        ("LRANGE", "one", "0", "-1"), ("RPOPLPUSH", "one", "one"), ("RPUSH", "two", "1", "2"),
        ("LMOVE", "two", "two", "LEFT", "RIGHT"), ("LRANGE", "two", "0", "-1"),
        ("LMPOP", "2", "nokey", "q", "LEFT"), ("LMPOP", "2", "nokey", "q", "RIGHT", "COUNT", "10"),
        ("LMPOP", "1", "nokey", "LEFT"), ("LMPOP", "0", "q", "LEFT"), ("LMPOP", "3", "q", "LEFT"),
        ("LMPOP", "1", "q", "MIDDLE"), ("RPUSH", "q", "1", "2", "3"), ("LMPOP", "1", "q", "LEFT", "COUNT", "0"),
        ("LMPOP", "1", "q", "LEFT", "COUNT", "1", "COUNT", "2"), ("LMPOP", "1", "q", "LEFT", "FOO"),
        ("LMPOP", "x", "q", "LEFT"), ("LMPOP", "-1", "q", "LEFT"), ("LMPOP", "1", "q", "right", "count", "2"),
        ("LMPOP", "2", "q", "q", "LEFT"), ("EXISTS", "q"),
    ])


def test_wrongtype_everywhere(pairs):
    pairs.same("SET", "s", "str")
    pairs.same("RPUSH", "l", "a")
    for cmd in [
        ("LPUSH", "s", "a"), ("RPUSH", "s", "a"), ("LPUSHX", "s", "a"), ("RPUSHX", "s", "a"), ("LPOP", "s"),
        ("RPOP", "s", "2"), ("LLEN", "s"), ("LRANGE", "s", "0", "1"), ("LINDEX", "s", "0"), ("LSET", "s", "0", "a"),
        ("LINSERT", "s", "BEFORE", "a", "b"), ("LREM", "s", "0", "a"), ("LTRIM", "s", "0", "1"), ("LPOS", "s", "a"),
        ("LMOVE", "s", "l", "LEFT", "LEFT"), ("LMOVE", "l", "s", "LEFT", "LEFT"), ("RPOPLPUSH", "s", "l"),
        ("RPOPLPUSH", "l", "s"), ("LMPOP", "2", "s", "l", "LEFT"), ("LMPOP", "2", "nokey", "s", "LEFT"),
        ("BLPOP", "s", "0"), ("BLMOVE", "s", "l", "LEFT", "LEFT", "0"), ("BLMPOP", "0", "1", "s", "LEFT"),
        ("LPOP", "s", "0"), ("LPOP", "s", "x"),
    ]:
        pairs.same(*cmd)
    pairs.same("LRANGE", "l", "0", "-1")


def test_keyspace_events(pair, dumpling_server, redis_server):
    """Event names and order: lpush/rpush once per call, pop then del, push before pop on LMOVE."""
    listeners = (dumpling_server.raw(), redis_server.raw())
    try:
        pair.same("CONFIG", "SET", "notify-keyspace-events", "KEAn")
        for conn in listeners:
            conn.call("PSUBSCRIBE", "__key*")
        pair.run([
            ("LPUSH", "l", "a", "b"), ("RPUSH", "l", "c"), ("LPOP", "l"), ("RPOP", "l", "5"), ("RPUSH", "l", "a", "b", "c"),
            ("LSET", "l", "0", "z"), ("LINSERT", "l", "BEFORE", "z", "y"), ("LINSERT", "l", "BEFORE", "nope", "y"),
            ("LREM", "l", "1", "y"), ("LREM", "l", "1", "nope"), ("LTRIM", "l", "0", "0"), ("LTRIM", "l", "1", "0"),
            ("RPUSH", "s1", "a"), ("LMOVE", "s1", "d1", "LEFT", "RIGHT"), ("RPOPLPUSH", "d1", "d1"),
            ("LMPOP", "1", "d1", "LEFT"), ("RPUSHX", "nokey", "a"), ("BLPOP", "nokey", "0.01"), ("LPOP", "nokey"),
        ])
        ours, theirs = (conn.read_all(0.3) for conn in listeners)
        assert ours == theirs
        assert b"lpush" in ours and b"del" in ours and b"new" in ours
    finally:
        pair.same("CONFIG", "SET", "notify-keyspace-events", "")
        for conn in listeners:
            conn.close()


# ----------------------------------------------------------------------------- encodings (Redis 7.2+)


def _encoding(r, key: str) -> bytes:
    return r.object("encoding", key)


def test_encoding_listpack_until_8kb_then_quicklist(r):
    """Default list-max-listpack-size -2: one listpack while it fits 8 KiB (the raw sizes
    of the pushed elements are what is checked), a quicklist after that; it turns back
    into a listpack only once a single node is at most half the limit.  Thresholds as
    measured on Redis 7.4.1."""
    r.rpush("l", *["x" * 100] * 80)  # raw 7 + 8000 <= 8192 (the listpack really has 8247 bytes)
    assert _encoding(r, "l") == b"listpack"
    r.rpush("l", "y" * 100)  # 8247 + 100 > 8192
    assert _encoding(r, "l") == b"quicklist"
    r.rpop("l", 41)  # one node of 40 entries, 4127 bytes > 4096
    assert _encoding(r, "l") == b"quicklist"
    r.rpop("l")  # 39 entries, 4024 bytes
    assert _encoding(r, "l") == b"listpack"
    r.rpush("big", "z" * 9000)  # a single element over 8 KiB
    assert _encoding(r, "big") == b"quicklist"


def test_encoding_with_count_fill(r):
    r.config_set("list-max-listpack-size", 4)
    try:
        r.rpush("l", 1, 2, 3, 4)
        assert _encoding(r, "l") == b"listpack"
        r.rpush("l", 5)
        assert _encoding(r, "l") == b"quicklist"
        r.rpop("l", 2)  # one node of 3 > 4 // 2
        assert _encoding(r, "l") == b"quicklist"
        r.rpop("l")
        assert _encoding(r, "l") == b"listpack"
        r.config_set("list-max-ziplist-size", 2)  # the old alias
        assert r.config_get("list-max-listpack-size") == {"list-max-listpack-size": "2"}
        r.rpush("l", "a")
        assert _encoding(r, "l") == b"quicklist"
    finally:
        r.config_set("list-max-listpack-size", -2)


def test_encoding_linsert_converts_before_looking_for_the_pivot(r):
    r.rpush("l", *["x" * 60] * 130)  # 7 + 130 * 62 = 8067
    assert _encoding(r, "l") == b"listpack"
    assert r.linsert("l", "BEFORE", "absent", "y" * 200) == -1
    assert _encoding(r, "l") == b"quicklist"


def test_sort_store_encodings(r):
    r.rpush("src", *range(10))
    r.sort("src", store="dst")
    assert _encoding(r, "dst") == b"listpack"
    r.rpush("wide", *["w" * 200] * 50)
    r.sort("wide", by="nosort", store="dst2")
    assert _encoding(r, "dst2") == b"quicklist"


def test_quicklist_node_layout_matches_redis_74():
    """Node layouts Redis 7.4.1 dumped (DUMP type 18) after the same history (fill -2):
    79 entries of 103 bytes per node, a plain node for a 9000-byte element, a split
    and merge on LINSERT into a full node, emptied nodes dropped on pops."""
    fill = -2
    v = ListValue()
    v.push([b"a" * 100] * 200, False, fill)
    assert (v.encoding, v.nodes(fill)) == ("quicklist", [(79, False), (79, False), (42, False)])
    v.push([b"b" * 100] * 10, True, fill)
    assert v.nodes(fill) == [(10, False), (79, False), (79, False), (42, False)]
    v.push([b"c" * 9000], False, fill)
    assert v.nodes(fill) == [(10, False), (79, False), (79, False), (42, False), (1, True)]
    assert v.insert(b"a" * 100, b"d" * 50, True, fill) == 212
    assert v.nodes(fill) == [(11, False), (79, False), (79, False), (42, False), (1, True)]
    v.pop(131, True, fill)
    v.shrunk(fill)
    assert v.nodes(fill) == [(38, False), (42, False), (1, True)]
    v.pop(41, False, fill)
    v.shrunk(fill)
    assert (v.encoding, v.nodes(fill)) == ("quicklist", [(38, False), (2, False)])
    copy = v.copy()
    assert copy.nodes(fill) == v.nodes(fill) and copy.items == v.items and copy.items is not v.items


def test_listpack_entry_sizes():
    assert [lp_entry_size(x) for x in (b"0", b"127", b"128", b"-1", b"4095", b"-4097", b"32767", b"8388607",
                                       b"2147483647", b"2147483648", b"007", b"")] == [2, 2, 3, 3, 3, 4, 4, 5, 6, 10, 5, 2]
    assert lp_entry_size(b"x" * 63) == 65 and lp_entry_size(b"x" * 64) == 67 and lp_entry_size(b"x" * 4095) == 4099


def test_memory_usage_small_and_large(r):
    r.rpush("small", "a", "b", "c")
    r.rpush("large", *["x" * 50] * 1000)
    small, large = r.memory_usage("small"), r.memory_usage("large")
    assert 16 < small < 200
    assert 50_000 < large < 120_000


# ----------------------------------------------------------------------------- random sequences


def test_random_sequences_match_redis(dumpling_server, redis_server):
    elements = st.sampled_from(["a", "b", "c", "1", "-2", "xx" * 40, "y" * 300, ""])
    keys = st.sampled_from(["l1", "l2", "s"])
    ints = st.integers(-6, 6)

    class ListMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.pair = Pair(dumpling_server, redis_server)
            self.pair.same("FLUSHALL")
            self.pair.same("SET", "s", "string")

        def teardown(self) -> None:
            self.pair.close()

        @rule(key=keys, cmd=st.sampled_from(["LPUSH", "RPUSH", "LPUSHX", "RPUSHX"]),
              values=st.lists(elements, min_size=1, max_size=8))
        def push(self, key, cmd, values):
            self.pair.same(cmd, key, *values)

        @rule(key=keys, cmd=st.sampled_from(["LPOP", "RPOP"]), count=st.one_of(st.none(), st.integers(-1, 10)))
        def pop(self, key, cmd, count):
            self.pair.same(cmd, key, *([] if count is None else [count]))

        @rule(key=keys, start=ints, end=ints)
        def read(self, key, start, end):
            self.pair.same("LRANGE", key, start, end)
            self.pair.same("LINDEX", key, start)
            self.pair.same("LLEN", key)

        @rule(key=keys, index=ints, value=elements)
        def lset(self, key, index, value):
            self.pair.same("LSET", key, index, value)

        @rule(key=keys, where=st.sampled_from(["BEFORE", "AFTER"]), pivot=elements, value=elements)
        def linsert(self, key, where, pivot, value):
            self.pair.same("LINSERT", key, where, pivot, value)

        @rule(key=keys, count=ints, value=elements)
        def lrem(self, key, count, value):
            self.pair.same("LREM", key, count, value)

        @rule(key=keys, start=ints, end=ints)
        def ltrim(self, key, start, end):
            self.pair.same("LTRIM", key, start, end)

        @rule(src=keys, dst=keys, a=st.sampled_from(["LEFT", "RIGHT"]), b=st.sampled_from(["LEFT", "RIGHT"]))
        def lmove(self, src, dst, a, b):
            self.pair.same("LMOVE", src, dst, a, b)

        @rule(key=keys, value=elements, rank=st.sampled_from([1, -1, 2]), count=st.sampled_from([None, 0, 2]))
        def lpos(self, key, value, rank, count):
            extra = [] if count is None else ["COUNT", count]
            self.pair.same("LPOS", key, value, "RANK", rank, *extra)

        @rule(k1=keys, k2=keys, where=st.sampled_from(["LEFT", "RIGHT"]), count=st.integers(1, 4))
        def lmpop(self, k1, k2, where, count):
            self.pair.same("LMPOP", 2, k1, k2, where, "COUNT", count)

    run_state_machine_as_test(ListMachine, settings=settings(max_examples=25, stateful_step_count=40, deadline=None))


def test_list_max_listpack_size_takes_any_int(pair: Pair) -> None:
    """Redis accepts any int: 0 acts as one element per node, below -5 as -5 (Redis's
    "List invalid list-max-listpack-size config"; the encodings are 7.2+'s, recorded on 7.4.1)."""
    try:
        pair.run([("CONFIG", "SET", "list-max-listpack-size", "-2147483649"),
                  ("CONFIG", "SET", "list-max-listpack-size", "0"), ("CONFIG", "GET", "list-max-listpack-size")])
        ours = pair.ours
        assert [ours.call(*cmd) for cmd in (("RPUSH", "l", "a"), ("OBJECT", "ENCODING", "l"), ("RPUSH", "l", "b"),
                                            ("OBJECT", "ENCODING", "l"))] == [b":1\r\n", b"$8\r\nlistpack\r\n",
                                                                             b":2\r\n", b"$9\r\nquicklist\r\n"]
        pair.run([("CONFIG", "SET", "list-max-listpack-size", "-6"), ("CONFIG", "GET", "list-max-listpack-size")])
        ours.call("DEL", "l")
        ours.call("RPUSH", "l", "x" * 60000)
        assert ours.call("OBJECT", "ENCODING", "l") == b"$8\r\nlistpack\r\n"  # (-6 is -5: 64 KiB)
        ours.call("RPUSH", "l", "x" * 5536)
        assert ours.call("OBJECT", "ENCODING", "l") == b"$9\r\nquicklist\r\n"
    finally:
        pair.same("CONFIG", "SET", "list-max-listpack-size", "-2")
