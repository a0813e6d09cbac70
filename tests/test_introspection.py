"""Introspection details Redis's own suite (unit/introspection, unit/info, unit/latency-monitor)
checks: what CLIENT LIST shows of the running command, INFO counters, CONFIG corner cases.
Every case runs against real Redis too (the session servers of conftest)."""

from __future__ import annotations

import pytest

from tests.servers import RawConnection, ServerProcess, encode_command, parse_reply


def _fields(line: bytes, *names: str) -> dict[str, bytes]:
    pairs = dict(item.split(b"=", 1) for item in line.split())
    return {name: pairs[name.encode()] for name in names}


@pytest.mark.parametrize("before", [b"", encode_command("PING"), b"PING\r\n"], ids=["alone", "after-ping", "inline"])
@pytest.mark.parametrize("command", [("CLIENT", "INFO"), ("CLIENT", "LIST", "ID", "1", "2")], ids=["info", "list"])
def test_running_command_in_own_client_line(dumpling_server: ServerProcess, redis_server: ServerProcess,
                                           before: bytes, command: tuple[str, ...]) -> None:
    """Redis trims the query buffer after it ran a read's requests, and keeps the running
    command's arguments: a client sees its own request in ``qbuf`` and ``argv-mem``."""
    seen = []
    for server in (dumpling_server, redis_server):
        with RawConnection(server.port) as conn:
            own = parse_reply(conn.call("CLIENT", "ID"))
            request = [*command[:3], str(own)] if command[1] == "LIST" else list(command)
            conn.send(before + encode_command(*request))
            if before:
                conn.read_reply()
            line = parse_reply(conn.read_reply())
            assert isinstance(line, bytes)
            seen.append(_fields(line, "qbuf", "argv-mem"))
    assert seen[0] == seen[1]
