#!/usr/bin/env python3
"""A one-shot ``redis-cli`` for the image, where the real one is absent.

Tools run ``redis-cli`` inside the container: testcontainers' RedisContainer waits for
``redis-cli [-a password] ping`` to exit 0, and people ``docker exec ... redis-cli ping``.
This answers those as redis-cli 7 does without a terminal: ``-h -p -s -a --user --pass -n
--no-auth-warning`` and one command; the reply printed as its raw (no-tty) output; exit 1 only
when the server cannot be reached (an error reply still exits 0, as redis-cli does).
It is no interactive shell: without a command it says so and exits 1.
"""

from __future__ import annotations

import socket
import sys


def encode(args: list[str]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode(errors="surrogateescape")
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by the server")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by the server")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self) -> list[str] | str | None | Exception:
        """A reply as redis-cli's raw output has it: text, None (nil), a list, or an error."""
        line = self._line()
        kind, rest = line[:1], line[1:].decode(errors="replace")
        if kind in (b"+", b":"):
            return rest
        if kind == b"-":
            return Exception(rest)
        if kind == b"$":
            return None if rest == "-1" else self._exact(int(rest)).decode(errors="replace")
        if kind == b"*":
            if rest == "-1":
                return None
            return [self.reply() for _ in range(int(rest))]  # type: ignore[misc]
        raise ConnectionError(f"unexpected reply {line[:40]!r}")


def render(value: object) -> str:
    if isinstance(value, list):
        return "\n".join(render(v) for v in value)
    if isinstance(value, Exception):
        return f"{value}\n"  # redis-cli's raw output ends an error with an empty line
    return "" if value is None else str(value)


def main(argv: list[str]) -> int:
    host, port, path, user, password, db, warn = "127.0.0.1", 6379, "", None, None, 0, True
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        opt = argv[i]
        if opt == "--no-auth-warning":
            warn = False
            i += 1
            continue
        if i + 1 >= len(argv) or opt not in ("-h", "-p", "-s", "-a", "--user", "--pass", "-n"):
            print(f"redis-cli (dumpling image): unsupported option {opt}", file=sys.stderr)
            return 1
        value = argv[i + 1]
        if opt == "-h":
            host = value
        elif opt == "-p":
            port = int(value)
        elif opt == "-s":
            path = value
        elif opt in ("-a", "--pass"):
            password = value
        elif opt == "--user":
            user = value
        else:
            db = int(value)
        i += 2
    command = argv[i:]
    if not command:
        print("redis-cli (dumpling image): one-shot commands only, e.g. redis-cli ping", file=sys.stderr)
        return 1
    if password is not None and warn:
        print("Warning: Using a password with '-a' or '-u' option on the command line interface may not be safe.",
              file=sys.stderr)
    try:
        if path:
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(10)
            sock.connect(path)
        else:
            sock = socket.create_connection((host, port), timeout=10)
    except OSError as exc:
        where = path or f"{host}:{port}"
        print(f"Could not connect to Redis at {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    with sock:
        reader = Reader(sock)
        try:
            if password is not None:
                sock.sendall(encode(["AUTH", user, password] if user else ["AUTH", password]))
                auth = reader.reply()
                if isinstance(auth, Exception):
                    print(f"AUTH failed: {auth}", file=sys.stderr)
            if db:
                sock.sendall(encode(["SELECT", str(db)]))
                reader.reply()
            sock.sendall(encode(command))
            reply = reader.reply()
        except (OSError, ConnectionError) as exc:
            if command[0].lower() == "shutdown":  # the server went away as asked
                return 0
            print(f"Error: {exc}", file=sys.stderr)
            return 1
    print(render(reply))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
