"""Redis's glob matcher (``stringmatchlen`` in util.c), iterative and bounded.

One matcher for every command that takes a glob pattern: KEYS, SCAN/HSCAN/SSCAN/ZSCAN
MATCH, PSUBSCRIBE and PUBSUB CHANNELS, CONFIG GET, COMMAND LIST FILTERBY PATTERN,
FUNCTION LIST LIBRARYNAME.  Pure functions over bytes; no Python recursion, so no
pattern can raise RecursionError.

Redis's answers, including its two anti-abuse rules:

- a ``*`` tries the rest of the pattern at every later position of the string; when one
  such loop runs out of string, every enclosing ``*`` gives up as well
  (``skipLongerMatches``: a longer match for an earlier star could only start the rest
  later still).  So only the innermost active star ever resumes, and the matcher keeps
  just that one;
- nesting: the rest of a pattern reached through more than 1000 stars never matches
  (``if (nesting > 1000) return 0``).

The pattern is compiled into tokens (cached): literal runs compared with ``startswith``,
runs of ``?``, character classes as Redis's class loop reads them (so its quirks hold:
unterminated classes, ``[^`` at the end, escapes compared without folding case, ranges on
signed chars folded after swapping), and ``*`` runs; nothing past the 1001st star, which
no match can reach.  Compiling is linear in the pattern, matching at worst
O(pattern x string) like Redis's.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

MAX_NESTING = 1000

_LITERAL, _ANY, _CLASS, _STAR, _UNREACHABLE = 0, 1, 2, 3, 4
_MATCH, _FAIL, _MET_STAR = 0, 1, 2

Token = tuple[int, Any]


def _lower(c: int) -> int:
    """glibc's ``tolower`` on a signed char's value: ASCII folding, and the negative
    values but EOF (-1) mapped to their unsigned byte (it matters in ``[a-b]`` ranges)."""
    if 65 <= c <= 90:
        return c + 32
    return c + 256 if -128 <= c <= -2 else c


def _signed(c: int) -> int:
    return c - 256 if c > 127 else c


# The value a byte is compared as in a class range: its signed char value, and glibc's
# tolower of it under NOCASE.
_RANGE_VALUE = [_signed(c) for c in range(256)]
_RANGE_VALUE_NOCASE = [_lower(_signed(c)) for c in range(256)]


def _class(pattern: bytes, pi: int, nocase: bool) -> tuple[tuple[bool, bytes, bytes, tuple[tuple[int, int], ...]], int]:
    """The class starting after '[' at ``pi``, replaying Redis's loop over the pattern:
    (negated, escaped members (compared as is), plain members (folded under NOCASE),
    ranges (on signed values, folded after swapping)) and the position after the class."""
    plen = len(pattern)
    negate = pi < plen and pattern[pi] == 94  # '^'
    if negate:
        pi += 1
    exact = bytearray()
    plain = bytearray()
    ranges: list[tuple[int, int]] = []
    while True:
        if pi < plen and pattern[pi] == 92 and plen - pi >= 2:  # '\\'
            pi += 1
            exact.append(pattern[pi])
        elif pi < plen and pattern[pi] == 93:  # ']'
            break
        elif pi >= plen:
            pi -= 1  # unterminated: the class ends with the pattern
            break
        elif plen - pi >= 3 and pattern[pi + 1] == 45:  # 'a-z'
            start, end = _signed(pattern[pi]), _signed(pattern[pi + 2])
            if start > end:
                start, end = end, start
            if nocase:
                start, end = _lower(start), _lower(end)
            ranges.append((start, end))
            pi += 2
        else:
            plain.append(pattern[pi])
        pi += 1
    folded = bytes(plain).lower() if nocase else bytes(plain)
    return (negate, bytes(exact), folded, tuple(ranges)), pi + 1


def _tokens(pattern: bytes, nocase: bool) -> tuple[Token, ...]:
    """The compiled pattern: the last few long ones are kept (KEYS matches one pattern
    against every key), many short ones."""
    if len(pattern) <= 4096:
        return _compile_short(pattern, nocase)
    return _compile_long(pattern, nocase)


def _compile(pattern: bytes, nocase: bool) -> tuple[Token, ...]:
    """Tokens: literal runs, runs of '?', classes, stars (a run of '*' is one).  Nothing
    after the star that ends the 1001st level can ever be tried, so compiling stops there
    (an opaque token keeps the star from counting as the pattern's last)."""
    tokens: list[Token] = []
    literal = bytearray()
    pi, plen, stars = 0, len(pattern), 0

    def flush() -> None:
        if literal:
            tokens.append((_LITERAL, bytes(literal.lower() if nocase else literal)))
            literal.clear()

    while pi < plen:
        c = pattern[pi]
        if c == 42:  # '*'
            flush()
            while pi + 1 < plen and pattern[pi + 1] == 42:
                pi += 1
            tokens.append((_STAR, None))
            pi += 1
            stars += 1
            if stars > MAX_NESTING and pi < plen:
                tokens.append((_UNREACHABLE, None))
                break
        elif c == 63:  # '?'
            flush()
            if tokens and tokens[-1][0] == _ANY:
                tokens[-1] = (_ANY, tokens[-1][1] + 1)
            else:
                tokens.append((_ANY, 1))
            pi += 1
        elif c == 91:  # '['
            flush()
            members, pi = _class(pattern, pi + 1, nocase)
            tokens.append((_CLASS, members))
        elif c == 92 and pi + 1 < plen:  # '\\x' is a literal x
            literal.append(pattern[pi + 1])
            pi += 2
        else:
            literal.append(c)
            pi += 1
    flush()
    return tuple(tokens)


_compile_short = lru_cache(maxsize=256)(_compile)
_compile_long = lru_cache(maxsize=2)(_compile)


def _run(
    tokens: tuple[Token, ...], text: bytes, folded: bytes, ti: int, si: int, nocase: bool
) -> tuple[int, int, int]:
    """One pass of ``stringmatchlen_impl``'s loop from token ``ti`` and byte ``si``:
    (_MATCH|_FAIL, ...) or (_MET_STAR, star token, si) for a star with more pattern after it."""
    ntok, slen = len(tokens), len(text)
    while ti < ntok and si < slen:
        kind, arg = tokens[ti]
        if kind == _LITERAL:
            if not folded.startswith(arg, si):
                return _FAIL, ti, si
            si += len(arg)
        elif kind == _ANY:
            if si + arg > slen:  # Redis stops at the string's end, its pattern not used up
                return _FAIL, ti, si
            si += arg
        elif kind == _CLASS:
            negate, exact, members, ranges = arg
            c = text[si]
            hit = c in exact or folded[si] in members
            if not hit and ranges:
                value = (_RANGE_VALUE_NOCASE if nocase else _RANGE_VALUE)[c]
                hit = any(low <= value <= high for low, high in ranges)
            if hit == negate:
                return _FAIL, ti, si
            si += 1
        elif kind == _STAR:
            if ti + 1 == ntok:
                return _MATCH, ti, si
            return _MET_STAR, ti, si
        else:  # _UNREACHABLE: only a run nested deeper than Redis goes could get here
            return _FAIL, ti, si
        ti += 1
        if si == slen:  # the string is used up: trailing stars match nothing
            if ti < ntok and tokens[ti][0] == _STAR:
                ti += 1
            break
    return (_MATCH if ti == ntok and si == slen else _FAIL), ti, si


def stringmatch(pattern: bytes, text: bytes, nocase: bool = False) -> bool:
    """``stringmatchlen(pattern, text, nocase)``: True if ``text`` matches."""
    tokens = _tokens(pattern if type(pattern) is bytes else bytes(pattern), nocase)
    if type(text) is not bytes:
        text = bytes(text)
    folded = text.lower() if nocase else text
    slen = len(text)
    star_ti = star_si = star_depth = -1  # the innermost star still trying positions
    ti = si = depth = 0
    while True:
        if depth <= MAX_NESTING:
            outcome, at_ti, at_si = _run(tokens, text, folded, ti, si, nocase)
            if outcome == _MATCH:
                return True
            if outcome == _MET_STAR:  # the rest of the pattern is tried from at_si on, one level deeper
                star_ti, star_si, star_depth = at_ti, at_si - 1, depth
        # The innermost star moves on to its next position (a FAIL below it, or a new star).
        if star_ti < 0:
            return False
        star_si += 1
        if star_si >= slen:  # this star ran out of string: so do all the ones around it
            return False
        kind, literal = tokens[star_ti + 1]  # a star that ends the pattern has matched already
        if kind == _LITERAL:  # positions where the literal after the star does not start fail at once
            star_si = folded.find(literal, star_si)
            if star_si < 0:
                return False
        ti, si, depth = star_ti + 1, star_si, star_depth + 1
