"""SORT and SORT_RO over lists, sets and sorted sets (``sort.c``).

Options are parsed in Redis's order (a bad LIMIT number or an unknown word stops
the parse), then the source is loaded in its natural order.  ``BY`` without ``*``
skips sorting (a list or sorted set keeps its order, reversed by DESC; a set is
sorted ALPHA anyway when storing, as Redis does for determinism).  Numeric sorting
parses weights like C ``strtod`` and breaks ties by comparing the elements; ALPHA
compares bytes (the C locale's ``strcoll``); a missing weight sorts as 0 or, with
ALPHA, first.  ``GET``/``BY`` patterns substitute the first ``*`` and read a string
key or, with ``->field``, a hash field; ``#`` is the element itself.  In cluster
mode a pattern must name keys of the sorted key's slot (a ``{tag}``).  ``STORE``
writes a list built as consecutive RPUSHes would build it.
"""

from __future__ import annotations

import heapq
from typing import Any

from dumpling import accel
from dumpling.cluster.slots import SLOT_MASK, crc16, key_slot
from dumpling.commands.acl import full_key_access
from dumpling.commands.common import parse_double, to_int
from dumpling.commands.hashes import field_value
from dumpling.commands.lists import key_spec
from dumpling.commands.registry import command
from dumpling.datatypes.hashes import HashValue
from dumpling.datatypes.lists import ListValue
from dumpling.datatypes.sets import SetValue
from dumpling.datatypes.zsets import ZSetValue
from dumpling.errors import SYNTAX, WRONGTYPE, CommandError

GENERIC = {"group": "generic"}
_C_SPACE = b" \t\n\r\x0b\x0c"


def strtod_weight(text: bytes) -> float | None:
    """A weight as ``strtod`` with Redis's checks: None if not a valid (non-NaN) double."""
    nul = text.find(b"\x00")
    if nul >= 0:
        text = text[:nul]
    stripped = text.lstrip(_C_SPACE)
    if not stripped:
        return 0.0  # strtod consumed nothing and stopped at the terminator
    value = parse_double(stripped)
    if value is None or value != value:
        return None
    return value


def _weight(weight: bytes | None) -> float | None:
    """A numeric sort weight: 0 for a missing one, None if it is not a valid double."""
    return 0.0 if weight is None else strtod_weight(weight)


def _ordered(items: list[Any], desc: bool, needed: int) -> list[Any]:
    """``items`` sorted (descending if ``desc``); when only the first ``needed`` are wanted
    (a small LIMIT), just those, as Redis's partial sort does."""
    if 0 <= needed < len(items) // 8:
        return heapq.nlargest(needed, items) if desc else heapq.nsmallest(needed, items)
    items.sort(reverse=desc)
    return items


def _by_score(scores: list[float], elements: list[bytes], desc: bool, needed: int) -> list[bytes]:
    """``elements`` ordered by score, equal scores in binary order of the elements (Redis's
    ``sortCompare``), all reversed with DESC; only the first ``needed`` for a small LIMIT."""
    n = len(elements)
    if accel.fastpath is not None:
        ordered = accel.fastpath.sort_scored(scores, elements, desc, needed)  # the same order, in C
        if ordered is not None:
            return ordered
    if 0 <= needed < n // 8:
        pairs = zip(scores, elements, strict=True)
        best = heapq.nlargest(needed, pairs) if desc else heapq.nsmallest(needed, pairs)
        return [element for _, element in best]
    # Float keys alone sort several times faster than (score, element) pairs; then each run
    # of equal scores is put in element order.
    order = sorted(range(n), key=scores.__getitem__, reverse=desc)
    ranked = [scores[i] for i in order]
    ties = [k for k in range(1, n) if ranked[k] == ranked[k - 1]]
    k = 0
    while k < len(ties):
        first = ties[k] - 1
        while k + 1 < len(ties) and ties[k + 1] == ties[k] + 1:
            k += 1
        last = ties[k]
        order[first:last + 1] = sorted(order[first:last + 1], key=elements.__getitem__, reverse=desc)
        k += 1
    return [elements[i] for i in order]


def pattern_hash_slot(pattern: bytes) -> int:
    """``patternHashSlot``: the one slot every key the pattern can name hashes to, or -1."""
    brace = -1
    for i, c in enumerate(pattern):
        if c in b"*?[\\":
            return -1
        if brace == -1 and c == 123:  # '{'
            brace = i
        elif brace >= 0 and c == 125:  # '}'
            if i == brace + 1:
                brace = -2  # empty tag: the whole pattern is hashed
            else:
                return crc16(pattern[brace + 1:i]) & SLOT_MASK
    return crc16(pattern) & SLOT_MASK


def lookup_by_pattern(c: Any, pattern: bytes, element: bytes) -> bytes | None:
    """``lookupKeyByPattern``: the string or hash field the pattern names for ``element``."""
    if pattern == b"#":
        return element
    star = pattern.find(b"*")
    if star < 0:
        return None
    arrow = pattern.find(b"->", star + 1)
    field = None
    if arrow >= 0 and arrow + 2 < len(pattern):
        field = pattern[arrow + 2:]
        key = pattern[:star] + element + pattern[star + 1:arrow]
    else:
        key = pattern[:star] + element + pattern[star + 1:]
    value = c.db.lookup_read(key)
    if value is None:
        return None
    if field is not None:
        if type(value) is not HashValue:
            return None
        return field_value(c, key, value, field)[0]
    if type(value) is bytes or type(value) is bytearray:
        return bytes(value)
    return None


def _sort(c: Any, argv: list[bytes], readonly: bool) -> Any:
    desc = alpha = dontsort = False
    limit_start, limit_count = 0, -1
    sortby: bytes | None = None
    store: bytes | None = None
    gets: list[bytes] = []
    j = 2
    while j < len(argv):
        left = len(argv) - j - 1
        opt = argv[j].lower()
        if opt == b"asc":
            desc = False
        elif opt == b"desc":
            desc = True
        elif opt == b"alpha":
            alpha = True
        elif opt == b"limit" and left >= 2:
            limit_start = to_int(argv[j + 1])
            limit_count = to_int(argv[j + 2])
            j += 2
        elif not readonly and opt == b"store" and left >= 1:
            store = argv[j + 1]
            j += 1
        elif opt == b"by" and left >= 1:
            sortby = argv[j + 1]
            if b"*" not in sortby:
                dontsort = True
            elif c.server.cluster is not None and pattern_hash_slot(sortby) != key_slot(argv[1]):
                raise CommandError("BY option of SORT denied in Cluster mode when keys formed by the pattern may be "
                                   "in different slots.")
            elif not full_key_access(c, argv):
                raise CommandError("BY option of SORT denied due to insufficient ACL permissions.")
            j += 1
        elif opt == b"get" and left >= 1:
            if c.server.cluster is not None and pattern_hash_slot(argv[j + 1]) != key_slot(argv[1]):
                raise CommandError("GET option of SORT denied in Cluster mode when keys formed by the pattern may be "
                                   "in different slots.")
            if not full_key_access(c, argv):
                raise CommandError("GET option of SORT denied due to insufficient ACL permissions.")
            gets.append(argv[j + 1])
            j += 1
        else:
            raise CommandError(SYNTAX)
        j += 1

    db = c.db
    source = db.lookup_read(argv[1])
    if source is not None and type(source) not in (ListValue, SetValue, ZSetValue):
        raise CommandError(WRONGTYPE)
    if dontsort and type(source) is SetValue and (store is not None or c.from_script):
        dontsort, alpha, sortby = False, True, None
    if type(source) is ZSetValue:
        source.encoding = "skiplist"  # SORT converts a listpack zset for good, as Redis does

    if source is None:
        elements: list[bytes] = []
    elif type(source) is ListValue:
        items = source.items
        elements = items.slice(0, len(items))  # one C pass over the packed elements
        if dontsort and desc:
            elements.reverse()
    elif type(source) is SetValue:
        elements = list(source.ordered())
    elif dontsort:
        elements = [member for _, member in source.index]
        if desc:
            elements.reverse()
    else:
        elements = list(source.scores)

    count = len(elements)
    start = min(max(limit_start, 0), count)
    limit_count = min(max(limit_count, -1), count)
    end = count - 1 if limit_count < 0 else start + limit_count - 1
    if start >= count:
        start, end = count - 1, count - 2
    if end >= count:
        end = count - 1

    if not dontsort:
        weights = elements if sortby is None else [lookup_by_pattern(c, sortby, e) for e in elements]
        if alpha:
            if sortby is not None:
                order = sorted(range(count), key=lambda i: (weights[i] is not None, weights[i] or b""),
                               reverse=desc)
                elements = [elements[i] for i in order]
            else:
                elements = _ordered(elements, desc, end + 1)
        else:
            # plain decimal weights are read and ordered in C; anything else (and every error) here
            ordered = (accel.fastpath.sort_weighted(weights, elements, desc, end + 1)
                       if accel.fastpath is not None else None)
            if ordered is not None:
                elements = ordered
            else:
                # short digit-only weights inline: exactly what strtod reads, and finite;
                # anything else (overflow included) through strtod_weight
                scores = [float(w) if w is not None and len(w) < 300 and w.isdigit() else _weight(w)
                          for w in weights]
                if None in scores:
                    raise CommandError("One or more scores can't be converted into double")
                elements = _by_score(scores, elements, desc, end + 1)  # type: ignore[arg-type]

    if start == 0 and end == count - 1:
        selected = elements  # all of it: no copy of a million references
    else:
        selected = elements[start:end + 1] if end >= start else []
    if store is None:
        if not gets:
            return selected
        out: list[bytes | None] = []
        for element in selected:
            if not gets:
                out.append(element)
            for pattern in gets:
                out.append(lookup_by_pattern(c, pattern, element))
        return out

    stored: list[bytes] = []
    for element in selected:
        if not gets:
            stored.append(element)
        for pattern in gets:
            found = lookup_by_pattern(c, pattern, element)
            stored.append(b"" if found is None else found)
    ks = c.keyspace
    if stored:
        result = ListValue(stored, "quicklist")
        result.normalize(c.server.config["list-max-listpack-size"])
        existed = db.lookup_write(store) is not None
        db.set(store, result)
        if not existed:
            ks.notify(db.index, "n", b"new", store)
        ks.changed(db, store, b"sortstore", "l")
    elif db.lookup_write(store) is not None:
        db.delete(store)
        ks.changed(db, store, b"del", "g")
    return len(stored)


def _sort_keys(argv: list[bytes]) -> list[int]:
    """``sortGetKeys``: the source, plus the key after the last STORE."""
    keys = [1]
    store = None
    skip = {b"limit": 2, b"get": 1, b"by": 1}
    i = 2
    while i < len(argv):
        word = argv[i].lower()
        if word in skip:
            i += skip[word]
        elif word == b"store" and i + 1 < len(argv):
            store = i + 1
        i += 1
    if store is not None:
        keys.append(store)
    return keys


_SORT_ARGS = ("key [BY by-pattern:pattern/pattern#1] [LIMIT (offset:integer count:integer)] "
              "[GET get-pattern:pattern/pattern]...#1 [order=(ASC | DESC)] [sorting=ALPHA]")
_SORT_CPLX = ("O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of "
              "returned elements. When the elements are not sorted, complexity is O(N).")
_BY_GET_NOTES = ("For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content "
                 "of the key we sort")
_STORE_NOTES = ("For the optional STORE keyword. It is marked 'unknown' because the keyword can appear anywhere in the "
                "argument array")


@command("sort", -2, "write denyoom", (1, 1, 1), **GENERIC, since="1.0.0",
         summary="Sorts the elements in a list, a set, or a sorted set, optionally storing the result.",
         complexity=_SORT_CPLX, args=_SORT_ARGS + " [STORE destination]", acl="set sortedset list dangerous",
         getkeys=_sort_keys, key_specs=[key_spec("RO ACCESS"), key_spec("RO ACCESS", index=None, notes=_BY_GET_NOTES),
                                        key_spec("OW UPDATE", index=None, notes=_STORE_NOTES)],
         events="sortstore del")
def sort(c: Any, argv: list[bytes]) -> Any:
    return _sort(c, argv, readonly=False)


@command("sort_ro", -2, "readonly", (1, 1, 1), **GENERIC, since="7.0.0",
         summary="Returns the sorted elements of a list, a set, or a sorted set.", complexity=_SORT_CPLX,
         args=_SORT_ARGS, acl="set sortedset list dangerous", getkeys=lambda argv: [1],
         key_specs=[key_spec("RO ACCESS"), key_spec("RO ACCESS", index=None, notes=_BY_GET_NOTES)])
def sort_ro(c: Any, argv: list[bytes]) -> Any:
    return _sort(c, argv, readonly=True)
