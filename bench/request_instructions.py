"""Instructions per pipelined request, in-process: what the C request loop and the handlers cost
for redis-benchmark's write tests, counted by callgrind (repeatable on a shared machine, unlike
rates).

Each test gets a fresh in-process server and a client (no sockets: ``Client.data_received`` is
fed 16-request pipelines of the exact requests redis-benchmark sends, literal ``__rand_int__``
included), and its loop runs inside one ``exec``, which callgrind counts on its own
(``--toggle-collect=builtin_exec --dump-after=builtin_exec``).  Start-up's objects are frozen
first (``collector.settle``, as the server does once ready), so the cyclic collector's passes
cost what they cost in the server.  Without ``--callgrind`` the
same loops run plainly and print wall-clock microseconds per request (noisy).

``--no-native`` has the native handlers decline, so their commands take the general path (the
C loop calling the Python handler): SPOP there is the general path's floor.

``--pipeline N`` sends N requests a read instead of 16: ``--pipeline 1`` counts what an
unpipelined request costs (redis-benchmark's ``-P 1``), the per-read work (``Client.data_received``,
the C loop's set-up and accounting, the flush) included once per request.  The fake transport's
``write``/``get_write_buffer_size`` are Python methods (uvloop's are C): a few hundred instructions
of each read are theirs.

``--python-reads`` has every read take ``Client.received`` (the Python read path, the C loop
inside it) instead of ``_fastpath.ClientBase.data_received``: the difference is what the C read
path saves a read.

``--general`` runs the set issue 12 names for the general path (commands with neither a C twin nor
a native handler: HINCRBY, ZSCORE, EXPIRE, GETRANGE, EVALSHA of bench/scripting.py's script, and
SCARD of a missing key, the floor).

usage: python bench/request_instructions.py [--callgrind] [--no-native] [--python-reads] [--general] [--pipeline N]
                                           [--batches N] [test ...]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import callgrind_totals  # noqa: E402

from dumpling import collector  # noqa: E402
from dumpling.commands.lists import use_native_handlers  # noqa: E402
from dumpling.config import Config  # noqa: E402
from dumpling.dispatch import Server  # noqa: E402
from dumpling.server import Client  # noqa: E402
from tests.servers import encode_command  # noqa: E402
from tests.test_fastpath_fuzz import Transport  # noqa: E402

SCRIPT = b"redis.call('incr', KEYS[1]) return redis.call('get', KEYS[1])"  # bench/scripting.py's
REQUESTS = {
    "set": [b"SET", b"key:__rand_int__", b"xxx"],
    "get": [b"GET", b"key:__rand_int__"],
    "mset": [b"MSET", *[b"key:__rand_int__", b"xxx"] * 10],
    "lrange_100": [b"LRANGE", b"mylist", b"0", b"99"],
    "lpush": [b"LPUSH", b"mylist", b"xxx"],
    "rpush": [b"RPUSH", b"mylist", b"xxx"],
    "lpop": [b"LPOP", b"mylist"],
    "rpop": [b"RPOP", b"mylist"],
    "sadd": [b"SADD", b"myset", b"element:__rand_int__"],
    "hset": [b"HSET", b"myhash", b"element:__rand_int__", b"xxx"],
    "spop": [b"SPOP", b"myset"],
    "xadd": [b"XADD", b"mystream", b"*", b"myfield", b"myvalue"],
    "zadd": [b"ZADD", b"myzset", b"0", b"element:__rand_int__"],
    "zpopmin": [b"ZPOPMIN", b"myzset"],
    "incr": [b"INCR", b"counter:__rand_int__"],
    "scard": [b"SCARD", b"myset"],  # no native handler: the general path's floor (lookup, type check)
    "ping": [b"PING"],
    # a new small hash per request (bench/latency.py --grow's load): every batch names new keys
    "hset_new": [b"HSET", b"grow:%d", b"f", b"v"],
    # a field of a big (hashtable-encoded) hash: its fields' table (datatypes/hashes.py)
    "hset_big": [b"HSET", b"bighash", b"field:500", b"yyy"],
    "hget_big": [b"HGET", b"bighash", b"field:500"],
    # ordinary commands without a native handler or twin: the general path (issue 12)
    "hincrby": [b"HINCRBY", b"myhash", b"counter", b"1"],
    "zscore": [b"ZSCORE", b"myzset", b"member"],
    "expire": [b"EXPIRE", b"mykey", b"100"],
    "getrange": [b"GETRANGE", b"mykey", b"0", b"3"],
    "evalsha": [b"EVALSHA", hashlib.sha1(SCRIPT).hexdigest().encode(), b"1", b"key:1"],
    # a few entries of a stream: the range read written from its packed chunks
    "xrange_10": [b"XRANGE", b"mystream", b"-", b"+", b"COUNT", b"10"],
}
GENERAL = ["hincrby", "zscore", "expire", "getrange", "evalsha", "scard"]
FRESH_KEYS = {"hset_new"}
# What the keyspace holds when redis-benchmark's test runs (its earlier tests made it).
SETUP = {
    "get": [[b"SET", b"key:__rand_int__", b"xxx"]],
    "lrange_100": [[b"RPUSH", b"mylist", *[b"xxx"] * 1000]],
    "lpush": [[b"RPUSH", b"mylist", *[b"xxx"] * 1000]],
    "rpush": [[b"RPUSH", b"mylist", *[b"xxx"] * 1000]],
    "lpop": [[b"RPUSH", b"mylist", *[b"xxx"] * 1000]] * 5,
    "rpop": [[b"RPUSH", b"mylist", *[b"xxx"] * 1000]] * 5,
    "spop": [[b"SADD", b"myset", b"element:__rand_int__"]],
    "hincrby": [[b"HSET", b"myhash", b"counter", b"1"]],
    "zscore": [[b"ZADD", b"myzset", b"1.5", b"member"]],
    "expire": [[b"SET", b"mykey", b"value"]],
    "getrange": [[b"SET", b"mykey", b"value"]],
    "evalsha": [[b"SCRIPT", b"LOAD", SCRIPT]],
    "xrange_10": [[b"XADD", b"mystream", b"*", b"myfield", b"myvalue"]] * 100,
    "hset_big": [[b"HSET", b"bighash", *[x for i in range(1000) for x in (b"field:%d" % i, b"xxx")]]],
    "hget_big": [[b"HSET", b"bighash", *[x for i in range(1000) for x in (b"field:%d" % i, b"xxx")]]],
}
PIPELINE = 16


def pipeline_of(test: str, batch: int = 0, pipeline: int = PIPELINE) -> bytes:
    if test == "ping_inline":
        return b"PING\r\n" * pipeline
    if test in FRESH_KEYS:
        name, key, *rest = REQUESTS[test]
        return b"".join(encode_command(name, key % (batch * pipeline + i), *rest) for i in range(pipeline))
    return encode_command(*REQUESTS[test]) * pipeline


def run(tests: list[str], batches: int, pipeline: int = PIPELINE) -> dict[str, float]:
    """Each test's loop inside one exec(); wall-clock microseconds per request."""
    out = {}
    for test in tests:
        server = Server(Config())
        client = Client(server)
        transport = Transport()
        client.connection_made(transport)  # type: ignore[arg-type]
        for request in SETUP.get(test, []):
            client.data_received(encode_command(*request))
        collector.settle()  # as the server does once it is ready: start-up's objects frozen
        data = pipeline_of(test, 0, pipeline)
        client.data_received(data)  # the key exists from here on, as after redis-benchmark's first requests
        transport.data.clear()
        datas = [pipeline_of(test, 1 + i, pipeline) if test in FRESH_KEYS else data for i in range(batches)]
        scope = {"client": client, "datas": datas, "transport": transport}
        loop = "for data in datas:\n    client.data_received(data)\n    transport.data.clear()\n"
        started = time.perf_counter()
        exec(compile(loop, test, "exec"), scope)
        out[test] = (time.perf_counter() - started) / (batches * pipeline) * 1e6
    return out


def under_callgrind(tests: list[str], batches: int, options: list[str], pipeline: int = PIPELINE) -> dict[str, float]:
    """Instructions per request of each test's exec(), from callgrind's per-exec dumps."""
    totals = callgrind_totals(__file__, ["--batches", str(batches), "--pipeline", str(pipeline), *options, *tests])
    return {test: total / (batches * pipeline) for test, total in zip(tests, totals[-len(tests):], strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--callgrind", action="store_true", help="count instructions (needs valgrind)")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--pipeline", type=int, default=PIPELINE, help="requests a read (1: unpipelined)")
    parser.add_argument("--python-reads", action="store_true", help="reads through Client.received (Python)")
    parser.add_argument("--no-native", action="store_true", help="native handlers off: the general path")
    parser.add_argument("--general", action="store_true", help="the general-path set: " + " ".join(GENERAL))
    parser.add_argument("tests", nargs="*", default=[*REQUESTS, "ping_inline"])
    args = parser.parse_args()
    if args.general:
        args.tests = GENERAL
    if args.no_native:
        use_native_handlers(False)
    if args.python_reads:
        Client.data_received = Client.received  # type: ignore[method-assign]
    if args.callgrind:
        options = ["--no-native"] if args.no_native else []
        options += ["--python-reads"] if args.python_reads else []
        for test, count in under_callgrind(args.tests, args.batches, options, args.pipeline).items():
            print(f"{test:12} {count:9,.0f} instructions per request")
    else:
        for test, us in run(args.tests, args.batches, args.pipeline).items():
            print(f"{test:12} {us:7.2f} us per request")


if __name__ == "__main__":
    main()
