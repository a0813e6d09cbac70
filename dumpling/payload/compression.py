"""LZF exactly as Redis uses it for rdbStrings: decompression, and compression byte-identical to Redis's.

Redis compresses with liblzf (HLOG 16, VERY_FAST, CHECK_INPUT) into a buffer of
``len - 4`` bytes and keeps the result only if it fits.  ``python-lzf`` bundles the
same liblzf; its ``compress(data, n)`` hands liblzf an output bound of ``n + 1``, so
``compress(data, len - 5)`` is exactly Redis's call, decisions near the bound
included (checked against the pure-Python replay in the tests).  Without
``python-lzf`` both directions fall back to pure Python.

Nothing here knows about RDB framing; ``primitives`` wraps these in ``C3 clen ulen``.
"""

from __future__ import annotations

try:
    import lzf as _lzf
except ImportError:  # pragma: no cover - exercised only where python-lzf is absent
    _lzf = None

ACCELERATED = _lzf is not None

# liblzf format limits (lzf_c.c / lzf_d.c).
_MAX_LIT = 1 << 5
_MAX_OFF = 1 << 13
_MAX_REF = (1 << 8) + (1 << 3)
_HSIZE = 1 << 16
# One 3-byte back-reference expands to at most 264 bytes: no valid stream is larger.
MAX_EXPANSION = 88


class LzfError(ValueError):
    """Corrupt LZF data, or data that does not decompress to the announced size."""


def decompress(data: bytes, ulen: int) -> bytes:
    """Decompress ``data`` to exactly ``ulen`` bytes, or raise LzfError (Redis: lzf_decompress != len)."""
    if ulen == 0:
        # lzf_decompress returns 0 for an empty target, and Redis compares 0 == 0.
        return b""
    if ulen > MAX_EXPANSION * len(data):
        raise LzfError("LZF output size impossible for input size")
    if _lzf is not None:
        try:
            out = _lzf.decompress(data, ulen)
        except ValueError as exc:
            raise LzfError(str(exc)) from None
    else:
        out = decompress_pure(data, ulen)
    if out is None or len(out) != ulen:
        raise LzfError("LZF output size mismatch")
    return out


def decompress_pure(data: bytes, ulen: int) -> bytes:
    """Pure-Python lzf_decompress; raises LzfError where liblzf returns EINVAL/E2BIG."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        ctrl = data[i]
        i += 1
        if ctrl < 32:
            run = ctrl + 1
            if i + run > n:
                raise LzfError("literal run past input end")
            if len(out) + run > ulen:
                raise LzfError("output overflow")
            out += data[i : i + run]
            i += run
            continue
        length = ctrl >> 5
        if length == 7:
            if i >= n:
                raise LzfError("truncated back-reference")
            length += data[i]
            i += 1
        if i >= n:
            raise LzfError("truncated back-reference")
        back = ((ctrl & 0x1F) << 8) + data[i] + 1
        i += 1
        length += 2
        start = len(out) - back
        if start < 0:
            raise LzfError("back-reference before output start")
        if len(out) + length > ulen:
            raise LzfError("output overflow")
        if back >= length:
            out += out[start : start + length]
        else:
            for k in range(length):  # overlapping copy, byte by byte as liblzf does
                out.append(out[start + k])
    return bytes(out)


def _rdb_lzf_pure(data: bytes, room: int) -> bytes | None:
    return compress_pure(data, room + 1)


# compress_for_rdb's call, ``rdb_lzf(data, len(data) - 5)``, for the C writers that call it
# themselves: python-lzf passes ``max_len + 1`` to lzf_compress, so this is lzf_compress(.., n - 4).
rdb_lzf = _lzf.compress if _lzf is not None else _rdb_lzf_pure


def compress_for_rdb(data: bytes) -> bytes | None:
    """What Redis's rdbSaveLzfStringObject stores for ``data``: the LZF bytes, or None for "store raw"."""
    n = len(data)
    if n <= 5:
        return None  # lzf_compress cannot produce a single byte of output for these
    return rdb_lzf(data, n - 5)


def compress_pure(data: bytes, out_len: int) -> bytes | None:
    """liblzf's lzf_compress (Redis settings) into a buffer of ``out_len`` bytes; None when it fails.

    Mirrors the pointer arithmetic of lzf_c.c: ``op`` is the next output index and a
    literal run reserves its control byte in advance.
    """
    in_len = len(data)
    if not in_len or not out_len:
        return None
    out = bytearray(out_len + 1)
    htab: dict[int, int] = {}
    ip = 0
    op = 1  # start run: reserve the control byte
    lit = 0
    in_end = in_len
    hval = (data[0] << 8) | data[1] if in_len >= 2 else 0
    while ip < in_end - 2:
        hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFFFF
        slot = ((hval >> 8) - hval * 5) & (_HSIZE - 1)
        ref = htab.get(slot, -1)
        htab[slot] = ip
        off = ip - ref - 1
        if (
            ref > 0
            and off < _MAX_OFF
            and data[ref + 2] == data[ip + 2]
            and data[ref] == data[ip]
            and data[ref + 1] == data[ip + 1]
        ):
            length = 2
            maxlen = in_end - ip - length
            if maxlen > _MAX_REF:
                maxlen = _MAX_REF
            if op + 3 + 1 >= out_len and op - (not lit) + 3 + 1 >= out_len:
                return None
            out[op - lit - 1] = lit - 1 & 0xFF  # stop run
            op -= not lit  # undo run if length is zero
            # lzf_c.c first compares up to 16 bytes unrolled (no maxlen check: the
            # bound guarantees room), which can overshoot maxlen by up to 2.
            mismatch = False
            if maxlen > 16:
                for _ in range(16):
                    length += 1
                    if data[ref + length] != data[ip + length]:
                        mismatch = True
                        break
            if not mismatch:
                while True:
                    length += 1
                    if length >= maxlen or data[ref + length] != data[ip + length]:
                        break
            length -= 2
            ip += 1
            if length < 7:
                out[op] = (off >> 8) + (length << 5)
                op += 1
            else:
                out[op] = (off >> 8) + (7 << 5)
                out[op + 1] = length - 7
                op += 2
            out[op] = off & 0xFF
            op += 1
            lit = 0
            op += 1  # start run
            ip += length + 1
            if ip >= in_end - 2:
                break
            ip -= 2
            hval = (data[ip] << 8) | data[ip + 1]
            hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFFFF
            htab[((hval >> 8) - hval * 5) & (_HSIZE - 1)] = ip
            ip += 1
            hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFFFF
            htab[((hval >> 8) - hval * 5) & (_HSIZE - 1)] = ip
            ip += 1
        else:
            if op >= out_len:
                return None
            lit += 1
            out[op] = data[ip]
            op += 1
            ip += 1
            if lit == _MAX_LIT:
                out[op - lit - 1] = lit - 1
                lit = 0
                op += 1
    if op + 3 > out_len:
        return None
    while ip < in_end:
        lit += 1
        out[op] = data[ip]
        op += 1
        ip += 1
        if lit == _MAX_LIT:
            out[op - lit - 1] = lit - 1
            lit = 0
            op += 1
    out[op - lit - 1] = lit - 1 & 0xFF
    op -= not lit
    return bytes(out[:op])
