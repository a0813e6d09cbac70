"""Installs the Lua libraries Redis loads into its scripting engine: ``cjson``, ``cmsgpack``,
``struct`` and ``bit``, with Redis 7's behaviour (see ``lib_*.py`` for each).

``install_libraries(lua)`` sets the four globals in a ``lupa.lua51.LuaRuntime`` created with
``encoding=None, unpack_returned_tuples=True``.  cjson, cmsgpack and bit are Lua source; struct
is Python behind Lua wrappers that hold the Python callables in upvalues.  Everything a script
can reach is a Lua table, a Lua function, or ``cjson.null`` (a userdata without a visible
metatable).  The libraries capture what they use at install time, so they keep working after the
sandbox removes globals or freezes tables.  Their chunks are named ``@dumpling``, which the
sandbox's error handler skips.  This module must not touch anything else in the runtime.
"""

from __future__ import annotations

from typing import Any

from dumpling.scripting import lib_bit, lib_cjson, lib_cmsgpack, lib_struct
from dumpling.scripting.lib_common import ARGERROR_LUA


def install_libraries(lua: Any) -> None:
    """Set the globals ``cjson``, ``cmsgpack``, ``struct`` and ``bit`` in ``lua``."""
    g = lua.globals()
    g.bit = lua.execute(ARGERROR_LUA + lib_bit.LUA_SOURCE, name="@dumpling")
    g.cjson = lua.execute(ARGERROR_LUA + lib_cjson.LUA_SOURCE, name="@dumpling")()
    g.struct = lib_struct.install(lua)
    g.cmsgpack = lua.execute(ARGERROR_LUA + lib_cmsgpack.LUA_SOURCE, name="@dumpling")
