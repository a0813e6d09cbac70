"""Test support: start dumpling and real redis-server processes, and talk raw RESP.

Differential tests send the same bytes to both servers and compare the reply bytes.
When ``CI=true`` a missing ``redis-server`` is a failure, never a skip.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import hiredis
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _port_block() -> range:
    """This test process's own block of listening ports, below the kernel's ephemeral range
    (32768 and up), where client sockets take their local ports: servers 10000-19999, their
    cluster buses (port + 10000) 20000-29999, split between pytest-xdist workers.  A port the
    kernel picked (bind to 0) could be picked again by another worker in the second before a
    server binds it, and a test would then talk to the other worker's server."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:]
    index = int(worker) if worker.isdigit() else 0
    size = 10000 // max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    return range(10000 + index * size, 10000 + (index + 1) * size)


_PORTS = _port_block()
_next_port = [_PORTS.start + os.getpid() % len(_PORTS)]


def free_port() -> int:
    """A port of this process's block that nothing listens on now, nor on its bus port, taken
    in turn (a port just freed is reused last)."""
    for _ in range(len(_PORTS)):
        port = _next_port[0]
        _next_port[0] = port + 1 if port + 1 < _PORTS.stop else _PORTS.start
        if all(_bindable(p) for p in (port, port + 10000)):
            return port
    raise RuntimeError(f"no free port in {_PORTS}")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Until the port answers (a loaded machine can take many seconds to start a Python server:
    the deadline only decides how long a failure takes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                pass
        except OSError:
            time.sleep(0.05)
            continue
        if _listens(proc.pid, port) is not False:
            return
        # Another run's server holds the port (a second test suite on this machine picks
        # from the same blocks): ours exits on its failed bind, and _start retries.
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


def _listens(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` holds a socket listening on ``port`` (Linux's /proc: the
    listening sockets' inodes against the process's descriptors); None where /proc cannot
    tell."""
    inodes: set[str] = set()
    try:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as lines:
                next(lines)
                for line in lines:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(f"socket:[{fields[9]}]")
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in descriptors:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
        except OSError:
            continue  # closed since the listing
    return False


class ServerProcess:
    """A running server (dumpling or redis-server) on a loopback port."""

    def __init__(self, argv: list[str], port: int, name: str, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"{name}-")
        self.log_path = os.path.join(self.dir, "server.log")
        self._log = open(self.log_path, "wb")
        env = dict(os.environ, **(env or {}), PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.dir, env=env)
        try:
            wait_for_port(port, self.proc)
        except RuntimeError:
            self.stop_process()
            log = self.log()
            self.stop()
            raise RuntimeError(f"{name} failed to start:\n{log}") from None

    def log(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 30.0) -> str:
        """The log once it holds ``text``: the port answers as soon as it is bound, before
        the server has written what follows the bind (the banner, "Ready to accept")."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.log()
            if text in log or time.monotonic() > deadline:
                return log
            time.sleep(0.02)

    def stop(self) -> None:
        self.stop_process()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def stop_process(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def raw(self) -> RawConnection:
        return RawConnection(self.port)

    def cpu_seconds(self) -> float:
        """The process's CPU time so far (user + system): what a stall costs the server
        itself, which a loaded machine does not stretch as it stretches wall time."""
        with open(f"/proc/{self.proc.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start(make_argv, name: str, port: int | None, env: dict[str, str] | None = None) -> ServerProcess:
    """Start a server; a port picked free can be taken before the server binds it, so
    an automatically chosen port is retried (an explicit one is not)."""
    for attempt in range(3):
        chosen = port or free_port()
        try:
            return ServerProcess(make_argv(chosen), chosen, name, env)
        except RuntimeError:
            if port is not None or attempt == 2:
                raise
    raise AssertionError("unreachable")


def start_dumpling(*args: str, port: int | None = None, env: dict[str, str] | None = None) -> ServerProcess:
    """A dumpling subprocess; ``env`` adds variables (``DUMPLING_PURE=1``: no C accelerators).

    Like ``start_redis``, without save points unless ``args`` give some (a later
    ``--save`` line adds to this empty one, as in redis.conf)."""
    return _start(
        lambda p: [sys.executable, "-m", "dumpling", "--port", str(p), "--enable-debug-command", "yes", "--save", "",
                   *args],
        "dumpling", port, env,
    )


def redis_server_path() -> str | None:
    return shutil.which("redis-server")


def require_redis() -> str:
    path = redis_server_path()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is required in CI (the oracle for differential tests)")
        pytest.skip("redis-server not installed")
    return path


def start_redis(*args: str, port: int | None = None) -> ServerProcess:
    path = require_redis()
    return _start(
        lambda p: [path, "--port", str(p), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                   "--enable-debug-command", "yes", *args],
        "redis", port,
    )


@contextmanager
def oracle_trio(**config: str | int) -> Iterator[list[ServerProcess]]:
    """Real Redis, dumpling and pure-Python dumpling (``DUMPLING_PURE=1``), each with the same
    ``CONFIG SET``s (``hash_max_listpack_entries=6``: underscores for dashes): the three servers
    a random sequence is replayed on, stopped at the end."""
    require_redis()
    servers = [start_redis(), start_dumpling(), start_dumpling(env={"DUMPLING_PURE": "1"})]
    try:
        for server in servers:
            with server.raw() as conn:
                for name, value in config.items():
                    reply = conn.call("CONFIG", "SET", name.replace("_", "-"), str(value))
                    assert reply == b"+OK\r\n", (server.name, name, reply)
        yield servers
    finally:
        for server in servers:
            server.stop()


def encode_command(*args: bytes | str | int) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a)
        if isinstance(a, str):
            a = a.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


_INCOMPLETE = object()  # hiredis' "need more data" marker (False is a valid RESP3 reply)


class RawConnection:
    """A socket that sends bytes and returns each reply's exact bytes."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout  # what read_all/is_closed put back after their short waits
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _reply_length(self) -> int | None:
        """Bytes of the first complete reply in the buffer, or None."""
        reader = hiredis.Reader(notEnoughData=_INCOMPLETE)
        reader.feed(self.buf)
        try:
            if reader.gets() is _INCOMPLETE:
                return None
        except hiredis.ProtocolError:
            return len(self.buf)
        # Count consumed bytes by feeding growing prefixes (replies in tests are small).
        lo, hi = 1, len(self.buf)
        while lo < hi:
            mid = (lo + hi) // 2
            r = hiredis.Reader(notEnoughData=_INCOMPLETE)
            r.feed(self.buf[:mid])
            if r.gets() is _INCOMPLETE:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def read_reply(self) -> bytes:
        while True:
            n = self._reply_length() if self.buf else None
            if n is not None:
                reply, self.buf = self.buf[:n], self.buf[n:]
                return reply
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"connection closed; pending {self.buf!r}")
            self.buf += chunk

    def call(self, *args: bytes | str | int) -> bytes:
        self.send(encode_command(*args))
        return self.read_reply()

    def read_all(self, wait: float = 0.3) -> bytes:
        """Everything the server sends until it closes or goes quiet for ``wait`` s."""
        self.sock.settimeout(wait)
        data = self.buf
        self.buf = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            pass
        finally:  # a reply read later gets the full timeout again, not ``wait``
            self.sock.settimeout(self.timeout)
        return data

    def is_closed(self, wait: float = 1.0) -> bool:
        self.sock.settimeout(wait)
        try:
            return self.sock.recv(1) == b""
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(self.timeout)


def info_int(conn: RawConnection, section: str, name: str) -> int:
    """One integer field of an INFO section."""
    info = conn.call("INFO", section)
    return int(info.split(b"\r\n" + name.encode() + b":")[1].split(b"\r\n")[0])


def wait_blocked(conn: RawConnection, count: int = 1, timeout: float = 20.0) -> None:
    """Until the server shows ``count`` blocked clients: a blocking command sent on another
    connection has been read and waits, or a blocked one was served (a loaded machine may take
    longer than a fixed sleep; the deadline only decides how long a failure takes)."""
    deadline = time.monotonic() + timeout
    while (blocked := info_int(conn, "clients", "blocked_clients")) != count:
        assert time.monotonic() < deadline, f"{blocked} blocked clients, not {count}"
        time.sleep(0.01)


def wait_read(conn: RawConnection, before: int, sent: int, timeout: float = 20.0) -> None:
    """Until the server has read ``sent`` bytes more than ``before`` (an ``info_int(conn, "stats",
    "total_net_input_bytes")`` taken before they were sent) besides the INFO requests asking:
    what another connection sent has been read and parsed (a sleep guesses)."""
    asking = len(encode_command("INFO", "stats"))
    deadline = time.monotonic() + timeout
    polls = 1
    while info_int(conn, "stats", "total_net_input_bytes") < before + sent + polls * asking:
        assert time.monotonic() < deadline, f"the server has not read the {sent} bytes sent"
        polls += 1
        time.sleep(0.01)


@contextmanager
def same_keyspace_events(pair: Pair, ours: ServerProcess, theirs: ServerProcess, flags: str = "KEA") -> Iterator[None]:
    """Subscribe to every keyspace/keyevent channel on both servers for the block;
    at its end, assert both published the same notifications in the same order."""
    pair.both("CONFIG", "SET", "notify-keyspace-events", flags)
    subs = []
    try:
        for server in (ours, theirs):
            sub = RawConnection(server.port)
            sub.call("PSUBSCRIBE", "__key*__:*")
            subs.append(sub)
        yield
        assert subs[0].read_all(0.3) == subs[1].read_all(0.3)
    finally:
        for sub in subs:
            sub.close()
        pair.both("CONFIG", "SET", "notify-keyspace-events", "")


class Pair:
    """The same raw commands against dumpling and real Redis; compare replies."""

    def __init__(self, ours: ServerProcess, theirs: ServerProcess, resp: int = 2) -> None:
        self.ours = ours.raw()
        self.theirs = theirs.raw()
        self.resp = resp
        if resp == 3:
            self.ours.call("HELLO", "3")
            self.theirs.call("HELLO", "3")

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()

    def both(self, *args: bytes | str | int) -> tuple[bytes, bytes]:
        return self.ours.call(*args), self.theirs.call(*args)

    def same(self, *args: bytes | str | int) -> bytes:
        """Run a command on both; assert identical reply bytes; return them."""
        ours, theirs = self.both(*args)
        assert ours == theirs, f"{args!r}\n  dumpling: {ours!r}\n  redis:    {theirs!r}"
        return ours

    def same_unordered(self, *args: bytes | str | int) -> object:
        """Compare replies as multisets of elements (Redis's order is unspecified)."""
        ours, theirs = self.both(*args)
        a, b = parse_reply(ours), parse_reply(theirs)
        assert _normalise(a) == _normalise(b), f"{args!r}\n  dumpling: {ours!r}\n  redis:    {theirs!r}"
        return a

    def same_doubles(self, *args: bytes | str | int) -> object:
        """Like ``same``, but a double reply may be spelled differently where the Redis 7.0
        oracle and Redis 7.4 (dumpling's target) print it differently: 7.0's addReplyDouble
        is ``%.17g`` (``0.10000000000000001``, ``1e+17``), 7.2+'s is ``d2string``/fpconv
        (``0.1``, ``100000000000000000``).  Identical bytes pass; otherwise the replies must
        have the same shape and every leaf that differs must be the same double in both.
        7.4's exact texts are asserted with vectors from Redis 7.4.1 (tests/test_fpconv.py)."""
        ours, theirs = self.both(*args)
        if ours != theirs:
            assert _same_but_doubles(parse_reply(ours), parse_reply(theirs)), (
                f"{args!r}\n  dumpling: {ours!r}\n  redis:    {theirs!r}")
        return parse_reply(ours)

    def same_help(self, *args: bytes | str | int) -> bytes:
        """A HELP reply: identical but for the footer, which Redis 7.2 changed from 7.0's
        ``Prints this help.`` to ``Print this help.`` (networking.c addExtendedReplyHelp);
        dumpling must answer 7.4's."""
        ours, theirs = self.both(*args)
        assert ours == theirs.replace(b"+    Prints this help.\r\n", b"+    Print this help.\r\n"), (
            f"{args!r}\n  dumpling: {ours!r}\n  redis:    {theirs!r}")
        assert ours.endswith(b"+HELP\r\n+    Print this help.\r\n"), ours
        return ours

    def run(self, commands: Iterable[tuple[bytes | str | int, ...]]) -> None:
        for cmd in commands:
            self.same(*cmd)


def parse_reply(data: bytes) -> object:
    reader = hiredis.Reader()
    reader.feed(data)
    return reader.gets()


_DOUBLE_TEXT = re.compile(rb"-?(?:\d+(?:\.\d*)?(?:e[+-]?\d+)?|inf)")


def _same_but_doubles(ours: object, theirs: object) -> bool:
    """``ours`` and ``theirs`` (parsed replies) are equal up to the spelling of doubles."""
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(map(_same_but_doubles, ours, theirs))
    if isinstance(ours, bytes) and isinstance(theirs, bytes) and ours != theirs:
        return (_DOUBLE_TEXT.fullmatch(ours) is not None and _DOUBLE_TEXT.fullmatch(theirs) is not None
                and float(ours) == float(theirs)
                and math.copysign(1.0, float(ours)) == math.copysign(1.0, float(theirs)))
    if isinstance(ours, Exception) or isinstance(theirs, Exception):
        return type(ours) is type(theirs) and str(ours) == str(theirs)
    return type(ours) is type(theirs) and ours == theirs


def _normalise(value: object) -> object:
    if isinstance(value, list):
        return sorted(repr(_normalise(v)) for v in value)
    return value


def peak_rss_mb(server: ServerProcess) -> int:
    """The server process's peak resident set (VmHWM), in MiB."""
    with open(f"/proc/{server.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no VmHWM")
