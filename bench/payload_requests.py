"""Cost of one small-key RESTORE and DUMP, in process, per payload type: what the C request loop,
the handler and the codec spend on each request, without sockets or a second process.

Payloads are Redis's own DUMPs of bench/payload_server.py's small keys (a real redis-server on
PATH makes them).  Each case gets a fresh in-process server and client (``Client.data_received``
fed 100-request pipelines, as payload_server.py's batches): RESTORE ``key 0 payload REPLACE``
of 100 distinct keys into an empty database, then DUMP of those keys.  With ``--callgrind`` each
case's loop runs inside one ``exec`` that callgrind counts on its own (instructions per request,
repeatable on a shared machine); without it, wall-clock microseconds per request (noisy).

``--first-use`` adds a third case, ``first-use``: each RESTORE followed by a read of the whole
value (HGETALL, ZRANGE 0 -1 WITHSCORES, SMEMBERS, LRANGE 0 -1, GET), counted per pair: what a
restored value costs once a client reads it (a value kept packed is built by that read).

usage: python bench/payload_requests.py [--callgrind] [--first-use] [--batches N] [kind ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from measure import callgrind_totals  # noqa: E402
from payload_server import SMALL_KINDS, encode, small_setup, start  # noqa: E402

from dumpling.config import Config  # noqa: E402
from dumpling.dispatch import Server  # noqa: E402
from dumpling.server import Client  # noqa: E402
from tests.test_fastpath_fuzz import Transport  # noqa: E402

BATCH = 100
# --first-use: the read that uses the whole restored value of each kind
WHOLE_READ = {"string": ["GET"], "int": ["GET"], "hash": ["HGETALL"], "zset": ["ZRANGE", 0, -1, "WITHSCORES"],
              "list": ["LRANGE", 0, -1], "intset": ["SMEMBERS"], "set": ["SMEMBERS"]}


def redis_payloads(kinds: list[str]) -> dict[str, list[bytes]]:
    """``BATCH`` DUMP payloads of each kind, from a real redis-server."""
    real = start("redis", ["redis-server", "--save", "", "--appendonly", "no"], None)
    try:
        out = {}
        for kind in kinds:
            keys = [b"k:%d" % i for i in range(BATCH)]
            real.pipeline([small_setup(kind, k, i) for i, k in enumerate(keys)], BATCH)
            out[kind] = real.pipeline([encode("DUMP", k) for k in keys], BATCH)  # type: ignore[assignment]
            real.call("FLUSHALL")
        return out
    finally:
        real.stop()


def loops(kind: str, payloads: list[bytes], first_use: bool = False) -> tuple[Client, Transport, list[tuple[str, bytes]]]:
    server = Server(Config())
    client = Client(server)
    transport = Transport()
    client.connection_made(transport)  # type: ignore[arg-type]
    keys = [b"%s:%d" % (kind.encode(), i) for i in range(len(payloads))]
    restore = b"".join(encode("RESTORE", k, 0, p, "REPLACE") for k, p in zip(keys, payloads, strict=True))
    dump = b"".join(encode("DUMP", k) for k in keys)
    cases = [("restore", restore), ("dump", dump)]
    if first_use:
        read = WHOLE_READ[kind]
        cases.append(("first-use", b"".join(encode("RESTORE", k, 0, p, "REPLACE") + encode(read[0], k, *read[1:])
                                            for k, p in zip(keys, payloads, strict=True))))
    return client, transport, cases


def run(payloads: dict[str, list[bytes]], batches: int, first_use: bool = False) -> dict[str, float]:
    """Wall-clock microseconds per request (per RESTORE and read for first-use) of each case's exec()."""
    out = {}
    for kind, kind_payloads in payloads.items():
        client, transport, cases = loops(kind, kind_payloads, first_use)
        for name, data in cases:
            client.data_received(data)  # warm: the keys exist from here on
            transport.data.clear()
            scope = {"client": client, "data": data, "transport": transport}
            loop = f"for _ in range({batches}):\n    client.data_received(data)\n    transport.data.clear()\n"
            started = time.perf_counter()
            exec(compile(loop, f"{name} {kind}", "exec"), scope)
            out[f"{name} {kind}"] = (time.perf_counter() - started) / (batches * BATCH) * 1e6
    return out


def under_callgrind(kinds: list[str], batches: int, first_use: bool = False) -> dict[str, float]:
    """Instructions per request of each case's exec(), from callgrind's per-exec dumps."""
    totals = callgrind_totals(__file__, ["--batches", str(batches), *(["--first-use"] if first_use else []), *kinds])
    names = ("restore", "dump", "first-use") if first_use else ("restore", "dump")
    cases = [f"{name} {kind}" for kind in kinds for name in names]
    return {case: total / (batches * BATCH) for case, total in zip(cases, totals[-len(cases):], strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--callgrind", action="store_true", help="count instructions (needs valgrind)")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--first-use", action="store_true", help="also RESTORE + a read of the whole value")
    parser.add_argument("kinds", nargs="*", default=list(SMALL_KINDS))
    args = parser.parse_args()
    if args.callgrind:
        for case, count in under_callgrind(args.kinds, args.batches, args.first_use).items():
            print(f"{case:16} {count:9,.0f} instructions per request")
    else:
        for case, us in run(redis_payloads(args.kinds), args.batches, args.first_use).items():
            print(f"{case:16} {us:7.2f} us per request")


if __name__ == "__main__":
    main()
