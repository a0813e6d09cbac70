"""At startup: the AOF loads in slices from the event loop (clients get ``-LOADING``, INFO
``loading:1``, as while an RDB loads), a shutdown meanwhile stops it, and
``rdb-del-sync-files`` says once that it has nothing to delete without replication."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.servers import start_dumpling
from tests.test_persistence_aof import client
from tests.test_persistence_rdb import dumpling, info, shutdown, wait_for

LOADING = b"-LOADING Redis is loading the dataset in memory\r\n"


def make_aof(directory: Path) -> None:
    """An RDB-preamble base of 1000 keys and an incr file of 1000 commands."""
    with dumpling(directory) as server:
        c = client(server)
        c.execute_command("DEBUG", "POPULATE", 1000)
        c.config_set("appendonly", "yes")
        with c.pipeline(transaction=False) as p:
            for i in range(1000):
                p.rpush("log", i)
            p.execute()
        wait_for(lambda: info(server)["aof_rewrite_in_progress"] == "0")  # (SHUTDOWN waits for the first base)
        shutdown(server, "NOSAVE")


def test_aof_loads_in_slices_while_clients_get_loading(tmp_path: Path) -> None:
    make_aof(tmp_path)
    # key-load-delay: µs per key of the base and per command of the incr file (~2 s here)
    server = start_dumpling("--dir", str(tmp_path), "--appendonly", "yes", "--key-load-delay", "1000")
    try:
        with server.raw() as conn:
            assert conn.call("GET", "key:1") == LOADING
            assert conn.call("SET", "x", "1") == LOADING
            text = conn.call("INFO", "persistence")
        assert b"loading:1\r\n" in text and b"async_loading:0\r\n" in text
        total = int(text.split(b"loading_total_bytes:")[1].split(b"\r\n")[0])
        assert total == sum(p.stat().st_size for p in (tmp_path / "appendonlydir").glob("appendonly.aof.1.*"))
        wait_for(lambda: info(server)["loading"] == "0", timeout=30)
        c = client(server)
        assert c.dbsize() == 1001 and c.llen("log") == 1000 and c.get("key:999") == b"value:999"
        assert info(server)["aof_enabled"] == "1"
        c.set("after", "1")  # logged again once loaded
        shutdown(server, "NOSAVE")
    finally:
        server.stop()
    with dumpling(tmp_path, "--appendonly", "yes") as server:
        assert client(server).get("after") == b"1"


def test_sigterm_while_the_aof_loads_stops_without_touching_it(tmp_path: Path) -> None:
    make_aof(tmp_path)
    before = {p.name: p.read_bytes() for p in (tmp_path / "appendonlydir").iterdir()}
    server = start_dumpling("--dir", str(tmp_path), "--appendonly", "yes", "--key-load-delay", "2000")
    try:
        with server.raw() as conn:
            assert conn.call("PING") == LOADING
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(30) == 0
        assert "DB loaded from append only file:" not in server.log()  # stopped mid-load (not a time bound)
    finally:
        server.stop()
    assert {p.name: p.read_bytes() for p in (tmp_path / "appendonlydir").iterdir()} == before


def test_rdb_del_sync_files_keeps_a_file_not_made_for_replication(tmp_path: Path) -> None:
    with dumpling(tmp_path) as server:
        client(server).set("k", "v")
        assert client(server).save()
    with dumpling(tmp_path, "--rdb-del-sync-files", "yes") as server:  # persistence off: Redis's condition
        assert client(server).get("k") == b"v"
        shutdown(server, "NOSAVE")
    assert (tmp_path / "dump.rdb").exists()


def test_config_set_appendonly_no_while_the_aof_loads(tmp_path: Path) -> None:
    make_aof(tmp_path)
    manifest = (tmp_path / "appendonlydir" / "appendonly.aof.manifest").read_bytes()
    server = start_dumpling("--dir", str(tmp_path), "--appendonly", "yes", "--key-load-delay", "500")
    try:
        with server.raw() as conn:  # Redis 7.4 refuses `appendonly` while loading (DENY_LOADING_CONFIG)
            assert conn.call("CONFIG", "SET", "appendonly", "no") == b"-LOADING Redis is loading the dataset in memory\r\n"
        wait_for(lambda: info(server)["loading"] == "0", timeout=30)
        assert info(server)["aof_enabled"] == "1" and client(server).llen("log") == 1000  # loaded, still on
    finally:
        server.stop()
    assert (tmp_path / "appendonlydir" / "appendonly.aof.manifest").read_bytes() == manifest
