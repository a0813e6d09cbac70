"""HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST.

A HyperLogLog is a string value holding Redis's exact representation (see
``dumpling.hyperloglog``), kept as a ``bytearray`` (Redis's ``raw``) once a command
has written it.  Lookups, validity checks, error texts, keyspace events and the
"PFCOUNT writes its cached cardinality back" behaviour follow ``hyperloglog.c``.

PFADD and one-key PFCOUNT also have C handlers (``_hllgeo.native_handlers``, attached as
``Command.native``) that the C request loop runs instead of these when the key already holds a
valid HLL bytearray; they decline anything else to these handlers, which stay the reference.

Must not: know about the register encoding beyond the functions of
``dumpling.hyperloglog``.
"""

from __future__ import annotations

import re
from typing import Any

from dumpling import accel
from dumpling import hyperloglog as hll
from dumpling.commands.registry import ORIGINAL, command
from dumpling.commands.strings import add_new_key, key_spec
from dumpling.errors import WRONGTYPE, CommandError
from dumpling.protocol import OK, Status

HLL = {"group": "hyperloglog", "since": "2.8.9"}
_DENSE_HEAD = hll.MAGIC + bytes([hll.DENSE])
_SPARSE_HEAD = hll.MAGIC + bytes([hll.SPARSE])


def _max_bytes(c: Any) -> int:
    return c.server.config.values["hll-sparse-max-bytes"]


def _check_hll(value: Any) -> None:
    """``isHLLObjectOrReply`` for an existing value."""
    if type(value) is not bytes and type(value) is not bytearray:
        raise CommandError(WRONGTYPE)
    if not hll.is_valid(value):
        raise CommandError(hll.NOT_HLL)


def _writable_hll(c: Any, key: bytes, value: Any) -> bytearray:
    """``isHLLObjectOrReply`` then ``dbUnshareStringValue``: the key's valid HLL as a
    mutable ``bytearray`` (``raw``)."""
    if type(value) is bytearray:
        # hll.is_valid, inline for the usual case (a valid HLL a command already wrote)
        head = value[:5]
        if head == _DENSE_HEAD and len(value) == hll.DENSE_SIZE or head == _SPARSE_HEAD and len(value) >= hll.HEADER_SIZE:
            return value
        if not hll.is_valid(value):
            raise CommandError(hll.NOT_HLL)
        return value
    _check_hll(value)
    raw = bytearray(value)
    c.db.set(key, raw, keep_ttl=True)
    return raw


def _signed(card: int) -> int:
    """``addReplyLongLong`` of an unsigned 64-bit cardinality."""
    return card - (1 << 64) if card >= 1 << 63 else card


@command("pfadd", -2, "write denyoom fast", (1, 1, 1), **HLL,
         summary="Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.",
         complexity="O(1) to add every element.", args="key [element:string...]", key_flags="RW insert",
         events="new pfadd")
def pfadd(c: Any, argv: list[bytes]) -> Any:
    db, key = c.db, argv[1]
    value = db.lookup_write(key)
    updated = 0
    if value is None:
        value = hll.new_sparse()
        add_new_key(c, db, key, value)
        updated = 1
    else:
        value = _writable_hll(c, key, value)
    added, corrupt = hll.add_elements(value, argv[2:], c.server.config.values["hll-sparse-max-bytes"])
    if corrupt:
        raise CommandError(hll.INVALID_HLL)
    updated += added
    if updated:
        hll.invalidate_cache(value)
        # one change per register raised (and one for a new key), as Redis counts them
        c.keyspace.changed(db, key, b"pfadd", "$", dirty=updated)
    return 1 if updated else 0


@command("pfcount", -2, "readonly may_replicate", (1, -1, 1), **HLL,
         summary="Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).",
         complexity="O(1) with a very small average constant time when called with a single key. O(N) with N "
                    "being the number of keys, and much bigger constant times, when called with multiple keys.",
         args="key...",
         key_specs=[key_spec("RW access", 1, -1, notes="RW because it may change the internal representation of "
                                                       "the key, and propagate to replicas")])
def pfcount(c: Any, argv: list[bytes]) -> Any:
    db = c.db
    if len(argv) > 2:
        # The cardinality of the union; nothing is written.
        registers = hll.new_registers()
        for key in argv[1:]:
            value = db.lookup_read(key)
            if value is None:
                continue
            _check_hll(value)
            if not hll.merge_registers(registers, value):
                raise CommandError(hll.INVALID_HLL)
        return _signed(hll.estimate_registers(registers))
    key = argv[1]
    value = db.lookup_read(key)
    if value is None:
        return 0
    value = _writable_hll(c, key, value)
    if not value[15] & 0x80:  # hll.cached_cardinality, inline: the usual case
        return int.from_bytes(value[8:16], "little")
    card = hll.count_or_none(value)
    if card is None:
        raise CommandError(hll.INVALID_HLL)
    hll.store_cardinality(value, card)
    c.keyspace.changed(db, key)  # a write without an event (WATCH, dirty counter)
    return _signed(card)


@command("pfmerge", -2, "write denyoom", (1, -1, 1), **HLL,
         summary="Merges one or more HyperLogLog values into a single key.",
         complexity="O(N) to merge N HyperLogLogs, but with high constant times.",
         args="destkey:key [sourcekey:key...]",
         key_specs=[key_spec("RW access insert", 1), key_spec("RO access", 2, -1)], events="new pfadd")
def pfmerge(c: Any, argv: list[bytes]) -> Any:
    db, dest = c.db, argv[1]
    registers = hll.new_registers()
    use_dense = False
    for key in argv[1:]:  # the destination is one of the inputs
        value = db.lookup_read(key)
        if value is None:
            continue
        _check_hll(value)
        if hll.encoding_of(value) == hll.DENSE:
            use_dense = True
        if not hll.merge_registers(registers, value):
            raise CommandError(hll.INVALID_HLL)
    target = db.lookup_write(dest)
    if target is None:
        target = hll.new_sparse()
        add_new_key(c, db, dest, target)
    else:
        target = _writable_hll(c, dest, target)
    if use_dense or hll.encoding_of(target) == hll.DENSE:
        # Every register ends up at the maximum (the destination was an input).
        target[:] = hll.dense_from_linear(target, registers)
    else:
        _merge_sparse(target, registers, _max_bytes(c))
    hll.invalidate_cache(target)
    c.keyspace.changed(db, dest, b"pfadd", "$")
    return OK


def _merge_sparse(target: bytearray, registers: bytearray, max_bytes: int) -> None:
    """PFMERGE's register-by-register sets into a sparse destination (which may be
    promoted on the way, after which the rest is the register maximum anyway)."""
    opcodes = hll.SparseIndex(target)
    for found in _NONZERO.finditer(registers):
        index = found.start()
        hll.sparse_set(target, index, registers[index], max_bytes, opcodes)
        if hll.encoding_of(target) == hll.DENSE:
            target[:] = hll.dense_from_linear(target, registers)
            return


_NONZERO = re.compile(rb"[^\x00]")


@command("pfdebug", 3, "write denyoom admin", (2, 2, 1), **HLL,
         summary="Internal commands for debugging HyperLogLog values.", complexity="N/A",
         args="subcommand:string key", key_flags="RW access", doc_flags="syscmd")
def pfdebug(c: Any, argv: list[bytes]) -> Any:
    db, key = c.db, argv[2]
    sub = argv[1].lower()
    value = db.lookup_write(key)
    if value is None:
        raise CommandError("The specified key does not exist")
    value = _writable_hll(c, key, value)
    if sub == b"getreg":
        if hll.encoding_of(value) == hll.SPARSE:
            _to_dense(value)
            c.keyspace.dirty += 1
        return list(hll.unpack_dense(value[hll.HEADER_SIZE : hll.DENSE_SIZE]))
    if sub == b"decode":
        if hll.encoding_of(value) != hll.SPARSE:
            raise CommandError("HLL encoding is not sparse")
        return hll.decode_sparse(value)
    if sub == b"encoding":
        return Status(b"dense" if hll.encoding_of(value) == hll.DENSE else b"sparse")
    if sub == b"todense":
        if hll.encoding_of(value) == hll.SPARSE:
            _to_dense(value)
            c.keyspace.dirty += 1
            return 1
        return 0
    raise CommandError(f"Unknown PFDEBUG subcommand '{argv[1].decode(errors='replace')}'")


def _to_dense(value: bytearray) -> None:
    try:
        hll.sparse_to_dense(value)
    except hll.CorruptHLL:
        raise CommandError(hll.INVALID_HLL) from None


@command("pfselftest", 1, "admin", **HLL, summary="An internal command for testing HyperLogLog values.",
         complexity="N/A", doc_flags="syscmd")
def pfselftest(c: Any, argv: list[bytes]) -> Any:
    failure = hll.selftest(_max_bytes(c))
    if failure is not None:
        raise CommandError(failure)
    return OK


def use_native_handlers(enabled: bool) -> None:
    """Run the C handlers of PFADD and PFCOUNT, or have them decline every call (the C request
    loop then runs the Python handlers above; tests compare both).  They are attached to their
    commands once, at import: the loop reads ``Command.native`` when it caches a lookup."""
    if accel.hllgeo is not None:
        accel.hllgeo.set_native_handlers(enabled)


if accel.hllgeo is not None:
    for _name, _handler in accel.hllgeo.native_handlers().items():
        ORIGINAL[_name.encode()].native = _handler
