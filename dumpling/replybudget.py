"""The reply size budget: how much a reply may still add before the client's
``client-output-buffer-limit`` hard limit would close the client.

Redis checks the limit as each piece of a reply is queued; once it is reached the client
is closed and nothing more is queued (HRANDFIELD's loop even stops on
``CLIENT_CLOSE_ASAP``).  dumpling builds a reply, encodes it, and writes it at the end of
the read batch, so without a budget ``HRANDFIELD key -999999999`` built a billion-element
list and its encoding (RSS past 5 GB) before the limit was ever looked at.  Code that can
build big replies therefore spends a budget as it goes:

- ``encode_reply`` (``Client.reply``'s encoder for aggregate replies) encodes chunk by
  chunk against it: LRANGE of a huge list, MGET naming one big key a million times, EXEC
  of many such, pipelined replies queued before them;
- a ``Raw`` reply (bytes written whole, a big hash's HGETALL among them) spends its size at once;
- ``repeat_within`` makes count-driven replies (HRANDFIELD / SRANDMEMBER / ZRANDMEMBER
  with a negative count: up to 2**63 picks) only as far as the budget goes.

When the budget runs out the client is closed the way the limit closes it
(``Server.drop_for_output_limit``) and the reply is dropped.  Without a hard limit for the
client's class (``normal 0 0 0``, the default), for connections without a transport (a
script's calls) and for replies CLIENT REPLY discards, there is no budget: replies are
built whole, as Redis builds them.  The soft limit keeps its place in the flush-time
check: within one command it could only start its timer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from dumpling.protocol import Map, Push, Raw, SetReply, _encode_flat, _encode_into, encode

CHUNK = 64  # elements encoded (or picked) between two looks at the budget
FLAT_CHUNK = 1024  # elements of a flat array encoded in one C call (protocol's encode_flat) between two looks
SMALL_REPLY = 1 << 20  # a reply of fewer elements and bytes than this is not worth a look

# Per client: (items of _out already counted, their bytes, the last one counted), so that
# looking at the queue costs only the replies added since the previous look.
_counted: WeakKeyDictionary[Any, tuple[int, int, Any]] = WeakKeyDictionary()


class ReplyBudget:
    """Bytes a reply may still add for ``client`` before its hard limit is reached."""

    __slots__ = ("client", "left")

    def __init__(self, client: Any, left: int) -> None:
        self.client = client
        self.left = left

    def spend(self, nbytes: int) -> bool:
        """Count ``nbytes`` more; False once the limit is reached, the client then closed."""
        self.left -= nbytes
        if self.left > 0:
            return True
        if not self.client.closed:
            self.client.server.drop_for_output_limit(self.client)
        return False


def reply_budget(c: Any) -> ReplyBudget | None:
    """The budget for the reply ``c`` is about to get, or None when nothing limits it."""
    transport = getattr(c, "transport", None)
    if transport is None or c.skip_this:
        return None
    server = c.server
    text = server.config.values["client-output-buffer-limit"]
    if text is not _hard_limits[0]:  # parsed again only when CONFIG SET changed it
        limits = server.output_buffer_limits()
        _hard_limits[:] = [text, limits["normal"][0], limits["pubsub"][0]]
    hard = _hard_limits[2] if c.channels or c.patterns or c.shard_channels else _hard_limits[1]
    if not hard:
        return None
    return ReplyBudget(c, hard - transport.get_write_buffer_size() - _queued_bytes(c))


_hard_limits: list[Any] = [None, 0, 0]  # client-output-buffer-limit's text, hard bytes (normal, pubsub)


def _queued_bytes(c: Any) -> int:
    """Bytes of the replies queued in ``c._out`` (not yet written)."""
    out: list[bytes] = c._out
    items, size, last = _counted.get(c, (0, 0, None))
    if not items or len(out) < items or out[items - 1] is not last:
        items = size = 0  # written (or replaced) since: count again
    size += sum(map(len, out[items:]))
    if out:
        _counted[c] = (len(out), size, out[-1])
    return size


def encode_reply(c: Any, value: Any) -> bytes | None:
    """``value`` encoded for ``c``; None if the output-buffer limit closed ``c`` while
    it was being encoded.  Replies of fewer than CHUNK elements are encoded whole first
    (the common case costs one length test) and checked only when big."""
    t = type(value)
    if t is list or t is tuple:
        n = len(value)
    elif t is Map:
        n = len(value.pairs)
    elif t is SetReply or t is Push:
        n = len(value.items)
    elif t is Raw:  # written whole already (a big hash's HGETALL from its table): spent at once
        data = value.wire
        if len(data) < SMALL_REPLY:
            return data
        budget = reply_budget(c)
        return data if budget is None or budget.spend(len(data)) else None
    else:
        return encode(value, c.resp3)
    if n < CHUNK:
        data = encode(value, c.resp3)
        if len(data) < SMALL_REPLY:
            return data
        budget = reply_budget(c)
        return data if budget is None or budget.spend(len(data)) else None
    if c.closed:  # by the limit, while this reply was being built
        return None
    budget = reply_budget(c)
    if budget is None:
        return encode(value, c.resp3)
    out: list[bytes] = []
    if not _encode_within(value, c.resp3, out, budget):
        return None
    return b"".join(out)


def _encode_within(value: Any, resp3: bool, out: list[bytes], budget: ReplyBudget) -> bool:
    """Append the encoding of ``value`` to ``out``, spending ``budget`` every CHUNK
    elements (nested aggregates likewise); False as soon as it runs out."""
    t = type(value)
    if t is list or t is tuple:
        head, items = b"*%d\r\n" % len(value), value
    elif t is SetReply:
        head, items = (b"~%d\r\n" if resp3 else b"*%d\r\n") % len(value.items), value.items
    elif t is Push:
        head, items = (b">%d\r\n" if resp3 else b"*%d\r\n") % len(value.items), value.items
    elif t is Map:
        head = b"%%%d\r\n" % len(value.pairs) if resp3 else b"*%d\r\n" % (2 * len(value.pairs))
        items = [part for pair in value.pairs for part in pair]
    else:
        mark = len(out)
        _encode_into(value, resp3, out)
        return budget.spend(sum(map(len, out[mark:])))
    out.append(head)
    flat = _encode_flat if type(items) is list else None
    for start in range(0, len(items), FLAT_CHUNK):
        chunk = items[start:start + FLAT_CHUNK]
        # None: not all bytes/int/None (a nested aggregate is walked below, its size spent as it goes)
        data = None if flat is None else flat(chunk, resp3, False)
        if data is not None:  # (SPOP's, LRANGE's elements): in C, without the chunk's "*<n>" header
            body = data[data.index(b"\r\n") + 2:]
            out.append(body)
            if not budget.spend(len(body)):
                return False
            continue
        mark = len(out)
        for n, item in enumerate(chunk, 1):
            kind = type(item)
            if kind is list or kind is tuple or kind is Map or kind is SetReply or kind is Push:
                if not budget.spend(sum(map(len, out[mark:]))) or not _encode_within(item, resp3, out, budget):
                    return False
                mark = len(out)
            else:
                _encode_into(item, resp3, out)
                if n % CHUNK == 0:
                    if not budget.spend(sum(map(len, out[mark:]))):
                        return False
                    mark = len(out)
        if not budget.spend(sum(map(len, out[mark:]))):
            return False
    return budget.spend(len(head))


def bulk_size(item: bytes) -> int:
    """Wire bytes of ``item`` as a bulk string ("$<len>\\r\\n<item>\\r\\n")."""
    n = len(item)
    return n + 5 + (1 if n < 10 else 2 if n < 100 else len(str(n)))


def repeat_within(c: Any, count: int, pick: Callable[[], Any], size: Callable[[Any], int],
                  pick_many: Callable[[int], list[Any]] | None = None) -> list[Any] | None:
    """``[pick() for _ in range(count)]``, made only as far as ``c``'s reply budget goes:
    None if the client's output-buffer limit closed it first.  ``size`` estimates an
    element's wire bytes; ``pick_many(n)``, if given, makes ``n`` picks at once instead."""
    many = pick_many if pick_many is not None else lambda n: [pick() for _ in range(n)]
    budget = reply_budget(c)
    if budget is None:
        return many(count)
    picks: list[Any] = []
    while len(picks) < count:
        chunk = many(min(CHUNK * 16, count - len(picks)))
        if not budget.spend(sum(map(size, chunk))):
            return None
        picks += chunk
    return picks
