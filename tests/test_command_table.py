"""The command table against real Redis 7.0's: every command both servers know must
declare the same arity, flags, key positions, ACL categories, tips and key specs,
because redis-py's RedisCluster routes keys from COMMAND and redis-cli builds its
help from COMMAND DOCS."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time

from tests.servers import RawConnection, parse_reply

# Deliberate differences: newer than 7.0 (our target is 7.4's command set).
NEWER_THAN_70 = {
    (b"command|getkeys", "arity"),  # 7.2: -3 (7.0: -4)
    (b"command|getkeysandflags", "arity"),
    (b"zrank", "arity"),  # 7.2: WITHSCORE
    (b"zrevrank", "arity"),
    (b"msetnx", "tips"),  # 7.2 dropped MSETNX's routing tips
    (b"wait", "flags"),  # 7.2: WAIT is `blocking` (7.0: `noscript`), and so in @blocking
    (b"wait", "acl"),
    # 7.2 dropped `noscript` from blocking commands (scripts may call them; they do not block there)
    *((name, "flags") for name in (b"blpop", b"brpop", b"brpoplpush", b"blmove", b"blmpop", b"bzpopmin",
                                   b"bzpopmax", b"bzmpop", b"xread", b"xreadgroup")),
    # 7.2 added routing tips to the ACL subcommands that change users
    *((name, "tips") for name in (b"acl|setuser", b"acl|deluser", b"acl|save")),
}
FIELDS = ["name", "arity", "flags", "first", "last", "step", "acl", "tips", "keyspecs", "subcommands"]


def _by_name(entries):
    out = {}
    for entry in entries:
        out[entry[0]] = entry
        for sub in entry[9]:
            out[sub[0]] = sub
    return out


def _normalise(field, value):
    if field in ("flags", "acl", "tips"):
        return sorted(value)
    return value


def test_command_info_matches_redis(dumpling_server, redis_server):
    with RawConnection(dumpling_server.port) as a, RawConnection(redis_server.port) as b:
        ours = _by_name(parse_reply(a.call("COMMAND")))
        theirs = _by_name(parse_reply(b.call("COMMAND")))
    mismatches = []
    for name in sorted(set(ours) & set(theirs)):
        for i, field in enumerate(FIELDS[1:9], 1):
            if (name, field) in NEWER_THAN_70:
                continue
            mine, real = _normalise(field, ours[name][i]), _normalise(field, theirs[name][i])
            if mine != real:
                mismatches.append(f"{name.decode()} {field}: ours={mine!r} redis={real!r}")
    assert not mismatches, "\n".join(mismatches)


def test_command_docs_for_every_command_is_well_typed(dumpling_server):
    """redis-cli aborts on a COMMAND DOCS reply with wrongly typed elements."""
    with RawConnection(dumpling_server.port) as conn:
        docs = parse_reply(conn.call("COMMAND", "DOCS"))
    assert isinstance(docs, list) and len(docs) % 2 == 0
    for name, doc in zip(docs[::2], docs[1::2], strict=True):
        assert isinstance(name, bytes)
        doc = dict(zip(doc[::2], doc[1::2], strict=True))
        assert isinstance(doc[b"group"], bytes) and isinstance(doc[b"since"], bytes)
        for arg in doc.get(b"arguments", []):
            arg = dict(zip(arg[::2], arg[1::2], strict=True))
            assert isinstance(arg[b"name"], bytes) and isinstance(arg[b"type"], bytes)


def _interactive_cli(port: int, keystrokes: list[bytes]) -> tuple[str, int]:
    """Drive an interactive redis-cli on a pseudo-terminal; answer its cursor queries."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.execvp("redis-cli", ["redis-cli", "-p", str(port)])
    out = b""
    queries = 0

    def drain(seconds: float) -> None:
        nonlocal out, queries
        end = time.time() + seconds
        while time.time() < end:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            out += chunk
            for _ in range(chunk.count(b"\x1b[6n")):
                # linenoise asks where the cursor is, moves right 999 and asks again to
                # learn the width: answer column 1, then 200.
                queries += 1
                os.write(fd, b"\x1b[1;1R" if queries % 2 else b"\x1b[1;200R")

    drain(1.5)
    for keys in keystrokes:
        os.write(fd, keys)
        drain(0.7)
    status = None
    for _ in range(50):
        wpid, st = os.waitpid(pid, os.WNOHANG)
        if wpid:
            status = os.waitstatus_to_exitcode(st)
            break
        time.sleep(0.05)
    if status is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        status = -9
    os.close(fd)
    return out.decode(errors="replace"), status


def test_redis_cli_one_shot(dumpling_server):
    port = str(dumpling_server.port)
    out = subprocess.run(["redis-cli", "-p", port, "SET", "cli", "hello"], capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == "OK"
    out = subprocess.run(["redis-cli", "-p", port, "GET", "cli"], capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == "hello"
    out = subprocess.run(["redis-cli", "-3", "-p", port, "PING"], capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == "PONG" and "failed" not in out.stderr


def test_redis_cli_interactive_with_help_hints(dumpling_server):
    text, status = _interactive_cli(dumpling_server.port, [b"PING\r", b"SET ", b"\x15", b"quit\r"])
    assert "PONG" in text
    # The hint shown after "SET " comes from our COMMAND DOCS arguments.
    assert "key value" in text
    assert "Assertion" not in text
    assert status == 0
