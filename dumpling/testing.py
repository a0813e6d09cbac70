"""Throwaway dumpling servers for other projects' test suites.

Two ways to run one, with the same interface (``host``, ``port``, ``url``, ``command``,
``flush``, ``client``, ``stop``; both are context managers):

- ``DumplingProcess`` starts ``python -m dumpling`` (or any redis-server-compatible
  executable) as a subprocess.  It is isolated: a test that crashes the server, SHUTDOWNs
  it, forks a BGSAVE or renames commands cannot disturb the test process.  Startup costs
  an interpreter start and dumpling's imports (~0.7 s on a busy 2-core machine).  This is
  the default.
- ``DumplingThread`` runs the server on its own event loop in a daemon thread of the
  calling process: no subprocess (for sandboxes that forbid them), startup in ~30 ms once
  dumpling is imported (the first one imports it), and the server's state is reachable from the
  test (``.server``).  It shares the process: commands that end or fork the process
  (DEBUG SEGFAULT/RESTART, BGSAVE, SHUTDOWN of a daemonized server) act on the test
  process, and process-wide settings (``rename-command``, ``daemonize yes``) are refused.

``DumplingCluster`` starts N nodes of either kind as a ready cluster (slots split evenly).

Options are redis.conf directives, given as a mapping (``{"maxmemory": "10mb"}``, a list
or tuple value for several arguments) or as redis.conf lines (``["save 60 1"]``).  They
are written to a config file in the server's own temporary directory (also its ``dir``,
so dump.rdb, AOF and log files land there and go with it), so both kinds of server read
them exactly as redis-server reads a file.  Without options the server keeps no save
points (``save ""``), as a test server should.

This module must not import pytest or redis-py at import time: it is usable from any
test runner, and redis-py is only needed for ``client()``.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import hiredis

from dumpling.protocol import repr_bytes

Options = Mapping[str, Any] | Iterable[str] | None

# Directives whose effect is process-wide: an in-thread server would change the test
# process itself (rename-command rewrites the shared command table; daemonize forks).
THREAD_REFUSED = ("rename-command", "daemonize")


class ServerStartError(RuntimeError):
    """The server did not come up; the message carries its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def config_lines(options: Options) -> list[str]:
    """redis.conf lines for ``options``: a mapping's values are quoted as redis-server's
    command-line options are (``sdscatrepr``), so any value survives; lines pass as given."""
    if options is None:
        return []
    if isinstance(options, Mapping):
        lines = []
        for name, value in options.items():
            values = value if isinstance(value, list | tuple) else [value]
            lines.append(" ".join([name, *(repr_bytes(_to_bytes(v)) for v in values)]))
        return lines
    if isinstance(options, str):
        raise TypeError("options: a mapping or a list of redis.conf lines, not a single string")
    return [str(line) for line in options]


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, bool):
        return b"yes" if value else b"no"
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def _directive_names(lines: list[str]) -> set[str]:
    names = set()
    for line in lines:
        words = line.split(None, 1)
        if words and not words[0].startswith("#"):
            names.add(words[0].lower())
    return names


def _directive_value(lines: list[str], name: str) -> str | None:
    """The last value given for ``name`` (as redis.conf, the last line wins), unquoted."""
    value = None
    for line in lines:
        words = shlex.split(line, posix=True) if line.strip() else []
        if len(words) >= 2 and words[0].lower() == name:
            value = words[1]
    return value


class DumplingServerBase:
    """What both kinds of server share: the config file, the client side, the context manager."""

    startup_timeout = 15.0

    def __init__(self, options: Options = None, *, host: str = "127.0.0.1", port: int | None = None,
                 keep_dir: bool = False) -> None:
        self.lines = config_lines(options)
        self.host = host
        self.fixed_port = port
        self.port = 0
        self.keep_dir = keep_dir
        self.dir = ""
        self.password = _directive_value(self.lines, "requirepass")
        self.unixsocket = _directive_value(self.lines, "unixsocket")

    # -- lifecycle (subclasses implement _launch/_halt/_alive) ----------------------------------

    def start(self) -> Self:
        """Start on ``port`` or a free one (retried: another process may take a free port first)."""
        if self.port:
            raise RuntimeError("server already started")
        self.dir = tempfile.mkdtemp(prefix="dumpling-test-")
        attempts = 1 if self.fixed_port else 3
        for attempt in range(attempts):
            port = self.fixed_port or free_port(self.host)
            conf = self._write_config(port)
            self._launch(conf)
            try:
                self._wait_ready(port)
            except ServerStartError:
                self._halt()
                if attempt == attempts - 1 or "Could not create server TCP listening socket" not in self.log():
                    self._cleanup()
                    raise
                continue
            self.port = port
            return self
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Shut the server down as SIGTERM does (a final save only if save points were set),
        then remove its directory unless ``keep_dir``."""
        if self.dir:
            self._halt()
            self._cleanup()
        self.port = 0

    def __enter__(self) -> Self:
        if not self.port:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self) -> str:
        """The server log so far (its ``logfile`` in the server's directory)."""
        try:
            return Path(self.dir, "dumpling.log").read_text(errors="replace")
        except OSError:
            return ""

    def _write_config(self, port: int) -> str:
        # Ours first (a test server: no save points, log to a file, dir = our directory),
        # then the caller's lines, so theirs win; port and bind last, as chosen here.
        path = os.path.join(self.dir, "dumpling.conf")
        text = [
            'save ""',
            f"dir {repr_bytes(self.dir.encode())}",
            "logfile dumpling.log",
            *self.lines,
            f"port {port}",
            f"bind {self.host}",
        ]
        Path(path).write_text("\n".join(text) + "\n")
        return path

    def _wait_ready(self, port: int) -> None:
        """Until PING is answered (``-NOAUTH``/``-LOADING`` count: the server is up)."""
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if not self._alive():
                raise ServerStartError(f"dumpling exited during startup; its log:\n{self.log()}")
            try:
                with socket.create_connection((self.host, port), timeout=1.0) as s:
                    s.sendall(b"PING\r\n")
                    reply = s.recv(64)
            except OSError:
                reply = b""  # not listening yet: try again until the deadline
            if reply.startswith((b"+PONG", b"-NOAUTH", b"-LOADING")):
                return
            time.sleep(0.02)
        raise ServerStartError(f"dumpling did not answer PING on port {port} within "
                               f"{self.startup_timeout:.0f} s; its log:\n{self.log()}")

    def _cleanup(self) -> None:
        if self.dir and not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = ""

    def _launch(self, conf: str) -> None:
        raise NotImplementedError

    def _halt(self) -> None:
        raise NotImplementedError

    def _alive(self) -> bool:
        raise NotImplementedError

    # -- talking to it ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``redis://[:password@]host:port/0`` for clients that take a URL."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis://{auth}{host}:{self.port}/0"

    def command(self, *args: str | bytes | int) -> Any:
        """Send one command on a fresh connection (AUTH first when ``requirepass`` is set) and
        return the reply as hiredis decodes it; an error reply is raised as ``hiredis.ReplyError``."""
        if not self.port:
            raise RuntimeError("server not started")
        commands = ([("AUTH", self.password)] if self.password else []) + [args]
        reader = hiredis.Reader()
        with socket.create_connection((self.host, self.port), timeout=10.0) as s:
            s.sendall(b"".join(hiredis.pack_command(tuple(c)) for c in commands))
            replies = []
            while len(replies) < len(commands):
                reply = reader.gets()
                if reply is False:
                    data = s.recv(65536)
                    if not data:
                        raise ConnectionError("dumpling closed the connection")
                    reader.feed(data)
                    continue
                replies.append(reply)
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                raise reply
        return replies[-1]

    def flush(self) -> None:
        """Empty every database and the function libraries (FLUSHALL does not remove those),
        so the next test starts from a clean server."""
        self.command("FLUSHALL")
        try:
            self.command("FUNCTION", "FLUSH")
        except hiredis.ReplyError as e:
            if "unknown command" not in str(e):  # a Redis before 7 (--dumpling-exec) has no functions
                raise

    def client(self, **kwargs: Any) -> Any:
        """A redis-py ``Redis`` for this server (keyword arguments go to ``redis.Redis``)."""
        try:
            import redis
        except ImportError:
            raise RuntimeError("dumpling.testing: client() needs redis-py (pip install redis)") from None
        kwargs.setdefault("password", self.password)
        return redis.Redis(host=self.host, port=self.port, **kwargs)


class DumplingProcess(DumplingServerBase):
    """dumpling in a subprocess.  ``executable`` is the command to run (default: this
    interpreter's ``-m dumpling``); any redis-server-compatible one works, e.g.
    ``["redis-server"]`` to run the same tests against Redis."""

    def __init__(self, options: Options = None, *, host: str = "127.0.0.1", port: int | None = None,
                 executable: list[str] | str | None = None, env: Mapping[str, str] | None = None,
                 keep_dir: bool = False) -> None:
        super().__init__(options, host=host, port=port, keep_dir=keep_dir)
        self.env = dict(os.environ, **(env or {}))
        if executable is None:
            # The dumpling this process imported, wherever it comes from (a checkout, a venv).
            executable = [sys.executable, "-m", "dumpling"]
            package_root = str(Path(__file__).resolve().parent.parent)
            self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, self.env.get("PYTHONPATH")]))
        self.executable = shlex.split(executable) if isinstance(executable, str) else list(executable)
        self.proc: subprocess.Popen[bytes] | None = None

    def _launch(self, conf: str) -> None:
        # stdout/stderr also go to a file: a fatal config error is printed before the logfile opens.
        with open(os.path.join(self.dir, "stdout.log"), "ab") as out:
            self.proc = subprocess.Popen([*self.executable, conf], stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.dir, env=self.env)

    def _alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _halt(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.proc = None

    def log(self) -> str:
        early = Path(self.dir, "stdout.log")
        text = early.read_text(errors="replace") if self.dir and early.exists() else ""
        return text + super().log()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None


class DumplingThread(DumplingServerBase):
    """dumpling on its own event loop in a daemon thread of this process.  ``.server`` is the
    running ``dumpling.dispatch.Server`` (for white-box assertions; use it from the test
    thread only to read)."""

    def __init__(self, options: Options = None, *, host: str = "127.0.0.1", port: int | None = None,
                 keep_dir: bool = False) -> None:
        super().__init__(options, host=host, port=port, keep_dir=keep_dir)
        refused = _directive_names(self.lines) & set(THREAD_REFUSED)
        if "daemonize" in refused and (_directive_value(self.lines, "daemonize") or "").lower() == "no":
            refused.discard("daemonize")
        if refused:
            raise ValueError(f"{', '.join(sorted(refused))}: process-wide, not possible for an in-thread "
                             "server; use DumplingProcess")
        self.server: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.exit_code: int | None = None
        self.error: BaseException | None = None

    def _launch(self, conf: str) -> None:
        from dumpling.config import Config, ConfigFileError, StartupError
        from dumpling.dispatch import Server

        config = Config()
        try:
            config.load_argv([conf])
        except (ConfigFileError, StartupError) as e:
            # What redis-server prints for it (there is no process whose stderr would show it).
            where = f"at line {e.line_number}\n>>> '{e.line}'\n" if isinstance(e, ConfigFileError) else ""
            Path(self.dir, "dumpling.log").write_text(f"*** FATAL CONFIG FILE ERROR ***\n{where}{e}\n")
            self.exit_code = 1
            return
        self.server = Server(config, argv0="dumpling.testing", had_config=True)
        self.loop = _new_loop()
        self.exit_code = None
        self.error = None
        self.thread = threading.Thread(target=self._run, name=f"dumpling-{os.path.basename(self.dir)}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        loop = self.loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            self.exit_code = loop.run_until_complete(self.server.serve_forever())
        except BaseException as e:  # kept for stop() and start() to report; the thread ends either way
            self.error = e
            self.exit_code = 1
        finally:
            _drain_and_close(loop)

    def _alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _halt(self) -> None:
        thread, loop = self.thread, self.loop
        if thread is None or loop is None:
            return
        if thread.is_alive():
            loop.call_soon_threadsafe(self.server.signal_shutdown, "SIGTERM")
            thread.join(30)
            if thread.is_alive():
                raise RuntimeError("in-thread dumpling did not shut down within 30 s")
        self.thread = None
        self.loop = None
        if self.error is not None:
            raise RuntimeError(f"in-thread dumpling failed: {self.error!r}") from self.error


def _new_loop() -> asyncio.AbstractEventLoop:
    """An event loop for the server's thread whose signal handlers are not installed:
    signals belong to the host process (Ctrl-C must stop the test run, not just the
    server), and only the main thread may install them."""
    try:
        import uvloop

        base: type[asyncio.AbstractEventLoop] = uvloop.Loop
    except ImportError:  # uvloop is absent on some platforms; asyncio's own loop serves the same
        base = asyncio.SelectorEventLoop

    class ThreadLoop(base):  # type: ignore[valid-type,misc]
        def add_signal_handler(self, sig: int, callback: Any, *args: Any) -> None:
            return None

        def remove_signal_handler(self, sig: int) -> bool:
            return False

    return ThreadLoop()


def _drain_and_close(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what the server left running (client tasks, migrate connections) and close the loop."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


class DumplingCluster:
    """A cluster of ``nodes`` masters (``cluster-enabled yes``) with the 16384 slots split
    evenly, introduced to each other with CLUSTER MEET (both ways: dumpling has no gossip) and
    ready (``cluster_state:ok`` everywhere) when ``start`` returns.  ``options`` go to every
    node; ``mode`` is ``"process"`` or ``"thread"``."""

    slots = 16384

    def __init__(self, nodes: int = 3, options: Options = None, *, mode: str = "process",
                 host: str = "127.0.0.1", **kwargs: Any) -> None:
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self.size = nodes
        self.lines = config_lines(options)
        self.mode = mode
        self.host = host
        self.kwargs = kwargs
        self.nodes: list[DumplingServerBase] = []
        self.bus_ports: list[int] = []

    def start(self) -> Self:
        try:
            # An explicit bus port: port + 10000 does not fit above 55535 (ephemeral ports do).
            self.bus_ports = [free_port(self.host) for _ in range(self.size)]
            servers = [_server_class(self.mode)([*self.lines, "cluster-enabled yes", "cluster-config-file nodes.conf",
                                                 f"cluster-port {bus}"], host=self.host, **self.kwargs)
                       for bus in self.bus_ports]
            self.nodes = servers
            with ThreadPoolExecutor(self.size) as pool:  # the nodes start side by side
                for future in [pool.submit(server.start) for server in servers]:
                    future.result()
            share = -(-self.slots // self.size)
            for i, node in enumerate(self.nodes):
                node.command("CLUSTER", "ADDSLOTSRANGE", i * share, min((i + 1) * share, self.slots) - 1)
            for node in self.nodes:
                for other, bus in zip(self.nodes, self.bus_ports, strict=True):
                    if other is not node:
                        node.command("CLUSTER", "MEET", self.host, other.port, bus)
            self._wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ok(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        want = (b"cluster_state:ok", b"cluster_known_nodes:%d" % self.size)
        while True:
            infos = [node.command("CLUSTER", "INFO") for node in self.nodes]
            if all(all(w in info for w in want) for info in infos):
                return
            if time.monotonic() > deadline:
                raise ServerStartError(f"cluster not ready within {timeout:.0f} s: {infos[0].decode()}")
            time.sleep(0.02)

    def stop(self) -> None:
        errors = []
        for node in self.nodes:
            try:
                node.stop()
            except RuntimeError as e:  # stop every node, then report
                errors.append(e)
        self.nodes = []
        self.bus_ports = []
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        if not self.nodes:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [(node.host, node.port) for node in self.nodes]

    @property
    def url(self) -> str:
        """The first node's URL (cluster clients discover the rest)."""
        return self.nodes[0].url

    def flush(self) -> None:
        for node in self.nodes:
            node.flush()

    def client(self, **kwargs: Any) -> Any:
        """A redis-py ``RedisCluster`` (keyword arguments go to it)."""
        try:
            from redis.cluster import RedisCluster
        except ImportError:
            raise RuntimeError("dumpling.testing: client() needs redis-py (pip install redis)") from None
        first = self.nodes[0]
        kwargs.setdefault("password", first.password)
        return RedisCluster(host=first.host, port=first.port, **kwargs)


def _server_class(mode: str) -> type[DumplingProcess] | type[DumplingThread]:
    if mode == "process":
        return DumplingProcess
    if mode == "thread":
        return DumplingThread
    raise ValueError(f"mode must be 'process' or 'thread', not {mode!r}")


def start(options: Options = None, *, mode: str = "process", **kwargs: Any) -> DumplingServerBase:
    """Start a server: ``mode`` is ``"process"`` (default) or ``"thread"``."""
    return _server_class(mode)(options, **kwargs).start()
