"""Existing redis.conf files carry over: Redis 7.4's stock file and Debian's load unchanged.

Each file is started on dumpling and on the real redis-server the same way (overrides that
keep it in a temporary directory and in the foreground), and every setting both servers
know must read back the same through CONFIG GET.  Bad values of the directives that only
exist for compatibility fail with Redis's texts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from dumpling import accel
from tests.servers import ROOT, Pair, ServerProcess, free_port, parse_reply, redis_server_path, require_redis

REDIS_74_CONF = ROOT.parent / "shared" / "data" / "redis-7.4.1.conf"
DEBIAN_CONF = Path("/etc/redis/redis.conf")
# Directives of Redis 7.4's file that Redis 7.0 (the oracle on PATH) does not know yet.
NEWER_THAN_70 = ("locale-collate", "set-max-listpack-entries", "set-max-listpack-value")


def dumpling_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "dumpling", *args]


def run_dumpling(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(dumpling_argv(*args), capture_output=True, text=True, timeout=10, env=env)


def run_redis(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([require_redis(), *args], capture_output=True, text=True, timeout=10)


def overrides(port: int, where: Path) -> list[str]:
    """Keep a stock file's server in ``where``, in the foreground, logging to stdout."""
    return ["--port", str(port), "--dir", str(where), "--daemonize", "no", "--logfile", "",
            "--pidfile", str(where / "server.pid")]


@contextmanager
def serving(argv_prefix: list[str], conf: Path, where: Path, name: str) -> Iterator[tuple[ServerProcess, int]]:
    where.mkdir()
    port = free_port()
    server = ServerProcess([*argv_prefix, str(conf), *overrides(port, where)], port, name)
    try:
        yield server, port
    finally:
        server.stop()


def stock_files() -> list[Path]:
    """Redis 7.4's stock file (in the workplace's shared/data beside the checkout; not
    committed: its licence is not ours) and Debian's, when present."""
    files = []
    if REDIS_74_CONF.exists():
        files.append(REDIS_74_CONF)
    elif os.environ.get("CI") == "true":
        raise FileNotFoundError(f"{REDIS_74_CONF} is missing: CI lays shared/ beside the checkout")
    if DEBIAN_CONF.exists():
        files.append(DEBIAN_CONF)
    return files


def without_newer_directives(conf: Path, tmp_path: Path) -> Path:
    """The file as Redis 7.0 can read it: the 7.2+ directives left out."""
    kept = [line for line in conf.read_text().split("\n") if not line.strip().startswith(NEWER_THAN_70)]
    copy = tmp_path / f"for-70-{conf.name}"
    copy.write_text("\n".join(kept))
    return copy


@pytest.mark.parametrize("conf", stock_files(), ids=lambda p: p.name)
def test_stock_file_loads_and_matches_redis(conf: Path, tmp_path: Path) -> None:
    require_redis()
    with serving(dumpling_argv(), conf, tmp_path / "ours", "dumpling") as (ours, our_port), \
            serving([require_redis()], without_newer_directives(conf, tmp_path), tmp_path / "theirs",
                    "redis") as (_theirs, their_port):
        mine = redis.Redis(port=our_port, decode_responses=True)
        real = redis.Redis(port=their_port, decode_responses=True)
        assert mine.set("k", "v") and mine.get("k") == "v"  # it serves
        ours_all, theirs_all = mine.config_get("*"), real.config_get("*")
        common = set(ours_all) & set(theirs_all)
        assert len(common) > 120

        def normalised(values: dict[str, str], port: int, where: Path) -> dict[str, str]:
            return {k: values[k].replace(str(where), "<dir>").replace(str(port), "<port>") for k in common}

        assert normalised(ours_all, our_port, tmp_path / "ours") == normalised(theirs_all, their_port,
                                                                                tmp_path / "theirs")
        # The 7.4-only directives, as Redis 7.4.1 reads this file.
        if conf == REDIS_74_CONF:
            assert mine.config_get("locale-collate") == {"locale-collate": ""}
            assert mine.config_get("set-max-listpack-*") == {"set-max-listpack-entries": "128",
                                                             "set-max-listpack-value": "64"}
        # One startup line per directive that has no effect here.
        log = ours.log()
        for name in ("disable-thp", "jemalloc-bg-thread", "replica-lazy-flush"):
            line = f"Config directive '{name}' is accepted for compatibility and has no effect in dumpling"
            assert log.count(line) == 1, name
        assert "Config directive 'port'" not in log


@pytest.mark.parametrize(
    "line",
    [
        "proc-title-template {title}",
        "proc-title-template \"{title} {nope}\"",
        "proc-title-template \"{title\"",
        "oom-score-adj maybe",
        "oom-score-adj-values 0 200",
        "oom-score-adj-values 0 200 3000",
        "oom-score-adj-values 0 x 800",
        "repl-diskless-load sometimes",
        "repl-diskless-sync-delay -1",
        "repl-diskless-sync-max-replicas 1x",
        "repl-disable-tcp-nodelay 1",
        "replica-lazy-flush maybe",
        "slave-lazy-flush maybe",
        "disable-thp perhaps",
        "jemalloc-bg-thread 2",
        "unixsocketperm 800",
        "unixsocketperm 1000",
        "unixsocketperm -1",
        "hz 007",
        "hz +5",
        "maxclients 1_000",
        "latency-tracking-info-percentiles 50 abc",
        "latency-tracking-info-percentiles 50 100.5",
        "latency-tracking-info-percentiles \"50 -1\"",
        "latency-tracking-info-percentiles 50 \"\" 99",
    ],
)
def test_bad_values_fail_as_in_redis(line: str, tmp_path: Path) -> None:
    if redis_server_path() is None:
        pytest.skip("redis-server not installed")
    conf = tmp_path / "bad.conf"
    conf.write_text(f"# a stock file's head\nsave \"\"\n{line}\n")
    ours, theirs = run_dumpling(str(conf), "--port", "0"), run_redis(str(conf), "--port", "0")
    assert ours.returncode == theirs.returncode == 1
    assert ours.stderr.replace("Redis 7.4.0", "Redis X") == theirs.stderr.replace("Redis 7.0.15", "Redis X")


def test_good_values_of_compatibility_directives(tmp_path: Path) -> None:
    require_redis()
    conf = tmp_path / "good.conf"
    conf.write_text(
        "oom-score-adj relative\n"
        "oom-score-adj-values \"-100 0 100\"\n"
        "proc-title-template \"{title} {{ {port} {unixsocket} {config-file} {tls-port}\"\n"
        "slave-lazy-flush yes\n"
        "repl-diskless-load swapdb\n"
        "unixsocketperm 0750\n"
    )
    names = ["oom-score-adj", "oom-score-adj-values", "proc-title-template", "replica-lazy-flush",
             "repl-diskless-load", "unixsocketperm"]
    with serving(dumpling_argv(), conf, tmp_path / "ours", "dumpling") as (_ours, our_port), \
            serving([require_redis()], conf, tmp_path / "theirs", "redis") as (_theirs, their_port):
        mine = redis.Redis(port=our_port, decode_responses=True)
        real = redis.Redis(port=their_port, decode_responses=True)
        for name in names:
            assert mine.config_get(name) == real.config_get(name), name
        for name, value in (("repl-diskless-load", "on-empty-db"), ("oom-score-adj-values", "1 2 3"),
                            ("proc-title-template", "{title}"), ("oom-score-adj-values", "1 2")):
            for client in (mine, real):
                try:
                    client.config_set(name, value)
                except redis.ResponseError as e:
                    client.error = str(e)  # type: ignore[attr-defined]
                else:
                    client.error = None  # type: ignore[attr-defined]
            assert mine.error == real.error, (name, value)  # type: ignore[attr-defined]
            assert mine.config_get(name) == real.config_get(name)


def test_log_file_that_cannot_be_opened_fails_after_reading(tmp_path: Path) -> None:
    if redis_server_path() is None:
        pytest.skip("redis-server not installed")
    args = ("--port", "0", "--logfile", str(tmp_path / "missing" / "x.log"))
    ours, theirs = run_dumpling(*args), run_redis(*args)
    assert ours.returncode == theirs.returncode == 1
    assert ours.stderr.replace("Redis 7.4.0", "Redis X") == theirs.stderr.replace("Redis 7.0.15", "Redis X")


RENAMES = (
    "rename-command set myset\n"
    "rename-command flushall \"\"\n"
    "rename-command CONFIG cfg\n"
    "rename-command exec doit\n"
    "rename-command get SET\n"  # a freed name can be taken
    "rename-command command cmd\n"
    "rename-command xinfo xi\n"
    "rename-command xgroup xg\n"
    "rename-command module mod\n"
    "rename-command slowlog slow\n"
    "rename-command script scr\n"
)


def test_rename_command_as_redis_does_it(tmp_path: Path) -> None:
    require_redis()
    conf = tmp_path / "renamed.conf"
    conf.write_text("save \"\"\n" + RENAMES)
    with serving(dumpling_argv(), conf, tmp_path / "ours", "dumpling") as (ours, _), \
            serving([require_redis()], conf, tmp_path / "theirs", "redis") as (theirs, _):
        pair = Pair(ours, theirs)
        try:
            pair.run([
                ("myset", "k", "v"), ("MYSET", "k2", "v2"), ("set", "k"),  # SET now reads (it is GET)
                ("get", "k"), ("flushall",), ("FLUSHALL", "ASYNC"),
                ("cmd", "info", "myset"), ("cmd", "info", "set"), ("cmd", "info", "get"),
                ("cmd", "info", "flushall"), ("command", "info"),
                ("cmd", "getkeys", "myset", "a", "b"), ("xi", "nope"), ("slow", "nope"),
                ("cfg", "get", "maxmemory"), ("config", "get", "maxmemory"),
                ("cfg", "nope"), ("CFG", "NOPE"),
                ("eval", "return redis.call('myset','x','1')", "0"),
                ("eval", "return redis.call('set','x')", "0"),
                ("multi",), ("myset", "t", "1"), ("doit",), ("exec",),
                ("multi",), ("exec",), ("discard",),
                # ACL rules name commands by their real names (Redis's orig_commands)
                ("acl", "setuser", "bob", "on", "nopass", "+set", "+get", "~*"), ("acl", "setuser", "bob", "+myset"),
                ("acl", "dryrun", "bob", "myset", "k", "v"), ("acl", "dryrun", "bob", "SET", "k"),
            ])
            pair.same_help("cfg", "help")
            pair.same_unordered("cmd", "list", "filterby", "pattern", "*set")
            # (7.4's docs differ from 7.0's; both answer under the real name)
            with ours.raw() as conn:
                assert conn.call("cmd", "docs", "myset").startswith(b"*2\r\n$3\r\nset\r\n")
            # HELP replies name the command as typed (the bodies differ between 7.0 and 7.4)
            for typed in ("cmd", "xi", "xg", "mod", "slow", "Scr"):
                ours_help, theirs_help = pair.both(typed, "help")
                assert parse_reply(ours_help)[0] == parse_reply(theirs_help)[0], typed  # type: ignore[index]
            # (a server without the C request loop has no fast path to turn off)
            assert ours.log().count("the fast path is off") == (0 if accel.fastpath is None else 1)
        finally:
            pair.close()


@pytest.mark.parametrize(
    "lines",
    [
        "rename-command nosuch other\n",
        "rename-command set get\n",
        "rename-command set foo\nrename-command set bar\n",
        "rename-command set\n",
        "rename-command config|get cget\n",
    ],
)
def test_rename_command_errors(lines: str, tmp_path: Path) -> None:
    if redis_server_path() is None:
        pytest.skip("redis-server not installed")
    conf = tmp_path / "bad.conf"
    conf.write_text("port 0\n" + lines)
    ours, theirs = run_dumpling(str(conf)), run_redis(str(conf))
    if "|" in lines:  # Redis 7.0 finds the subcommand, then asserts removing it from the table
        assert ours.returncode == 1 and "No such command in rename-command" in ours.stderr
        return
    assert ours.returncode == theirs.returncode == 1
    assert ours.stderr.replace("Redis 7.4.0", "Redis X") == theirs.stderr.replace("Redis 7.0.15", "Redis X")


# -- CONFIG REWRITE --------------------------------------------------------------------------------

SIGNATURE = "# Generated by CONFIG REWRITE"


def rewritten_by(argv_prefix: list[str], conf_text: str, where: Path, name: str,
                 commands: list[tuple[str, ...]], rewrites: int = 1) -> str:
    """Start a server on ``conf_text`` (written in ``where``), run ``commands``, CONFIG REWRITE,
    and return the file with the run's own port and directory normalised."""
    where.mkdir(parents=True)
    conf = where / "redis.conf"
    conf.write_text(conf_text)
    port = free_port()
    server = ServerProcess([*argv_prefix, str(conf), *overrides(port, where)], port, name)
    try:
        client = redis.Redis(port=port, decode_responses=True)
        for command in commands:
            client.execute_command(*command)
        for _ in range(rewrites):
            assert client.execute_command("CONFIG", "REWRITE") in ("OK", b"OK", True)
    finally:
        server.stop()
    text = conf.read_text().replace(str(where), "<dir>").replace(str(port), "<port>")
    # Redis 7.4 (like dumpling) shows sanitize-payload in user rules; the 7.0 oracle does not.
    return text.replace(" sanitize-payload ", " ")


def assert_same_rewrite(ours: str, theirs: str) -> None:
    """The kept/rewritten part must be identical; the appended part is compared as a set of lines
    (Redis appends in the order of its settings dict, which a random hash seed shuffles)."""
    our_head, _, our_tail = ours.partition(SIGNATURE)
    their_head, _, their_tail = theirs.partition(SIGNATURE)
    assert our_head == their_head
    assert (SIGNATURE in ours) == (SIGNATURE in theirs)
    assert sorted(our_tail.split("\n")) == sorted(their_tail.split("\n"))


def rewrite_both(tmp_path: Path, conf_text: str, commands: list[tuple[str, ...]], rewrites: int = 1) -> str:
    require_redis()
    ours = rewritten_by(dumpling_argv(), conf_text, tmp_path / "ours", "dumpling", commands, rewrites)
    theirs = rewritten_by([require_redis()], conf_text, tmp_path / "theirs", "redis", commands, rewrites)
    assert_same_rewrite(ours, theirs)
    return ours


STOCK_SETS = [
    ("CONFIG", "SET", "maxmemory", "100mb"),  # in the file as a comment only: appended
    ("CONFIG", "SET", "notify-keyspace-events", "KEx"),
    ("CONFIG", "SET", "save", "100 10 20 30"),
    ("CONFIG", "SET", "hash-max-listpack-value", "1024"),  # in the file: rewritten in place, as 1kb
    ("CONFIG", "SET", "loglevel", "warning"),
    ("CONFIG", "SET", "appendfsync", "always"),
    ("CONFIG", "SET", "client-output-buffer-limit", "pubsub 64mb 16mb 90"),
    ("CONFIG", "SET", "slowlog-max-len", "256"),
    ("CONFIG", "SET", "lua-time-limit", "7000"),  # an alias: written under busy-reply-threshold
    ("CONFIG", "SET", "oom-score-adj-values", "0 300 900"),
    ("CONFIG", "SET", "protected-mode", "no"),
    ("CONFIG", "SET", "latency-tracking-info-percentiles", "50 99.99"),
    ("CONFIG", "SET", "hz", "10"),  # back to its default, in the file: stays
    ("CONFIG", "SET", "requirepass", ""),
]


@pytest.mark.parametrize("conf", stock_files(), ids=lambda p: p.name)
def test_config_rewrite_of_a_stock_file_matches_redis(conf: Path, tmp_path: Path) -> None:
    require_redis()
    text = without_newer_directives(conf, tmp_path).read_text()
    out = rewrite_both(tmp_path, text, STOCK_SETS)
    assert "# By default Redis does not run as a daemon." in out  # comments stay
    assert "hash-max-listpack-value 1kb\n" in out.partition(SIGNATURE)[0]
    assert "busy-reply-threshold 7000\n" in out.partition(SIGNATURE)[2]


def test_config_rewrite_keeps_includes_renames_and_comments(tmp_path: Path) -> None:
    extra = tmp_path / "extra.conf"
    extra.write_text("maxmemory-samples 7\n")
    conf_text = (
        "# my server\n"
        f"include {extra}\n"
        "   port 6379\n"  # leading blanks go
        "\n\n\n"
        "slave-read-only yes\n"  # an alias: rewritten under its real name
        "maxmemory 10mb\n"
        "# a second maxmemory line: blanked\n"
        "maxmemory 20mb\n"
        "rename-command flushall \"\"\n"
        "save 900 1\n"
        "save 300 10\n"
        "user default on nopass ~* &* +@all\n"
        "unixsocketperm 0700\n"
        "timeout 0\n"
    )
    commands = [("CONFIG", "SET", "maxmemory", "1gb"), ("CONFIG", "SET", "replica-read-only", "no"),
                ("CONFIG", "SET", "save", "60 5"), ("CONFIG", "SET", "timeout", "30"),
                ("CONFIG", "SET", "maxmemory-policy", "allkeys-lru"),
                ("ACL", "SETUSER", "alice", "on", ">secret", "~app:*", "+get")]
    out = rewrite_both(tmp_path, conf_text, commands)
    head = out.partition(SIGNATURE)[0]
    assert f"include {extra}\n" in head and 'rename-command flushall ""\n' in head
    assert "replica-read-only no\n" in head and "maxmemory 1gb\n" in head
    # The rewritten file starts the server again with what was set.
    port = free_port()
    again_dir = tmp_path / "ours"
    server = ServerProcess(dumpling_argv(str(again_dir / "redis.conf"), *overrides(port, again_dir)), port, "dumpling")
    try:
        client = redis.Redis(port=port, decode_responses=True)
        assert client.config_get("maxmemory") == {"maxmemory": str(1024**3)}
        assert client.config_get("save") == {"save": "60 5"}
        assert client.acl_getuser("alice")["passwords"]
        with server.raw() as conn:
            assert conn.call("COMMAND", "INFO", "flushall") == b"*1\r\n$-1\r\n"  # removed by rename-command
    finally:
        server.stop()
    # Rewriting twice appends nothing new and no second marker.
    again = rewrite_both(tmp_path / "again", conf_text, commands, rewrites=2)
    assert again.count(SIGNATURE) == 1


def test_config_rewrite_of_a_file_without_a_trailing_newline_or_blank_lines(tmp_path: Path) -> None:
    rewrite_both(tmp_path / "no-newline", "port 6379\ndatabases 4", [("CONFIG", "SET", "maxmemory", "3kb")])
    rewrite_both(tmp_path / "empty", "", [("CONFIG", "SET", "maxmemory", "3000")])


def test_config_rewrite_errors(tmp_path: Path) -> None:
    port = free_port()
    server = ServerProcess(dumpling_argv("--port", str(port)), port, "dumpling")
    try:
        with server.raw() as conn:
            assert conn.call("CONFIG", "REWRITE") == b"-ERR The server is running without a config file\r\n"
    finally:
        server.stop()
