"""Installs the Lua libraries Redis loads into its scripting engine: ``cjson``, ``cmsgpack``,
``struct`` and ``bit``, with Redis 7's behaviour (see ``lib_*.py`` for each).

``load_library(lua, name)`` compiles one of them in a ``lupa.lua51.LuaRuntime`` created with
``encoding=None, unpack_returned_tuples=True`` and returns its table; the sandbox calls it the
first time a script touches the library (Redis's are C: they cost its Lua heap nothing, ours
would cost ~120 KB per Lua state up front).  cjson, cmsgpack and bit are Lua source; struct
is Python behind Lua wrappers that hold the Python callables in upvalues.  Everything a script
can reach is a Lua table, a Lua function, or ``cjson.null`` (a userdata without a visible
metatable).  The libraries capture what they use when they are compiled, from the runtime's
own globals (scripts see another table; the sandbox removes from these only what no library
uses: io, os, package, print and the file loaders).  Their chunks are
named ``@dumpling``, which the sandbox's error handler skips.  This module must not touch
anything else in the runtime.
"""

from __future__ import annotations

from typing import Any

from dumpling.scripting import lib_bit, lib_cjson, lib_cmsgpack, lib_struct
from dumpling.scripting.lib_common import ARGERROR_LUA

LIBRARIES = (b"cjson", b"bit", b"struct", b"cmsgpack")


def load_library(lua: Any, name: bytes) -> Any:
    """The table of library ``name`` (one of LIBRARIES), compiled in ``lua``."""
    if name == b"bit":
        return lua.execute(ARGERROR_LUA + lib_bit.LUA_SOURCE, name="@dumpling")
    if name == b"cjson":
        return lua.execute(ARGERROR_LUA + lib_cjson.LUA_SOURCE, name="@dumpling")()
    if name == b"struct":
        return lib_struct.install(lua)
    if name == b"cmsgpack":
        return lua.execute(ARGERROR_LUA + lib_cmsgpack.LUA_SOURCE, name="@dumpling")
    raise ValueError(f"no library {name!r}")


def install_libraries(lua: Any) -> None:
    """All four as globals of ``lua`` at once (for a bare runtime, as the library tests use)."""
    g = lua.globals()
    for name in LIBRARIES:
        g[name] = load_library(lua, name)
