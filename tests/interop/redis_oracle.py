"""A real ``redis-server`` with a redis-py client, for the payload interop tests.

Process handling (free port, start, CI-aware skip/fail when redis-server is missing,
stop) is ``tests.servers.start_redis``; this adds the RESP3 client and ``raw``.
"""

from __future__ import annotations

import redis

from tests.servers import start_redis


class RedisOracle:
    """One redis-server process with a redis-py client (RESP3, bytes), plus ``raw`` for callback-free replies."""

    def __init__(self, *extra_args: str) -> None:
        self.server = start_redis(*extra_args)
        self.port = self.server.port
        self.client = redis.Redis(port=self.port, protocol=3)

    def raw(self, *args: object) -> object:
        """A command's reply as parsed RESP3, without redis-py's per-command reshaping."""
        conn = self.client.connection_pool.get_connection()
        try:
            conn.send_command(*args)
            return conn.read_response()
        finally:
            self.client.connection_pool.release(conn)

    def alive(self) -> bool:
        return self.server.proc.poll() is None

    def stop(self) -> None:
        self.client.close()
        self.server.stop()

    def __enter__(self) -> RedisOracle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
