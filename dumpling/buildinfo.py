"""What ``dumpling-server --version`` and INFO's ``redis_build_id`` say about this build.

The line keeps the shape of ``redis-server --version`` (tools such as pytest-redis take
the first dotted number as the Redis version, so the emulated version comes first) and
adds dumpling's own version as a last ``key=value`` field.  The build id is Redis's kind
of value (CRC-64/Jones, in hex, of a string naming the build) over what actually
distinguishes one dumpling build from another: dumpling's version, the Python running
it and the C accelerators it loaded.  ``sha=00000000:0`` is what Redis prints when it
was not built from a git checkout; dumpling records no commit at build time either.
"""

from __future__ import annotations

import platform
import struct
from functools import cache

from dumpling import REDIS_VERSION, __version__


def build_string() -> str:
    """The text the build id hashes, e.g. ``dumpling-0.1.0 CPython-3.11.7 fastpath,fpconv``."""
    from dumpling import accel

    return (f"dumpling-{__version__} {platform.python_implementation()}-{platform.python_version()} "
            + ",".join(accel.loaded()))


@cache
def build_id() -> str:
    from dumpling.payload.crc64 import crc64

    return "%x" % crc64(build_string().encode())


def version_line() -> str:
    bits = struct.calcsize("P") * 8
    return (f"Redis server v={REDIS_VERSION} sha=00000000:0 malloc=libc bits={bits} build={build_id()} "
            f"dumpling={__version__}")


def usage(program: str = "dumpling-server") -> str:
    """``redis-server --help``'s text, for the options dumpling takes (no stdin config,
    memory test, system check or sentinel mode)."""
    return (
        f"Usage: {program} [/path/to/redis.conf] [options]\n"
        f"       {program} -v or --version\n"
        f"       {program} -h or --help\n"
        "\n"
        "Examples:\n"
        f"       {program} (run the server with default conf)\n"
        f"       {program} /etc/redis/6379.conf\n"
        f"       {program} --port 7777\n"
        f"       {program} --port 7777 --replicaof 127.0.0.1 8888\n"
        f"       {program} /etc/myredis.conf --loglevel verbose\n"
        "\n"
        f"dumpling {__version__}, emulating Redis {REDIS_VERSION}. Options are redis.conf directives;\n"
        "settings accepted without effect are named in the startup log.\n"
    )
