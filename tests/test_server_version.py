"""``dumpling-server --version`` / ``--help`` shaped as redis-server 7.4's, and an honest build id."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import cache

from dumpling import REDIS_VERSION, __version__, accel, buildinfo
from tests.servers import ROOT, start_dumpling
from tests.test_startup import run_dumpling, run_redis

# redis-server 7.4: printf("Redis server %s\n", getVersion()), with
# getVersion() = "v=%s sha=%s:%d malloc=%s bits=%d build=%llx".
REDIS_SHAPE = r"Redis server v=(\d+\.\d+\.\d+) sha=[0-9a-f]{8}:[01] malloc=\S+ bits=(32|64) build=([0-9a-f]+)"


@cache
def version_output() -> subprocess.CompletedProcess:
    return run_dumpling("--version")


def test_version_line_has_redis_shape_then_dumplings_version() -> None:
    out = version_output()
    assert out.returncode == 0 and out.stderr == ""
    match = re.fullmatch(REDIS_SHAPE + r" dumpling=(\S+)\n", out.stdout)
    assert match, out.stdout
    assert match.group(1) == REDIS_VERSION and match.group(4) == __version__
    # pytest-redis (and scripts like it) take the first dotted number as the server's version.
    assert re.search(r"\d+(?:\.\d+)+", out.stdout).group(0) == REDIS_VERSION
    assert run_dumpling("-v").stdout == out.stdout
    # As redis-server, only the first argument is looked at.
    assert run_dumpling("--port", "0", "--version").returncode == 1


def test_version_fields_match_a_real_redis_server() -> None:
    theirs = run_redis("--version")
    assert theirs.returncode == 0 and re.fullmatch(REDIS_SHAPE + r"\n", theirs.stdout)
    field_names = re.findall(r" (\w+)=", theirs.stdout)
    ours = version_output().stdout
    assert re.findall(r" (\w+)=", ours) == [*field_names, "dumpling"]


def test_build_id_names_this_build_and_info_agrees() -> None:
    """The build id is the CRC-64 of dumpling's version, the Python and the loaded accelerators:
    a pure build and an accelerated one differ, and INFO's redis_build_id is the same value."""
    text = buildinfo.build_string()
    assert text.startswith(f"dumpling-{__version__} ")
    version_build = re.search(r"build=([0-9a-f]+)", version_output().stdout).group(1)
    pure_build = re.search(r"build=([0-9a-f]+)", run_dumpling_pure("--version")).group(1)
    server = start_dumpling()
    try:
        info = server.raw().call("INFO", "server").decode()
    finally:
        server.stop()
    assert f"redis_build_id:{version_build}\r\n" in info
    # DUMPLING_PURE turns off every accelerator but python-lzf: another build, another id.
    assert (pure_build != version_build) == bool(set(accel.loaded()) - {"lzf"})


def run_dumpling_pure(*args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT), DUMPLING_PURE="1")
    return subprocess.run([sys.executable, "-m", "dumpling", *args], capture_output=True, text=True,
                          timeout=10, env=env).stdout


def test_help_is_redis_servers_for_what_dumpling_takes() -> None:
    out = run_dumpling("--help")
    assert out.returncode == 1 and out.stdout == ""
    assert run_dumpling("-h").stderr == out.stderr
    theirs = run_redis("--help")
    assert theirs.returncode == 1
    redis_lines = theirs.stderr.splitlines()
    usage, _, about = out.stderr.partition("\n\n" + "dumpling ")
    for line in usage.splitlines():
        as_redis = line.replace("dumpling-server", "./redis-server")
        # Every line is redis-server's own; the usage line lacks "[-]" (no config from stdin).
        assert as_redis in redis_lines or as_redis + " [-]" in redis_lines, line
    assert usage.splitlines()[0] == "Usage: dumpling-server [/path/to/redis.conf] [options]"
    assert about.startswith(f"{__version__}, emulating Redis {REDIS_VERSION}.")
