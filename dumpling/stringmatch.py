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

The pattern is compiled once into tokens (cached): literal runs compared with
``startswith``, ``?``, character classes as 256-entry tables built by replaying Redis's
class loop for every byte (so its quirks hold: unterminated classes, ``[^`` at the end,
escapes compared without folding case, ranges folded after swapping), and ``*`` runs.
"""

from __future__ import annotations

from functools import lru_cache

MAX_NESTING = 1000

_LITERAL, _ANY, _CLASS, _STAR = 0, 1, 2, 3
_MATCH, _FAIL, _MET_STAR = 0, 1, 2

Token = tuple[int, bytes]


def _lower(c: int) -> int:
    """glibc's ``tolower`` on a signed char's value: ASCII folding, and the negative
    values but EOF (-1) mapped to their unsigned byte (it matters in ``[a-b]`` ranges)."""
    if 65 <= c <= 90:
        return c + 32
    return c + 256 if -128 <= c <= -2 else c


def _signed(c: int) -> int:
    return c - 256 if c > 127 else c


def _class_table(pattern: bytes, pi: int, nocase: bool) -> tuple[bytes, int]:
    """The class starting after '[' at ``pi``: a table (1 = the byte matches) and the
    position after the class, replaying Redis's loop over the pattern."""
    plen = len(pattern)
    negate = pi < plen and pattern[pi] == 94  # '^'
    if negate:
        pi += 1
    exact: list[int] = []  # escaped members: compared without case folding
    plain: list[int] = []
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
            plain.append(_lower(pattern[pi]) if nocase else pattern[pi])
        pi += 1
    table = bytearray(256)
    for c in range(256):
        sc = _signed(c)
        folded = _lower(sc) if nocase else sc
        hit = (
            c in exact
            or (_lower(c) if nocase else c) in plain
            or any(start <= folded <= end for start, end in ranges)
        )
        table[c] = hit != negate
    return bytes(table), pi + 1


@lru_cache(maxsize=256)
def _compile(pattern: bytes, nocase: bool) -> tuple[Token, ...]:
    tokens: list[Token] = []
    literal = bytearray()
    pi, plen = 0, len(pattern)

    def flush() -> None:
        if literal:
            tokens.append((_LITERAL, bytes(literal.lower() if nocase else literal)))
            literal.clear()

    while pi < plen:
        c = pattern[pi]
        if c == 42:  # '*': a run of them is one star
            flush()
            while pi + 1 < plen and pattern[pi + 1] == 42:
                pi += 1
            tokens.append((_STAR, b""))
            pi += 1
        elif c == 63:  # '?'
            flush()
            tokens.append((_ANY, b""))
            pi += 1
        elif c == 91:  # '['
            flush()
            table, pi = _class_table(pattern, pi + 1, nocase)
            tokens.append((_CLASS, table))
        elif c == 92 and pi + 1 < plen:  # '\\x' is a literal x
            literal.append(pattern[pi + 1])
            pi += 2
        else:
            literal.append(c)
            pi += 1
    flush()
    return tuple(tokens)


def _run(tokens: tuple[Token, ...], text: bytes, folded: bytes, ti: int, si: int) -> tuple[int, int, int]:
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
            si += 1
        elif kind == _CLASS:
            if not arg[text[si]]:
                return _FAIL, ti, si
            si += 1
        else:
            if ti + 1 == ntok:
                return _MATCH, ti, si
            return _MET_STAR, ti, si
        ti += 1
        if si == slen:  # the string is used up: trailing stars match nothing
            if ti < ntok and tokens[ti][0] == _STAR:
                ti += 1
            break
    return (_MATCH if ti == ntok and si == slen else _FAIL), ti, si


def stringmatch(pattern: bytes, text: bytes, nocase: bool = False) -> bool:
    """``stringmatchlen(pattern, text, nocase)``: True if ``text`` matches."""
    tokens = _compile(pattern if type(pattern) is bytes else bytes(pattern), nocase)
    if type(text) is not bytes:
        text = bytes(text)
    folded = text.lower() if nocase else text
    slen = len(text)
    star_ti = star_si = star_depth = -1  # the innermost star still trying positions
    ti = si = depth = 0
    while True:
        if depth <= MAX_NESTING:
            outcome, at_ti, at_si = _run(tokens, text, folded, ti, si)
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
