"""Connection commands: PING, ECHO, SELECT, SWAPDB, QUIT, RESET, HELLO, AUTH, CLIENT."""

from __future__ import annotations

import time
from typing import Any

from dumpling import REDIS_VERSION
from dumpling.commands.common import to_int
from dumpling.commands.registry import command, container
from dumpling.errors import DB_INDEX, NOT_INTEGER, SYNTAX, WRONGPASS, CommandError
from dumpling.protocol import NO_REPLY, OK, PONG, Map, Status, Verbatim
from dumpling.querybuf import BIG_ARG

CONN = {"group": "connection"}
_VALID_NAME = set(range(0x21, 0x7F))


@command("ping", -1, "fast", **CONN, summary="Returns the server's liveliness response.", args="[message]",
         tips="request_policy:all_shards response_policy:all_succeeded")
def ping(c: Any, argv: list[bytes]) -> Any:
    if len(argv) > 2:
        raise CommandError("wrong number of arguments for 'ping' command")
    if not c.resp3 and (c.channels or c.patterns or c.shard_channels):
        return [b"pong", argv[1] if len(argv) == 2 else b""]
    return argv[1] if len(argv) == 2 else PONG


@command("echo", 2, "loading stale fast", **CONN, summary="Returns the given string.", args="message")
def echo(c: Any, argv: list[bytes]) -> Any:
    return argv[1]


@command("select", 2, "loading stale fast", **CONN, since="1.0.0", summary="Changes the selected database.",
         args="index:integer")
def select(c: Any, argv: list[bytes]) -> Any:
    index = to_int(argv[1])
    if c.server.cluster is not None and index != 0:
        raise CommandError("SELECT is not allowed in cluster mode")
    dbs = c.keyspace.dbs
    if not 0 <= index < len(dbs):
        raise CommandError(DB_INDEX)
    c.db = dbs[index]
    return OK


@command("swapdb", 3, "write fast", group="server", since="4.0.0", summary="Swaps two Redis databases.",
         acl="keyspace dangerous", args="index1:integer index2:integer",
         complexity="O(N) where N is the count of clients watching or blocking on keys from both databases.")
def swapdb(c: Any, argv: list[bytes]) -> Any:
    a = to_int(argv[1], "invalid first DB index")
    b = to_int(argv[2], "invalid second DB index")
    ks = c.keyspace
    if c.server.cluster is not None:
        raise CommandError("SWAPDB is not allowed in cluster mode")
    if not (0 <= a < len(ks.dbs) and 0 <= b < len(ks.dbs)):
        raise CommandError(DB_INDEX)
    if a != b:
        da, db = ks.dbs[a], ks.dbs[b]
        ks.touch_watched_in_db(a, da, db)
        ks.touch_watched_in_db(b, da, db)
        da.swap_contents(db)
        ks.dirty += 1
        # Clients blocked on a key that now exists in the swapped db may be served: after this
        # command, as after any (Server.deliver), so their pops are not part of the SWAPDB's
        # propagated unit.
        for (index, key) in list(ks.blocked_keys):
            if index in (a, b) and key in ks.dbs[index].data:
                ks.ready_keys[(index, key)] = None
    return OK


@command("quit", -1, "noscript loading stale fast no_auth allow_busy", **CONN, summary="Closes the connection.",
         doc_flags="deprecated", deprecated_since="7.2.0", replaced_by="just closing the connection")
def quit_(c: Any, argv: list[bytes]) -> Any:
    c.flags_close_after_reply = True
    return OK


def _clear_connection_state(c: Any) -> None:
    server = c.server
    if c.blocked is not None:
        server.unblock(c, None)
    c.multi = None
    c.multi_error = False
    server.unwatch_all(c)
    if server.pubsub is not None:
        server.pubsub.unsubscribe_all(c)
    if c.monitor:
        c.monitor = False
        if c in server.monitors:
            server.monitors.remove(c)
    c.db = c.keyspace.dbs[0]
    c.resp3 = False
    from dumpling.commands.acl import reset_login

    reset_login(c)  # the default user, authenticated if it needs no password
    c.name = b""
    c.asking = False
    c.readonly_cluster = False
    c.reply_mode = 0
    c.no_touch = False
    c.no_evict = False
    if c.tracking is not None:
        server.tracking.disable(c)


@command("reset", 1, "noscript loading stale fast no_auth allow_busy", **CONN, since="6.2.0",
         summary="Resets the connection.")
def reset(c: Any, argv: list[bytes]) -> Any:
    _clear_connection_state(c)
    return Status("RESET")


def _authenticate(c: Any, user: bytes, password: bytes, verb: bytes) -> bool:
    """Log in as ``user`` (ACL users, dumpling.commands.acl); False counts and logs a failure."""
    from dumpling.commands.acl import authenticate

    return authenticate(c, user, password, verb)


@command("auth", -2, "noscript loading stale fast no_auth allow_busy", **CONN, summary="Authenticates the connection.",
         args="[username@6.0.0] password",
         complexity="O(N) where N is the number of passwords defined for the user",
         history=(("6.0.0", "Added ACL style (username and password)."),))
def auth(c: Any, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    if len(argv) == 2:
        if c.server.acl.default.nopass:
            raise CommandError(
                "AUTH <password> called without any password configured for the default user. "
                "Are you sure your configuration is correct?"
            )
        user, password = b"default", argv[1]
    else:
        user, password = argv[1], argv[2]
    if not _authenticate(c, user, password, argv[0]):
        raise CommandError(WRONGPASS)
    return OK


def valid_name(name: bytes) -> bool:
    return all(b in _VALID_NAME for b in name)


@command("hello", -1, "noscript loading stale fast no_auth allow_busy", **CONN, since="6.0.0",
         summary="Handshakes with the Redis server.",
         args="[arguments=(protover:integer [AUTH (username password)] [SETNAME clientname])]",
         history=(("6.2.0", "`protover` made optional; when called without arguments the command reports the current "
                            "connection's context."),))
def hello(c: Any, argv: list[bytes]) -> Any:
    version = None
    if len(argv) > 1:
        version = to_int(argv[1], "Protocol version is not an integer or out of range")
        if version not in (2, 3):
            raise CommandError("-NOPROTO unsupported protocol version")
    creds = None
    setname = None
    i = 2
    while i < len(argv):
        opt = argv[i].lower()
        if opt == b"auth" and len(argv) - i - 1 >= 2:
            creds = (argv[i + 1], argv[i + 2])
            i += 3
        elif opt == b"setname" and len(argv) - i - 1 >= 1:
            setname = argv[i + 1]
            if not valid_name(setname):
                raise CommandError("Client names cannot contain spaces, newlines or special characters.")
            i += 2
        else:
            raise CommandError(f"Syntax error in HELLO option '{argv[i].decode('utf-8', 'replace')}'")
    if creds is not None:
        if not _authenticate(c, creds[0], creds[1], argv[0]):
            raise CommandError(WRONGPASS)
    if not c.authenticated:
        raise CommandError(
            "-NOAUTH HELLO must be called with the client already authenticated, otherwise the "
            "HELLO AUTH <user> <pass> option can be used to authenticate the client and select "
            "the RESP protocol version at the same time"
        )
    if setname is not None:
        c.name = setname
    if version is not None:
        c.resp3 = version == 3
    return Map(
        [
            (b"server", b"redis"),
            (b"version", REDIS_VERSION.encode()),
            (b"proto", 3 if c.resp3 else 2),
            (b"id", c.id),
            (b"mode", b"cluster" if c.server.cluster is not None else b"standalone"),
            (b"role", b"master"),
            (b"modules", []),
        ]
    )


# ----------------------------------------------------------------------------- CLIENT

container("client", group="connection", since="2.4.0", summary="A container for client connection commands.")
_CLIENT = {"group": "connection"}


@command("client|id", 2, "noscript loading stale", **_CLIENT, since="5.0.0",
         summary="Returns the unique client ID of the connection.")
def client_id(c: Any, argv: list[bytes]) -> Any:
    return c.id


@command("client|setname", 3, "noscript loading stale", **_CLIENT, since="2.6.9",
         summary="Sets the connection name.", args="connection-name")
def client_setname(c: Any, argv: list[bytes]) -> Any:
    if not valid_name(argv[2]):
        raise CommandError("Client names cannot contain spaces, newlines or special characters.")
    c.name = argv[2]
    return OK


@command("client|getname", 2, "noscript loading stale", **_CLIENT, since="2.6.9",
         summary="Returns the name of the connection.")
def client_getname(c: Any, argv: list[bytes]) -> Any:
    return c.name or None


@command("client|setinfo", 4, "noscript loading stale", **_CLIENT, since="7.2.0",
         summary="Sets information specific to the client or connection.",
         args="attr=(LIB-NAME libname|LIB-VER libver)")
def client_setinfo(c: Any, argv: list[bytes]) -> Any:
    opt = argv[2].lower()
    typed = argv[2].decode("utf-8", "replace")
    if opt not in (b"lib-name", b"lib-ver"):
        raise CommandError(f"Unrecognized option '{typed}'")
    if not valid_name(argv[3]):
        raise CommandError(f"{typed} cannot contain spaces, newlines or special characters.")
    if opt == b"lib-name":
        c.lib_name = argv[3]
    else:
        c.lib_ver = argv[3]
    return OK


def client_flags(c: Any) -> str:
    kind = getattr(c, "repl_kind", None)  # set by dumpling.replication
    flags = "S" if kind == "replica" else "M" if kind == "master" else ""
    if c.monitor:
        flags += "O"
    if c.channels or c.patterns or c.shard_channels:
        flags += "P"
    if c.multi is not None:
        flags += "x"
    if c.blocked is not None:
        flags += "b"
    if c.tracking is not None:
        flags += "t"
        if c.tracking.broken_redirect:
            flags += "R"
        if c.tracking.bcast:
            flags += "B"
    if c.watch_dirty:
        flags += "d"
    if c.flags_close_after_reply:
        flags += "c"
    if c.unix_socket:
        flags += "U"
    if c.readonly_cluster:
        flags += "r"
    if c.no_evict:
        flags += "e"
    if c.no_touch:
        flags += "T"
    return flags or "N"


CLIENT_BASE_MEMORY = 20000 - 16384  # a connection's own structures, as tot-mem counts them (+ its reply buffer)


WATCHED_KEY_BYTES = 56  # a listNode and a watchedKey
QUEUED_COMMAND_BYTES = 24  # a multiCmd
DICT_ENTRY_BYTES = 24
RAX_NODE_BYTES = 32


def multi_memory(c: Any) -> int:
    """CLIENT LIST ``multi-mem`` (multiStateMemOverhead): queued MULTI commands (their argument
    bytes, argv pointers and multiCmd) and WATCHed keys (a list node and a watchedKey each)."""
    mem = len(c.watched) * WATCHED_KEY_BYTES
    if c.multi:
        mem += sum(QUEUED_COMMAND_BYTES + 8 * len(argv) + sum(map(len, argv)) for _, argv in c.multi)
    return mem


def _dict_memory(size: int) -> int:
    """dictMemUsage: entries plus a power-of-two bucket table."""
    return size * DICT_ENTRY_BYTES + 8 * (1 << (size - 1).bit_length()) if size else 0


def client_memory(c: Any) -> int:
    """CLIENT LIST ``tot-mem`` (Redis's getClientMemoryUsage): the connection itself, its query
    buffer, its output (``omem``), MULTI/WATCH state and its subscriptions' dicts."""
    if c.input_at_rest():
        argv_bytes = argc = query_buffer = 0
    else:
        argv_bytes, argc = c.pending_arguments()
        query_buffer = c.query_buffer_size()
        arriving = c.argument_arriving()
        if arriving >= BIG_ARG:
            # Redis makes room for a big argument once its $len is read: it counts whole at once,
            # however much of it has arrived (processMultibulkBuffer)
            query_buffer = max(query_buffer, arriving + 2)
    return (
        CLIENT_BASE_MEMORY
        + c.reply_buffer_size  # (dumpling.replybuffer)
        + argv_bytes + 8 * argc
        + query_buffer
        + c.output_buffer_size()
        + multi_memory(c)
        + _dict_memory(len(c.channels))
        + _dict_memory(len(c.patterns))
        + _dict_memory(len(c.shard_channels))
        + (_prefix_tree_memory(len(c.tracking.prefixes)) if c.tracking is not None else 0)
    )


def _prefix_tree_memory(prefixes: int) -> int:
    """Tracking BCAST prefixes, counted as Redis counts its rax of them: nodes times
    sizeof(raxNode) * sizeof(raxNode *) (32); a radix tree of n keys has about 2n + 1 nodes."""
    return (2 * prefixes + 1) * RAX_NODE_BYTES if prefixes else 0


def client_info_line(c: Any, running: list[bytes] | None = None) -> str:
    """One CLIENT LIST line; ``running`` is the client's own command while it runs (Redis keeps
    its arguments until it returns: ``argv-mem``, and in ``tot-mem``)."""
    now = time.time()
    qbuf = c.query_buffer_size()
    c.query_buffer.receiving(qbuf, c.argument_arriving())  # (a big argument's $len read since the cron)
    argv_mem = sum(map(len, running)) if running else c.pending_arguments()[0]
    multi = len(c.multi) if c.multi is not None else -1
    redir = c.tracking.redirect if c.tracking is not None else -1
    obl, oll, omem = c.output_buffer_layout()
    return (
        f"id={c.id} addr={c.addr} laddr={c.laddr} fd={c.fd} name={c.name.decode('utf-8', 'replace')} "
        f"age={int(now - c.created)} idle={int(now - c.last_interaction)} flags={client_flags(c)} "
        f"db={c.db.index} sub={len(c.channels)} psub={len(c.patterns)} ssub={len(c.shard_channels)} "
        f"multi={multi} watch={len(c.watched)} qbuf={qbuf} qbuf-free={c.query_buffer.free(qbuf)} argv-mem={argv_mem} "
        f"multi-mem={multi_memory(c)} rbs={c.reply_buffer_size} rbp={c.reply_buffer_peak} obl={obl} oll={oll} omem={omem} "
        f"tot-mem={client_memory(c) + (argv_mem + 8 * len(running) if running else 0)} "
        f"events=r cmd={c.last_cmd} user={c.user.name.decode('utf-8', 'replace')} redir={redir} resp={3 if c.resp3 else 2} "
        f"lib-name={c.lib_name.decode('utf-8', 'replace')} lib-ver={c.lib_ver.decode('utf-8', 'replace')}\n"
    )


def client_type(c: Any) -> bytes:
    kind = getattr(c, "repl_kind", None)  # set by dumpling.replication
    if kind is not None:
        return b"replica" if kind == "replica" else b"master"
    if c.channels or c.patterns or c.shard_channels:
        return b"pubsub"
    return b"normal"


_TYPES = {b"normal": b"normal", b"pubsub": b"pubsub", b"master": b"master", b"replica": b"replica",
          b"slave": b"replica"}


@command("client|list", -2, "admin noscript loading stale", **_CLIENT, since="2.4.0",
         summary="Lists open connections.", args=("[TYPE client-type=(NORMAL | MASTER | REPLICA | PUBSUB)@5.0.0] [ID "
               "client-id:integer...@6.2.0]"),
         tips="nondeterministic_output",
         complexity="O(N) where N is the number of client connections",
         history=(("2.8.12", "Added unique client `id` field."), ("5.0.0", "Added optional `TYPE` filter."),
                  ("6.0.0", "Added `user` field."),
                  ("6.2.0", "Added `argv-mem`, `tot-mem`, `laddr` and `redir` fields and the optional `ID` filter."),
                  ("7.0.0", "Added `resp`, `multi-mem`, `rbs` and `rbp` fields."), ("7.0.3", "Added `ssub` field.")))
def client_list(c: Any, argv: list[bytes]) -> Any:
    clients = sorted(c.server.clients.values(), key=lambda x: x.id)
    if len(argv) == 4 and argv[2].lower() == b"type":
        wanted = _TYPES.get(argv[3].lower())
        if wanted is None:
            raise CommandError(f"Unknown client type '{argv[3].decode('utf-8', 'replace')}'")
        clients = [x for x in clients if client_type(x) == wanted]
    elif len(argv) >= 4 and argv[2].lower() == b"id":
        ids = []
        for raw in argv[3:]:
            value = to_int(raw, "Invalid client ID")
            if value <= 0:
                raise CommandError("Invalid client ID")
            ids.append(value)
        clients = [x for x in clients if x.id in ids]
    elif len(argv) != 2:
        raise CommandError(SYNTAX)
    return Verbatim("".join(client_info_line(x, argv if x is c else None) for x in clients))


@command("client|info", 2, "noscript loading stale", **_CLIENT, since="6.2.0",
         summary="Returns information about the connection.", tips="nondeterministic_output")
def client_info(c: Any, argv: list[bytes]) -> Any:
    return Verbatim(client_info_line(c, argv))


@command("client|kill", -3, "admin noscript loading stale", **_CLIENT, since="2.4.0",
         summary="Terminates open connections.",
         args=("filter=(old-format/ip:port!2.8.12 | new-format=([ID client-id:integer@2.8.12] | [TYPE "
               "client-type=(NORMAL | MASTER@3.2.0 | SLAVE | REPLICA@5.0.0 | PUBSUB)@2.8.12] | [USER "
               "username] | [ADDR addr/ip:port] | [LADDR laddr/ip:port@6.2.0] | [SKIPME (YES | NO)] | "
               "[MAXAGE maxage:integer@7.4.0])...)"),
         complexity="O(N) where N is the number of client connections",
         history=(("2.8.12", "Added new filter format."), ("2.8.12", "`ID` option."),
                  ("3.2.0", "Added `master` type in for `TYPE` option."),
                  ("5.0.0", "Replaced `slave` `TYPE` with `replica`. `slave` still supported for backward compatibility."),
                  ("6.2.0", "`LADDR` option."), ("7.4.0", "`MAXAGE` option.")))
def client_kill(c: Any, argv: list[bytes]) -> Any:
    server = c.server
    if len(argv) == 3:
        target = argv[2].decode("utf-8", "replace")
        for other in list(server.clients.values()):
            if other.addr == target:
                _kill(c, other)
                return OK
        raise CommandError("No such client")
    filters: dict[str, Any] = {}
    skipme = True
    i = 2
    while i < len(argv):
        if i + 1 >= len(argv):
            raise CommandError(SYNTAX)
        opt, val = argv[i].lower(), argv[i + 1]
        if opt == b"id":
            value = to_int(val, "client-id should be greater than 0")
            if value <= 0:
                raise CommandError("client-id should be greater than 0")
            filters["id"] = value
        elif opt == b"type":
            wanted = _TYPES.get(val.lower())
            if wanted is None:
                raise CommandError(f"Unknown client type '{val.decode('utf-8', 'replace')}'")
            filters["type"] = wanted
        elif opt == b"addr":
            filters["addr"] = val.decode("utf-8", "replace")
        elif opt == b"laddr":
            filters["laddr"] = val.decode("utf-8", "replace")
        elif opt == b"user":
            if val not in server.acl.users:
                raise CommandError(f"No such user '{val.decode('utf-8', 'replace')}'")
            filters["user"] = val
        elif opt == b"skipme":
            if val.lower() == b"yes":
                skipme = True
            elif val.lower() == b"no":
                skipme = False
            else:
                raise CommandError(SYNTAX)
        elif opt == b"maxage":
            value = to_int(val)
            if value <= 0:
                raise CommandError("maxage should be greater than 0")
            filters["maxage"] = value
        else:
            raise CommandError(SYNTAX)
        i += 2
    killed = 0
    now = time.time()
    for other in list(server.clients.values()):
        if skipme and other is c:
            continue
        if "id" in filters and other.id != filters["id"]:
            continue
        if "type" in filters and client_type(other) != filters["type"]:
            continue
        if "addr" in filters and other.addr != filters["addr"]:
            continue
        if "laddr" in filters and other.laddr != filters["laddr"]:
            continue
        if "user" in filters and other.user.name != filters["user"]:
            continue
        if "maxage" in filters and now - other.created < filters["maxage"]:
            continue
        _kill(c, other)
        killed += 1
    return killed


def _kill(c: Any, other: Any) -> None:
    if other is c:
        c.flags_close_after_reply = True
    else:
        other.close()


@command("client|reply", 3, "noscript loading stale", **_CLIENT, since="3.2.0",
         summary="Instructs the server whether to reply to commands.", args="action=(ON|OFF|SKIP)")
def client_reply(c: Any, argv: list[bytes]) -> Any:
    mode = argv[2].lower()
    if mode == b"on":
        c.reply_mode = 0
        c.skip_this = False
        return OK
    if mode == b"off":
        c.reply_mode = 1
        c.skip_this = True
        return NO_REPLY
    if mode == b"skip":
        if c.reply_mode != 1:
            c.reply_mode = 2
        c.skip_this = True
        return NO_REPLY
    raise CommandError(SYNTAX)


def _on_off(arg: bytes) -> bool:
    low = arg.lower()
    if low == b"on":
        return True
    if low == b"off":
        return False
    raise CommandError(SYNTAX)


@command("client|no-evict", 3, "admin noscript loading stale", **_CLIENT, since="7.0.0",
         summary="Sets the client eviction mode of the connection.", args="enabled=(ON|OFF)")
def client_no_evict(c: Any, argv: list[bytes]) -> Any:
    c.no_evict = _on_off(argv[2])
    return OK


@command("client|no-touch", 3, "noscript loading stale", **_CLIENT, since="7.2.0",
         summary="Controls whether commands sent by the client affect the LRU/LFU of accessed keys.",
         args="enabled=(ON|OFF)")
def client_no_touch(c: Any, argv: list[bytes]) -> Any:
    c.no_touch = _on_off(argv[2])
    return OK


@command("client|unblock", -3, "admin noscript loading stale", **_CLIENT, since="5.0.0",
         summary="Unblocks a client blocked by a blocking command from a different connection.",
         args="client-id:integer [unblock-type=(TIMEOUT|ERROR)]",
         complexity="O(log N) where N is the number of client connections")
def client_unblock(c: Any, argv: list[bytes]) -> Any:
    target_id = to_int(argv[2], NOT_INTEGER)
    mode = argv[3].lower() if len(argv) > 3 else b"timeout"
    if len(argv) > 4 or mode not in (b"timeout", b"error"):
        raise CommandError("CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    other = c.server.clients.get(target_id)
    if other is None or other.blocked is None or c.server.client_pause.holds(other):
        return 0  # a command held by CLIENT PAUSE is not a blocking command: it cannot be unblocked
    from dumpling.protocol import ErrorReply

    if mode == b"error":
        reply: Any = ErrorReply("UNBLOCKED client unblocked via CLIENT UNBLOCK")
        c.server.count_error("UNBLOCKED")  # an error reply like any other: errorstats, total_error_replies
    else:
        reply = other.blocked.timeout_reply
    c.server.unblock(other, reply)
    return 1


@command("client|help", 2, "loading stale", **_CLIENT, since="5.0.0", summary="Returns helpful text about the different subcommands.")
def client_help(c: Any, argv: list[bytes]) -> Any:
    lines = [
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CACHING (YES|NO)", "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
        "GETREDIR", "    Return the client ID we are redirecting to when tracking is enabled.",
        "GETNAME", "    Return the name of the current connection.",
        "ID", "    Return the ID of the current connection.",
        "INFO", "    Return information about the current client connection.",
        "KILL <ip:port>", "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are:",
        "    * ADDR (<ip:port>|<unixsocket>:0)", "      Kill connections made from the specified address",
        "    * LADDR (<ip:port>|<unixsocket>:0)", "      Kill connections made to specified local address",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)", "      Kill connections by type.",
        "    * USER <username>", "      Kill connections authenticated by <username>.",
        "    * SKIPME (YES|NO)", "      Skip killing current connection (default: yes).",
        "    * ID <client-id>", "      Kill connections by client id.",
        "    * MAXAGE <maxage>", "      Kill connections older than the specified age.",
        "LIST [options ...]", "    Return information about client connections. Options:",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)", "      Return clients of specified type.",
        "UNPAUSE", "    Stop the current client pause, resuming traffic.",
        "PAUSE <timeout> [WRITE|ALL]", "    Suspend all, or just write, clients for <timeout> milliseconds.",
        "REPLY (ON|OFF|SKIP)", "    Control the replies sent to the current connection.",
        "SETNAME <name>", "    Assign the name <name> to the current connection.",
        "SETINFO <option> <value>", "    Set client meta attr. Options are:",
        "    * LIB-NAME: the client lib name.", "    * LIB-VER: the client lib version.",
        "UNBLOCK <clientid> [TIMEOUT|ERROR]", "    Unblock the specified blocked client.",
        "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]", "         [OPTIN] [OPTOUT] [NOLOOP]",
        "    Control server assisted client side caching.",
        "TRACKINGINFO", "    Report tracking status for the current connection.",
        "NO-EVICT (ON|OFF)", "    Protect current client connection from eviction.",
        "NO-TOUCH (ON|OFF)", "    Will not touch LRU/LFU stats when this mode is on.",
        "HELP", "    Print this help.",
    ]
    return [Status(line) for line in lines]
