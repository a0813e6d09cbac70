"""dumpling.testing and the pytest plugin, used the way another project's tests use them."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
import tempfile
import textwrap

import hiredis
import pytest
import redis

from dumpling import buildinfo
from dumpling.testing import DumplingCluster, DumplingProcess, DumplingThread, ServerStartError, config_lines
from tests.servers import ROOT

pytest_plugins = ["pytester"]


def test_config_lines_quote_values_as_redis_reads_them() -> None:
    assert config_lines({"maxmemory": "10mb", "save": ["60", 1], "requirepass": 'a "b"', "appendonly": True}) == [
        'maxmemory "10mb"', 'save "60" "1"', 'requirepass "a \\"b\\""', 'appendonly "yes"']
    assert config_lines(["save 60 1"]) == ["save 60 1"]
    with pytest.raises(TypeError):
        config_lines("maxmemory 10mb")


def test_process_server_lifecycle() -> None:
    """A subprocess on a free port, with the given directives, in its own directory that goes with it."""
    with DumplingProcess({"maxmemory": "10mb", "maxmemory-policy": "allkeys-lru"}) as server:
        assert server.command("CONFIG", "GET", "maxmemory-policy") == [b"maxmemory-policy", b"allkeys-lru"]
        assert server.command("CONFIG", "GET", "save") == [b"save", b""]  # a test server keeps no save points
        assert server.command("CONFIG", "GET", "dir") == [b"dir", os.path.realpath(server.dir).encode()]
        assert "Ready to accept connections tcp" in server.log()
        proc, directory = server.proc, server.dir
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
    assert proc is not None and proc.returncode == 0  # SIGTERM: a clean shutdown
    assert not os.path.exists(directory)


def test_thread_servers_are_independent_and_stop_cleanly() -> None:
    with DumplingThread(["maxmemory 5mb"]) as one, DumplingThread() as two:
        one.command("SET", "k", "one")
        two.command("SET", "k", "two")
        assert (one.command("GET", "k"), two.command("GET", "k")) == (b"one", b"two")
        assert one.command("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"5242880"]
        assert one.server.keyspace is not two.server.keyspace
        threads = [one.thread, two.thread]
    assert all(t is not None and not t.is_alive() for t in threads)
    with pytest.raises(ValueError, match="rename-command"):
        DumplingThread(["rename-command FLUSHALL ''"])


@pytest.mark.parametrize("kind", [DumplingProcess, DumplingThread])
def test_password_flush_and_clients(kind: type) -> None:
    with kind({"requirepass": "s3cret pass"}) as server:
        with pytest.raises(hiredis.ReplyError, match="NOAUTH"):
            hiredis_without_auth(server)
        client = server.client(decode_responses=True)
        client.set("k", "v")
        client.function_load("#!lua name=lib\nredis.register_function('f', function() return 1 end)")
        assert redis.Redis.from_url(server.url).get("k") == b"v"  # the URL carries the password
        server.flush()
        assert client.dbsize() == 0 and client.function_list() == []
        client.close()


def hiredis_without_auth(server: DumplingProcess | DumplingThread) -> None:
    password, server.password = server.password, None
    try:
        server.command("GET", "k")
    finally:
        server.password = password


@pytest.mark.parametrize("kind", [DumplingProcess, DumplingThread])
def test_start_failure_shows_the_servers_error(kind: type) -> None:
    server = kind(["maxmemory lots"])
    with pytest.raises(ServerStartError) as info:
        server.start()
    assert "maxmemory" in str(info.value)
    assert server.dir == ""  # its directory was removed


def test_thread_server_ended_by_shutdown_then_stopped() -> None:
    server = DumplingThread().start()
    with pytest.raises(ConnectionError):
        server.command("SHUTDOWN", "NOSAVE")
    assert server.thread is not None
    server.thread.join(10)
    server.stop()
    assert server.exit_code == 0


def test_cluster_of_thread_servers() -> None:
    with DumplingCluster(3, {"maxmemory": "10mb"}, mode="thread") as cluster:
        client = cluster.client(decode_responses=True)
        for i in range(30):
            client.set(f"key{i}", i)
        sizes = [node.command("DBSIZE") for node in cluster.nodes]
        assert sum(sizes) == 30 and min(sizes) > 0  # every node owns slots
        assert client.get("key7") == "7"
        slots = sorted((start, end) for start, end, *_ in cluster.nodes[0].command("CLUSTER", "SLOTS"))
        assert slots == [(0, 5461), (5462, 10923), (10924, 16383)]
        cluster.flush()
        assert [node.command("DBSIZE") for node in cluster.nodes] == [0, 0, 0]
        client.close()
        threads = [node.thread for node in cluster.nodes]
    assert cluster.nodes == [] and not any(t is not None and t.is_alive() for t in threads)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")
def test_same_harness_runs_redis_server() -> None:
    """``executable`` swaps the server: the same tests can run against real Redis."""
    with DumplingProcess({"maxmemory": "1mb"}, executable=["redis-server"]) as server:
        assert server.command("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"1048576"]
        assert b"redis_version" in server.command("INFO", "server")


def _plugin_args(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The entry point loads the plugin when dumpling is installed; from a bare checkout, -p does."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    names = {ep.name for ep in importlib.metadata.entry_points(group="pytest11")}
    return [] if "dumpling" in names else ["-p", "dumpling.pytest_plugin"]


USER_TESTS = """
    import redis

    PORTS = set()

    def test_write(dumpling_client, dumpling_server):
        PORTS.add(dumpling_server.port)
        dumpling_client.set("greeting", "hello")
        assert dumpling_client.get("greeting") == b"hello"

    def test_flushed_between_tests(dumpling_client, dumpling_server):
        PORTS.add(dumpling_server.port)
        assert dumpling_client.dbsize() == 0
        assert len(PORTS) == 1  # one server for the session

    def test_url(dumpling_url):
        client = redis.Redis.from_url(dumpling_url, decode_responses=True)
        assert client.config_get("maxmemory") == {"maxmemory": "7340032"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lfu"}
        client.close()

    def test_factory(dumpling_factory, dumpling_server):
        own = dumpling_factory({"databases": 2})
        assert own.port != dumpling_server.port
        assert own.command("CONFIG", "GET", "databases") == [b"databases", b"2"]

    def test_cluster(dumpling_cluster_client, dumpling_cluster):
        assert len(dumpling_cluster.nodes) == 2
        for i in range(20):
            dumpling_cluster_client.set(f"key{i}", i)
        sizes = [node.command("DBSIZE") for node in dumpling_cluster.nodes]
        assert sum(sizes) == 20 and min(sizes) > 0  # both nodes own slots
        assert dumpling_cluster.nodes[0].command("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"7340032"]

    def test_cluster_flushed_between_tests(dumpling_cluster_client, dumpling_cluster):
        assert [node.command("DBSIZE") for node in dumpling_cluster.nodes] == [0, 0]
"""


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_plugin_as_a_user_suite_uses_it(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    pytester.makepyfile(test_user=textwrap.dedent(USER_TESTS))
    pytester.makeini("[pytest]\ndumpling_options =\n    maxmemory 7mb\n    maxmemory-policy volatile-lru\n")
    # The command line adds to the ini's lines; the last maxmemory-policy wins, as in redis.conf.
    # The process run is what a user's `pytest` does; the thread run stays in this process and
    # also starts the cluster (cheaper there: a process cluster is two more interpreters).
    run = pytester.runpytest_subprocess if mode == "process" else pytester.runpytest_inprocess
    only = ["-k", "not cluster"] if mode == "process" else []
    result = run(*_plugin_args(monkeypatch), f"--dumpling-mode={mode}",
                 "--dumpling-option=maxmemory-policy allkeys-lfu", "--dumpling-cluster-nodes=2",
                 "-p", "no:cacheprovider", "-p", "no:asyncio", *only)
    result.assert_outcomes(passed=4 if mode == "process" else 6, deselected=2 if mode == "process" else 0)


def test_plugin_reports_a_bad_option(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_user="def test_it(dumpling_url):\n    pass\n")
    result = pytester.runpytest_inprocess(*_plugin_args(monkeypatch), "--dumpling-mode=thread",
                                           "--dumpling-option=maxmemory lots", "-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ServerStartError*", "*maxmemory*"])


PYTEST_REDIS_TESTS = f"""
    def test_redisdb_is_dumpling(redisdb):
        redisdb.set("k", "v")
        assert redisdb.get("k") == b"v"
        assert redisdb.info("server")["redis_build_id"] == "{buildinfo.build_id()}"
"""


def test_pytest_redis_runs_dumpling_server(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest-redis users swap Redis for dumpling with --redis-exec: it reads the version from
    --version and starts the server with its own redis-server options."""
    pytest.importorskip("pytest_redis")
    _plugin_args(monkeypatch)  # PYTHONPATH for a bare checkout
    server = shutil.which("dumpling-server")
    if server is None:
        wrapper = pytester.path / "dumpling-server"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dumpling "$@"\n')
        wrapper.chmod(0o755)
        server = str(wrapper)
    pytester.makepyfile(test_user=textwrap.dedent(PYTEST_REDIS_TESTS))
    basetemp = tempfile.mkdtemp(prefix="pr-")  # pytest-redis's unix socket path must stay short
    try:
        result = pytester.runpytest_inprocess(f"--redis-exec={server}", f"--basetemp={basetemp}/t",
                                              "-p", "no:cacheprovider", "-p", "no:asyncio")
    finally:
        shutil.rmtree(basetemp, ignore_errors=True)
    result.assert_outcomes(passed=1)
