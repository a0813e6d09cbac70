"""Keep a script's frame when it tail-calls a library function (for error positions).

In Redis the libraries (cjson, cmsgpack, struct, bit) are C functions: ``return cjson.decode(s)``
keeps the script's frame on the stack, so a failure reads "user_script:1: Expected value ...".
Ours are Lua functions, and Lua 5.1 turns ``return f(x)`` into a tail call that drops the
script's frame first: the error loses its position.  ``without_tail_calls`` rewrites a compiled
chunk (``string.dump`` output) so that every OP_TAILCALL is an OP_CALL with all results kept,
followed by the OP_RETURN the compiler already emits -- the code ``return (f(x))``-style callers
get, with the same results.  The one observable change: unbounded tail recursion in a script
now nests frames (Lua refuses past ~20000 levels with "stack overflow").

Pure bytes in, bytes out; it understands only the Lua 5.1 format of this platform (little
endian, 4-byte int and instruction, 8-byte size_t and double) and returns anything else as is.
"""

from __future__ import annotations

import struct

HEADER = b"\x1bLuaQ\x00\x01\x04\x08\x04\x08\x00"
OP_CALL = 28
OP_TAILCALL = 29
OPCODE_MASK = 0x3F


class _Cursor:
    def __init__(self, data: bytearray, pos: int) -> None:
        self.data = data
        self.pos = pos

    def int(self) -> int:
        (value,) = struct.unpack_from("<i", self.data, self.pos)
        self.pos += 4
        return value

    def size(self) -> int:
        (value,) = struct.unpack_from("<Q", self.data, self.pos)
        self.pos += 8
        return value

    def skip_string(self) -> None:
        length = self.size()  # read first: ``self.pos += self.size()`` would lose the advance
        self.pos += length

    def function(self) -> None:
        """Walk one function prototype, patching its code in place, then its children."""
        self.skip_string()                    # source
        self.pos += 4 + 4 + 4                 # linedefined, lastlinedefined, nups/params/vararg/stack
        count = self.int()
        for i in range(count):
            at = self.pos + 4 * i
            (ins,) = struct.unpack_from("<I", self.data, at)
            if ins & OPCODE_MASK == OP_TAILCALL:
                struct.pack_into("<I", self.data, at, (ins & ~OPCODE_MASK) | OP_CALL)
        self.pos += 4 * count
        for _ in range(self.int()):           # constants
            kind = self.data[self.pos]
            self.pos += 1
            if kind == 1:
                self.pos += 1
            elif kind == 3:
                self.pos += 8
            elif kind == 4:
                self.skip_string()
            elif kind != 0:
                raise ValueError(f"unknown constant type {kind}")
        for _ in range(self.int()):           # nested prototypes
            self.function()
        lines = self.int()                    # line info
        self.pos += 4 * lines
        for _ in range(self.int()):           # local variables
            self.skip_string()
            self.pos += 8
        for _ in range(self.int()):           # upvalue names
            self.skip_string()


def without_tail_calls(chunk: bytes) -> bytes:
    """``chunk`` (a Lua 5.1 binary chunk) with its tail calls made ordinary calls."""
    if not chunk.startswith(HEADER):
        return chunk
    data = bytearray(chunk)
    cursor = _Cursor(data, len(HEADER))
    try:
        cursor.function()
    except (struct.error, ValueError, IndexError):
        return chunk
    if cursor.pos != len(data):
        return chunk
    return bytes(data)
