"""RESP framing: reply encoding for RESP2/RESP3 and the strict request parser.

Pure code, no sockets.  Handlers return plain Python values (``bytes`` → bulk,
``int`` → integer, ``None`` → null, ``list`` → array) or one of the small wrapper
types below for the shapes that differ between protocols (maps, sets, doubles,
verbatim text, pushes, null arrays).  ``encode(value, resp3)`` turns them into
bytes for the connection's protocol.

The server parses requests with hiredis on the hot path; ``parse_request`` here
is the reference parser with Redis's exact error texts, used for inline commands,
for anything hiredis rejects, and to validate oversized pending requests.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dumpling.accel import fastpath as _fastpath
from dumpling.accel import reply as _reply
from dumpling.errors import ProtocolError
from dumpling.fpconv import d2string
from dumpling.numbers import LLONG_MAX, LLONG_MIN, parse_int64, wrap_int64

# ----------------------------------------------------------------------------- replies


class Status:
    """A simple string reply (``+OK``)."""

    __slots__ = ("text", "wire")

    def __init__(self, text: str | bytes) -> None:
        self.text = text.encode() if isinstance(text, str) else text
        self.wire = b"+" + self.text + b"\r\n"


class ErrorReply:
    """An error as a value (inside EXEC's array, or returned instead of raised)."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message  # full text without the leading "-" (code included)


class Map:
    """Ordered key/value pairs: RESP3 ``%``, RESP2 a flat array."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: Iterable[tuple[Any, Any]] | dict) -> None:
        self.pairs = list(pairs.items()) if isinstance(pairs, dict) else list(pairs)


class SetReply:
    """RESP3 ``~`` set, RESP2 array."""

    __slots__ = ("items",)

    def __init__(self, items: Iterable[Any]) -> None:
        self.items = list(items)


class Double:
    """RESP3 ``,`` double; RESP2 bulk string of the formatted number."""

    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        self.value = value


class Verbatim:
    """RESP3 ``=`` verbatim string (INFO, CLIENT LIST); RESP2 plain bulk."""

    __slots__ = ("text", "fmt")

    def __init__(self, text: bytes | str, fmt: bytes = b"txt") -> None:
        self.text = text.encode() if isinstance(text, str) else text
        self.fmt = fmt


class Push:
    """RESP3 ``>`` out-of-band message (pub/sub); RESP2 a plain array."""

    __slots__ = ("items",)

    def __init__(self, items: Iterable[Any]) -> None:
        self.items = list(items)


class BigNumber:
    __slots__ = ("digits",)

    def __init__(self, digits: bytes) -> None:
        self.digits = digits


class Bool:
    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value


class Raw:
    """Pre-encoded reply bytes, identical in both protocols."""

    __slots__ = ("wire",)

    def __init__(self, wire: bytes) -> None:
        self.wire = wire


if _reply is not None:  # the same as a C type: made by one call, no __init__ frame (dumpling/_reply.c)
    Raw = _reply.Raw  # type: ignore[misc]  # noqa: F811


class _NullArray:
    """``*-1`` in RESP2, ``_`` in RESP3 (timeouts of blocking pops, aborted EXEC, ...)."""

    __slots__ = ()


class _NoReply:
    """Nothing is written (CLIENT REPLY OFF, a client that just blocked, ...)."""

    __slots__ = ()


NULL_ARRAY = _NullArray()
NO_REPLY = _NoReply()
OK = Status("OK")
PONG = Status("PONG")
QUEUED = Status("QUEUED")

_encode_flat = getattr(_fastpath, "encode_flat", None)  # the C twin of flat-array encoding (DUMPLING_PURE: None)
_NULL2 = b"$-1\r\n"
_NULL3 = b"_\r\n"
_INT_CACHE = [b":%d\r\n" % i for i in range(-1, 256)]


def format_double(value: float) -> bytes:
    """``addReplyDouble``'s text, Redis 7.2+'s ``d2string``: integral values (within
    ±LLONG_MAX/2) as integers, others in fpconv's Grisu2 form (``0.1``, ``0.00001``), inf/-inf/nan
    spelled out.  Redis 7.0 printed ``%.17g`` (``0.10000000000000001``)."""
    return d2string(value)


def encode(value: Any, resp3: bool) -> bytes:
    """Encode one reply value for the given protocol."""
    if _encode_flat is not None:
        t = type(value)
        if t is list and len(value) > 8:
            data = _encode_flat(value, resp3)  # a flat array (LRANGE, SORT, MGET...) in one C pass
            if data is not None:
                return data
        elif t is SetReply and len(value.items) > 8:  # SPOP/SUNION...: RESP3 only changes "*" to "~"
            data = _encode_flat(value.items, resp3)
            if data is not None:
                return b"~" + data[1:] if resp3 else data
        elif t is Map and len(value.pairs) > 8:
            # HGETALL, CONFIG GET...: the pairs flattened are the RESP2 array; RESP3 only
            # changes the header (%N instead of *2N)
            data = _encode_flat([x for pair in value.pairs for x in pair], resp3)
            if data is not None:
                if not resp3:
                    return data
                return b"%%%d\r\n" % len(value.pairs) + data[len(b"*%d\r\n" % (2 * len(value.pairs))):]
    out: list[bytes] = []
    _encode_into(value, resp3, out)
    return b"".join(out)


def _encode_into(value: Any, resp3: bool, out: list[bytes]) -> None:
    t = type(value)
    if t is bytes or t is bytearray:
        out.append(b"$%d\r\n%s\r\n" % (len(value), value))
    elif t is int:
        if -1 <= value < 255:
            out.append(_INT_CACHE[value + 1])
        else:
            out.append(b":%d\r\n" % (value if LLONG_MIN <= value <= LLONG_MAX else wrap_int64(value)))
    elif t is Status or t is Raw:
        out.append(value.wire)
    elif value is None:
        out.append(_NULL3 if resp3 else _NULL2)
    elif t is list or t is tuple:
        out.append(b"*%d\r\n" % len(value))
        for item in value:
            _encode_into(item, resp3, out)
    elif t is Map:
        if resp3:
            out.append(b"%%%d\r\n" % len(value.pairs))
        else:
            out.append(b"*%d\r\n" % (2 * len(value.pairs)))
        for k, v in value.pairs:
            _encode_into(k, resp3, out)
            _encode_into(v, resp3, out)
    elif t is SetReply:
        out.append((b"~%d\r\n" if resp3 else b"*%d\r\n") % len(value.items))
        for item in value.items:
            _encode_into(item, resp3, out)
    elif t is Double:
        text = format_double(value.value)
        out.append(b",%s\r\n" % text if resp3 else b"$%d\r\n%s\r\n" % (len(text), text))
    elif t is ErrorReply:
        out.append(b"-%s\r\n" % _error_line(value.message))
    elif t is _NullArray:
        out.append(_NULL3 if resp3 else b"*-1\r\n")
    elif t is Verbatim:
        if resp3:
            out.append(b"=%d\r\n%s:%s\r\n" % (len(value.text) + 4, value.fmt, value.text))
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(value.text), value.text))
    elif t is Push:
        out.append((b">%d\r\n" if resp3 else b"*%d\r\n") % len(value.items))
        for item in value.items:
            _encode_into(item, resp3, out)
    elif t is bool or t is Bool:
        flag = value if t is bool else value.value
        out.append((b"#t\r\n" if flag else b"#f\r\n") if resp3 else (b":1\r\n" if flag else b":0\r\n"))
    elif t is float:
        _encode_into(Double(value), resp3, out)
    elif t is BigNumber:
        out.append(b"(%s\r\n" % value.digits if resp3 else b"$%d\r\n%s\r\n" % (len(value.digits), value.digits))
    elif t is str:
        raw = value.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    elif t is memoryview:
        _encode_into(bytes(value), resp3, out)
    elif t is _NoReply:
        pass
    else:
        raise TypeError(f"cannot encode reply of type {t.__name__}")


def encode_request(argv: Iterable[bytes]) -> bytes:
    """``argv`` as a RESP multibulk request (what the AOF, replication streams and the
    handshakes send); its items are bytes or bytearray.  A list of them is an array of
    bulk strings, which the C encoder of flat replies writes in one pass."""
    if _encode_flat is not None and type(argv) is list:
        wire = _encode_flat(argv, False)
        if wire is not None:
            return wire
    parts = [b"$%d\r\n%s\r\n" % (len(a), a) for a in argv]
    return b"*%d\r\n" % len(parts) + b"".join(parts)


# Wire bytes of one bulk argument of length n: "$<n>\r\n" + payload + "\r\n" (a table for the usual sizes).
_BULK_BYTES = [n + 5 + len(str(n)) for n in range(10000)]


def wire_size(argv: list[bytes]) -> int:
    """Bytes of ``argv`` as the canonical RESP request ``encode_request`` writes (``*N`` header,
    ``$len`` bulks), without writing it: what a request read off the wire consumed."""
    try:
        bulks = sum(map(_BULK_BYTES.__getitem__, map(len, argv)))
    except IndexError:
        bulks = sum(len(a) + 5 + len(str(len(a))) for a in argv)
    n = len(argv)
    return bulks + (4 if n < 10 else 3 + len(str(n)))


def _error_line(message: str) -> bytes:
    # Redis replaces CR/LF inside error texts with spaces so the reply stays one line.
    return message.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").encode("utf-8", "surrogateescape")


def encode_error(message: str) -> bytes:
    return b"-%s\r\n" % _error_line(message)


# ----------------------------------------------------------------------------- requests

INLINE_MAX_SIZE = 64 * 1024  # PROTO_INLINE_MAX_SIZE
UNAUTH_MAX_MULTIBULK = 10
UNAUTH_MAX_BULK = 16384


# Redis's ``string2ll`` (canonical decimal, no '+', no leading zeros, 64-bit), shared
# with the command argument parsers.
parse_strict_int = parse_int64


# -- big aggregate headers --------------------------------------------------------------
# hiredis's Reader allocates a list of N slots as soon as it reads an aggregate header
# ("*N", "~N", ">N", "|N"), and freeing it visits every slot: the 13 bytes
# "*2147483647\r\n" would stall the loop for seconds.  Redis allocates argv as the
# arguments arrive.  So the server feeds hiredis only the bytes before the first header
# of BIG_HEADER_DIGITS or more digits; the reference parser takes it from there (it
# builds argv as arguments arrive, and resumes where it stopped: see PartialRequest).

BIG_HEADER_DIGITS = 7  # 10**6 slots and up: smaller lists cost hiredis a few ms at most


def find_big_header(data: bytes | bytearray, start: int = 0) -> int:
    """Position of the first aggregate type byte ('*', '~', '>', '|') at or after
    ``start`` followed by BIG_HEADER_DIGITS digits, or -1.  A byte-level scan: it also
    finds such text inside bulk payloads (the reference parser then reads that request,
    which costs time, not correctness).  ``dumpling._fastpath.find_big_header`` is the
    C twin the server uses when it is built."""
    start = max(start, 0)
    best = stop = len(data)
    for type_byte in b"*~>|":
        i = data.find(type_byte, start, stop)
        while i >= 0:
            digits = data[i + 1 : i + 1 + BIG_HEADER_DIGITS]
            if len(digits) == BIG_HEADER_DIGITS and digits.isdigit():
                best = stop = i
                break
            i = data.find(type_byte, i + 1, stop)
    return best if best < len(data) else -1


class PartialRequest:
    """How far ``parse_request`` got in a multibulk request that is not complete yet:
    the arguments read, how many there are in all, and where the next one starts
    (relative to the request's first byte, so the caller may drop bytes before it).
    Passing the same object again resumes there instead of reparsing: a request of a
    million arguments arriving in a thousand reads costs one pass, not a thousand."""

    __slots__ = ("argv", "count", "offset")

    def __init__(self) -> None:
        self.argv: list[bytes] | None = None
        self.count = 0
        self.offset = 0


def parse_request(
    buf: bytes | bytearray | memoryview,
    pos: int,
    max_bulk: int,
    authenticated: bool = True,
    partial: PartialRequest | None = None,
) -> tuple[list[bytes] | None, int]:
    """Parse one request starting at ``pos``.

    Returns ``(argv, new_pos)``; ``argv`` is ``None`` when more bytes are needed
    (``new_pos`` is then ``pos``) and may be empty for requests Redis silently
    consumes (``*0``, a blank inline line).  Raises ``ProtocolError`` with Redis's
    text for malformed input.  ``partial`` (kept by the caller while the request at
    ``pos`` is incomplete) lets a call resume where the previous one stopped.
    """
    if pos >= len(buf):
        return None, pos
    if buf[pos] == 42:  # '*'
        return _parse_multibulk(buf, pos, max_bulk, authenticated, partial)
    return _parse_inline(buf, pos)


def _parse_multibulk(
    buf: Any, pos: int, max_bulk: int, authenticated: bool, partial: PartialRequest | None
) -> tuple[list[bytes] | None, int]:
    end = len(buf)
    if partial is not None and partial.argv is not None:
        argv, count, p = partial.argv, partial.count, pos + partial.offset
        return _parse_arguments(buf, pos, p, argv, count, max_bulk, authenticated, partial)
    cr = buf.find(b"\r", pos)
    if cr < 0:
        if end - pos > INLINE_MAX_SIZE:
            raise ProtocolError("Protocol error: too big mbulk count string")
        return None, pos
    if cr + 1 >= end:  # the byte after '\r' must exist (it is not checked to be '\n')
        return None, pos
    count = parse_strict_int(buf[pos + 1 : cr])
    if count is None or count > 2147483647:
        raise ProtocolError("Protocol error: invalid multibulk length")
    p = cr + 2
    if count <= 0:
        return [], p
    if not authenticated and count > UNAUTH_MAX_MULTIBULK:
        raise ProtocolError("Protocol error: unauthenticated multibulk length")
    return _parse_arguments(buf, pos, p, [], count, max_bulk, authenticated, partial)


def _parse_arguments(
    buf: Any,
    pos: int,
    p: int,
    argv: list[bytes],
    count: int,
    max_bulk: int,
    authenticated: bool,
    partial: PartialRequest | None,
) -> tuple[list[bytes] | None, int]:
    """The ``$len`` arguments of the request at ``pos`` from ``p`` on (``argv`` holds
    those before ``p``)."""
    end = len(buf)
    while len(argv) < count:
        if p >= end:
            return _incomplete(pos, p, argv, count, partial)
        if buf[p] != 36:  # '$'
            raise ProtocolError("Protocol error: expected '$', got '%s'" % chr(buf[p]))
        cr = buf.find(b"\r", p)
        if cr < 0:
            if end - p > INLINE_MAX_SIZE:
                raise ProtocolError("Protocol error: too big bulk count string")
            return _incomplete(pos, p, argv, count, partial)
        if cr + 1 >= end:
            return _incomplete(pos, p, argv, count, partial)
        length = parse_strict_int(buf[p + 1 : cr])
        if length is None or length < 0 or length > max_bulk:
            raise ProtocolError("Protocol error: invalid bulk length")
        if not authenticated and length > UNAUTH_MAX_BULK:
            raise ProtocolError("Protocol error: unauthenticated bulk length")
        start = cr + 2
        if start + length + 2 > end:
            return _incomplete(pos, p, argv, count, partial)
        argv.append(bytes(buf[start : start + length]))
        p = start + length + 2  # the two bytes after the payload are skipped unchecked
    if partial is not None:
        partial.argv = None
    return argv, p


def _incomplete(
    pos: int, p: int, argv: list[bytes], count: int, partial: PartialRequest | None
) -> tuple[None, int]:
    if partial is not None:
        partial.argv, partial.count, partial.offset = argv, count, p - pos
    return None, pos


def _parse_inline(buf: Any, pos: int) -> tuple[list[bytes] | None, int]:
    nl = buf.find(b"\n", pos)
    # A NUL byte hides the newline from Redis's C-string search.
    if nl >= 0:
        nul = buf.find(b"\x00", pos, nl)
        if nul >= 0:
            nl = -1
    if nl < 0:
        if len(buf) - pos > INLINE_MAX_SIZE:
            raise ProtocolError("Protocol error: too big inline request")
        return None, pos
    line = bytes(buf[pos:nl])
    if line.endswith(b"\r"):
        line = line[:-1]
    try:
        argv = split_args(line)
    except ValueError:
        raise ProtocolError("Protocol error: unbalanced quotes in request") from None
    return argv, nl + 1


_SPACE = b" \n\r\t\x0b\x0c"
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX = b"0123456789abcdefABCDEF"


def split_args(line: bytes) -> list[bytes]:
    """Tokenise like Redis's ``sdssplitargs`` (inline commands and redis.conf lines).

    Raises ``ValueError`` on unbalanced quotes.
    """
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _SPACE:
            i += 1
        if i >= n:
            return args
        cur = bytearray()
        in_dq = in_sq = False
        while True:
            if in_dq:
                if i >= n:
                    raise ValueError("unbalanced quotes")
                c = line[i]
                if (
                    c == 92
                    and i + 3 < n
                    and line[i + 1] == ord("x")
                    and line[i + 2] in _HEX
                    and line[i + 3] in _HEX
                ):
                    cur.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 92 and i + 1 < n:
                    i += 1
                    cur.append(_ESCAPES.get(line[i], line[i]))
                elif c == 34:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        raise ValueError("unbalanced quotes")
                    in_dq = False
                    i += 1
                    break
                else:
                    cur.append(c)
            elif in_sq:
                if i >= n:
                    raise ValueError("unbalanced quotes")
                c = line[i]
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    i += 1
                    cur.append(39)
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        raise ValueError("unbalanced quotes")
                    in_sq = False
                    i += 1
                    break
                else:
                    cur.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in b" \n\r\t\x00":
                    break
                if c == 34:
                    in_dq = True
                elif c == 39:
                    in_sq = True
                else:
                    cur.append(c)
            i += 1
        args.append(bytes(cur))


_REPR_ESCAPES = {ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t",
                 7: "\\a", 8: "\\b"}


def repr_bytes(data: bytes) -> str:
    """Redis's ``sdscatrepr`` quoting (MONITOR, config error lines, the Lua debugger...): a quoted
    string, escapes for quotes, backslashes, control bytes and anything outside printable ASCII."""
    out = ['"']
    for byte in data:
        escape = _REPR_ESCAPES.get(byte)
        if escape is not None:
            out.append(escape)
        elif 32 <= byte < 127:
            out.append(chr(byte))
        else:
            out.append("\\x%02x" % byte)
    out.append('"')
    return "".join(out)
