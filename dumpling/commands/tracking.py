"""Client-side caching commands: CLIENT TRACKING, CACHING, GETREDIR, TRACKINGINFO.

They parse and check options with Redis 7.4's exact errors and hand the state to
``dumpling.tracking.Tracking`` (``server.tracking``, attached by ``setup``), which owns
the tables and the invalidation messages.

Must not: send invalidations or touch the tracking table directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dumpling.commands.common import to_int
from dumpling.commands.registry import command
from dumpling.errors import SYNTAX, CommandError
from dumpling.protocol import OK, Map, SetReply
from dumpling.tracking import Tracking

if TYPE_CHECKING:
    from dumpling.dispatch import Server

_CLIENT = {"group": "connection"}
_FLAGS = "noscript loading stale"


def setup(server: Server) -> None:
    server.tracking = Tracking(server)


def _overlap(a: bytes, b: bytes) -> bool:
    """Two BCAST prefixes collide when one starts the other (stringCheckPrefix)."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _check_prefixes(c: Any, prefixes: list[bytes]) -> None:
    """checkPrefixCollisionsOrReply: against the client's prefixes, then each other."""
    mine = c.tracking.prefixes if c.tracking is not None else {}
    for i, prefix in enumerate(prefixes):
        for existing in mine:
            if _overlap(existing, prefix):
                raise CommandError(f"Prefix '{_text(prefix)}' overlaps with an existing prefix '{_text(existing)}'. "
                                   "Prefixes for a single client must not overlap.")
        for other in prefixes[i + 1:]:
            if _overlap(prefix, other):
                raise CommandError(f"Prefix '{_text(prefix)}' overlaps with another provided prefix "
                                   f"'{_text(other)}'. Prefixes for a single client must not overlap.")


@command("client|tracking", -3, _FLAGS, **_CLIENT, since="6.0.0",
         summary="Controls server-assisted client-side caching for the connection.",
         complexity="O(1). Some options may introduce additional complexity.",
         args=("status=(ON | OFF) [REDIRECT client-id:integer] [PREFIX prefix]... [BCAST] [OPTIN] "
               "[OPTOUT] [NOLOOP]"))
def client_tracking(c: Any, argv: list[bytes]) -> Any:
    redirect = 0
    bcast = optin = optout = noloop = False
    prefixes: list[bytes] = []
    j = 3
    while j < len(argv):
        opt = argv[j].lower()
        more = len(argv) - 1 - j
        if opt == b"redirect" and more:
            j += 1
            if redirect:
                raise CommandError("A client can only redirect to a single other client")
            redirect = to_int(argv[j])
            # The redirect client must exist now (it may go away later: tracking-redir-broken).
            if redirect not in c.server.clients:
                raise CommandError("The client ID you want redirect to does not exist")
        elif opt == b"bcast":
            bcast = True
        elif opt == b"optin":
            optin = True
        elif opt == b"optout":
            optout = True
        elif opt == b"noloop":
            noloop = True
        elif opt == b"prefix" and more:
            j += 1
            prefixes.append(argv[j])
        else:
            raise CommandError(SYNTAX)
        j += 1
    mode = argv[2].lower()
    tracking = c.server.tracking
    if mode == b"on":
        state = c.tracking
        if not bcast and prefixes:
            raise CommandError("PREFIX option requires BCAST mode to be enabled")
        if state is not None and state.bcast != bcast:
            raise CommandError("You can't switch BCAST mode on/off before disabling tracking for this client, "
                               "and then re-enabling it with a different mode.")
        if bcast and (optin or optout):
            raise CommandError("OPTIN and OPTOUT are not compatible with BCAST")
        if optin and optout:
            raise CommandError("You can't specify both OPTIN mode and OPTOUT mode")
        if state is not None and ((optin and state.optout) or (optout and state.optin)):
            raise CommandError("You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, "
                               "and then re-enabling it with a different mode.")
        if bcast:
            _check_prefixes(c, prefixes)
        tracking.enable(c, redirect, bcast, optin, optout, noloop, prefixes)
    elif mode == b"off":
        tracking.disable(c)
    else:
        raise CommandError(SYNTAX)
    return OK


@command("client|caching", 3, _FLAGS, **_CLIENT, since="6.0.0",
         summary="Instructs the server whether to track the keys in the next request.", complexity="O(1)",
         args="mode=(YES|NO)")
def client_caching(c: Any, argv: list[bytes]) -> Any:
    state = c.tracking
    if state is None:
        raise CommandError("CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or "
                           "OPTOUT mode enabled")
    opt = argv[2].lower()
    if opt == b"yes":
        if not state.optin:
            raise CommandError("CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")
    elif opt == b"no":
        if not state.optout:
            raise CommandError("CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")
    else:
        raise CommandError(SYNTAX)
    c.tracking_caching = True
    return OK


@command("client|getredir", 2, _FLAGS, **_CLIENT, since="6.0.0",
         summary="Returns the client ID to which the connection's tracking notifications are redirected.",
         complexity="O(1)")
def client_getredir(c: Any, argv: list[bytes]) -> Any:
    return c.tracking.redirect if c.tracking is not None else -1


@command("client|trackinginfo", 2, _FLAGS, **_CLIENT, since="6.2.0",
         summary="Returns information about server-assisted client-side caching for the connection.",
         complexity="O(1)")
def client_trackinginfo(c: Any, argv: list[bytes]) -> Any:
    state = c.tracking
    if state is None:
        return Map([(b"flags", SetReply([b"off"])), (b"redirect", -1), (b"prefixes", [])])
    flags = [b"on"]
    if state.bcast:
        flags.append(b"bcast")
    if state.optin:
        flags.append(b"optin")
        if c.tracking_caching:
            flags.append(b"caching-yes")
    if state.optout:
        flags.append(b"optout")
        if c.tracking_caching:
            flags.append(b"caching-no")
    if state.noloop:
        flags.append(b"noloop")
    if state.broken_redirect:
        flags.append(b"broken_redirect")
    return Map([(b"flags", SetReply(flags)), (b"redirect", state.redirect), (b"prefixes", sorted(state.prefixes))])
