"""Lua source shared by the scripting libraries: ``argerror``, Lua's luaL_argerror.

Owns the "bad argument #N to 'name' (...)" message as Lua builds it for a C function: the name
is the one the calling script used (``local f = bit.tobit; f('x')`` reports 'f'), '?' when a C
function (pcall) made the call, "calling 'name' on bad self" for a method call's self.  The
text is prepended to each library chunk, which runs it once at install time.
"""

from __future__ import annotations

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
