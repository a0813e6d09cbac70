"""pytest plugin: dumpling servers as fixtures for any project's tests.

Registered through the ``pytest11`` entry point ``dumpling``, so installing dumpling is
enough (``-p no:dumpling`` turns it off).  Nothing starts until a test asks for a fixture.

Fixtures:
    ``dumpling_server``   session scope: one server for the whole run (one per xdist worker),
                          shut down cleanly at the end.  A ``dumpling.testing`` server object.
    ``dumpling_url``      the session server's ``redis://`` URL, flushed before the test.
    ``dumpling_client``   a redis-py ``Redis`` on the flushed session server, closed after.
    ``dumpling_factory``  ``dumpling_factory(options, mode=...)`` starts a server of the
                          test's own (other config, a restart, a crash); stopped after it.
    ``dumpling_options``  session scope: the session server's redis.conf directives; override
                          it in a conftest.py to configure the server in code.
    ``dumpling_cluster``  session scope: a ready cluster of ``dumpling_cluster_nodes`` masters
                          (default 3) with the same directives; ``dumpling_cluster_client``
                          is a redis-py ``RedisCluster`` on it, flushed before the test.

Configuration (command line, or ``[tool.pytest.ini_options]`` / pytest.ini):
    ``--dumpling-mode`` / ``dumpling_mode``        ``process`` (default) or ``thread``
    ``--dumpling-option`` / ``dumpling_options``   redis.conf lines, e.g. ``maxmemory 10mb``
    ``--dumpling-exec`` / ``dumpling_exec``        the server command in process mode
                                                   (e.g. ``redis-server`` for the same tests
                                                   against Redis)
    ``--dumpling-cluster-nodes`` / ``dumpling_cluster_nodes``   the cluster's size

This module owns only the pytest wiring; servers are ``dumpling.testing``'s.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dumpling.testing import DumplingCluster, DumplingProcess, DumplingServerBase, DumplingThread, Options

MODES = ("process", "thread")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dumpling", "dumpling server fixtures")
    group.addoption("--dumpling-mode", choices=MODES, default=None,
                    help="run the fixtures' servers as a subprocess (default) or in a thread of pytest")
    group.addoption("--dumpling-option", action="append", default=[], metavar="DIRECTIVE",
                    help='a redis.conf line for the session server, e.g. "maxmemory 10mb" (repeatable)')
    group.addoption("--dumpling-exec", default=None, metavar="COMMAND",
                    help="the server command in process mode (default: this Python's -m dumpling)")
    parser.addini("dumpling_mode", "process (default) or thread", default="process")
    parser.addini("dumpling_options", "redis.conf lines for the session server", type="linelist", default=[])
    group.addoption("--dumpling-cluster-nodes", type=int, default=None, metavar="N",
                    help="masters in the dumpling_cluster fixture's cluster (default 3)")
    parser.addini("dumpling_exec", "the server command in process mode", default="")
    parser.addini("dumpling_cluster_nodes", "masters in the dumpling_cluster fixture's cluster", default="3")


def _mode(config: pytest.Config) -> str:
    mode = config.getoption("dumpling_mode") or config.getini("dumpling_mode") or "process"
    if mode not in MODES:
        raise pytest.UsageError(f"dumpling_mode must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def _make(config: pytest.Config, options: Options, mode: str | None) -> DumplingServerBase:
    mode = mode or _mode(config)
    if mode == "thread":
        return DumplingThread(options)
    if mode != "process":
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    executable = config.getoption("dumpling_exec") or config.getini("dumpling_exec") or None
    return DumplingProcess(options, executable=executable)


@pytest.fixture(scope="session")
def dumpling_options(pytestconfig: pytest.Config) -> Options:
    """The session server's directives: ini ``dumpling_options`` then ``--dumpling-option``."""
    return [*pytestconfig.getini("dumpling_options"), *pytestconfig.getoption("dumpling_option")]


@pytest.fixture(scope="session")
def dumpling_server(pytestconfig: pytest.Config, dumpling_options: Options) -> Iterator[DumplingServerBase]:
    server = _make(pytestconfig, dumpling_options, None)
    with server:
        yield server


@pytest.fixture
def dumpling_url(dumpling_server: DumplingServerBase) -> str:
    """Flushed before the test (not after), so a test that failed half-way cannot leak into the next."""
    dumpling_server.flush()
    return dumpling_server.url


@pytest.fixture
def dumpling_client(dumpling_server: DumplingServerBase, dumpling_url: str) -> Iterator[Any]:
    if importlib.util.find_spec("redis") is None:
        pytest.fail("the dumpling_client fixture needs redis-py: pip install redis", pytrace=False)
    client = dumpling_server.client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def dumpling_cluster(pytestconfig: pytest.Config, dumpling_options: Options) -> Iterator[DumplingCluster]:
    nodes = pytestconfig.getoption("dumpling_cluster_nodes") or int(pytestconfig.getini("dumpling_cluster_nodes"))
    mode = _mode(pytestconfig)
    kwargs = {}
    if mode == "process":
        kwargs["executable"] = pytestconfig.getoption("dumpling_exec") or pytestconfig.getini("dumpling_exec") or None
    with DumplingCluster(nodes, dumpling_options, mode=mode, **kwargs) as cluster:
        yield cluster


@pytest.fixture
def dumpling_cluster_client(dumpling_cluster: DumplingCluster) -> Iterator[Any]:
    if importlib.util.find_spec("redis") is None:
        pytest.fail("the dumpling_cluster_client fixture needs redis-py: pip install redis", pytrace=False)
    dumpling_cluster.flush()
    client = dumpling_cluster.client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def dumpling_factory(pytestconfig: pytest.Config) -> Iterator[Callable[..., DumplingServerBase]]:
    started: list[DumplingServerBase] = []

    def start(options: Options = None, *, mode: str | None = None) -> DumplingServerBase:
        server = _make(pytestconfig, options, mode)
        server.start()
        started.append(server)
        return server

    yield start
    errors = []
    for server in reversed(started):
        try:
            server.stop()
        except RuntimeError as e:  # stop the others first, then report
            errors.append(e)
    if errors:
        raise errors[0]
