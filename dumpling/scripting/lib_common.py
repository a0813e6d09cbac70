"""Lua source shared by the scripting libraries: ``argerror``, Lua's luaL_argerror, and
``spreading``, which lets Python callables take as many arguments as Redis's C functions.

Owns the "bad argument #N to 'name' (...)" message as Lua builds it for a C function: the name
is the one the calling script used (``local f = bit.tobit; f('x')`` reports 'f'), '?' when a C
function (pcall) made the call, "calling 'name' on bad self" for a method call's self.  The
text is prepended to each library chunk, which runs it once at install time.
"""

from __future__ import annotations

from typing import Any

ARGERROR_LUA = r"""
local argerror
do
  local getinfo, error, format = debug and debug.getinfo, error, string.format
  -- depth: frames between argerror and the library function the script called (1 when that
  -- function calls argerror itself); the error is raised at the script's level, depth + 2.
  argerror = function(depth, idx, fname, extra)
    local name, namewhat = fname, ""
    if getinfo then
      local info = getinfo(depth + 1, "n")
      if info and info.name then
        name, namewhat = info.name, info.namewhat
      else
        -- no name: called from C (pcall) as Lua reports it ('?'), or a tail call that lost
        -- the calling frame (a C function would still have it: keep the library's name)
        local caller = getinfo(depth + 2, "S")
        if caller and caller.what == "C" then name = "?" end
      end
    end
    if namewhat == "method" then
      idx = idx - 1
      if idx == 0 then error(format("calling '%s' on bad self (%s)", name, extra), depth + 2) end
    end
    error(format("bad argument #%d to '%s' (%s)", idx, name, extra), depth + 2)
  end
end
"""

# lupa calls a Python callable with the arguments on the stack of a Lua C function, which
# Lua 5.1 caps at LUAI_MAXCSTACK (8000) slots; lupa needs three of them (the callable and
# two for its type check), so from 7998 arguments on it refuses the call ("bad argument #1
# (not a python object)").  Redis's own C functions take whatever unpack() can produce.
# Callables a script can reach with a big unpack() therefore get long argument lists as
# one table (``SPREAD_LUA``), which ``spread_call`` turns back into arguments.
MAX_DIRECT_ARGS = 7000

# ``spreading(f)`` (the function this chunk returns): a Lua function calling the Python
# callable ``f`` with its arguments, as they are below MAX_DIRECT_ARGS and as a table through
# ``spread_call`` from there on.  Its frame stays on the stack while ``f`` runs (a Lua tail
# call of a C function keeps the caller's frame), so an error ``f`` raises still finds the
# script's line past this ``@dumpling`` frame.
SPREAD_LUA = r"""
local spread_call = ...
local select = select
return function(f)
  return function(...)
    local n = select("#", ...)
    if n < %d then return f(...) end
    return spread_call(f, {...}, n)
  end
end
""" % MAX_DIRECT_ARGS


def spread_call(f: Any, args: Any, n: int) -> Any:
    """Call ``f`` with ``args[1..n]`` of a Lua table (nil holes as None), as lupa would have
    called it with those ``n`` arguments."""
    return f(*[args[i] for i in range(1, int(n) + 1)])


def make_spreading(lua: Any) -> Any:
    """The ``spreading`` Lua function of a runtime (see SPREAD_LUA)."""
    return lua.execute(SPREAD_LUA, spread_call, name="@dumpling")
