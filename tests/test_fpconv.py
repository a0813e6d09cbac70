"""Redis 7.2+'s double texts (``dumpling.fpconv``): fpconv_dtoa (Grisu2) and d2string.

Every expected text here was taken from a Redis 7.4.1 server (the CI oracle is Redis 7.0,
which prints ``%.17g``, so these differences cannot be tested differentially): ZSCORE of a
listpack zset is ``d2string``, and the reply sequences below were recorded from 7.4.1 byte
for byte.  Grisu2 is not always the shortest round-trip form (``814.389837`` prints as
``814.3898370000001``), which is why ``repr`` is not used.
"""

from __future__ import annotations

import math
import os
import random
import re
import struct

import pytest

from dumpling import fpconv
from dumpling.fpconv import d2string, double_as_long_long, fpconv_dtoa
from tests.servers import ServerProcess

needs_c = pytest.mark.skipif(fpconv.native is None, reason="dumpling._fpconv is not built")

# (ZADD score argument, ZSCORE reply text) from Redis 7.4.1
ZSCORE_74 = [
    ("0.1", b"0.1"),
    ("1e21", b"1e+21"),
    ("123456789012345678", b"123456789012345680"),
    ("814.389837", b"814.3898370000001"),
    ("-37721.61481283791", b"-3.7721614812837914e+4"),
    ("0.0000001", b"1e-7"),
    ("3.0", b"3"),
    ("1e-300", b"1e-300"),
    ("4611686018427387904", b"4611686018427387904"),
    ("4611686018427387905", b"4611686018427387904"),
    ("9007199254740993", b"9007199254740992"),
    ("-inf", b"-inf"),
    ("inf", b"inf"),
    ("-158.43262", b"-158.43261999999999"),
    ("1626983080611305.8", b"1626983080611305.7"),
    ("2.454440643907477e-95", b"2.4544406439074772e-95"),
    ("6.429560891534334e+16", b"64295608915343344"),
    ("1e-5", b"0.00001"),
    ("1e17", b"100000000000000000"),
    ("5e-324", b"5e-324"),
    ("1.7976931348623157e308", b"1.7976931348623157e+308"),
    ("-1.5e-7", b"-1.5e-7"),
    ("123.456", b"123.456"),
    ("9223372036854775808", b"9223372036854776000"),
]


@pytest.mark.parametrize(("score", "text"), ZSCORE_74)
def test_d2string_matches_redis_7_4(score: str, text: bytes) -> None:
    assert d2string(float(score)) == text
    assert fpconv.py_d2string(float(score)) == text


def test_c_twin_is_built_in_ci() -> None:
    """Under CI=true a broken C build must fail, not fall back silently."""
    if os.environ.get("CI") != "true":
        pytest.skip("only enforced when CI=true")
    assert fpconv.native is not None


@needs_c
def test_c_twin_matches_python() -> None:
    """dumpling/_fpconv.c (a translation of fpconv.py) and the Python reference, bit pattern for bit pattern."""
    rng = random.Random(2024)
    edges = [0, 1, 2, 1 << 63, 0x000FFFFFFFFFFFFF, 0x0010000000000000, 0x7FEFFFFFFFFFFFFF,
             0x7FF0000000000000, 0xFFF0000000000000, 0x7FF8000000000000, 0xFFF8000000000000]
    edges += [e << 52 | low for e in range(0, 2047, 7) for low in (0, 1, 0xFFFFFFFFFFFFF)]
    patterns = edges + [rng.getrandbits(64) for _ in range(20000)]
    values = [struct.unpack("<d", struct.pack("<Q", b))[0] for b in patterns]
    values += [rng.randint(-10**6, 10**6) / 10 ** rng.randint(0, 8) for _ in range(5000)]
    values += [float(rng.randint(-2**64, 2**64)) for _ in range(2000)]
    for value in values:
        assert fpconv.native.fpconv_dtoa(value) == fpconv.py_fpconv_dtoa(value), repr(value)
        assert fpconv.native.d2string(value) == fpconv.py_d2string(value), repr(value)


@needs_c
def test_c_twin_builds_the_same_powers_of_ten() -> None:
    """The C table is computed at import (exact 5**k arithmetic), never typed in: it must equal
    the Python one row for row."""
    assert fpconv.native.cached_powers() == fpconv._POWERS_TEN


def test_special_values() -> None:
    assert d2string(0.0) == b"0"
    assert d2string(-0.0) == b"-0"
    assert d2string(math.nan) == b"nan"
    assert fpconv_dtoa(-0.0) == b"-0"
    assert fpconv_dtoa(-math.inf) == b"-inf"
    # fpconv itself has no integer shortcut (rioWriteBulkDouble, the AOF rewrite's ZADD scores)
    assert fpconv_dtoa(1e17) == b"1e+17"
    assert fpconv_dtoa(5.0) == b"5"
    assert fpconv_dtoa(-0.1) == b"-0.1"
    # the exponent form keeps at most 18 - (sign) digits
    assert fpconv_dtoa(-2.2250738585072014e-308) == b"-2.2250738585072014e-308"


def test_double2ll_range() -> None:
    half = float((1 << 63) - 1 >> 1)  # rounds up to 2^62
    assert double_as_long_long(half) == 1 << 62
    assert double_as_long_long(-half) == -(1 << 62)
    assert double_as_long_long(math.nextafter(half, math.inf)) is None
    assert double_as_long_long(0.5) is None
    assert double_as_long_long(math.inf) is None
    assert double_as_long_long(math.nan) is None


_FPCONV_FORM = re.compile(rb"-?(\d+|\d+\.\d+|0\.\d+|\d(\.\d+)?e[+-]\d+)")


def test_round_trip_and_shape() -> None:
    """Whatever digits Grisu2 picks, they parse back to the same double, in fpconv's layout."""
    rng = random.Random(74)
    for _ in range(3000):
        (value,) = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))
        if math.isnan(value) or math.isinf(value):
            continue
        text = fpconv.py_fpconv_dtoa(value)
        assert fpconv_dtoa(value) == text
        assert _FPCONV_FORM.fullmatch(text), text
        assert float(text) == value
        assert len(text.lstrip(b"-").split(b"e")[0].replace(b".", b"").strip(b"0")) <= 17


# Reply bytes recorded from Redis 7.4.1 (FLUSHALL first, then these in order; RESP2 and RESP3).
SEQUENCES_74 = [
    # RESP2
    (2, ('ZADD', 'z', '0.1', 'a', '814.389837', 'b', '-158.43262', 'c', '1e17', 'd', '1e-5', 'e', 'inf', 'f'), b':6\r\n'),
    (2, ('ZRANGE', 'z', '0', '-1', 'WITHSCORES'), b'*12\r\n$1\r\nc\r\n$19\r\n-158.43261999999999\r\n$1\r\ne\r\n$7\r\n0.00001\r\n$1\r\na\r\n$3\r\n0.1\r\n$1\r\nb\r\n$17\r\n814.3898370000001\r\n$1\r\nd\r\n$18\r\n100000000000000000\r\n$1\r\nf\r\n$3\r\ninf\r\n'),
    (2, ('ZSCAN', 'z', '0'), b'*2\r\n$1\r\n0\r\n*12\r\n$1\r\nc\r\n$19\r\n-158.43261999999999\r\n$1\r\ne\r\n$7\r\n0.00001\r\n$1\r\na\r\n$3\r\n0.1\r\n$1\r\nb\r\n$17\r\n814.3898370000001\r\n$1\r\nd\r\n$18\r\n100000000000000000\r\n$1\r\nf\r\n$3\r\ninf\r\n'),
    (2, ('ZINCRBY', 'z', '0.2', 'a'), b'$19\r\n0.30000000000000004\r\n'),
    (2, ('ZMSCORE', 'z', 'a', 'b', 'nope'), b'*3\r\n$19\r\n0.30000000000000004\r\n$17\r\n814.3898370000001\r\n$-1\r\n'),
    (2, ('ZRANK', 'z', 'c', 'WITHSCORE'), b'*2\r\n:0\r\n$19\r\n-158.43261999999999\r\n'),
    (2, ('ZREVRANK', 'z', 'e', 'WITHSCORE'), b'*2\r\n:4\r\n$7\r\n0.00001\r\n'),
    (2, ('ZUNION', '1', 'z', 'WEIGHTS', '0.3', 'WITHSCORES'), b'*12\r\n$1\r\nc\r\n$19\r\n-47.529785999999994\r\n$1\r\ne\r\n$8\r\n0.000003\r\n$1\r\na\r\n$19\r\n0.09000000000000001\r\n$1\r\nb\r\n$11\r\n244.3169511\r\n$1\r\nd\r\n$17\r\n30000000000000000\r\n$1\r\nf\r\n$3\r\ninf\r\n'),
    (2, ('ZRANGEBYSCORE', 'z', '-inf', '1', 'WITHSCORES', 'LIMIT', '0', '2'), b'*4\r\n$1\r\nc\r\n$19\r\n-158.43261999999999\r\n$1\r\ne\r\n$7\r\n0.00001\r\n'),
    (2, ('ZADD', 'z', 'INCR', '0.1', 'e'), b'$7\r\n0.10001\r\n'),
    (2, ('ZPOPMIN', 'z'), b'*2\r\n$1\r\nc\r\n$19\r\n-158.43261999999999\r\n'),
    (2, ('ZPOPMAX', 'z', '2'), b'*4\r\n$1\r\nf\r\n$3\r\ninf\r\n$1\r\nd\r\n$18\r\n100000000000000000\r\n'),
    (2, ('BZPOPMIN', 'z', '0'), b'*3\r\n$1\r\nz\r\n$1\r\ne\r\n$7\r\n0.10001\r\n'),
    (2, ('BZMPOP', '0', '1', 'z', 'MAX', 'COUNT', '2'), b'*2\r\n$1\r\nz\r\n*2\r\n*2\r\n$1\r\nb\r\n$17\r\n814.3898370000001\r\n*2\r\n$1\r\na\r\n$19\r\n0.30000000000000004\r\n'),
    (2, ('ZMPOP', '1', 'z', 'MIN'), b'*-1\r\n'),
    (2, ('ZADD', 'one', '0.1', 'x'), b':1\r\n'),
    (2, ('ZRANDMEMBER', 'one', '1', 'WITHSCORES'), b'*2\r\n$1\r\nx\r\n$3\r\n0.1\r\n'),
    (2, ('CONFIG', 'SET', 'zset-max-listpack-entries', '0'), b'+OK\r\n'),
    (2, ('ZADD', 'sk', '0.1', 'x'), b':1\r\n'),
    (2, ('OBJECT', 'ENCODING', 'sk'), b'$8\r\nskiplist\r\n'),
    (2, ('ZSCAN', 'sk', '0'), b'*2\r\n$1\r\n0\r\n*2\r\n$1\r\nx\r\n$19\r\n0.10000000000000001\r\n'),
    (2, ('ZSCORE', 'sk', 'x'), b'$3\r\n0.1\r\n'),
    (2, ('CONFIG', 'SET', 'zset-max-listpack-entries', '128'), b'+OK\r\n'),
    (2, ('EVAL', "return redis.call('set', KEYS[1], ARGV[1] * 1.5)", '1', 'k', '4611686018427387904'), b'+OK\r\n'),
    (2, ('GET', 'k'), b'$19\r\n6917529027641082000\r\n'),
    (2, ('EVAL', "return redis.call('set', KEYS[1], -158.43262)", '1', 'k'), b'+OK\r\n'),
    (2, ('GET', 'k'), b'$19\r\n-158.43261999999999\r\n'),
    (2, ('EVAL', "return redis.call('set', KEYS[1], 1/0)", '1', 'k'), b'+OK\r\n'),
    (2, ('GET', 'k'), b'$3\r\ninf\r\n'),
    (2, ('EVAL', "return redis.call('set', KEYS[1], 1e-5)", '1', 'k'), b'+OK\r\n'),
    (2, ('GET', 'k'), b'$7\r\n0.00001\r\n'),
    (2, ('EVAL', "redis.setresp(3); return redis.call('zscore', KEYS[1], 'x')", '1', 'one'), b'$3\r\n0.1\r\n'),
    (2, ('EVAL', "return redis.call('zscore', KEYS[1], 'x')", '1', 'one'), b'$3\r\n0.1\r\n'),
    (2, ('SET', 'f', '0.1'), b'+OK\r\n'),
    (2, ('INCRBYFLOAT', 'f', '0.2'), b'$3\r\n0.3\r\n'),
    (2, ('INCRBYFLOAT', 'f', '1e-5'), b'$7\r\n0.30001\r\n'),
    (2, ('HINCRBYFLOAT', 'h', 'x', '0.1'), b'$3\r\n0.1\r\n'),
    (2, ('HINCRBYFLOAT', 'h', 'x', '0.2'), b'$3\r\n0.3\r\n'),
    (2, ('DEBUG', 'PROTOCOL', 'double'), b'$5\r\n3.141\r\n'),
    # RESP3
    (3, ('ZADD', 'z', '0.1', 'a', '814.389837', 'b', '-158.43262', 'c', '1e17', 'd', '1e-5', 'e', 'inf', 'f'), b':6\r\n'),
    (3, ('ZRANGE', 'z', '0', '-1', 'WITHSCORES'), b'*6\r\n*2\r\n$1\r\nc\r\n,-158.43261999999999\r\n*2\r\n$1\r\ne\r\n,0.00001\r\n*2\r\n$1\r\na\r\n,0.1\r\n*2\r\n$1\r\nb\r\n,814.3898370000001\r\n*2\r\n$1\r\nd\r\n,100000000000000000\r\n*2\r\n$1\r\nf\r\n,inf\r\n'),
    (3, ('ZSCAN', 'z', '0'), b'*2\r\n$1\r\n0\r\n*12\r\n$1\r\nc\r\n$19\r\n-158.43261999999999\r\n$1\r\ne\r\n$7\r\n0.00001\r\n$1\r\na\r\n$3\r\n0.1\r\n$1\r\nb\r\n$17\r\n814.3898370000001\r\n$1\r\nd\r\n$18\r\n100000000000000000\r\n$1\r\nf\r\n$3\r\ninf\r\n'),
    (3, ('ZINCRBY', 'z', '0.2', 'a'), b',0.30000000000000004\r\n'),
    (3, ('ZMSCORE', 'z', 'a', 'b', 'nope'), b'*3\r\n,0.30000000000000004\r\n,814.3898370000001\r\n_\r\n'),
    (3, ('ZRANK', 'z', 'c', 'WITHSCORE'), b'*2\r\n:0\r\n,-158.43261999999999\r\n'),
    (3, ('ZREVRANK', 'z', 'e', 'WITHSCORE'), b'*2\r\n:4\r\n,0.00001\r\n'),
    (3, ('ZUNION', '1', 'z', 'WEIGHTS', '0.3', 'WITHSCORES'), b'*6\r\n*2\r\n$1\r\nc\r\n,-47.529785999999994\r\n*2\r\n$1\r\ne\r\n,0.000003\r\n*2\r\n$1\r\na\r\n,0.09000000000000001\r\n*2\r\n$1\r\nb\r\n,244.3169511\r\n*2\r\n$1\r\nd\r\n,30000000000000000\r\n*2\r\n$1\r\nf\r\n,inf\r\n'),
    (3, ('ZRANGEBYSCORE', 'z', '-inf', '1', 'WITHSCORES', 'LIMIT', '0', '2'), b'*2\r\n*2\r\n$1\r\nc\r\n,-158.43261999999999\r\n*2\r\n$1\r\ne\r\n,0.00001\r\n'),
    (3, ('ZADD', 'z', 'INCR', '0.1', 'e'), b',0.10001\r\n'),
    (3, ('ZPOPMIN', 'z'), b'*2\r\n$1\r\nc\r\n,-158.43261999999999\r\n'),
    (3, ('ZPOPMAX', 'z', '2'), b'*2\r\n*2\r\n$1\r\nf\r\n,inf\r\n*2\r\n$1\r\nd\r\n,100000000000000000\r\n'),
    (3, ('BZPOPMIN', 'z', '0'), b'*3\r\n$1\r\nz\r\n$1\r\ne\r\n,0.10001\r\n'),
    (3, ('BZMPOP', '0', '1', 'z', 'MAX', 'COUNT', '2'), b'*2\r\n$1\r\nz\r\n*2\r\n*2\r\n$1\r\nb\r\n,814.3898370000001\r\n*2\r\n$1\r\na\r\n,0.30000000000000004\r\n'),
    (3, ('ZMPOP', '1', 'z', 'MIN'), b'_\r\n'),
    (3, ('ZADD', 'one', '0.1', 'x'), b':1\r\n'),
    (3, ('ZRANDMEMBER', 'one', '1', 'WITHSCORES'), b'*1\r\n*2\r\n$1\r\nx\r\n,0.1\r\n'),
    (3, ('CONFIG', 'SET', 'zset-max-listpack-entries', '0'), b'+OK\r\n'),
    (3, ('ZADD', 'sk', '0.1', 'x'), b':1\r\n'),
    (3, ('OBJECT', 'ENCODING', 'sk'), b'$8\r\nskiplist\r\n'),
    (3, ('ZSCAN', 'sk', '0'), b'*2\r\n$1\r\n0\r\n*2\r\n$1\r\nx\r\n$19\r\n0.10000000000000001\r\n'),
    (3, ('ZSCORE', 'sk', 'x'), b',0.1\r\n'),
    (3, ('CONFIG', 'SET', 'zset-max-listpack-entries', '128'), b'+OK\r\n'),
    (3, ('EVAL', "return redis.call('set', KEYS[1], ARGV[1] * 1.5)", '1', 'k', '4611686018427387904'), b'+OK\r\n'),
    (3, ('GET', 'k'), b'$19\r\n6917529027641082000\r\n'),
    (3, ('EVAL', "return redis.call('set', KEYS[1], -158.43262)", '1', 'k'), b'+OK\r\n'),
    (3, ('GET', 'k'), b'$19\r\n-158.43261999999999\r\n'),
    (3, ('EVAL', "return redis.call('set', KEYS[1], 1/0)", '1', 'k'), b'+OK\r\n'),
    (3, ('GET', 'k'), b'$3\r\ninf\r\n'),
    (3, ('EVAL', "return redis.call('set', KEYS[1], 1e-5)", '1', 'k'), b'+OK\r\n'),
    (3, ('GET', 'k'), b'$7\r\n0.00001\r\n'),
    (3, ('EVAL', "redis.setresp(3); return redis.call('zscore', KEYS[1], 'x')", '1', 'one'), b',0.1\r\n'),
    (3, ('EVAL', "return redis.call('zscore', KEYS[1], 'x')", '1', 'one'), b'$3\r\n0.1\r\n'),
    (3, ('SET', 'f', '0.1'), b'+OK\r\n'),
    (3, ('INCRBYFLOAT', 'f', '0.2'), b'$3\r\n0.3\r\n'),
    (3, ('INCRBYFLOAT', 'f', '1e-5'), b'$7\r\n0.30001\r\n'),
    (3, ('HINCRBYFLOAT', 'h', 'x', '0.1'), b'$3\r\n0.1\r\n'),
    (3, ('HINCRBYFLOAT', 'h', 'x', '0.2'), b'$3\r\n0.3\r\n'),
    (3, ('DEBUG', 'PROTOCOL', 'double'), b',3.141\r\n'),
]


@pytest.mark.parametrize("resp", [2, 3])
def test_replies_match_redis_7_4(dumpling_server: ServerProcess, resp: int) -> None:
    with dumpling_server.raw() as conn:
        conn.call("FLUSHALL")
        if resp == 3:
            conn.call("HELLO", "3")
        try:
            for step_resp, command, expected in SEQUENCES_74:
                if step_resp == resp:
                    assert conn.call(*command) == expected, command
        finally:
            conn.call("CONFIG", "SET", "zset-max-listpack-entries", "128")
            conn.call("FLUSHALL")


def test_acl_log_age_seconds_is_a_7_4_double(dumpling_server: ServerProcess) -> None:
    """ACL LOG's age-seconds goes through addReplyDouble: fpconv's form, not %.17g's 17 digits."""
    with dumpling_server.raw() as conn:
        conn.call("ACL", "LOG", "RESET")
        assert conn.call("AUTH", "nobody", "wrong").startswith(b"-WRONGPASS")
        conn.call("HELLO", "3")
        reply = conn.call("ACL", "LOG", "1")
        conn.call("ACL", "LOG", "RESET")
    age = re.search(rb"\$11\r\nage-seconds\r\n,([^\r]*)\r\n", reply)
    assert age is not None, reply
    assert age.group(1) == d2string(float(age.group(1)))
