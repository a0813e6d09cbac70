"""Bitmap commands on string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO.

Bit 0 is the most significant bit of the first byte (Redis's convention).  Writes
leave a ``bytearray`` (Redis's ``raw``; see ``commands.strings``), even when no bit
changes, as Redis unshares the value.  Whole-string work goes through Python's big
integers so it runs in C: BITCOUNT/BITPOS in 64 KB pieces, BITOP on whole operands.
Offsets are bounded by ``proto-max-bulk-len`` as in Redis.

Must not: know about sockets or reply framing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dumpling.commands.common import to_int
from dumpling.commands.registry import command
from dumpling.commands.strings import add_new_key, key_spec
from dumpling.errors import SYNTAX, WRONGTYPE, CommandError
from dumpling.numbers import parse_int64

BIT = {"group": "bitmap"}
BAD_OFFSET = "bit offset is not an integer or out of range"
BAD_TYPE = "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
U64 = 1 << 64


def _is_string(value: Any) -> bool:
    return type(value) is bytes or type(value) is bytearray


def _read_string(c: Any, key: bytes) -> Any:
    """A read lookup that raises WRONGTYPE for non-strings (None if missing)."""
    value = c.db.lookup_read(key)
    if value is not None and not _is_string(value):
        raise CommandError(WRONGTYPE)
    return value


def bit_offset(c: Any, arg: bytes, bits: int = 0) -> int:
    """``getBitOffsetFromArgument``; with ``bits`` > 0 the ``#<n>`` form means n*bits."""
    use_hash = bits > 0 and arg[:1] == b"#"
    value = parse_int64(arg[1:] if use_hash else arg)
    if value is None:
        raise CommandError(BAD_OFFSET)
    if use_hash:
        value = (value * bits) & (U64 - 1)  # C's wrapping multiply
        if value >= 1 << 63:
            value -= U64
    if value < 0 or (value >> 3) >= c.server.config["proto-max-bulk-len"]:
        raise CommandError(BAD_OFFSET)
    return value


def _writable_bits(c: Any, key: bytes, max_bit: int) -> tuple[bytearray, bool]:
    """``lookupStringForBitCommand``: the key's bytearray, created or zero-padded so
    ``max_bit`` is addressable; also whether it was created or grown."""
    db = c.db
    old = db.lookup_write(key)
    need = (max_bit >> 3) + 1
    if old is None:
        buf = bytearray(need)
        add_new_key(c, db, key, buf)
        return buf, True
    t = type(old)
    if t is bytearray:
        buf = old
    elif t is bytes:
        buf = bytearray(old)  # dbUnshareStringValue: now raw, even if nothing changes
        db.set(key, buf, keep_ttl=True)
    else:
        raise CommandError(WRONGTYPE)
    if len(buf) < need:
        buf.extend(bytes(need - len(buf)))
        return buf, True
    return buf, False


# ----------------------------------------------------------------------------- SETBIT / GETBIT


@command("setbit", 4, "write denyoom", (1, 1, 1), **BIT, since="2.2.0",
         summary="Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.",
         args="key offset:integer value:integer", key_flags="RW access update", events="new setbit")
def setbit(c: Any, argv: list[bytes]) -> Any:
    offset = bit_offset(c, argv[2])
    on = to_int(argv[3], "bit is not an integer or out of range")
    if on & ~1:
        raise CommandError("bit is not an integer or out of range")
    key = argv[1]
    buf, dirty = _writable_bits(c, key, offset)
    byte = offset >> 3
    shift = 7 - (offset & 7)
    old = (buf[byte] >> shift) & 1
    if dirty or old != on:
        buf[byte] = (buf[byte] & ~(1 << shift)) | (on << shift)
        c.keyspace.changed(c.db, key, b"setbit", "$")
    return old


@command("getbit", 3, "readonly fast", (1, 1, 1), **BIT, since="2.2.0", summary="Returns a bit value by offset.",
         args="key offset:integer", key_flags="RO access")
def getbit(c: Any, argv: list[bytes]) -> Any:
    offset = bit_offset(c, argv[2])
    value = _read_string(c, argv[1])
    byte = offset >> 3
    if value is None or byte >= len(value):
        return 0
    return (value[byte] >> (7 - (offset & 7))) & 1


# ----------------------------------------------------------------------------- BITCOUNT / BITPOS


def _unit_is_bit(arg: bytes) -> bool:
    unit = arg.lower()
    if unit == b"bit":
        return True
    if unit == b"byte":
        return False
    raise CommandError(SYNTAX)


CHUNK_BYTES = 1 << 16  # whole-string scans convert at most this much to an int at a time


def _bits_of(value: bytes | bytearray, first_bit: int, last_bit: int) -> int:
    """Bits ``first_bit``…``last_bit`` (inclusive, bit 0 = MSB of byte 0) as an integer."""
    first_byte, last_byte = first_bit >> 3, last_bit >> 3
    chunk = int.from_bytes(value[first_byte : last_byte + 1], "big")
    chunk >>= 7 - (last_bit & 7)
    return chunk & ((1 << (last_bit - first_bit + 1)) - 1)


def _chunks(first_bit: int, last_bit: int) -> Iterator[tuple[int, int]]:
    """Split a bit range into byte-aligned pieces of at most CHUNK_BYTES bytes."""
    start = first_bit
    while start <= last_bit:
        end = min(last_bit, ((start >> 3) + CHUNK_BYTES) * 8 - 1)
        yield start, end
        start = end + 1


def count_ones(value: bytes | bytearray, first_bit: int, last_bit: int) -> int:
    return sum(_bits_of(value, start, end).bit_count() for start, end in _chunks(first_bit, last_bit))


def find_bit(value: bytes | bytearray, bit: int, first_bit: int, last_bit: int) -> int:
    """Position of the first ``bit`` in the range, or -1."""
    for start, end in _chunks(first_bit, last_bit):
        width = end - start + 1
        bits = _bits_of(value, start, end)
        if not bit:
            bits ^= (1 << width) - 1
        if bits:
            return start + width - bits.bit_length()
    return -1


@command("bitcount", -2, "readonly", (1, 1, 1), **BIT, since="2.6.0",
         summary="Counts the number of set bits (population counting) in a string.", complexity="O(N)",
         args="key [range=(start:integer end:integer [unit=(BYTE | BIT)@7.0.0])]", key_flags="RO access",
         history=(("7.0.0", "Added the `BYTE|BIT` option."),))
def bitcount(c: Any, argv: list[bytes]) -> Any:
    # Redis 7.4 checks the range and unit before the lookup, so a missing key no longer hides
    # a bad argument (7.0 answered 0 for a missing key whatever followed it).
    argc = len(argv)
    if argc in (4, 5):
        start = to_int(argv[2])
        end = to_int(argv[3])
        is_bit = argc == 5 and _unit_is_bit(argv[4])
    elif argc != 2:
        raise CommandError(SYNTAX)
    value = _read_string(c, argv[1])
    if value is None:
        return 0
    n = len(value)
    if argc == 2:
        return count_ones(value, 0, n * 8 - 1)
    if start < 0 and end < 0 and start > end:
        return 0
    total = n * 8 if is_bit else n
    if start < 0:
        start += total
    if end < 0:
        end += total
    start = max(start, 0)
    end = max(end, 0)
    if end >= total:
        end = total - 1
    if start > end:
        return 0
    if not is_bit:
        start, end = start * 8, end * 8 + 7
    return count_ones(value, start, end)


@command("bitpos", -3, "readonly", (1, 1, 1), **BIT, since="2.8.7",
         summary="Finds the first set (1) or clear (0) bit in a string.", complexity="O(N)",
         args=("key bit:integer [range=(start:integer [end-unit-block=(end:integer [unit=(BYTE | "
               "BIT)@7.0.0])])]"),
         key_flags="RO access", history=(("7.0.0", "Added the `BYTE|BIT` option."),))
def bitpos(c: Any, argv: list[bytes]) -> Any:
    bit = to_int(argv[2])
    if bit != 0 and bit != 1:
        raise CommandError("The bit argument must be 1 or 0.")
    # As in Redis 7.4: start, then the unit, then end are checked before the key is looked up.
    argc = len(argv)
    if argc > 6:
        raise CommandError(SYNTAX)
    if argc >= 4:
        start = to_int(argv[3])
        is_bit = argc == 6 and _unit_is_bit(argv[5])
        end_given = argc >= 5
        end = to_int(argv[4]) if end_given else 0
    value = _read_string(c, argv[1])
    if value is None:
        return -1 if bit else 0
    n = len(value)
    if argc == 3:
        first, last = 0, n * 8 - 1
        end_given = False
    else:
        total = n * 8 if is_bit else n
        if not end_given:
            end = total - 1
        if start < 0:
            start += total
        if end < 0:
            end += total
        start = max(start, 0)
        end = max(end, 0)
        if end >= total:
            end = total - 1
        if start > end:
            return -1
        first, last = (start, end) if is_bit else (start * 8, end * 8 + 7)
    if first > last:
        return -1
    found = find_bit(value, bit, first, last)
    if found >= 0:
        return found
    if bit or end_given:
        return -1
    return last + 1  # looking for 0 with no explicit end: the string is zero-padded on the right


# ----------------------------------------------------------------------------- BITOP


@command("bitop", -4, "write denyoom", (2, -1, 1), **BIT, since="2.6.0",
         summary="Performs bitwise operations on multiple strings, and stores the result.", complexity="O(N)",
         args="operation=(AND | OR | XOR | NOT) destkey:key key...",
         key_specs=[key_spec("OW update", index=2), key_spec("RO access", index=3, lastkey=-1)], events="new set del")
def bitop(c: Any, argv: list[bytes]) -> Any:
    op = argv[1].lower()
    if op not in (b"and", b"or", b"xor", b"not"):
        raise CommandError(SYNTAX)
    if op == b"not" and len(argv) != 4:
        raise CommandError("BITOP NOT must be called with a single source key.")
    sources: list[bytes | bytearray] = []
    for key in argv[3:]:
        value = _read_string(c, key)
        sources.append(value if value is not None else b"")
    size = max(len(s) for s in sources)
    db = c.db
    ks = c.keyspace
    dest = argv[2]
    if not size:
        if db.delete(dest):
            ks.changed(db, dest, b"del", "g")
        return 0
    numbers = [int.from_bytes(s, "big") << (8 * (size - len(s))) for s in sources]
    result = numbers[0]
    if op == b"and":
        for x in numbers[1:]:
            result &= x
    elif op == b"or":
        for x in numbers[1:]:
            result |= x
    elif op == b"xor":
        for x in numbers[1:]:
            result ^= x
    else:
        result ^= (1 << (8 * size)) - 1
    out = bytearray(result.to_bytes(size, "big"))
    if db.lookup_write(dest) is None:
        add_new_key(c, db, dest, out)
    else:
        db.set(dest, out)
    ks.changed(db, dest, b"set", "$")
    return size


# ----------------------------------------------------------------------------- BITFIELD


def _field_type(arg: bytes) -> tuple[bool, int]:
    """``getBitfieldTypeFromArgument``: (signed, bits) for ``i1``…``i64`` / ``u1``…``u63``."""
    signed = arg[:1] == b"i"
    if not signed and arg[:1] != b"u":
        raise CommandError(BAD_TYPE)
    bits = parse_int64(arg[1:])
    if bits is None or bits < 1 or bits > (64 if signed else 63):
        raise CommandError(BAD_TYPE)
    return signed, bits


def _get_field(buf: bytes | bytearray, offset: int, bits: int, signed: bool) -> int:
    """The ``bits``-wide field at bit ``offset``; bytes past the end read as zero."""
    first_byte = offset >> 3
    last_bit = offset + bits - 1
    nbytes = (last_bit >> 3) - first_byte + 1
    chunk = bytes(buf[first_byte : first_byte + nbytes]).ljust(nbytes, b"\x00")
    value = (int.from_bytes(chunk, "big") >> (7 - (last_bit & 7))) & ((1 << bits) - 1)
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


def _set_field(buf: bytearray, offset: int, bits: int, value: int) -> None:
    first_byte = offset >> 3
    last_bit = offset + bits - 1
    last_byte = last_bit >> 3
    shift = 7 - (last_bit & 7)
    chunk = int.from_bytes(buf[first_byte : last_byte + 1], "big")
    mask = ((1 << bits) - 1) << shift
    chunk = (chunk & ~mask) | ((value & ((1 << bits) - 1)) << shift)
    buf[first_byte : last_byte + 1] = chunk.to_bytes(last_byte - first_byte + 1, "big")


WRAP, SAT, FAIL = 0, 1, 2


def _int64(x: int) -> int:
    """``x`` as C's int64_t after a wrapping conversion."""
    x &= U64 - 1
    return x - U64 if x >> 63 else x


def _overflow(value: int, incr: int, bits: int, signed: bool) -> int:
    """``check(Un)signedBitfieldOverflow``: 1 overflow, -1 underflow, 0 fits.

    Ported with C's wrapping int64 arithmetic, quirks included: a signed SET of a
    value so negative that ``max - value`` wraps counts as an overflow *upwards*,
    and an unsigned SET of a negative value (seen as a huge uint64) likewise.
    """
    if signed:
        high = (1 << (bits - 1)) - 1
        low = -high - 1
        maxincr = _int64(high - value)
        minincr = _int64(low - value)
        if value > high or (bits != 64 and incr > maxincr) or (value >= 0 and incr > 0 and incr > maxincr):
            return 1
        if value < low or (bits != 64 and incr < minincr) or (value < 0 and incr < 0 and incr < minincr):
            return -1
        return 0
    unsigned = value & (U64 - 1)
    high = (1 << bits) - 1
    if unsigned > high or (incr > 0 and incr > _int64(high - unsigned)):
        return 1
    if incr < 0 and incr < _int64(-unsigned):
        return -1
    return 0


def _fit(value: int, incr: int, bits: int, signed: bool, mode: int) -> tuple[int, bool]:
    """``value + incr`` stored in the field: (value to store, whether it overflowed).

    WRAP keeps the low bits (two's complement for signed), SAT clamps to the
    bound on the side the overflow check reports, FAIL only reports.
    """
    direction = _overflow(value, incr, bits, signed)
    if not direction:
        return value + incr, False
    if mode == SAT:
        if signed:
            high = (1 << (bits - 1)) - 1
            return (high if direction > 0 else -high - 1), True
        return ((1 << bits) - 1 if direction > 0 else 0), True
    wrapped = (value + incr) & ((1 << bits) - 1)
    if signed and wrapped >> (bits - 1):
        wrapped -= 1 << bits
    return wrapped, True


def _bitfield(c: Any, argv: list[bytes], readonly_command: bool) -> Any:
    ops: list[tuple[int, bool, int, int, int, int]] = []  # (opcode, signed, bits, offset, arg, overflow)
    overflow = WRAP
    highest_write = -1
    j = 2
    n = len(argv)
    while j < n:
        remaining = n - j - 1
        sub = argv[j].lower()
        if sub == b"get" and remaining >= 2:
            opcode = 0
        elif sub == b"set" and remaining >= 3:
            opcode = 1
        elif sub == b"incrby" and remaining >= 3:
            opcode = 2
        elif sub == b"overflow" and remaining >= 1:
            kind = argv[j + 1].lower()
            if kind == b"wrap":
                overflow = WRAP
            elif kind == b"sat":
                overflow = SAT
            elif kind == b"fail":
                overflow = FAIL
            else:
                raise CommandError("Invalid OVERFLOW type specified")
            j += 2
            continue
        else:
            raise CommandError(SYNTAX)
        signed, bits = _field_type(argv[j + 1])
        offset = bit_offset(c, argv[j + 2], bits)
        value = 0
        if opcode:
            highest_write = max(highest_write, offset + bits - 1)
            value = to_int(argv[j + 3])
            j += 4
        else:
            j += 3
        ops.append((opcode, signed, bits, offset, value, overflow))
    key = argv[1]
    if highest_write < 0:
        value = _read_string(c, key)
        src = value if value is not None else b""
        return [_get_field(src, offset, bits, signed) for _, signed, bits, offset, _, _ in ops]
    if readonly_command:
        raise CommandError("BITFIELD_RO only supports the GET subcommand")
    buf, dirty = _writable_bits(c, key, highest_write)
    replies: list[Any] = []
    changes = 0
    for opcode, signed, bits, offset, arg, mode in ops:
        old = _get_field(buf, offset, bits, signed)
        if opcode == 0:
            replies.append(old)
            continue
        if opcode == 2:
            new, overflowed = _fit(old, arg, bits, signed, mode)
            reply = new
        else:
            new, overflowed = _fit(arg, 0, bits, signed, mode)
            reply = old
        if overflowed and mode == FAIL:
            replies.append(None)
            continue
        replies.append(reply)
        _set_field(buf, offset, bits, new)
        if dirty or old != new:
            changes += 1
    if changes:
        ks = c.keyspace
        ks.changed(c.db, key, b"setbit", "$")
        ks.dirty += changes - 1
    return replies


@command("bitfield", -2, "write denyoom", (1, 1, 1), **BIT, since="3.2.0",
         summary="Performs arbitrary bitfield integer operations on strings.",
         complexity="O(1) for each subcommand specified",
         args=("key [operation=(GET get-block=(encoding offset:integer) | write=([OVERFLOW "
               "overflow-block=(WRAP | SAT | FAIL)] write-operation=(SET set-block=(encoding "
               "offset:integer value:integer) | INCRBY incrby-block=(encoding offset:integer "
               "increment:integer))))...]"),
         key_specs=[key_spec("RW access update variable_flags",
                          notes="This command allows both access and modification of the key")],
         events="new setbit")
def bitfield(c: Any, argv: list[bytes]) -> Any:
    return _bitfield(c, argv, False)


@command("bitfield_ro", -2, "readonly fast", (1, 1, 1), **BIT, since="6.0.0",
         summary="Performs arbitrary read-only bitfield integer operations on strings.",
         complexity="O(1) for each subcommand specified", args="key [GET get-block=(encoding offset:integer)...]",
         key_flags="RO access")
def bitfield_ro(c: Any, argv: list[bytes]) -> Any:
    return _bitfield(c, argv, True)
