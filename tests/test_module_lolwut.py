"""MODULE (nothing loads: LIST is empty, LOAD / LOADEX / UNLOAD refused as Redis refuses a
module it cannot load) and LOLWUT, differentially against real Redis where the bytes do
not name the version."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.servers import Pair, ServerProcess, start_dumpling, start_redis

MODULE_CALLS = [
    ("MODULE", "LIST"),
    ("MODULE", "LOAD", "/nonexistent/module.so"),
    ("MODULE", "LOAD", "/nonexistent/module.so", "a", "b"),
    ("MODULE", "LOADEX", "/nonexistent/module.so", "CONFIG", "a", "b", "ARGS", "1"),
    ("MODULE", "LOADEX", "/nonexistent/module.so", "bogus"),
    ("MODULE", "UNLOAD", "nosuchmodule"),
    ("MODULE", "LOAD"),
    ("MODULE", "UNLOAD"),
    ("MODULE", "UNLOAD", "a", "b"),
    ("MODULE", "HELP", "x"),
    ("MODULE", "BOGUS"),
    ("MODULE",),
    ("COMMAND", "INFO", "MODULE|LOAD", "MODULE|LIST", "MODULE|UNLOAD", "MODULE|LOADEX", "LOLWUT"),
]


def test_module_commands_disabled(pairs: Pair) -> None:
    """The default ``enable-module-command no``: LIST and HELP answer, the rest is refused."""
    for args in MODULE_CALLS:
        pairs.same(*args)
    help_text = pairs.ours.call("MODULE", "HELP")  # 7.4's last line ("Prints" in 7.0)
    assert help_text.endswith(b"+HELP\r\n+    Print this help.\r\n") and help_text.startswith(b"*11\r\n")


@pytest.fixture(scope="module")
def module_servers() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    ours = start_dumpling("--enable-module-command", "yes")
    theirs = start_redis("--enable-module-command", "yes")
    yield ours, theirs
    ours.stop()
    theirs.stop()


@pytest.mark.parametrize("resp", [2, 3])
def test_module_commands_enabled(module_servers: tuple[ServerProcess, ServerProcess], resp: int) -> None:
    pair = Pair(*module_servers, resp=resp)
    try:
        for args in MODULE_CALLS:
            pair.same(*args)
    finally:
        pair.close()
    assert "failed to load" in module_servers[0].log()


def test_lolwut(pairs: Pair) -> None:
    ours, theirs = pairs.both("LOLWUT")
    version = b"7.4.0"
    if pairs.resp == 3:
        assert ours == b"=21\r\ntxt:Redis ver. %s\n\r\n" % version
    else:
        assert ours == b"$17\r\nRedis ver. %s\n\r\n" % version
    for args in [("LOLWUT", "VERSION", "x"), ("LOLWUT", "VERSION", "9223372036854775808"),
                 ("LOLWUT", "VERSION", "5", "x"), ("LOLWUT", "VERSION", "5", "10", "y")]:
        pairs.same(*args)
    # the first two rows of Schotter are not random: two rows draw the same art as Redis
    for args in [("LOLWUT", "VERSION", "5", "10", "2", "2"), ("LOLWUT", "VERSION", "5", "66", "8", "2"),
                 ("LOLWUT", "VERSION", "5", "-5", "0", "0"), ("LOLWUT", "VERSION", "5", "3", "1", "1")]:
        ours, theirs = pairs.both(*args)
        assert _unversioned(ours) == _unversioned(theirs), args


def _unversioned(reply: bytes) -> bytes:
    """The reply's text without the version line's version (and so without its length)."""
    body = reply.split(b"\r\n", 1)[1]
    return body.rsplit(b"Redis ver. ", 1)[0]


def test_lolwut_version_5_draws_schotter(r: redis.Redis) -> None:
    art = r.execute_command("LOLWUT", "VERSION", "5", "10", "2", "2")
    text = art.decode("utf-8") if isinstance(art, bytes) else str(art)
    lines = [line for line in text.split("\n") if line]
    assert lines[-1] == "Georg Nees - schotter, plotter on paper, 1968. Redis ver. 7.4.0"
    assert all(len(line) == 10 for line in lines[:-1])  # 10 columns of Braille characters
    assert all(0x2800 <= ord(ch) <= 0x28FF for line in lines[:-1] for ch in line)
    default = r.execute_command("LOLWUT", "VERSION", "5").decode("utf-8")
    assert len(default.split("\n")[0]) == 66
    # Redis's clamps: at least one column and one square, at most 1000 columns
    tiny = r.execute_command("LOLWUT", "VERSION", "5", "-5", "0", "0").decode("utf-8")
    assert tiny.endswith("Redis ver. 7.4.0\n")


def test_redis_py_lolwut(r: redis.Redis) -> None:
    assert b"Redis ver." in r.lolwut()
    assert b"Redis ver. 7.4.0" in r.lolwut(5, 6, 7, 8)


def _shape(reply: bytes) -> list[int]:
    """Cells per line of LOLWUT 6's art, then the caption lines' lengths."""
    text = reply.split(b"\r\n", 1)[1].rsplit(b"Redis ver. ", 1)[0]
    return [line.count(b" \x1b[0m") or -len(line) for line in text.split(b"\n")]


def test_lolwut_version_6_draws_a_skyline(pairs: Pair) -> None:
    for args in [("LOLWUT", "VERSION", "6"), ("LOLWUT", "VERSION", "6", "10", "5"), ("LOLWUT", "VERSION", "6", "0", "0"),
                 ("LOLWUT", "VERSION", "6", "30", "3")]:
        ours, theirs = pairs.both(*args)
        assert _shape(ours) == _shape(theirs), args
    pairs.same("LOLWUT", "VERSION", "6", "x")
    ours = pairs.ours.call("LOLWUT", "VERSION", "6", "4", "2")
    grays = {b"0;30;40m", b"0;90;100m", b"0;37;47m", b"0;97;107m"}
    cells = [cell.split(b" ")[0] for cell in ours.split(b"\x1b[")[1:] if not cell.startswith(b"0m")]
    assert len(cells) == 8 and set(cells) <= grays
