"""Argument parsing shared by every command family, with Redis's error texts."""

from __future__ import annotations

import math
import re
from typing import Any

from dumpling import accel
from dumpling.errors import NOT_FLOAT, NOT_INTEGER, SYNTAX, WRONGTYPE, CommandError
from dumpling.numbers import parse_long_double, round_long_double
from dumpling.protocol import parse_strict_int
from dumpling.stringmatch import stringmatch

LLONG_MIN = -(1 << 63)
LLONG_MAX = (1 << 63) - 1


def to_int(arg: bytes, error: str = NOT_INTEGER) -> int:
    """A strict 64-bit integer argument (``string2ll``)."""
    value = parse_strict_int(arg)
    if value is None:
        raise CommandError(error)
    return value


if accel.fastpath is not None and hasattr(accel.fastpath, "to_int"):  # the same, in one C call
    accel.fastpath.configure_ints(CommandError, NOT_INTEGER)
    to_int = accel.fastpath.to_int  # noqa: F811


def to_int_range(arg: bytes, low: int, high: int, error: str = NOT_INTEGER) -> int:
    value = to_int(arg, error)
    if not low <= value <= high:
        raise CommandError(error)
    return value


_FLOAT_RE = re.compile(rb"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)")
_HEX_RE = re.compile(rb"[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)([pP][+-]?\d+)?")
_INF = {b"inf", b"+inf", b"-inf", b"infinity", b"+infinity", b"-infinity"}


def parse_double(arg: bytes) -> float | None:
    """C ``strtod`` on the whole string as Redis's ``string2d`` uses it; None if rejected."""
    if not arg or arg[0] in b" \t\n\r\x0b\x0c":
        return None
    if arg.isdigit():  # the common case (ASCII digits only): no sign, point, exponent or underflow
        value = float(arg)
        return None if value == math.inf else value
    low = arg.lower()
    if low in _INF:
        return -math.inf if low[0] == 45 else math.inf
    if _FLOAT_RE.fullmatch(arg):
        value = float(arg)
    elif _HEX_RE.fullmatch(arg):
        text = arg.decode()
        sign = -1.0 if text[0] == "-" else 1.0
        body = text.lstrip("+-")
        if "p" not in body.lower():
            body += "p0"
        try:
            value = sign * float.fromhex(body)
        except OverflowError:
            return None
    else:
        return None
    if math.isinf(value):
        return None  # overflow (ERANGE)
    if value == 0.0 and any(c in b"123456789" for c in arg.split(b"e")[0].split(b"E")[0].split(b"p")[0].split(b"P")[0]):
        return None  # underflow to zero (ERANGE)
    return value


# Redis's getLongFromObjectOrReply family (LONG is 64-bit).
LONG_MAX = LLONG_MAX
OUT_OF_RANGE_POSITIVE = "value is out of range, must be positive"


def to_long_msg(arg: bytes, msg: str | None) -> int:
    """``getLongFromObjectOrReply``: a custom message replaces the default on a parse failure."""
    return to_int(arg, msg or NOT_INTEGER)


def to_range_long(arg: bytes, low: int, high: int, msg: str | None = None) -> int:
    """``getRangeLongFromObjectOrReply``."""
    value = to_long_msg(arg, msg)
    if not low <= value <= high:
        raise CommandError(msg or f"value is out of range, value must between {low} and {high}")
    return value


def to_positive_long(arg: bytes, msg: str | None = None) -> int:
    """``getPositiveLongFromObjectOrReply``."""
    return to_range_long(arg, 0, LONG_MAX, msg or OUT_OF_RANGE_POSITIVE)


def parse_timeout(arg: bytes, now_ms: int) -> float:
    """``getTimeoutFromObjectOrReply`` in seconds: the relative wait, 0 = forever.

    The value is a C ``long double`` in Redis: parsed and multiplied by 1000 in
    extended precision, then rounded up to whole milliseconds.
    """
    value = parse_long_double(arg)
    if value is None:
        raise CommandError("timeout is not a float or out of range")
    if isinstance(value, float):  # +-inf
        raise CommandError("timeout is out of range" if value > 0 else "timeout is negative")
    ms = round_long_double(value * 1000)
    if ms > LLONG_MAX:
        raise CommandError("timeout is out of range")
    whole = math.ceil(ms)
    if whole < 0:
        raise CommandError("timeout is negative")
    if whole > 0 and whole > LLONG_MAX - now_ms:
        raise CommandError("timeout is out of range")
    return whole / 1000.0


def parse_timeout_ms(arg: bytes, now_ms: int) -> int:
    """``getTimeoutFromObjectOrReply`` in milliseconds (XREAD BLOCK, WAIT): the relative
    wait, 0 = forever; refused when negative or when now + it would overflow."""
    value = to_int(arg, "timeout is not an integer or out of range")
    if value < 0:
        raise CommandError("timeout is negative")
    if value > 0 and value > LLONG_MAX - now_ms:
        raise CommandError("timeout is out of range")
    return value


def parse_mpop(argv: list[bytes], numkeys_at: int, first: bytes, second: bytes) -> tuple[list[bytes], bool, int]:
    """LMPOP/ZMPOP arguments (``numkeys key... first|second [COUNT n]``): the keys,
    whether the direction word was ``first`` (LEFT / MIN), and the count (default 1)."""
    numkeys = to_range_long(argv[numkeys_at], 1, LONG_MAX, "numkeys should be greater than 0")
    where_at = numkeys_at + numkeys + 1
    if where_at >= len(argv):
        raise CommandError(SYNTAX)
    where = argv[where_at].lower()
    if where != first and where != second:
        raise CommandError(SYNTAX)
    count = -1
    j = where_at + 1
    while j < len(argv):
        if count == -1 and argv[j].lower() == b"count" and j + 1 < len(argv):
            j += 1
            count = to_range_long(argv[j], 1, LONG_MAX, "count should be greater than 0")
        else:
            raise CommandError(SYNTAX)
        j += 1
    return argv[numkeys_at + 1 : where_at], where == first, 1 if count == -1 else count


def to_float(arg: bytes, error: str = NOT_FLOAT) -> float:
    value = parse_double(arg)
    if value is None:
        raise CommandError(error)
    return value


def check_type(value: Any, cls: type) -> Any:
    """Raise WRONGTYPE unless ``value`` is None or an instance of ``cls``."""
    if value is not None and type(value) is not cls:
        raise CommandError(WRONGTYPE)
    return value


def is_string(value: Any) -> bool:
    return type(value) is bytes or type(value) is bytearray


def check_string(value: Any) -> Any:
    if value is not None and type(value) is not bytes and type(value) is not bytearray:
        raise CommandError(WRONGTYPE)
    return value


def upper(arg: bytes) -> bytes:
    return arg.upper()


def glob_match(pattern: bytes, text: bytes, nocase: bool = False) -> bool:
    """Redis's ``stringmatchlen`` (``dumpling.stringmatch``: iterative, bounded), with
    the shortcut Redis's callers take for the pattern ``*``: everything matches, even
    the empty string (KEYS, SCAN MATCH)."""
    if pattern == b"*":
        return True
    return stringmatch(pattern, text, nocase)


def help_header(argv: list[bytes]) -> str:
    """The first line of a HELP reply, naming the command as the client typed it (Redis's
    addReplyHelp uses ``argv[0]``, so a renamed command answers under its new name)."""
    return argv[0].decode("utf-8", "replace").upper() + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"


def protected_action_allowed(c: Any, mode: str) -> bool:
    """allowProtectedAction: an ``enable-debug-command`` / ``enable-module-command`` /
    ``enable-protected-configs`` of yes, or of local on a loopback or unix socket connection
    (``Client.local``; a script's client has no connection, so it is not local)."""
    return mode == "yes" or (mode == "local" and c.local)
