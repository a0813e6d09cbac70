"""INFO memory's script and function cache sizes, counted as Redis 7.4 counts them.

Pure arithmetic over lengths and counts: ``evalScriptsMemory`` (used_memory_scripts_eval) and
``functionsMemoryOverhead`` (used_memory_functions) add up the C structures Redis allocates
per cached script, function and library, each at the usable size of its allocation.  dumpling
reports ``mem_allocator:libc``, so sizes are glibc's ``malloc_usable_size`` on x86-64; with
those, the totals match a Redis 7.4.1 built with ``MALLOC=libc`` byte for byte (a dict being
rehashed, which Redis counts with both tables for a few commands, is counted settled).
The Lua heaps themselves (used_memory_vm_*) are measured, not modelled: ``LuaState.memory``.
"""

from __future__ import annotations

from collections.abc import Iterable

POINTER = 8
DICT_ENTRY = 24   # key, value, next
LIST_NODE = 24    # prev, next, value
LUA_SCRIPT = 24   # flags, body, LRU node
ROBJ = 16
EMBSTR_LIMIT = 44  # OBJ_ENCODING_EMBSTR_SIZE_LIMIT
BIG_ARG = 32 * 1024  # PROTO_MBULK_BIG_ARG: such an argument keeps the query buffer (len + 2)
FUNCTION_INFO = 40   # name, function, library, desc, flags
LIBRARY_INFO = 32    # name, functions, engine, code
LUA_FUNCTION_CTX = 4  # the registry reference
# What registering the Lua engine adds (engineInfo, its "LUA" name, the engine struct, the
# engine's context); Redis adds it again on every FUNCTION FLUSH and never takes it back.
ENGINE_REGISTRATION = 144
ENGINES_DICT = DICT_ENTRY + 4 * POINTER  # one engine
FUNCTIONS_LIB_CTX = 32


def malloc_usable(size: int) -> int:
    """glibc's ``malloc_usable_size`` for a request of ``size`` bytes (heap chunks)."""
    chunk = max(32, (size + 8 + 15) & ~15)
    return chunk - 8


def sds_header(length: int) -> int:
    if length < 1 << 5:
        return 1
    if length < 1 << 8:
        return 3
    if length < 1 << 16:
        return 5
    return 9 if length < 1 << 32 else 17


def sds_memory(length: int) -> int:
    """``sdsZmallocSize`` of a fresh sds of ``length`` bytes."""
    return malloc_usable(sds_header(length) + length + 1)


def argument_memory(length: int) -> int:
    """``getStringObjectSdsUsedMemory`` of a command argument as the request parser made it."""
    if length <= EMBSTR_LIMIT:
        return malloc_usable(ROBJ + 3 + length + 1) - ROBJ
    if length >= BIG_ARG:
        return sds_memory(length + 2)
    return sds_memory(length)


def dict_memory(entries: int) -> int:
    """``dictMemUsage`` of a dict grown to ``entries`` (buckets: a power of two, at least 4)."""
    if entries == 0:
        return 0
    buckets = 4
    while buckets < entries:
        buckets *= 2
    return entries * DICT_ENTRY + buckets * POINTER


def eval_scripts_memory(bodies: Iterable[tuple[int, bool]]) -> int:
    """``evalScriptsMemory``: for each cached script (its body's length, whether EVAL
    created it: those are in the LRU list) the SHA sds, the body, the luaScript and a dict
    entry, plus the dict's buckets."""
    total = count = 0
    for length, from_eval in bodies:
        count += 1
        total += sds_memory(40) + argument_memory(length) + LUA_SCRIPT + (LIST_NODE if from_eval else 0)
    return total + dict_memory(count)


def functions_memory(libraries: Iterable[tuple[int, int, Iterable[tuple[int, int | None]]]],
                     engine_registrations: int) -> int:
    """``functionsMemoryOverhead``: the engines dict, the library context, the engine's
    registrations, and for each library (name length, code length, and its functions' name
    and description lengths) its structures and those of its functions."""
    total = ENGINES_DICT + FUNCTIONS_LIB_CTX + ENGINE_REGISTRATION * engine_registrations
    functions = 0
    for name_length, code_length, library_functions in libraries:
        total += malloc_usable(LIBRARY_INFO) + sds_memory(name_length) + sds_memory(code_length)
        for function_name_length, description_length in library_functions:
            functions += 1
            total += (malloc_usable(FUNCTION_INFO) + sds_memory(function_name_length)
                      + (sds_memory(description_length) if description_length is not None else 0)
                      + malloc_usable(LUA_FUNCTION_CTX))
    return total + dict_memory(functions)
