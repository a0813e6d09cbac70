"""Random stream entries for the tests that compare a C stream writer with its Python
reference: values at the listpack and RESP length boundaries, int-like strings of every
kind the listpack integer encoding must tell apart, and field lists sharing the first
entry's names (a node's master fields), many fields, or a few of a small set."""

from __future__ import annotations

import random
from collections.abc import Sequence

from dumpling.datatypes.streams import MASK64, StreamValue

INT_LIKE = [b"0", b"-1", b"127", b"128", b"-4096", b"4095", b"-0", b"007", b"+5", b"1.5", b"9223372036854775807",
            b"9223372036854775808", b"-9223372036854775808", b"-9223372036854775809", b"12345678901234567890", b" 1"]

# listpack's 6/12/32-bit string lengths and RESP's length digits
SIZES = [1, 5, 9, 10, 63, 64, 99, 100, 127, 128, 1000, 4095, 4096, 5000]


def random_value(rng: random.Random) -> bytes:
    pick = rng.random()
    if pick < 0.3:
        return rng.choice(INT_LIKE)
    if pick < 0.4:
        return b""
    size = rng.choice(SIZES)
    return bytes(rng.randrange(256) for _ in range(min(size, 37))) * (size // 37 + 1)


def random_fields(rng: random.Random) -> list[bytes]:
    """An entry's field-value list."""
    pick = rng.random()
    if pick < 0.5:
        return [b"name", random_value(rng), b"data", random_value(rng)]
    if pick < 0.55:  # many fields (past the C writers' stack room of 16)
        return [x for i in range(rng.randrange(10, 40)) for x in (b"f%d" % i, random_value(rng))]
    count = rng.randrange(1, 4)
    return [x for _ in range(count) for x in (rng.choice([b"name", b"data", b"", b"7", b"other"]), random_value(rng))]


def random_stream(rng: random.Random, count: int, max_bytes: int = 4096, node_entries: Sequence[int] = (100,),
                  big_ids: bool = False, trims: bool = True) -> StreamValue:
    """XADDs (IDs past the last; with big_ids, some past 2**63 so that deltas wrap; each into
    nodes of at most one of ``node_entries`` entries), then XDELs and (trims) XTRIMs, both ways
    (exact, approximate; MAXLEN, MINID)."""
    s = StreamValue()
    ms, seq = 1, 0
    ids: list[tuple[int, int]] = []
    max_entries = max(node_entries)
    for _ in range(count):
        if big_ids and rng.random() < 0.02:
            ms, seq = rng.randrange(ms + 1, MASK64), 0
        elif rng.random() < 0.3:
            seq += rng.randrange(1, 5)
        else:
            ms, seq = ms + rng.randrange(1, 1000), rng.randrange(3)
        if ms >= MASK64:
            break
        s.append((ms, seq), random_fields(rng), max_bytes, rng.choice(node_entries))
        ids.append((ms, seq))
    for entry_id in rng.sample(ids, len(ids) // 5):
        s.delete(entry_id)
    if trims and s.entries and rng.random() < 0.6:
        s.trim(rng.randrange(len(s.entries) + 1), None, rng.random() < 0.3, 0, max_bytes, max_entries)
    if trims and s.entries and rng.random() < 0.5:
        s.trim(None, s.entries.key_at(rng.randrange(len(s.entries))), rng.random() < 0.3, 0, max_bytes, max_entries)
    return s
