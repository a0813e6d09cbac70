"""Shared fixtures: one dumpling and one real redis-server per test session.

``pair`` / ``pair3`` give a differential harness (RESP2 / RESP3) on freshly
flushed servers; ``r`` is a redis-py client on dumpling.  Tests that change
server-wide config start their own server with ``start_dumpling``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.servers import Pair, ServerProcess, start_dumpling, start_redis


@pytest.fixture(scope="session")
def dumpling_server() -> Iterator[ServerProcess]:
    server = start_dumpling()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[ServerProcess]:
    server = start_redis()
    yield server
    server.stop()


def _flush(server: ServerProcess) -> None:
    with server.raw() as conn:
        conn.call("FLUSHALL")


@pytest.fixture
def pair(dumpling_server: ServerProcess, redis_server: ServerProcess) -> Iterator[Pair]:
    _flush(dumpling_server)
    _flush(redis_server)
    p = Pair(dumpling_server, redis_server, resp=2)
    yield p
    p.close()


@pytest.fixture
def pair3(dumpling_server: ServerProcess, redis_server: ServerProcess) -> Iterator[Pair]:
    _flush(dumpling_server)
    _flush(redis_server)
    p = Pair(dumpling_server, redis_server, resp=3)
    yield p
    p.close()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def pairs(request: pytest.FixtureRequest, dumpling_server: ServerProcess, redis_server: ServerProcess) -> Iterator[Pair]:
    """The differential harness in both protocols."""
    _flush(dumpling_server)
    _flush(redis_server)
    p = Pair(dumpling_server, redis_server, resp=request.param)
    yield p
    p.close()


@pytest.fixture
def r(dumpling_server: ServerProcess) -> Iterator[redis.Redis]:
    client = redis.Redis(port=dumpling_server.port, protocol=2)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def real(redis_server: ServerProcess) -> Iterator[redis.Redis]:
    client = redis.Redis(port=redis_server.port, protocol=2)
    client.flushall()
    yield client
    client.close()
