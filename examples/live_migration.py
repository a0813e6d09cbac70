"""Live migration from a running Redis to dumpling, with no acknowledged write lost.

    python examples/live_migration.py [--source-port 6379] [--target-port 6380]

Without ports, it starts a throwaway Redis (with data) and dumpling itself.  The steps are
the ones to follow by hand on a real deployment:

1. ``REPLICAOF <redis host> <port>`` on dumpling: a full sync, then the live stream.
2. Wait until dumpling has caught up (``master_repl_offset`` equal on both).
3. ``CLIENT PAUSE <ms> WRITE`` on Redis: writes wait there, reads go on.
4. Wait until dumpling's offset equals Redis's again (the last writes arrived).
5. ``REPLICAOF NO ONE`` on dumpling: it is a master, with the same data.
6. Point the clients at dumpling, and make Redis a replica of dumpling before the pause
   ends: the writes it held are then refused (-READONLY) and the clients retry them against
   dumpling, so none lands on the old master.

Meanwhile a writer thread keeps incrementing counters and records every increment Redis
or dumpling acknowledged; at the end each counter on dumpling must be at least what was
acknowledged (exactly equal, since nothing else writes).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class Writer(threading.Thread):
    """INCR of 50 counters in turn, against whichever server ``target`` names now."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.acknowledged: dict[str, int] = {}
        self.stop = threading.Event()
        self.errors = 0

    def run(self) -> None:
        connections: dict[int, redis.Redis] = {}
        i = 0
        while not self.stop.is_set():
            port = self.port
            c = connections.setdefault(port, redis.Redis(port=port, socket_timeout=5))
            key = f"counter:{i % 50}"
            try:
                value = c.incr(key)
            except redis.RedisError:
                self.errors += 1  # not acknowledged: the client retries the same increment
                time.sleep(0.01)
                continue
            self.acknowledged[key] = value
            i += 1


def offset(c: redis.Redis) -> int:
    return int(c.info("replication")["master_repl_offset"])


def wait(check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.01)


def migrate(source_port: int, target_port: int) -> None:
    source = redis.Redis(port=source_port)
    target = redis.Redis(port=target_port)
    writer = Writer(source_port)
    writer.start()
    time.sleep(0.5)
    print(f"1. dumpling :{target_port} REPLICAOF redis :{source_port}")
    target.replicaof("127.0.0.1", source_port)
    wait(lambda: target.info("replication").get("master_link_status") == "up")
    print("2. full sync done; following the live stream")
    wait(lambda: offset(target) >= offset(source) - 10_000)
    time.sleep(0.5)
    print("3. CLIENT PAUSE WRITE on redis")
    source.execute_command("CLIENT", "PAUSE", 10_000, "WRITE")
    paused_at = offset(source)
    wait(lambda: offset(target) == paused_at)
    print(f"4. dumpling caught up at offset {paused_at}")
    target.replicaof("no", "one")
    print("5. dumpling promoted (REPLICAOF NO ONE); clients move to it")
    writer.port = target_port
    source.replicaof("127.0.0.1", target_port)  # held writes are refused, not applied on the old master
    source.execute_command("CLIENT", "UNPAUSE")
    print("6. redis is now a replica of dumpling; the writes it held were refused and retried on dumpling")
    time.sleep(0.5)
    writer.stop.set()
    writer.join()
    wrong = {key: (acked, int(target.get(key) or 0)) for key, acked in writer.acknowledged.items()
             if int(target.get(key) or 0) != acked}
    print(f"7. {sum(writer.acknowledged.values())} acknowledged increments ({writer.errors} refused and retried); "
          f"{len(wrong)} counters differ on dumpling")
    if wrong:
        raise SystemExit(f"acknowledged writes lost or applied twice: {wrong}")
    print("no acknowledged write lost, none applied twice")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-port", type=int)
    parser.add_argument("--target-port", type=int)
    args = parser.parse_args()
    if args.source_port and args.target_port:
        migrate(args.source_port, args.target_port)
        return
    from tests.servers import start_dumpling, start_redis

    source = start_redis("--repl-diskless-sync-delay", "0")
    target = start_dumpling()
    try:
        redis.Redis(port=source.port).execute_command("DEBUG", "POPULATE", 100_000, "key", 10)
        migrate(source.port, target.port)
    finally:
        source.stop()
        target.stop()


if __name__ == "__main__":
    main()
