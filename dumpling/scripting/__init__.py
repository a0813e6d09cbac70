"""Lua scripting and Functions (EVAL, EVALSHA, SCRIPT, FUNCTION, FCALL).

The engine is Lua 5.1 through lupa (``lupa.lua51``), sandboxed as Redis sandboxes it.
"""
