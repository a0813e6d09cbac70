"""INFO memory's scripting fields: the Lua heaps measured (whole KB, as Redis's
``lua_gc(LUA_GCCOUNT) * 1024``), libraries compiled only when a script touches them, SCRIPT
FLUSH / FUNCTION FLUSH giving fresh VMs, and the script and function caches counted as Redis
7.4 counts them.

The cache sizes depend on the allocator: the vectors come from Redis 7.4.1 built with
``MALLOC=libc`` (dumpling reports ``mem_allocator:libc``), recorded by the sequence in
``_sequence`` (Debian's Redis 7.0 uses jemalloc: its numbers differ).
"""

from __future__ import annotations

import time
from typing import Any

import redis

from dumpling.scripting import accounting
from tests.servers import Pair, ServerProcess

LIBRARIES = [
    "#!lua name=a\nredis.register_function('f', function() return 1 end)",
    "#!lua name=abcdefghij\nredis.register_function('f', function() return 1 end)",
    "#!lua name=a\nredis.register_function('fffffffffffffffffffff', function() return 1 end)",
    "#!lua name=a\nredis.register_function{function_name='f', callback=function() return 1 end, description='some desc'}",
    "#!lua name=a\nredis.register_function('f', function() return 1 end) redis.register_function('g', function() return 1 end)",
    "#!lua name=a\nredis.register_function('f', function() return 1 end)" + "-" * 500,
]
BODY_LENGTHS = [2, 5, 20, 28, 44, 45, 60, 120, 200, 1000, 4000, 40000]
# Redis 7.4.1 (libc malloc): used_memory_functions added by each library after a FUNCTION
# FLUSH; used_memory_scripts_eval with one SCRIPT LOAD of each body length; after 1..4 and
# 7..8 SCRIPT LOADs of "return i" (5 and 6 are counted mid-rehash by Redis); after 1..4 EVALs.
LIBRARY_DELTAS = [280, 296, 312, 352, 456, 792]
ONE_SCRIPT = [144, 160, 160, 176, 192, 192, 208, 272, 352, 1152, 4144, 40144]
LOADED = {1: 160, 2: 288, 3: 416, 4: 544, 7: 960, 8: 1088}
EVALED = [184, 336, 488, 640]


def test_accounting_matches_redis_74_vectors() -> None:
    assert [accounting.eval_scripts_memory([(n, False)]) for n in BODY_LENGTHS] == ONE_SCRIPT
    for count, expected in LOADED.items():
        assert accounting.eval_scripts_memory([(8, False)] * count) == expected
    assert [accounting.eval_scripts_memory([(8, True)] * n) for n in range(1, 5)] == EVALED
    base = accounting.functions_memory([], 2)
    assert base == 376  # a fresh server after one FUNCTION FLUSH
    assert accounting.functions_memory([], 1) == 232
    assert accounting.functions_memory([(1, 66, [(1, None)])], 2) - base == 280
    assert accounting.functions_memory([(1, 114, [(1, 9)])], 2) - base == 352
    assert accounting.functions_memory([(1, 120, [(1, None), (1, None)])], 2) - base == 456


def _info(r: redis.Redis) -> dict:
    return r.info("memory")


def test_server_reports_caches_as_redis_74(dumpling_server: ServerProcess) -> None:
    r = redis.Redis(port=dumpling_server.port)
    try:
        deltas = []
        for code in LIBRARIES:
            r.function_flush()
            before = _info(r)["used_memory_functions"]
            r.function_load(code)
            deltas.append(_info(r)["used_memory_functions"] - before)
        assert deltas == LIBRARY_DELTAS
        # every FUNCTION FLUSH registers the engine again, and Redis 7.4 counts it again
        r.function_flush()
        before = _info(r)["used_memory_functions"]
        r.function_flush()
        assert _info(r)["used_memory_functions"] - before == accounting.ENGINE_REGISTRATION
        one = []
        for n in BODY_LENGTHS:
            r.script_flush()
            r.script_load("--" + "x" * (n - 2))
            one.append(_info(r)["used_memory_scripts_eval"])
        assert one == ONE_SCRIPT
        r.script_flush()
        for i in range(1, 9):
            r.script_load(f"return {i}")
            if i in LOADED:
                assert _info(r)["used_memory_scripts_eval"] == LOADED[i]
        r.script_flush()
        evaled = []
        for i in range(4):
            r.eval(f"return {i}", 0)
            evaled.append(_info(r)["used_memory_scripts_eval"])
        assert evaled == EVALED
        info = _info(r)
        assert info["number_of_cached_scripts"] == 4
        assert info["used_memory_scripts"] == info["used_memory_scripts_eval"] + info["used_memory_functions"]
    finally:
        r.script_flush()
        r.function_flush()
        r.close()


def test_lua_heaps_are_measured(dumpling_server: ServerProcess) -> None:
    r = redis.Redis(port=dumpling_server.port)
    try:
        r.script_flush()
        fresh = _info(r)["used_memory_lua"]
        assert fresh % 1024 == 0 and fresh < 100 * 1024  # the libraries are not compiled yet
        r.eval("return cjson.encode({1, 2}) .. cmsgpack.pack(1) .. struct.pack('b', 1) .. bit.tohex(1)", 0)
        assert _info(r)["used_memory_lua"] > fresh + 60 * 1024  # now they are
        r.eval("local t = {} for i = 1, 100000 do t[i] = tostring(i) end redis.call('set', 'k', #t)", 0)
        info = _info(r)
        assert info["used_memory_lua"] == info["used_memory_vm_eval"]
        assert info["used_memory_vm_total"] == info["used_memory_vm_eval"] + info["used_memory_vm_functions"]
        r.script_flush()  # a new VM
        assert _info(r)["used_memory_lua"] == fresh
        # Redis's "EVAL does not leak in the Lua stack": 10,000 runs keep the heap small
        pipe = r.pipeline(transaction=False)
        for _ in range(10000):
            pipe.eval("return redis.call('incr', KEYS[1])", 1, "x")
        pipe.execute()
        assert _info(r)["used_memory_lua"] < 100 * 1024
        r.function_flush()
        functions_fresh = _info(r)["used_memory_vm_functions"]
        assert functions_fresh == 0  # no functions, no VM for them until the next FUNCTION LOAD
        for i in range(200):
            r.function_load(f"#!lua name=l{i}\nredis.register_function('f{i}', function() return {i} end)")
        assert _info(r)["used_memory_vm_functions"] > functions_fresh + 50 * 1024
        r.function_flush()
        assert _info(r)["used_memory_vm_functions"] == functions_fresh
    finally:
        r.delete("k", "x")
        r.script_flush()
        r.function_flush()
        r.close()


def test_async_flushes_count_lazyfreed_objects(pair: Pair) -> None:
    """SCRIPT FLUSH ASYNC / FUNCTION FLUSH ASYNC of more than 64 scripts or functions count
    them in lazyfreed_objects; Redis 7.4 also counts the functions' engine (7.0 does not:
    Redis 7.4.1 gave 201 where 7.0 gives 200 for this sequence)."""
    pair.same("SCRIPT", "FLUSH", "SYNC")  # (earlier tests' scripts would be freed too)
    pair.same("FUNCTION", "FLUSH", "SYNC")
    before = [_settled_lazyfreed(conn) for conn in (pair.ours, pair.theirs)]  # earlier tests' frees done
    for i in range(100):
        pair.same("FUNCTION", "LOAD", f"#!lua name=l{i}\nredis.register_function('f{i}', function() return 1 end)")
        pair.same("SCRIPT", "LOAD", f"return {i}")
    pair.same("FUNCTION", "FLUSH", "ASYNC")
    pair.same("SCRIPT", "FLUSH", "ASYNC")
    for i in range(10):  # not enough to go to the lazyfree thread
        pair.same("FUNCTION", "LOAD", f"#!lua name=l{i}\nredis.register_function('f{i}', function() return 1 end)")
    pair.same("FUNCTION", "FLUSH", "ASYNC")
    counts = [_settled_lazyfreed(conn) - base for conn, base in zip((pair.ours, pair.theirs), before, strict=True)]
    assert counts == [201, 200]


def _settled_lazyfreed(conn: Any) -> int:
    """lazyfreed_objects once the lazyfree thread has nothing pending (Redis counts there)."""
    for _ in range(100):
        info = conn.call("INFO", "memory")
        if b"lazyfree_pending_objects:0\r\n" in info:
            break
        time.sleep(0.02)
    return int(info.split(b"lazyfreed_objects:")[1].split(b"\r\n")[0])


def test_evicted_scripts_stat(dumpling_server: ServerProcess) -> None:
    """INFO's evicted_scripts (Redis 7.4; 7.0 has no script eviction): EVAL-created scripts
    beyond 500 are evicted oldest first and counted; CONFIG RESETSTAT zeroes the count."""
    r = redis.Redis(port=dumpling_server.port)
    try:
        r.script_flush()
        r.config_resetstat()
        r.script_load("return 'loaded'")
        pipe = r.pipeline(transaction=False)
        for i in range(510):
            pipe.eval(f"return {i}", 0)
        pipe.execute()
        assert r.info("stats")["evicted_scripts"] == 10
        assert r.info("memory")["number_of_cached_scripts"] == 501
        r.config_resetstat()
        assert r.info("stats")["evicted_scripts"] == 0
    finally:
        r.script_flush()
        r.close()
