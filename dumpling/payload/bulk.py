"""Many rdbStrings at once: the bodies of big plain sets, hashes, lists and skiplist zsets at C speed.

A type 2/4/5/1 body is a long run of small records (a string; field and value; a
member and an 8-byte double).  One Python step per string costs ~150 ns; this module
moves the per-string work into C where the data allows it, and falls back to the
one-by-one readers and writers (``primitives``) everywhere else, so the bytes read
and written are exactly theirs.

Reading: real payloads come in long stretches of records whose strings have the
same lengths ("field:123456", "value:123456").  Such a stretch has a fixed stride,
so a strided slice of the payload holds every length byte of it - checked in one
comparison - and a ``struct`` format like ``x12sx12s`` repeated unpacks it.  A
stretch is measured by galloping (windows growing 4x), so checking costs O(stretch).

Writing: a short string that cannot be an integer is written as its length byte and
its bytes (``append_string``'s raw case); ``map``, slice assignment and ``join``
produce those, and only the others ("odd": a first byte that may start an integer,
or long enough for LZF or a longer length) go through ``append_string``.

C speedups: ``_speedups`` (``_speedups.c``, optional, built by setup.py) does the same
reading and writing a string at a time in C, and can also read straight into the
dict or set of a hashtable-encoded hash or set.  When it imports, the public names
here (``read_records``, ``read_strings``, ``read_dict``, ``read_set``,
``append_strings``, ``append_mapping``, ``append_scored``, and ``append_blob``: one string,
``primitives.append_string`` itself when pure) are its functions; the
``*_py`` functions are the pure-Python reference, used when it is missing or when
``DUMPLING_PURE_PAYLOAD=1`` (or ``DUMPLING_PURE=1``) is set at import.
``use_speedups(flag)`` switches at run time (tests compare both paths); ``speedups``
is the C module while it is in use (``listpack`` takes its blob codec from there).

Must not: know about object types or values; every reader is bounds-checked against
``end`` and raises ``PayloadError`` like the primitives.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable
from itertools import accumulate, compress, count, islice, repeat
from operator import add, le
from types import ModuleType
from typing import Any

from dumpling.accel import PURE_PAYLOAD
from dumpling.payload.errors import bad_data
from dumpling.payload.primitives import append_string, binary_double_bytes, read_binary_double, read_string

CHUNK = 1024  # elements per pass: they stay in L2 between passes (a pass over 1M objects is memory bound)
_MIN_RUN = 16  # shorter stretches are read one by one
_RETRY_AFTER = 64  # records read one by one after a short stretch before measuring again (doubling)
_MAX_UNPACK = 1 << 10  # records per struct format
_LEN_BYTE = [bytes((n,)) for n in range(64)]

# In NUL + NUL.join(items) every element starts right after a NUL: this finds each
# element whose first byte may start an integer (and, harmlessly, NUL-digit inside one).
_NUMERIC_START = re.compile(rb"\x00[-0-9]")
_NUMERIC_FLAG = bytes(1 if chr(c) in "-0123456789" else 0 for c in range(256))

_formats: dict[tuple[str, int], struct.Struct] = {}


# ---------------------------------------------------------------------------
# reading


def _format(record: str, records: int) -> struct.Struct:
    fmt = _formats.get((record, records))
    if fmt is None:
        if len(_formats) > 4096:
            _formats.clear()
        fmt = _formats[record, records] = struct.Struct("<" + record * records)
    return fmt


def _stretch(buf: bytes, pos: int, stride: int, heads: list[tuple[int, bytes]], limit: int, guess: int) -> int:
    """How many records from ``pos`` (at most ``limit``) have length byte ``b`` at
    each (offset, b) of ``heads``."""
    window = min(limit, max(guess, _MIN_RUN))
    while True:
        run = window
        for offset, head in heads:
            start = pos + offset
            seen = buf[start : start + window * stride : stride]
            run = min(run, len(seen) - len(seen.lstrip(head)))
        if run < window or window == limit:
            return run
        window = min(limit, window * 4)


def _stride_run(buf: bytes, pos: int, end: int, remaining: int, shape: str, guess: int, columns: list[list]) -> int:
    """Unpack the stretch of same-length records at ``pos`` if it is long enough; its byte size (or 0)."""
    heads: list[tuple[int, bytes]] = []
    record = []
    at = pos
    for kind in shape:
        if kind == "d":
            at += 8
            record.append("d")
            continue
        n = buf[at] if at < end else 64
        if n >= 64:
            return 0
        heads.append((at - pos, _LEN_BYTE[n]))
        record.append(f"x{n}s")
        at += 1 + n
    stride = at - pos
    run = _stretch(buf, pos, stride, heads, min(remaining, (end - pos) // stride), guess)
    if run < _MIN_RUN:
        return 0
    fmt = "".join(record)
    width = len(shape)
    done = 0
    while done < run:
        step = min(_MAX_UNPACK, 1 << ((run - done).bit_length() - 1))
        values = _format(fmt, step).unpack_from(buf, pos + done * stride)
        if width == 1:
            columns[0] += values
        else:
            for i, column in enumerate(columns):
                column += values[i::width]
        done += step
    return run * stride


def _one_by_one(buf: bytes, pos: int, end: int, records: int, shape: str, columns: list[list]) -> int:
    """``records`` records the plain way (short raw strings inlined); the new position."""
    try:
        if shape == "s":
            append = columns[0].append
            for _ in range(records):
                b = buf[pos]
                if b < 64:
                    pos += b + 1
                    append(buf[pos - b : pos])
                else:
                    value, pos = read_string(buf, pos, end)
                    append(value)
        elif shape == "ss":
            first, second = columns[0].append, columns[1].append
            for _ in range(records):
                b = buf[pos]
                if b < 64:
                    pos += b + 1
                    first(buf[pos - b : pos])
                else:
                    value, pos = read_string(buf, pos, end)
                    first(value)
                b = buf[pos]
                if b < 64:
                    pos += b + 1
                    second(buf[pos - b : pos])
                else:
                    value, pos = read_string(buf, pos, end)
                    second(value)
        else:
            appends = [column.append for column in columns]
            for _ in range(records):
                for kind, append in zip(shape, appends, strict=True):
                    if kind == "s":
                        value, pos = read_string(buf, pos, end)
                    else:
                        value, pos = read_binary_double(buf, pos, end)
                    append(value)
    except IndexError:
        raise bad_data("strings past end of payload") from None
    if pos > end:  # the inlined reads only check this once
        raise bad_data("strings past end of payload")
    return pos


def read_records_py(buf: bytes, pos: int, end: int, records: int, shape: str) -> tuple[list[list], int]:
    """``records`` records of ``shape`` from ``pos``, one list per field: each ``s`` an
    rdbString (``bytes``), each ``d`` an 8-byte little-endian double (``float``).

    Stretches of same-length records are unpacked whole; elsewhere records are read
    one by one, with the next stretch looked for after 16, 32, ... records (a payload
    of mixed lengths in random order pays little for looking)."""
    columns: list[list] = [[] for _ in shape]
    remaining = records
    patience = 0
    backoff = _RETRY_AFTER
    guess = _MIN_RUN
    while remaining:
        if patience <= 0:
            size = _stride_run(buf, pos, end, remaining, shape, guess, columns)
            if size:
                run = len(columns[0]) - (records - remaining)
                pos += size
                remaining -= run
                guess = run
                # a long stretch promises more; a short one (mixed lengths) does not
                backoff = _RETRY_AFTER if run >= 8 * _MIN_RUN else backoff
                continue
            patience = backoff
            backoff = min(backoff * 2, 1 << 16)
        batch = min(patience, remaining)
        pos = _one_by_one(buf, pos, end, batch, shape, columns)
        remaining -= batch
        patience -= batch
    return columns, pos


def read_strings(buf: bytes, pos: int, end: int, strings: int) -> tuple[list[bytes], int]:
    """``strings`` consecutive rdbStrings."""
    (strings_read,), pos = read_records(buf, pos, end, strings, "s")
    return strings_read, pos


def read_dict_py(buf: bytes, pos: int, end: int, pairs: int, into: Any = None) -> tuple[Any, int]:
    """``pairs`` (field, value) rdbStrings as a dict, or into ``into`` (an empty mapping: a big
    hash's ``KeyTable``); a repeated field keeps its last value (the caller compares the size
    with ``pairs``)."""
    (fields, values), pos = read_records_py(buf, pos, end, pairs, "ss")
    if into is None:
        return dict(zip(fields, values, strict=True)), pos
    for field, value in zip(fields, values, strict=True):
        into[field] = value
    return into, pos


def read_set_py(buf: bytes, pos: int, end: int, strings: int) -> tuple[set[bytes], int]:
    """``strings`` rdbStrings as a set (the caller compares the size with ``strings``)."""
    (members,), pos = read_records_py(buf, pos, end, strings, "s")
    return set(members), pos


# ---------------------------------------------------------------------------
# writing


def odd_elements(items: list[bytes], lens: list[int], short: int) -> list[int]:
    """Sorted indexes of ``items`` that may spell an integer or are ``short`` bytes or longer."""
    odd: list[int] = []
    for base in range(0, len(items), CHUNK):
        chunk = items[base : base + CHUNK] if len(items) > CHUNK else items
        joined = b"\x00" + b"\x00".join(chunk) + b"\x00\x00"
        if _NUMERIC_START.search(joined) is not None:
            # The first byte of every element (an empty one reads the next NUL), flagged.
            starts = accumulate(map(add, lens[base : base + CHUNK], repeat(1)), initial=1)
            firsts = bytes(map(joined.__getitem__, starts))[: len(chunk)]
            odd += compress(count(base), firsts.translate(_NUMERIC_FLAG))
    if lens and max(lens) >= short:
        long = compress(count(), map(le, repeat(short), lens))
        odd = sorted({*odd, *long})
    return odd


def _strings(items: list[bytes], compress: bool) -> bytes:
    """``append_string`` of each item, concatenated."""
    lens = list(map(len, items))
    parts: list[bytes] = [b""] * (2 * len(items))
    parts[1::2] = items
    # The common case: with rdbcompression every string of at most 20 bytes is its
    # length byte and its bytes unless it may be an integer - and none may be when
    # even the smallest starts above '9' ('-' and the digits sort below).
    if compress and lens and max(lens) <= 20 and min(items)[:1] > b"9":
        parts[0::2] = map(_LEN_BYTE.__getitem__, lens)
        return b"".join(parts)
    odd = odd_elements(items, lens, 21 if compress else 64)
    parts[0::2] = map(_LEN_BYTE.__getitem__, map(min, lens, repeat(63)) if odd else lens)
    for i in odd:
        out = bytearray()
        append_string(out, items[i], compress)
        parts[2 * i] = bytes(out)
        parts[2 * i + 1] = b""
    return b"".join(parts)


def append_strings_py(out: bytearray, items: Iterable[bytes], compress: bool) -> None:
    """``append_string`` for each item, in order.  ``items`` is consumed a chunk at a
    time, so each object is fetched from memory once for all the passes over it."""
    source = iter(items)
    while chunk := list(islice(source, CHUNK)):
        out += _strings(chunk, compress)


def append_mapping_py(out: bytearray, fields: dict[bytes, bytes], compress: bool) -> None:
    """``append_string`` of each field and its value, in dict order (a type-4 hash body)."""
    for field, val in fields.items():
        n = len(field)
        if n <= 20 and not (n and field[0] <= 57 and (field[0] >= 48 or field[0] == 45)):
            out.append(n)
            out += field
        else:
            append_string(out, field, compress)
        n = len(val)
        if n <= 20 and not (n and val[0] <= 57 and (val[0] >= 48 or val[0] == 45)):
            out.append(n)
            out += val
        else:
            append_string(out, val, compress)


def append_scored_py(out: bytearray, pairs: Iterable[tuple[float, bytes]], compress: bool) -> None:
    """For each (score, member): ``append_string`` of the member, then the score as a
    little-endian binary double (a type-5 zset body)."""
    for score, member in pairs:
        n = len(member)
        if n <= 20 and not (n and member[0] <= 57 and (member[0] >= 48 or member[0] == 45)):
            out.append(n)
            out += member
        else:
            append_string(out, member, compress)
        out += binary_double_bytes(score)


# ---------------------------------------------------------------------------
# the C speedups, when built


read_records = read_records_py
read_dict = read_dict_py
read_set = read_set_py
append_strings = append_strings_py
append_blob = append_string  # one string, a container's blob: primitives.append_string (C: no Python frame)
string_payload: Callable[[bytes, int, bool], bytes | None] | None = None  # encode_payload's string case in C
# encode_payload's small listpack/intset values and restored one-node lists in C (_listpack.dump_parts)
small_payload: Callable[[object, int, bool], bytes | None] | None = None
append_mapping = append_mapping_py
append_scored = append_scored_py
ACCELERATED = False  # whether the names above are the C functions
speedups: ModuleType | None = None  # the C module while it is in use


def use_speedups(enabled: bool) -> bool:
    """Bind the public readers and writers to the C speedups (if they can be imported)
    or to the pure-Python functions; returns whether the C ones are now in use."""
    global ACCELERATED, speedups, read_records, read_dict, read_set, append_strings, append_mapping, append_scored
    global append_blob, string_payload, small_payload
    speedups = None
    if enabled:
        try:
            from dumpling.payload import _speedups as speedups
        except ImportError:
            speedups = None
    if speedups is None:
        read_records, read_dict, read_set = read_records_py, read_dict_py, read_set_py
        append_strings, append_mapping, append_scored = append_strings_py, append_mapping_py, append_scored_py
        append_blob = append_string
        string_payload = small_payload = None
        ACCELERATED = False
    else:
        read_records, read_dict, read_set = speedups.read_records, speedups.read_dict, speedups.read_set
        append_strings, append_mapping = speedups.append_strings, speedups.append_mapping
        append_scored = speedups.append_scored
        # (getattr: a module built from an older _speedups.c imports, without these)
        append_blob = getattr(speedups, "append_string", append_string)
        string_payload = getattr(speedups, "string_payload", None)
        small_payload = getattr(speedups, "small_payload", None)
        ACCELERATED = True
    return ACCELERATED


use_speedups(not PURE_PAYLOAD)
