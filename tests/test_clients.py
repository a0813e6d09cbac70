"""Real clients: redis-py sync and asyncio, RESP2 and RESP3 (redis-py 8 starts with HELLO 3)."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio as aioredis


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_sync(dumpling_server, protocol):
    client = redis.Redis(port=dumpling_server.port, protocol=protocol, client_name="tester")
    try:
        client.flushall()
        assert client.ping() is True
        assert client.set("k", "v", ex=100) is True
        assert client.get("k") == b"v"
        assert 99 <= client.ttl("k") <= 100
        assert client.client_getname() in ("tester", b"tester")  # redis-py decodes only in RESP2
        assert client.incr("n") == 1
        assert client.mget("k", "n", "missing") == [b"v", b"1", None]
        assert client.exists("k", "n") == 2
        assert client.config_get("maxmemory") == {"maxmemory": "0"}
        assert client.info("server")["redis_version"] == "7.4.0"
        assert sorted(client.keys("*")) == [b"k", b"n"]
        assert client.type("k") == b"string"
        assert client.object("encoding", "n") == b"int"
        with client.pipeline() as pipe:  # MULTI/EXEC by default
            pipe.set("a", 1).incr("a").get("a")
            assert pipe.execute() == [True, 2, b"2"]
        assert list(client.scan_iter(match="*")) and client.dbsize() == 3
        assert client.delete("k", "n", "a") == 3
    finally:
        client.close()


def test_redis_py_default_protocol_handshake(dumpling_server):
    client = redis.Redis(port=dumpling_server.port, db=2, client_name="x")
    try:
        assert client.ping() is True
        assert client.set("db2", "yes") and client.get("db2") == b"yes"
        assert client.client_info()["db"] == 2
        client.delete("db2")
    finally:
        client.close()


def test_redis_py_password():
    from tests.servers import start_dumpling

    server = start_dumpling("--requirepass", "pw")
    try:
        for protocol in (2, 3):
            client = redis.Redis(port=server.port, password="pw", protocol=protocol)
            assert client.ping() is True
            client.close()
        bad = redis.Redis(port=server.port, password="nope")
        with pytest.raises(redis.AuthenticationError):
            bad.ping()
        bad.close()
    finally:
        server.stop()


@pytest.mark.parametrize("protocol", [2, 3])
async def test_redis_py_asyncio(dumpling_server, protocol):
    client = aioredis.Redis(port=dumpling_server.port, protocol=protocol)
    try:
        await client.flushall()
        assert await client.set("ak", "1") is True
        assert await client.incrby("ak", 5) == 6
        async with client.pipeline(transaction=False) as pipe:
            for i in range(100):
                pipe.set(f"p{i}", i)
            results = await pipe.execute()
        assert results == [True] * 100
        assert await client.get("p42") == b"42"
        assert await client.dbsize() == 101
    finally:
        await client.aclose()
