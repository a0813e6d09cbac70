"""COMMAND DOCS of every command, shaped as Redis shapes it: redis-cli renders its help and
typing hints from these argument trees (name, type, token, flags, display_text, since, ...).

Redis 7.4 decides.  CI has Redis 7.0, whose docs differ from 7.4's in known ways (7.2 added
``display_text``, renamed some arguments and rewrote most summaries), so:
- ``vectors/command_docs_7.4.1.jsonl`` is Redis 7.4.1's own COMMAND DOCS, recorded with
  ``python -m tests.test_command_docs_shapes --record PORT`` against a 7.4.1 server; ours must
  equal it for every command;
- the live Redis 7.0 must agree with that record wherever 7.0 and 7.4 document a command alike
  (most of the table), which keeps the record honest, and ours is compared with it there too;
- redis-cli 7.0 renders the same help lines from both servers for those commands.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import hiredis
import pytest

from tests.servers import RawConnection

VECTOR = Path(__file__).parent / "vectors" / "command_docs_7.4.1.jsonl"


def docs_of(port: int) -> dict[str, Any]:
    """COMMAND DOCS (RESP3) as {name: docs}; maps keep their order, sets become lists in the
    server's order (Redis writes flags in a fixed order, so the lists compare exactly)."""
    with RawConnection(port) as conn:
        conn.call("HELLO", "3")
        raw = conn.call("COMMAND", "DOCS")
    reader = hiredis.Reader()
    reader.feed(raw)
    return _text(reader.gets())


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, dict):
        return {_text(k): _text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value


def recorded() -> dict[str, Any]:
    out = {}
    for line in VECTOR.read_text().splitlines():
        entry = json.loads(line)
        out[entry["name"]] = entry["docs"]
    return out


def _differences(path: str, ours: Any, theirs: Any, out: list[str]) -> None:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        unordered = path.endswith(".subcommands")  # Redis lists them in its hash table's order
        if set(ours) != set(theirs) or (not unordered and list(ours) != list(theirs)):
            out.append(f"{path}: keys {list(ours)} != {list(theirs)}")
        for key in ours.keys() & theirs.keys():
            _differences(f"{path}.{key}", ours[key], theirs[key], out)
    elif isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            _differences(f"{path}[{i}]", a, b, out)
    elif ours != theirs:
        out.append(f"{path}: ours={ours!r:.120} redis={theirs!r:.120}")


def _strip_70_differences(docs: dict[str, Any]) -> dict[str, Any]:
    """What Redis 7.0 and 7.4 may document differently for the same command: 7.0 has no
    display_text, and 7.2 rewrote summaries and some complexity texts."""
    def args(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: (args(v) if k == "arguments" else v) for k, v in a.items() if k != "display_text"} for a in items]

    out = {k: v for k, v in docs.items() if k not in ("summary", "complexity", "subcommands")}
    if "arguments" in out:
        out["arguments"] = args(out["arguments"])
    return out


def _each_command(docs: dict[str, Any]) -> dict[str, Any]:
    """Commands and subcommands side by side ({"client|kill": ..., "client": ...})."""
    out = {}
    for name, entry in docs.items():
        out[name] = entry
        out.update(entry.get("subcommands", {}))
    return out


def test_command_docs_equal_redis_74(dumpling_server):
    ours, theirs = docs_of(dumpling_server.port), recorded()
    assert set(ours) == set(theirs)
    problems: list[str] = []
    for name in sorted(theirs):
        _differences(name, ours[name], theirs[name], problems)
    assert not problems, "\n".join(problems[:60])


def test_record_agrees_with_live_redis_70(dumpling_server, redis_server):
    """Wherever Redis 7.0 documents a command or subcommand as 7.4.1 does (display_text,
    summaries and complexity texts aside), the record is what a live server says, and so are we."""
    record = _each_command(recorded())
    live = _each_command(docs_of(redis_server.port))
    ours = _each_command(docs_of(dumpling_server.port))
    alike = [name for name in live if name in record
             and _strip_70_differences(live[name]) == _strip_70_differences(record[name])]
    assert len(alike) >= 280, f"only {len(alike)} of {len(live)} commands documented alike"
    problems: list[str] = []
    for name in alike:
        _differences(name, _strip_70_differences(ours[name]), _strip_70_differences(live[name]), problems)
    assert not problems, "\n".join(problems[:60])


def _cli_help(port: int, command: str) -> str:
    out = subprocess.run(["redis-cli", "-p", str(port), "help", *command.split()], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()[1]  # "  COMMAND params"; summary and since lines follow


# Arguments redis-cli 7.0 rendered garbled from our docs before (blocks named by label text,
# one-ofs that lost their token), from commands Redis 7.0 documents as 7.4 does.
CLI_ALIKE = ["ZRANGE", "ZUNIONSTORE", "ZINTER", "GEOSEARCH", "GEOSEARCHSTORE", "BITFIELD", "BITFIELD_RO",
             "XREADGROUP", "XADD", "XTRIM", "HELLO", "FAILOVER", "SET", "COMMAND LIST", "REPLICAOF", "CLIENT LIST"]


@pytest.mark.parametrize("command", CLI_ALIKE)
def test_redis_cli_help_line_as_for_redis(dumpling_server, redis_server, command):
    assert _cli_help(dumpling_server.port, command) == _cli_help(redis_server.port, command)


def test_redis_cli_help_lines_of_the_issue(dumpling_server):
    """The lines redis-cli 7.0 prints from Redis 7.4.1's docs (7.4 renamed these arguments,
    so Redis 7.0 prints other names)."""
    sort = ("  \x1b[1mSORT\x1b[0m \x1b[90mkey [BY by-pattern] [LIMIT offset count] [GET get-pattern "
            "[GET get-pattern ...]] [ASC|DESC] [ALPHA] [STORE destination]\x1b[0m")
    assert _cli_help(dumpling_server.port, "SORT") == sort
    kill = _cli_help(dumpling_server.port, "CLIENT KILL")
    assert "[TYPE NORMAL|MASTER|SLAVE|REPLICA|PUBSUB]" in kill and "[SKIPME YES|NO]" in kill
    assert "=" not in kill


# redis-cli 7.4's typing hints (``--test_hint``, the hint for a partly typed line), as it shows
# them when connected to Redis 7.4.1.  CI has no 7.4 redis-cli: the test needs REDIS_74_CLI.
HINTS_74 = {
    "SORT k ": "[BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC|DESC] [ALPHA] "
               "[STORE destination]",
    "SORT k BY p LIMIT 0 ": "count [GET pattern [GET pattern ...]] [ASC|DESC] [ALPHA] [STORE destination]",
    "CLIENT KILL ": "ip:port|[ID client-id]|[TYPE NORMAL|MASTER|SLAVE|REPLICA|PUBSUB]|[USER username]|"
                    "[ADDR ip:port]|[LADDR ip:port]|[SKIPME YES|NO]|[MAXAGE maxage] [[ID client-id]|"
                    "[TYPE NORMAL|MASTER|SLAVE|REPLICA|PUBSUB]|[USER username]|[ADDR ip:port]|[LADDR ip:port]|"
                    "[SKIPME YES|NO]|[MAXAGE maxage] ...]",
    "ZRANGE k 0 1 BYSCORE ": "[REV] [LIMIT offset count] [WITHSCORES]",
    "ZUNIONSTORE d 2 a b AGGREGATE ": "[key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX]",
    "XADD s MAXLEN ": "[=|~] threshold [LIMIT count] [NOMKSTREAM] *|id field value [field value ...]",
    "GEOSEARCH k FROMLONLAT 1 2 ": "BYRADIUS radius M|KM|FT|MI|BYBOX width height M|KM|FT|MI [ASC|DESC] "
                                   "[COUNT count [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]",
    "SET k v ": "[NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|"
                "KEEPTTL]",
    'MIGRATE h 1 "" 0 5 ': "[COPY] [REPLACE] [AUTH password|AUTH2 username password] [KEYS key [key ...]]",
    "CLIENT LIST TYPE ": "[ID client-id [client-id ...]]",
}


def test_redis_cli_74_typing_hints(dumpling_server):
    cli = os.environ.get("REDIS_74_CLI", "/tmp/redis74/src/redis-cli")
    if not os.access(cli, os.X_OK):
        pytest.skip("no redis-cli 7.4 (set REDIS_74_CLI): its hint engine reads display_text")
    # Unreachable, it would hint from its own built-in table: make sure it talks to us.
    ping = subprocess.run([cli, "-p", str(dumpling_server.port), "PING"], capture_output=True, text=True, timeout=10)
    assert ping.stdout.strip() == "PONG"
    for line, hint in HINTS_74.items():
        out = subprocess.run([cli, "-p", str(dumpling_server.port), "--test_hint", line], capture_output=True,
                             text=True, timeout=10)
        assert out.stdout.rstrip("\n") == hint, line


def _record(port: int) -> None:
    docs = docs_of(port)
    with VECTOR.open("w") as f:
        for name in sorted(docs):
            f.write(json.dumps({"name": name, "docs": docs[name]}, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] != ["--record"] or len(sys.argv) != 3:
        sys.exit("usage: python -m tests.test_command_docs_shapes --record PORT (a Redis 7.4.1 server)")
    _record(int(sys.argv[2]))
