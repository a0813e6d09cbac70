"""Scripts at the edges of Lua's stack: ~8,000 arguments to redis.call and the other API
functions (Redis's unpack() limit, beyond lupa's own limit on a Python call), EVAL and
FCALL with tens of thousands of keys and arguments, and replies of 100,000 elements both
ways.  Every case runs on dumpling and on Redis 7.0 and compares the reply bytes.
"""

from __future__ import annotations

import pytest

from tests.servers import Pair

# A table of n ones (or of a given Lua value), unpacked into a call.
FILL = "local t = {{}} for i = 1, {n} do t[i] = {value} end "

MANY_ARGS = [
    # redis.call / redis.pcall with 2 + 7999 arguments: Redis's TCL "Script check unpack
    # with massive arguments"
    FILL.format(n=7999, value=1) + "return redis.call('lpush', KEYS[1], unpack(t))",
    FILL.format(n=7999, value="i") + "return redis.pcall('rpush', KEYS[1], unpack(t))",
    FILL.format(n=7999, value="'x'") + "redis.call('del', KEYS[1]) return redis.call('sadd', KEYS[1], unpack(t))",
    FILL.format(n=7999, value=1) + "return redis.call(unpack(t))",
    FILL.format(n=7999, value=1) + "return redis.pcall(unpack(t))",
    FILL.format(n=7999, value="{}") + "return redis.pcall('lpush', KEYS[1], unpack(t))",
    # the other API functions take the same counts and give their usual answers
    FILL.format(n=7999, value="i") + "return redis.sha1hex(unpack(t))",
    FILL.format(n=7999, value="i") + "return redis.log(redis.LOG_DEBUG, unpack(t))",
    FILL.format(n=7999, value="'get'") + "return redis.acl_check_cmd(unpack(t))",
    FILL.format(n=7999, value="'a'") + "return redis.setresp(unpack(t))",
    FILL.format(n=7999, value="'a'") + "return math.random(unpack(t))",
    FILL.format(n=7999, value=1) + "return math.randomseed(unpack(t))",
    FILL.format(n=7999, value="'a'") + "return redis.error_reply(unpack(t))",
    FILL.format(n=7999, value="'a'") + "return redis.status_reply(unpack(t))",
    FILL.format(n=7999, value=1) + "return struct.pack(string.rep('b', 7999), unpack(t))",
    FILL.format(n=7999, value=1) + "return bit.bor(unpack(t))",
    "return select('#', struct.unpack(string.rep('b', 7000), string.rep('a', 7000)))",
    "return select('#', struct.unpack(string.rep('b', 7998), string.rep('a', 7998)))",
    # unpack() itself stops where Lua's C stack does, in Redis as here
    FILL.format(n=7999, value=1) + "return {unpack(t)}",
    FILL.format(n=8000, value=1) + "return {unpack(t)}",
]


@pytest.mark.parametrize("script", MANY_ARGS)
def test_api_calls_with_unpacked_tables(pairs: Pair, script: str) -> None:
    pairs.same("EVAL", script, 1, "key")
    pairs.same("LRANGE", "key", 0, 2)
    pairs.same("SCARD", "key")


def test_set_repl_with_unpacked_table(pair: Pair) -> None:
    """Redis 7.0 words this error "requires two arguments"; the vector is Redis 7.4.1's."""
    script = FILL.format(n=7999, value="'a'") + "return redis.set_repl(unpack(t))"
    ours, _ = pair.both("EVAL", script, 0)
    assert ours == (b"-ERR redis.set_repl() requires one argument. script: "
                    b"0fedbf067b99db43a4d4893906ed0d3c7547ca05, on @user_script:1.\r\n")


@pytest.mark.parametrize("count", [7990, 8000, 20000])
def test_eval_and_fcall_with_many_keys_and_args(pair: Pair, count: int) -> None:
    args = [f"v{i}" for i in range(count)]
    pair.same("EVAL", "return {#KEYS, #ARGV, KEYS[1], KEYS[#KEYS], ARGV[1], ARGV[#ARGV]}", count // 2, *args)
    pair.same("EVAL", "return {#KEYS, #ARGV, ARGV[1], ARGV[#ARGV]}", 0, *args)
    pair.same("EVAL", "return redis.call('rpush', 'l', unpack(ARGV, 1, 7000))", 0, *args)
    pair.same("FUNCTION", "LOAD", "REPLACE",
              "#!lua name=many\nredis.register_function('sizes', function(k, a) "
              "return {#k, #a, k[#k], a[#a]} end)")
    pair.same("FCALL", "sizes", count // 3, *args)
    pair.same("FUNCTION", "DELETE", "many")


def test_big_replies_into_and_out_of_lua(pairs: Pair) -> None:
    """100,000 elements from redis.call into a Lua table and back as the script's reply, and
    a nested table of 10,000 (the harness reads big nested replies slowly)."""
    pairs.same("EVAL", "for i = 1, 100000, 1000 do local t = {} for j = i, i + 999 do t[#t + 1] = j end "
                       "redis.call('rpush', KEYS[1], unpack(t)) end return redis.call('llen', KEYS[1])", 1, "big")
    pairs.same("EVAL", "local r = redis.call('lrange', KEYS[1], 0, -1) return {#r, r[1], r[50000], r[100000]}",
               1, "big")
    pairs.same("EVAL", "return redis.call('lrange', KEYS[1], 0, -1)", 1, "big")
    pairs.same("EVAL", "local t = {} for i = 1, 10000 do t[i] = {i, 'x', {i / 2}} end return t", 0)
    pairs.same("EVAL", "local r = redis.call('lrange', KEYS[1], 0, -1) return #{unpack(r, 1, 7999)}", 1, "big")
    pairs.same("EVAL", "local r = redis.call('lrange', KEYS[1], 0, -1) return #{unpack(r)}", 1, "big")


@pytest.mark.parametrize("count", [8, 9, 4000, 4001, 8001])
def test_array_replies_around_the_slices(pairs: Pair, count: int) -> None:
    """Array replies cross from Lua whole up to 8 elements and in slices of 4,000 beyond:
    mixed elements (strings, integers, floats, booleans, nested tables, error and status
    tables) and the border at the first nil come out as Redis gives them."""
    pairs.same("EVAL", "local t = {} for i = 1, tonumber(ARGV[1]) do local k = i % 7 "
                       "if k == 0 then t[i] = 'v' .. i elseif k == 1 then t[i] = i + 0.5 "
                       "elseif k == 2 then t[i] = (i % 2 == 0) elseif k == 3 then t[i] = {i, {'x'}} "
                       "elseif k == 4 then t[i] = {ok = 'fine'} elseif k == 5 then t[i] = {err = 'bad'} "
                       "else t[i] = i end end return t", 0, count)
    pairs.same("EVAL", "local t = setmetatable({}, {__index = function() return 'meta' end}) "
                       "for i = 1, tonumber(ARGV[1]) do t[i] = i end t[tonumber(ARGV[1]) + 2] = 'past' return t",
               0, count)
