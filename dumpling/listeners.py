"""The TCP listening sockets of ``port`` and ``bind``, opened synchronously (Redis's
``listenToPort``), so that CONFIG SET port/bind can move them while a command runs.

Only sockets: the server hands them to the event loop (``Server.listen_tcp``).
"""

from __future__ import annotations

import socket


class ListenError(OSError):
    """A bind address that could not be listened on (``host`` names it)."""

    def __init__(self, host: str, error: OSError) -> None:
        super().__init__(error.errno, error.strerror)
        self.host = host


def host_of(address: str) -> str:
    """The host a ``bind`` word listens on: ``-`` (optional address) dropped, ``*`` any IPv4,
    ``::*`` any IPv6."""
    host = address.lstrip("-")
    return "0.0.0.0" if host == "*" else "::" if host == "::*" else host


def open_tcp(address: str, port: int, backlog: int) -> socket.socket | None:
    """A listening socket for one ``bind`` word; None for an optional (``-``) address that is not
    available; raises ListenError otherwise.  As Redis: the first address the name resolves to,
    SO_REUSEADDR, IPv6 sockets V6ONLY."""
    host = host_of(address)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, sockaddr = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)
            sock.listen(backlog)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
    except socket.gaierror as e:
        if address.startswith("-"):
            return None
        raise ListenError(host, OSError(e.errno, e.strerror)) from None
    except OSError as e:
        if address.startswith("-"):
            return None
        raise ListenError(host, e) from None
    return sock
