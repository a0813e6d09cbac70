"""Protected mode (networking.c ``clientAcceptHandler``): while ``protected-mode`` is on and the
default user has no password, a connection from a non-loopback address gets ``-DENIED ...`` and
is closed; loopback and unix socket peers are served.  dumpling and a real Redis are both bound
to 0.0.0.0 and reached through this machine's own non-loopback address, and compared byte for
byte (Redis 7.0 words one sentence differently from the 7.4 text dumpling sends: see ``DENIED``).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from dumpling.errors import PROTECTED_MODE_DENIED
from tests.servers import RawConnection, ServerProcess, encode_command, start_dumpling, start_redis

# Redis 7.4 fixed a typo of 7.0's text ("4) Setup a an authentication password ..."); the test
# compares with 7.0 after putting the 7.4 words in.
REDIS_70_WORDING = (b"4) Setup a an authentication", b"4) Set up an authentication")


def _external_address(family: int) -> str | None:
    """An address of this machine that is not loopback (``hostname -I``), or None."""
    try:
        listed = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    for text in listed:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        wanted = 4 if family == socket.AF_INET else 6
        if address.version == wanted and not address.is_loopback and not address.is_link_local:
            return text
    return None


EXTERNAL_V4 = _external_address(socket.AF_INET)
needs_external = pytest.mark.skipif(
    EXTERNAL_V4 is None, reason="this machine has no non-loopback IPv4 address to connect through"
)


def _exchange(host: str, port: int, data: bytes) -> tuple[bytes, bool]:
    """Connect to host:port, send ``data``, and return what comes back until the server closes
    the connection or goes quiet, and whether it closed it."""
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(data)
        sock.settimeout(1.0)
        received = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return received, True
                received += chunk
        except TimeoutError:
            return received, False
        except ConnectionResetError:
            return received, True


def _normalised(reply: bytes) -> bytes:
    return reply.replace(*REDIS_70_WORDING)


@pytest.fixture(scope="module")
def exposed() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """dumpling and Redis listening on every IPv4 address, default settings otherwise."""
    ours, theirs = start_dumpling("--bind", "0.0.0.0"), start_redis("--bind", "0.0.0.0")
    try:
        yield ours, theirs
    finally:
        ours.stop()
        theirs.stop()


def _both(exposed: tuple[ServerProcess, ServerProcess], *command: str) -> bytes:
    """Run a command over loopback on both servers; the replies must be identical."""
    replies = []
    for server in exposed:
        with server.raw() as conn:
            replies.append(conn.call(*command))
    assert replies[0] == replies[1], command
    return replies[0]


def _remote(exposed: tuple[ServerProcess, ServerProcess], data: bytes) -> tuple[bytes, bool]:
    """The same bytes sent to both servers through the external address; same outcome."""
    assert EXTERNAL_V4 is not None
    ours, theirs = (_exchange(EXTERNAL_V4, server.port, data) for server in exposed)
    assert (ours[0], ours[1]) == (_normalised(theirs[0]), theirs[1])
    return ours


@needs_external
def test_remote_peer_is_denied_with_redis_text(exposed):
    received, closed = _remote(exposed, encode_command("PING"))
    assert received == PROTECTED_MODE_DENIED.encode() and closed
    assert received.startswith(b"-DENIED Redis is running in protected mode because protected mode is enabled")


@needs_external
def test_inline_and_garbage_get_the_same_refusal(exposed):
    for data in (b"PING\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b""):
        assert _remote(exposed, data) == (PROTECTED_MODE_DENIED.encode(), True)


@needs_external
def test_loopback_is_served_and_counters_follow_redis(exposed):
    def stats(server: ServerProcess) -> tuple[int, int, int]:
        with server.raw() as conn:
            info = dict(line.split(":", 1) for line in conn.call("INFO", "stats").decode().split("\r\n")
                        if ":" in line)
            client_id = int(conn.call("CLIENT", "ID")[1:-2])
        return int(info["total_connections_received"]), int(info["rejected_connections"]), client_id

    before = [stats(server) for server in exposed]
    _remote(exposed, encode_command("PING"))
    after = [stats(server) for server in exposed]
    deltas = [tuple(a - b for a, b in zip(later, earlier, strict=True)) for later, earlier in zip(after, before, strict=True)]
    # A denied peer is not a received connection but is a rejected one, and it used up a client id.
    assert deltas[0] == deltas[1] == (1, 1, 2)
    assert _both(exposed, "PING") == b"+PONG\r\n"


@needs_external
def test_config_set_protected_mode_at_run_time(exposed):
    try:
        assert _both(exposed, "CONFIG", "SET", "protected-mode", "no") == b"+OK\r\n"
        assert _both(exposed, "CONFIG", "GET", "protected-mode") == b"*2\r\n$14\r\nprotected-mode\r\n$2\r\nno\r\n"
        assert _remote(exposed, encode_command("PING") + encode_command("QUIT")) == (b"+PONG\r\n+OK\r\n", True)
    finally:
        _both(exposed, "CONFIG", "SET", "protected-mode", "yes")
    assert _remote(exposed, encode_command("PING"))[0] == PROTECTED_MODE_DENIED.encode()


@needs_external
def test_a_password_for_the_default_user_lets_remote_peers_in(exposed):
    try:
        _both(exposed, "CONFIG", "SET", "requirepass", "secret")
        wire = encode_command("PING") + encode_command("AUTH", "secret") + encode_command("PING")
        received, closed = _remote(exposed, wire)
        assert received.startswith(b"-NOAUTH") and received.endswith(b"+OK\r\n+PONG\r\n") and not closed
    finally:
        for server in exposed:
            with server.raw() as conn:
                conn.call("AUTH", "secret")
                conn.call("CONFIG", "SET", "requirepass", "")
    assert _remote(exposed, encode_command("PING"))[0] == PROTECTED_MODE_DENIED.encode()


@needs_external
def test_acl_password_and_nopass_of_the_default_user(exposed):
    try:
        # Only the default user's nopass flag counts: a password given by ACL SETUSER opens
        # the door, and then another user without a password is reachable too.
        _both(exposed, "ACL", "SETUSER", "open", "on", "nopass", "+@all", "~*")
        _both(exposed, "ACL", "SETUSER", "default", ">pw")
        received, closed = _remote(exposed, encode_command("AUTH", "pw") + encode_command("ACL", "WHOAMI"))
        assert received == b"+OK\r\n$7\r\ndefault\r\n" and not closed
        received, closed = _remote(exposed, encode_command("AUTH", "open", "x") + encode_command("PING"))
        assert received == b"+OK\r\n+PONG\r\n" and not closed
    finally:
        for server in exposed:
            with server.raw() as conn:
                conn.call("AUTH", "pw")
                conn.call("ACL", "SETUSER", "default", "nopass", "resetpass", "nopass")
                conn.call("ACL", "DELUSER", "open")
    assert _remote(exposed, encode_command("PING"))[0] == PROTECTED_MODE_DENIED.encode()


def test_unix_socket_peers_are_local():
    """A unix socket connection is always local (connUnixIsLocal), whatever the bind."""
    paths, servers = [], []
    try:
        for start in (start_dumpling, start_redis):
            path = os.path.join(tempfile.mkdtemp(prefix="protected-"), "s.sock")
            paths.append(path)
            servers.append(start("--bind", "0.0.0.0", "--unixsocket", path))
        replies = []
        for path in paths:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(5)
                sock.connect(path)
                sock.sendall(encode_command("PING") + encode_command("CONFIG", "GET", "protected-mode"))
                data = b""
                while not data.endswith(b"yes\r\n"):
                    data += sock.recv(65536)
                replies.append(data)
        assert replies[0] == replies[1] == b"+PONG\r\n*2\r\n$14\r\nprotected-mode\r\n$3\r\nyes\r\n"
    finally:
        for server in servers:
            server.stop()


def test_loopback_connection_through_127_0_0_1():
    """The loopback test is textual: every 127.* address is local (Redis 7.4; 7.0 took only 127.0.0.1)."""
    server = start_dumpling("--bind", "0.0.0.0")
    try:
        for host in ("127.0.0.1", "127.0.0.2"):
            assert _exchange(host, server.port, encode_command("PING")) == (b"+PONG\r\n", False)
        with RawConnection(server.port) as conn:
            assert conn.call("INFO", "stats").count(b"rejected_connections:0\r\n") == 1
    finally:
        server.stop()


@needs_external
def test_local_only_settings_follow_the_same_loopback_rule():
    """``enable-debug-command local`` / ``enable-protected-configs local`` (allowProtectedAction):
    refused through the external address, allowed over loopback."""
    options = ("--bind", "0.0.0.0", "--protected-mode", "no", "--enable-debug-command", "local",
               "--enable-protected-configs", "local")
    servers = [start_dumpling(*options), start_redis(*options)]
    try:
        wire = encode_command("DEBUG", "SLEEP", "0") + encode_command("CONFIG", "SET", "dir", ".")
        assert EXTERNAL_V4 is not None
        remote = [_exchange(EXTERNAL_V4, server.port, wire) for server in servers]
        assert remote[0] == remote[1]
        assert remote[0][0].startswith(b"-ERR DEBUG command not allowed") and remote[0][0].count(b"\r\n-ERR") == 1
        local = [_exchange("127.0.0.1", server.port, wire) for server in servers]
        assert local[0] == local[1] == (b"+OK\r\n+OK\r\n", False)
    finally:
        for server in servers:
            server.stop()
