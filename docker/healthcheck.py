"""The image's HEALTHCHECK: PING the server where its own configuration says it listens.

The server is PID 1 (the entrypoint execs it); its arguments are read back from
/proc/1/cmdline and parsed by dumpling's own Config, so a config file, ``--port``,
``bind``, ``unixsocket`` and ``requirepass`` are honoured exactly as the server read them.
Exit 0 when PING answers +PONG, 1 otherwise (-LOADING counts as not ready).
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from dumpling.config import Config


def server_args(pid: int) -> list[str]:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="surrogateescape").split("\0")[:-1]
    for i, arg in enumerate(argv):
        if arg.endswith(("dumpling-server", "redis-server")) or arg == "dumpling":  # script, or -m dumpling
            return argv[i + 1:]
    raise SystemExit(f"healthcheck: PID {pid} is not dumpling-server: " + " ".join(argv))


def connect(config: Config) -> socket.socket:
    port = config["port"]
    if port:
        binds = [b.lstrip("-") for b in config["bind"].split()] or ["127.0.0.1"]
        host = "127.0.0.1" if binds[0] in ("*", "0.0.0.0") else ("::1" if binds[0] in ("::", "::*") else binds[0])
        return socket.create_connection((host, port), timeout=2)
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(2)
    s.connect(config["unixsocket"])
    return s


def main(pid: int = 1) -> int:
    config = Config()
    config.load_argv(server_args(pid))
    request = b"PING\r\n"
    password = config["requirepass"]
    if password:
        request = b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(password.encode()), password.encode()) + request
    with connect(config) as s:
        s.sendall(request)
        reply = b""
        while reply.count(b"\r\n") < (2 if password else 1):  # one line per reply
            chunk = s.recv(256)
            if not chunk:
                break
            reply += chunk
    return 0 if reply.endswith(b"+PONG\r\n") else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1))
