"""ACL users: the rule language, GETUSER/LIST, enforcement, AUTH, ACL LOG, scripts.

Where Redis 7.0 (the differential oracle on PATH) answers as 7.4 does, replies are
compared byte for byte with it: rule errors, AUTH/HELLO flows, WHOAMI, CAT, DELUSER,
GENPASS/LOG argument errors, which commands and keys are allowed.  Texts that changed in
7.2 (GETUSER/LIST rule strings with ``sanitize-payload`` and command rules kept in the
order given, ``-NOPERM User <name> has no permissions ...``, DRYRUN's texts, the ten ACL
LOG fields) are asserted literally; each literal here was taken from Redis 7.4.1.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.fuzzing import examples
from tests.servers import (
    Pair,
    RawConnection,
    ServerProcess,
    encode_command,
    free_port,
    parse_reply,
    start_dumpling,
    start_redis,
    wait_blocked,
)

PW_HASH = "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4"  # sha256("pw")


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    ours, theirs = start_dumpling(), start_redis()
    yield ours, theirs
    ours.stop()
    theirs.stop()


def _reset(server: ServerProcess) -> None:
    with server.raw() as conn:
        users = parse_reply(conn.call("ACL", "USERS"))
        assert isinstance(users, list)
        for name in users:
            if name != b"default":
                conn.call("ACL", "DELUSER", name)
        conn.call("ACL", "SETUSER", "default", "reset", "on", "nopass", "~*", "&*", "+@all")
        conn.call("ACL", "LOG", "RESET")
        conn.call("FLUSHALL")


@pytest.fixture
def acl_pair(servers: tuple[ServerProcess, ServerProcess]) -> Iterator[Pair]:
    ours, theirs = servers
    _reset(ours)
    _reset(theirs)
    p = Pair(ours, theirs)
    yield p
    p.close()


@pytest.fixture
def ours(servers: tuple[ServerProcess, ServerProcess], acl_pair: Pair) -> ServerProcess:
    return servers[0]


@pytest.fixture
def conn(ours: ServerProcess) -> Iterator[RawConnection]:
    with ours.raw() as c:
        yield c


def _as(server: ServerProcess, user: str, password: str = "pw") -> RawConnection:
    c = server.raw()
    assert c.call("AUTH", user, password) == b"+OK\r\n"
    return c


# -- the rule language ----------------------------------------------------------------------------


RULE_ERRORS = [
    ("+acl|x",),
    ("+config|get|x",),
    ("+select|",),
    ("-select|0",),
    ("foo",),
    ("~*", "~x"),
    ("allchannels", "&x"),
    ("#abc",),
    ("#" + "A" * 64,),
    ("<nope",),
    ("!" + PW_HASH,),
    ("(~x",),
    ("(~x", "+get"),
    ("(~x +nosuch)",),
    ("(on)",),
    ("%RW~a*", "%R~b", "%W~c", "%X~d"),
    ("%~x",),
    ("%RR~x",),
    ("+nosuch",),
    ("-@nosuch",),
    ("+@",),
    ("~a b",),
]


@pytest.mark.parametrize("rules", RULE_ERRORS, ids=[" ".join(r) for r in RULE_ERRORS])
def test_setuser_errors_match_redis(acl_pair: Pair, rules: tuple[str, ...]) -> None:
    acl_pair.same("ACL", "SETUSER", "alice", "on", *rules)
    acl_pair.same("ACL", "GETUSER", "alice")  # nothing of a failed SETUSER was applied


def test_setuser_argument_errors_match_redis(acl_pair: Pair) -> None:
    for cmd in (
        ("ACL", "SETUSER", "ali ce"),
        ("ACL", "SETUSER", "ali\x00ce"),
        ("ACL", "SETUSER"),
        ("ACL", "DELUSER", "default"),
        ("ACL", "DELUSER", "nosuch", "default"),
        ("ACL", "DELUSER", "nosuch"),
        ("ACL", "GETUSER", "nosuch"),
        ("ACL", "GETUSER"),
        ("ACL", "WHOAMI", "x"),
        ("ACL", "USERS", "x"),
        ("ACL", "CAT", "nosuch"),
        ("ACL", "CAT", "a", "b"),
        ("ACL", "GENPASS", "0"),
        ("ACL", "GENPASS", "4097"),
        ("ACL", "GENPASS", "x"),
        ("ACL", "GENPASS", "1", "2"),
        ("ACL", "LOG", "x"),
        ("ACL", "LOG", "1", "2"),
        ("ACL", "LOG", "-5"),
        ("ACL", "DRYRUN", "nosuch", "get", "a"),
        ("ACL", "DRYRUN", "default", "nosuch", "a"),
        ("ACL", "DRYRUN", "default", "get"),
        ("ACL", "DRYRUN", "default", "config", "nosuch"),
        ("ACL", "DRYRUN", "default", "get", "a"),
        ("ACL", "LOAD"),
        ("ACL", "SAVE"),
        ("ACL", "NOSUCH"),
        ("ACL",),
        ("ACL", "WHOAMI"),
        ("ACL", "CAT"),
    ):
        acl_pair.same(*cmd)


def test_users_and_deluser_match_redis(acl_pair: Pair) -> None:
    for name in ("zed", "bob", "alice", "Bob"):
        acl_pair.same("ACL", "SETUSER", name)
    acl_pair.same("ACL", "USERS")  # sorted by name, as Redis's rax keeps them
    acl_pair.same("ACL", "DELUSER", "bob", "bob", "nosuch", "zed")
    acl_pair.same("ACL", "USERS")


def test_cat_matches_redis(acl_pair: Pair) -> None:
    acl_pair.same("ACL", "CAT")
    known = set(parse_reply(acl_pair.ours.call("COMMAND", "LIST"))) & set(  # type: ignore[arg-type]
        parse_reply(acl_pair.theirs.call("COMMAND", "LIST"))  # type: ignore[arg-type]
    )
    # Commands dumpling does not have yet (client|pause, module, replication) and newer ones
    # 7.0 does not have are left out; every shared command must be in the same categories.
    newer = {b"hexpire", b"hexpireat", b"hexpiretime", b"hpersist", b"hpexpire", b"hpexpireat", b"hpexpiretime",
             b"hpttl", b"httl", b"client|no-touch", b"client|setinfo", b"cluster|myshardid", b"wait"}
    for category in parse_reply(acl_pair.ours.call("ACL", "CAT")):  # type: ignore[union-attr]
        ours = set(parse_reply(acl_pair.ours.call("ACL", "CAT", category))) & known - newer  # type: ignore[arg-type]
        theirs = set(parse_reply(acl_pair.theirs.call("ACL", "CAT", category))) & known - newer  # type: ignore[arg-type]
        assert ours == theirs, category


def test_getuser_new_user(conn: RawConnection) -> None:
    assert conn.call("ACL", "SETUSER", "alice") == b"+OK\r\n"
    assert parse_reply(conn.call("ACL", "GETUSER", "alice")) == [
        b"flags", [b"off", b"sanitize-payload"], b"passwords", [], b"commands", b"-@all", b"keys", b"",
        b"channels", b"", b"selectors", [],
    ]
    assert parse_reply(conn.call("ACL", "LIST")) == [
        b"user alice off sanitize-payload resetchannels -@all",
        b"user default on nopass sanitize-payload ~* &* +@all",
    ]


def test_getuser_and_list_rules(conn: RawConnection) -> None:
    conn.call("ACL", "SETUSER", "bob", "on", ">pw", "~foo*", "+get", "+@string", "-set", "&ch*", "(%R~bar*", "+@list)")
    assert parse_reply(conn.call("ACL", "GETUSER", "bob")) == [
        b"flags", [b"on", b"sanitize-payload"], b"passwords", [PW_HASH.encode()],
        b"commands", b"-@all +get +@string -set", b"keys", b"~foo*", b"channels", b"&ch*",
        b"selectors", [[b"commands", b"-@all +@list", b"keys", b"%R~bar*", b"channels", b""]],
    ]
    assert parse_reply(conn.call("ACL", "LIST"))[0] == (  # type: ignore[index]
        f"user bob on sanitize-payload #{PW_HASH} ~foo* resetchannels &ch* -@all +get +@string -set "
        "(%R~bar* resetchannels -@all +@list)").encode()
    conn.call("ACL", "SETUSER", "alice", "+config|get", "+select|0", "-@all", "+select|1", "+client", "+@fast",
              "-client|kill", "%R~b", "%W~b", "%W~c")
    assert parse_reply(conn.call("ACL", "LIST"))[0] == (  # type: ignore[index]
        b"user alice off sanitize-payload ~b %W~c resetchannels -@all +select|1 +client +@fast -client|kill")
    conn.call("ACL", "SETUSER", "carol", "on", "nopass", "allcommands", "allkeys", "allchannels", "-get", "+get",
              "-@dangerous", "+config|get", "-config", "skip-sanitize-payload")
    assert parse_reply(conn.call("ACL", "GETUSER", "carol"))[:8] == [  # type: ignore[index]
        b"flags", [b"on", b"nopass", b"skip-sanitize-payload"], b"passwords", [],
        b"commands", b"+@all +get -@dangerous -config", b"keys", b"~*",
    ]
    conn.call("ACL", "SETUSER", "carol", "reset")
    assert parse_reply(conn.call("ACL", "LIST"))[2] == b"user carol off sanitize-payload resetchannels -@all"  # type: ignore[index]


def test_passwords(conn: RawConnection) -> None:
    conn.call("ACL", "SETUSER", "frank", "on", "nopass", "resetpass", ">a", ">b", ">a", "<a", "+acl|whoami")
    reply = parse_reply(conn.call("ACL", "GETUSER", "frank"))
    assert reply[3] == [b"3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"]  # type: ignore[index]
    assert reply[1] == [b"on", b"sanitize-payload"]  # type: ignore[index]
    with RawConnection(conn.sock.getpeername()[1]) as other:
        assert other.call("AUTH", "frank", "a").startswith(b"-WRONGPASS")
        assert other.call("AUTH", "frank", "b") == b"+OK\r\n"
    conn.call("ACL", "SETUSER", "frank", "#" + PW_HASH, "!3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d")
    with RawConnection(conn.sock.getpeername()[1]) as other:
        assert other.call("AUTH", "frank", "pw") == b"+OK\r\n"
        assert other.call("ACL", "WHOAMI") == b"$5\r\nfrank\r\n"


def test_dryrun(conn: RawConnection) -> None:
    conn.call("ACL", "SETUSER", "bob", "on", "nopass", "~foo*", "+get", "+@string", "-set", "&ch*", "(%R~bar* +@list)")
    conn.call("ACL", "SETUSER", "g6", "on", "nopass", "+@all", "%R~r*", "%W~w*", "~rw*")
    conn.call("ACL", "SETUSER", "g5", "on", "nopass", "-@all", "+@pubsub", "&chan*")
    cases = {
        ("bob", "get", "foo1"): b"+OK\r\n",
        ("bob", "get", "zzz"): b"$51\r\nUser bob has no permissions to access the 'zzz' key\r\n",
        ("bob", "set", "foo", "1"): b"$52\r\nUser bob has no permissions to run the 'set' command\r\n",
        ("bob", "lpush", "bar", "1"): b"$51\r\nUser bob has no permissions to access the 'bar' key\r\n",
        ("bob", "lrange", "bar", "0", "1"): b"+OK\r\n",
        ("bob", "config", "get", "x"): b"$59\r\nUser bob has no permissions to run the 'config|get' command\r\n",
        ("g6", "set", "w1", "x"): b"+OK\r\n",
        ("g6", "set", "w1", "x", "get"): b"$49\r\nUser g6 has no permissions to access the 'w1' key\r\n",
        ("g6", "sort", "r1", "store", "w1"): b"+OK\r\n",
        ("g6", "bitfield", "r1", "get", "u8", "0"): b"+OK\r\n",
        ("g6", "bitfield", "r1", "set", "u8", "0", "1"): b"$49\r\nUser g6 has no permissions to access the 'r1' key\r\n",
        ("g6", "copy", "r1", "w1"): b"+OK\r\n",
        ("g6", "copy", "w1", "r1"): b"$49\r\nUser g6 has no permissions to access the 'w1' key\r\n",
        ("g6", "exists", "w1"): b"+OK\r\n",
        ("g6", "lmove", "w1", "r1", "left", "left"): b"$49\r\nUser g6 has no permissions to access the 'w1' key\r\n",
        ("g6", "mset", "w1", "a", "r1", "b"): b"$49\r\nUser g6 has no permissions to access the 'r1' key\r\n",
        ("g5", "psubscribe", "chan*"): b"+OK\r\n",
        ("g5", "psubscribe", "chan1*"): b"$57\r\nUser g5 has no permissions to access the 'chan1*' channel\r\n",
        ("g5", "subscribe", "chan1", "other"): b"$56\r\nUser g5 has no permissions to access the 'other' channel\r\n",
        ("g5", "spublish", "chan1", "x"): b"+OK\r\n",
        ("g5", "unsubscribe", "other"): b"+OK\r\n",
    }
    for (user, *command), expected in cases.items():
        assert conn.call("ACL", "DRYRUN", user, *command) == expected, command


def test_category_and_subcommand_rules_match_redis(acl_pair: Pair) -> None:
    """Which commands a rule set allows, as DRYRUN reports (OK or not) against Redis."""
    rule_sets = [
        ("-@all", "+@read", "+@write", "-@hash", "~*", "(+@all -@slow ~a)"),
        ("+@all", "-@slow"),
        ("-@all", "+@slow"),
        ("-@all", "+@fast", "~x", "&chan"),
        ("-@all", "+client", "-client|kill", "+config|get", "+select|0"),
        ("+@all", "-config", "+config|get"),
        ("-@all", "+@admin", "-@dangerous"),
    ]
    probes = [("hset", "a", "b", "c"), ("hget", "a", "b"), ("client", "id"), ("client", "kill", "id", "1"),
              ("client", "list"), ("config", "get", "x"), ("config", "set", "x", "y"), ("incr", "a"),
              ("incr", "b"), ("select", "0"), ("select", "1"), ("keys", "*"), ("get", "x"), ("publish", "chan", "m"),
              ("publish", "other", "m"), ("acl", "whoami"), ("debug", "object", "x")]
    for n, rules in enumerate(rule_sets):
        acl_pair.same("ACL", "SETUSER", f"u{n}", "on", "nopass", *rules)
        for probe in probes:
            ours, theirs = acl_pair.both("ACL", "DRYRUN", f"u{n}", *probe)
            assert (ours == b"+OK\r\n") == (theirs == b"+OK\r\n"), (rules, probe, ours, theirs)


# -- enforcement -----------------------------------------------------------------------------------


def test_noperm_errors(ours: ServerProcess, conn: RawConnection) -> None:
    conn.call("ACL", "SETUSER", "bob", "on", ">pw", "~foo*", "+get", "+set", "+@list", "-lpop", "&ch*",
              "(%R~bar* +@hash)", "+multi", "+exec", "+publish", "+select|0", "+config|get")
    with _as(ours, "bob") as bob:
        assert bob.call("GET", "foo1") == b"$-1\r\n"
        assert bob.call("GET", "zzz") == b"-NOPERM No permissions to access a key\r\n"
        assert bob.call("SET", "foo1", "x") == b"+OK\r\n"
        assert bob.call("LPUSH", "foo2", "a") == b":1\r\n"
        assert bob.call("LPOP", "foo2") == b"-NOPERM User bob has no permissions to run the 'lpop' command\r\n"
        assert bob.call("HGET", "bar1", "f") == b"$-1\r\n"
        assert bob.call("HSET", "bar1", "f", "v") == b"-NOPERM No permissions to access a key\r\n"
        assert bob.call("HGET", "zz", "f") == b"-NOPERM No permissions to access a key\r\n"
        assert bob.call("INCR", "foo") == b"-NOPERM User bob has no permissions to run the 'incr' command\r\n"
        assert bob.call("PUBLISH", "ch1", "m") == b":0\r\n"
        assert bob.call("PUBLISH", "zz", "m") == b"-NOPERM No permissions to access a channel\r\n"
        assert bob.call("SELECT", "0") == b"+OK\r\n"
        assert bob.call("SELECT", "1") == b"-NOPERM User bob has no permissions to run the 'select' command\r\n"
        assert bob.call("CONFIG", "GET", "maxmemory") == b"*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n"
        assert bob.call("CONFIG", "SET", "maxmemory", "0") == (
            b"-NOPERM User bob has no permissions to run the 'config|set' command\r\n")
        # the plain requests the C fast path runs for unrestricted clients: refused in one read too
        bob.send(b"GET zzz\r\nSET zzz 1\r\nINCR foo1\r\nGET foo1\r\n")
        assert [bob.read_reply() for _ in range(4)] == [
            b"-NOPERM No permissions to access a key\r\n", b"-NOPERM No permissions to access a key\r\n",
            b"-NOPERM User bob has no permissions to run the 'incr' command\r\n", b"$1\r\nx\r\n"]
        # MULTI: refused at queueing time (EXECABORT), and re-checked at EXEC
        assert bob.call("MULTI") == b"+OK\r\n"
        assert bob.call("GET", "zzz") == b"-NOPERM No permissions to access a key\r\n"
        assert bob.call("EXEC").startswith(b"-EXECABORT")
        assert bob.call("MULTI") == b"+OK\r\n"
        assert bob.call("GET", "foo1") == b"+QUEUED\r\n"
        conn.call("ACL", "SETUSER", "bob", "-get")
        assert bob.call("EXEC") == (
            b"*1\r\n-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC "
            b"call. This command is no longer allowed for the following reason: no permission to execute the "
            b"command or subcommand\r\n")
    assert conn.call("SET", "zzz", "1") == b"+OK\r\n"  # the default user is untouched


def test_enforcement_matches_redis_allow_or_refuse(servers: tuple[ServerProcess, ServerProcess], acl_pair: Pair) -> None:
    """The same user on both servers: each command is run or refused alike (7.0's
    refusal texts differ, so only the outcome and the error code are compared)."""
    acl_pair.same("ACL", "SETUSER", "bob", "on", ">pw", "~k*", "%R~r*", "%W~w*", "&news.*", "+@read", "+@write",
                  "-@dangerous", "+@pubsub", "-psubscribe", "(~s* +@set)")
    ours, theirs = (_as(s, "bob") for s in servers)
    try:
        for cmd in [("SET", "k1", "v"), ("GET", "k1"), ("GET", "x"), ("SET", "w1", "v"), ("GET", "w1"),
                    ("SET", "r1", "v"), ("GET", "r1"), ("SADD", "s1", "m"), ("SADD", "k1s", "m"),
                    ("SMEMBERS", "s1"), ("LPUSH", "s2", "a"), ("FLUSHALL",), ("KEYS", "*"), ("PUBLISH", "news.a", "m"),
                    ("PUBLISH", "sport", "m"), ("PSUBSCRIBE", "news.*"), ("COPY", "r1", "w2"), ("COPY", "w1", "r2"),
                    ("MGET", "k1", "r1", "w1"), ("MSET", "k1", "a", "w1", "b"), ("RENAME", "k1", "w3")]:
            a, b = ours.call(*cmd), theirs.call(*cmd)
            assert a[:1] == b[:1] and a.split(b" ")[0] == b.split(b" ")[0], (cmd, a, b)
    finally:
        ours.close()
        theirs.close()


def test_subscribe_checks(ours: ServerProcess, conn: RawConnection) -> None:
    conn.call("ACL", "SETUSER", "sub", "on", ">pw", "-@all", "+@pubsub", "&chan*")
    with _as(ours, "sub") as c:
        assert c.call("SUBSCRIBE", "chan1", "other") == b"-NOPERM No permissions to access a channel\r\n"
        assert c.call("PSUBSCRIBE", "chan1*") == b"-NOPERM No permissions to access a channel\r\n"
        assert c.call("PSUBSCRIBE", "chan*").startswith(b"*3\r\n$10\r\npsubscribe")
        assert c.call("SUBSCRIBE", "chan1").startswith(b"*3\r\n$9\r\nsubscribe")


def test_revoked_channels_disconnect_subscribers(ours: ServerProcess, conn: RawConnection) -> None:
    conn.call("ACL", "SETUSER", "sub", "on", ">pw", "-@all", "+@pubsub", "+ping", "&chan*", "&other")
    with _as(ours, "sub") as c, _as(ours, "sub") as idle:
        c.call("SUBSCRIBE", "chan1")
        conn.call("ACL", "SETUSER", "sub", "&more")  # a superset: nobody is disconnected
        assert not c.is_closed(0.2)
        conn.call("ACL", "SETUSER", "sub", "resetchannels", "&other")
        assert c.is_closed()
        assert idle.call("PING") == b"+PONG\r\n"  # not subscribed: kept


def test_deluser_disconnects_its_clients(ours: ServerProcess, conn: RawConnection) -> None:
    conn.call("ACL", "SETUSER", "bob", "on", ">pw", "+@all", "~*")
    conn.call("ACL", "SETUSER", "carl", "on", ">pw", "+@all", "~*")
    with _as(ours, "bob") as b1, _as(ours, "bob") as b2, _as(ours, "carl") as other:
        assert b1.call("ACL", "DELUSER", "bob") == b":1\r\n"  # its own reply first, then closed
        assert b1.is_closed()
        assert b2.is_closed()
        assert other.call("PING") == b"+PONG\r\n"


def test_blocked_command_is_checked_again_when_served(ours: ServerProcess, conn: RawConnection) -> None:
    conn.call("ACL", "SETUSER", "bob", "on", ">pw", "+blpop", "~list*")
    with _as(ours, "bob") as bob:
        bob.send(b"BLPOP list1 0\r\n")
        wait_blocked(conn)
        conn.call("ACL", "SETUSER", "bob", "resetkeys", "~other*")
        conn.call("LPUSH", "list1", "foo")
        assert bob.read_reply() == b"-NOPERM No permissions to access a key\r\n"
    assert conn.call("LLEN", "list1") == b":1\r\n"


def test_client_kill_user_and_list(ours: ServerProcess, conn: RawConnection) -> None:
    conn.call("ACL", "SETUSER", "bob", "on", ">pw", "+@all", "~*")
    with _as(ours, "bob") as bob:
        assert b" user=bob " in bob.call("CLIENT", "INFO")
        assert conn.call("CLIENT", "KILL", "USER", "nosuch") == b"-ERR No such user 'nosuch'\r\n"
        assert conn.call("CLIENT", "KILL", "USER", "bob") == b":1\r\n"
        assert bob.is_closed()


# -- AUTH ------------------------------------------------------------------------------------------


def test_auth_flows_match_redis(servers: tuple[ServerProcess, ServerProcess], acl_pair: Pair) -> None:
    acl_pair.same("ACL", "SETUSER", "bob", "on", ">pw", "+@all", "~*")
    acl_pair.same("ACL", "SETUSER", "off", "off", ">pw", "+@all")
    acl_pair.same("ACL", "SETUSER", "free", "on", "nopass", "+acl")
    for cmd in [("AUTH", "pw"), ("AUTH", "bob", "no"), ("AUTH", "nosuch", "pw"), ("AUTH", "off", "pw"),
                ("AUTH", "a", "b", "c"), ("HELLO", "2", "AUTH", "bob", "no"), ("ACL", "WHOAMI"),
                ("AUTH", "bob", "pw"), ("ACL", "WHOAMI"), ("AUTH", "free", "anything"), ("ACL", "WHOAMI"),
                ("HELLO", "2", "AUTH", "bob", "pw", "SETNAME", "x"), ("ACL", "WHOAMI"), ("RESET",), ("ACL", "WHOAMI")]:
        ours, theirs = acl_pair.both(*cmd)
        if cmd[0] == "HELLO" and ours.startswith(b"*"):
            continue  # the server map differs (version, id)
        assert ours == theirs, cmd
    ours_server, theirs_server = servers
    for server in servers:
        with server.raw() as c:
            c.call("ACL", "SETUSER", "default", "resetpass", ">secret")
    try:
        with ours_server.raw() as a, theirs_server.raw() as b:
            for cmd in [("GET", "x"), ("ACL", "WHOAMI"), ("AUTH", "wrong"), ("HELLO", "3"), ("AUTH", "secret"),
                        ("GET", "x")]:
                assert a.call(*cmd) == b.call(*cmd), cmd
    finally:
        for server in servers:
            with _as(server, "bob") as c:
                c.call("ACL", "SETUSER", "default", "nopass")


def test_requirepass_is_the_default_users_password(ours: ServerProcess, conn: RawConnection) -> None:
    assert conn.call("CONFIG", "SET", "requirepass", "pw") == b"+OK\r\n"
    try:
        assert parse_reply(conn.call("ACL", "GETUSER", "default"))[3] == [PW_HASH.encode()]  # type: ignore[index]
        with ours.raw() as other:
            assert other.call("GET", "x") == b"-NOAUTH Authentication required.\r\n"
            assert other.call("AUTH", "default", "pw") == b"+OK\r\n"
    finally:
        conn.call("CONFIG", "SET", "requirepass", "")
    assert parse_reply(conn.call("ACL", "GETUSER", "default"))[1] == [b"on", b"nopass", b"sanitize-payload"]  # type: ignore[index]


# -- ACL LOG --------------------------------------------------------------------------------------------


def test_acl_log(ours: ServerProcess, conn: RawConnection) -> None:
    conn.call("ACL", "SETUSER", "bob", "on", ">pw", "~foo*", "+get", "&ch", "+publish", "+multi", "+exec")
    conn.call("CONFIG", "RESETSTAT")
    with ours.raw() as c:
        assert c.call("AUTH", "bob", "wrong").startswith(b"-WRONGPASS")
        c.call("AUTH", "bob", "pw")
        c.call("GET", "zzz")
        c.call("GET", "zzz")
        c.call("SET", "foo", "x")
        c.call("PUBLISH", "other", "x")
        c.call("MULTI")
        c.call("GET", "nope")
        c.call("EXEC")
    entries = [dict(zip(e[::2], e[1::2], strict=True)) for e in parse_reply(conn.call("ACL", "LOG"))]  # type: ignore[union-attr]
    summary = [(e[b"count"], e[b"reason"], e[b"context"], e[b"object"], e[b"username"]) for e in entries]
    assert summary == [
        (1, b"key", b"multi", b"nope", b"bob"),
        (1, b"channel", b"toplevel", b"other", b"bob"),
        (1, b"command", b"toplevel", b"set", b"bob"),
        (2, b"key", b"toplevel", b"zzz", b"bob"),
        (1, b"auth", b"toplevel", b"AUTH", b"bob"),
    ]
    newest = entries[0]
    assert list(newest) == [b"count", b"reason", b"context", b"object", b"username", b"age-seconds", b"client-info",
                            b"entry-id", b"timestamp-created", b"timestamp-last-updated"]
    assert b" user=bob " in newest[b"client-info"] and newest[b"entry-id"] == entries[1][b"entry-id"] + 1
    assert abs(newest[b"timestamp-created"] - time.time() * 1000) < 60000
    assert entries[3][b"timestamp-last-updated"] >= entries[3][b"timestamp-created"]
    assert len(parse_reply(conn.call("ACL", "LOG", "2"))) == 2  # type: ignore[arg-type]
    info = conn.call("INFO", "stats")
    for line in (b"acl_access_denied_auth:1", b"acl_access_denied_cmd:1", b"acl_access_denied_key:3",
                 b"acl_access_denied_channel:1"):
        assert line in info
    assert conn.call("ACL", "LOG", "RESET") == b"+OK\r\n"
    assert conn.call("ACL", "LOG") == b"*0\r\n"


# -- scripts ------------------------------------------------------------------------------------------


def test_scripts_run_with_the_callers_permissions(ours: ServerProcess, conn: RawConnection) -> None:
    conn.call("ACL", "SETUSER", "bob", "on", ">pw", "~foo*", "+get", "+eval", "+set")
    with _as(ours, "bob") as bob:
        assert bob.call("EVAL", "return redis.call('set','foo1','v')", "0") == b"+OK\r\n"
        assert bob.call("EVAL", "return redis.call('get','zzz')", "0").startswith(
            b"-ERR ACL failure in script: No permissions to access a key script: ")
        assert bob.call("EVAL", "return redis.call('incr','foo1')", "0").startswith(
            b"-ERR ACL failure in script: User bob has no permissions to run the 'incr' command script: ")
        assert bob.call("EVAL", "return redis.acl_check_cmd('get','foo1')", "0") == b":1\r\n"
        assert bob.call("EVAL", "return redis.acl_check_cmd('get','zzz')", "0") == b"$-1\r\n"
        assert bob.call("EVAL", "return redis.acl_check_cmd('incr','foo1')", "0") == b"$-1\r\n"
        assert bob.call("EVAL", "return redis.acl_check_cmd('nosuch')", "0").startswith(
            b"-ERR Invalid command passed to redis.acl_check_cmd()")
    entry = parse_reply(conn.call("ACL", "LOG", "1"))[0]  # type: ignore[index]
    assert entry[:10] == [b"count", 1, b"reason", b"command", b"context", b"lua", b"object", b"incr",  # type: ignore[index]
                          b"username", b"bob"]
    assert conn.call("EVAL", "return redis.acl_check_cmd('incr','x')", "0") == b":1\r\n"


# -- files and config ------------------------------------------------------------------------------------


def test_acl_save_and_load(tmp_path: Path) -> None:
    path = str(tmp_path / "users.acl")
    with open(path, "wb") as f:
        f.write(b"user default on nopass ~* &* +@all\n")
    server = start_dumpling("--aclfile", path)
    try:
        with server.raw() as c:
            c.call("ACL", "SETUSER", "bob", "on", ">pw", "~foo*", "+get", "(+set ~bar)")
            assert c.call("ACL", "SAVE") == b"+OK\r\n"
            with open(path, "rb") as f:
                saved = f.read()
            assert saved == (f"user bob on sanitize-payload #{PW_HASH} ~foo* resetchannels -@all +get "
                             "(~bar resetchannels -@all +set)\n"
                             "user default on nopass sanitize-payload ~* &* +@all\n").encode()
            with _as(server, "bob") as bob:
                with open(path, "wb") as f:
                    f.write(b"user bob on >pw ~* +@all\nuser alice on nopass +get\n")
                assert c.call("ACL", "LOAD") == b"+OK\r\n"
                assert bob.call("SET", "x", "1") == b"+OK\r\n"  # same name: rebound to the new rules
            assert parse_reply(c.call("ACL", "USERS")) == [b"alice", b"bob", b"default"]
            with open(path, "wb") as f:
                f.write(b"user carol on +nosuch\nnotauser\nuser carol on\n")
            assert c.call("ACL", "LOAD") == (
                f"-ERR {path}:1: Error in applying operation '+nosuch': Unknown command or category name in ACL. "
                f"{path}:2 should start with user keyword followed by the username. WARNING: Duplicate user "
                "'carol' found on line 3. WARNING: ACL errors detected, no change to the previously active ACL "
                "rules was performed\r\n").encode()
            assert parse_reply(c.call("ACL", "USERS")) == [b"alice", b"bob", b"default"]
    finally:
        server.stop()


def test_user_directives_in_config() -> None:
    server = start_dumpling("--user", "bob", "on", ">pw", "~*", "+@all", "--user", "default", "on", "resetpass", ">x",
                            "+@all", "~*")
    try:
        with server.raw() as c:
            assert c.call("GET", "a") == b"-NOAUTH Authentication required.\r\n"
            assert c.call("AUTH", "bob", "pw") == b"+OK\r\n"
            assert parse_reply(c.call("ACL", "USERS")) == [b"bob", b"default"]
    finally:
        server.stop()


def test_relative_aclfile_is_in_dir_and_config_rewrite_keeps_users(tmp_path: Path) -> None:
    (tmp_path / "users.acl").write_bytes(b"user bob on >pw ~* +@all\n")
    server = start_dumpling("--dir", str(tmp_path), "--aclfile", "users.acl")
    try:
        with _as(server, "bob") as c:
            assert c.call("ACL", "SAVE") == b"+OK\r\n"
        assert (tmp_path / "users.acl").read_bytes().startswith(b"user bob on sanitize-payload #")
    finally:
        server.stop()
    conf = tmp_path / "redis.conf"
    conf.write_text("user default on nopass ~* &* +@all -flushdb\n")
    port = free_port()
    server = ServerProcess([sys.executable, "-m", "dumpling", str(conf), "--port", str(port), "--save", ""], port,
                           "dumpling")
    try:
        with server.raw() as c:
            assert c.call("FLUSHDB").startswith(b"-NOPERM")
            c.call("ACL", "SETUSER", "bob", "on", ">pw", "+get")
            assert c.call("CONFIG", "REWRITE") == b"+OK\r\n"
        assert "user bob on sanitize-payload #" in conf.read_text()
        assert "user default on nopass sanitize-payload ~* &* +@all -flushdb" in conf.read_text()
    finally:
        server.stop()


def test_pubsub_default_allchannels() -> None:
    server = start_dumpling("--acl-pubsub-default", "allchannels")
    try:
        with server.raw() as c:
            c.call("ACL", "SETUSER", "bob")
            assert parse_reply(c.call("ACL", "LIST"))[0] == b"user bob off sanitize-payload &* -@all"  # type: ignore[index]
    finally:
        server.stop()


# -- redis-py ------------------------------------------------------------------------------------------


def test_redis_py_acl_methods(ours: ServerProcess) -> None:
    r = redis.Redis(port=ours.port, decode_responses=True)
    try:
        assert r.acl_setuser("bob", enabled=True, passwords=["+pw"], keys=["foo*"], commands=["+get", "+set"],
                             channels=["ch*"])
        user = r.acl_getuser("bob")
        assert user["enabled"] and user["keys"] == ["~foo*"] and user["channels"] == ["&ch*"]
        assert "+get" in user["commands"] and "+set" in user["commands"]
        assert r.acl_users() == ["bob", "default"]
        assert r.acl_whoami() == "default"
        assert "keyspace" in r.acl_cat() and "get" in r.acl_cat("string")
        assert len(r.acl_genpass()) == 64 and len(r.acl_genpass(32)) == 8
        assert r.acl_dryrun("bob", "get", "foo") == "OK"
        bob = redis.Redis(port=ours.port, username="bob", password="pw", decode_responses=True)
        try:
            assert bob.set("foo1", "x") and bob.get("foo1") == "x"
            with pytest.raises(redis.exceptions.NoPermissionError):
                bob.get("zzz")
        finally:
            bob.close()
        assert r.acl_log(count=1)[0]["reason"] == "key"
        assert r.acl_log_reset()
        assert any(line.startswith("user bob ") for line in r.acl_list())
        assert r.acl_deluser("bob") == 1
    finally:
        r.close()


def test_pattern_shortcuts_agree_with_stringmatch() -> None:
    from dumpling.acl import matches
    from dumpling.stringmatch import stringmatch

    patterns = [b"key:*", b"*", b"abc", b"a?c", b"a[bc]*", b"x\\*", b"", b"key:", b"k*y*", b"**", b"a*", b"\\*"]
    texts = [b"key:1", b"key:", b"abc", b"a*c", b"x*", b"", b"kxy", b"ab", b"key", b"a", b"*"]
    for pattern in patterns:
        for text in texts:
            assert matches(pattern, text) == stringmatch(pattern, text), (pattern, text)


def test_secrets_are_redacted_in_slowlog_and_monitor(ours: ServerProcess, conn: RawConnection) -> None:
    with ours.raw() as monitor:
        assert monitor.call("MONITOR") == b"+OK\r\n"
        conn.call("CONFIG", "SET", "slowlog-log-slower-than", "0")
        try:
            conn.call("SLOWLOG", "RESET")
            conn.call("ACL", "SETUSER", "bob", "on", ">secret")
            conn.call("AUTH", "bob", "secret")
            conn.call("HELLO", "2", "AUTH", "bob", "secret", "SETNAME", "x")
            conn.call("AUTH", "default", "x")
            conn.call("CONFIG", "SET", "requirepass", "", "maxmemory", "0")
        finally:
            conn.call("CONFIG", "SET", "slowlog-log-slower-than", "10000")
        entries = [e[3] for e in parse_reply(conn.call("SLOWLOG", "GET", "10"))]  # type: ignore[union-attr]
        assert [b"ACL", b"SETUSER", b"(redacted)", b"(redacted)", b"(redacted)"] in entries
        assert [b"AUTH", b"(redacted)", b"(redacted)"] in entries
        assert [b"HELLO", b"2", b"AUTH", b"(redacted)", b"(redacted)", b"SETNAME", b"x"] in entries
        assert [b"CONFIG", b"SET", b"requirepass", b"(redacted)", b"maxmemory", b"0"] in entries
        seen = monitor.read_all(0.3)
        assert b"secret" not in seen and b'"AUTH" "(redacted)" "(redacted)"' in seen


def test_sort_by_and_get_need_access_to_every_key(ours: ServerProcess, conn: RawConnection) -> None:
    conn.call("SET", "v1", "1")
    conn.call("LPUSH", "mylist", "1")
    denied_by = b"-ERR BY option of SORT denied due to insufficient ACL permissions.\r\n"
    denied_get = b"-ERR GET option of SORT denied due to insufficient ACL permissions.\r\n"
    with ours.raw() as c:
        for rules, allowed in ((("(+sort ~mylist)",), False), (("(+sort ~mylist ~v*)",), False),
                               (("(+sort ~mylist %W~*)",), False), (("(+sort ~mylist %R~*)",), True),
                               (("(+sort ~mylist ~*)",), True)):
            conn.call("ACL", "SETUSER", "sorter", "reset", "on", "nopass", *rules)
            assert c.call("AUTH", "sorter", "x") == b"+OK\r\n"
            assert c.call("SORT", "mylist", "BY", "v*") == (b"*1\r\n$1\r\n1\r\n" if allowed else denied_by)
            assert c.call("SORT", "mylist", "GET", "v*") == (b"*1\r\n$1\r\n1\r\n" if allowed else denied_get)
            assert c.call("SORT", "mylist", "BY", "nosort") == b"*1\r\n$1\r\n1\r\n"  # a constant BY reads nothing


def _pipelined(conn: RawConnection, data: bytes, replies: int) -> list[bytes]:
    """The replies to a pipeline, errors cut to their code (7.0's -NOPERM texts are older)."""
    conn.send(data)
    replies_read = [conn.read_reply() for _ in range(replies)]
    return [r.split(b" ")[0] if r.startswith(b"-") else r for r in replies_read]


def test_twins_run_for_users_who_may_run_them_on_every_key(servers: tuple[ServerProcess, ServerProcess],
                                                           acl_pair: Pair) -> None:
    """A restricted user allowed GET/SET/INCR/MSET/MGET/PING on every key gets the C twins
    (``twins_ok``); pipelined, the replies and the statistics are Redis's, and a rule change
    takes effect at once, in the middle of a pipeline, as it does in Redis."""
    acl_pair.same("ACL", "SETUSER", "app", "on", ">pw", "~*", "+@all", "-@dangerous")
    acl_pair.same("ACL", "SETUSER", "narrow", "on", ">pw", "~k*", "+@all")
    for name in ("app", "narrow"):
        ours, theirs = (_as(s, name) for s in servers)
        try:
            pipeline = b"".join(encode_command(*cmd) for cmd in [
                ("SET", "k1", "v1"), ("GET", "k1"), ("INCR", "k2"), ("INCRBY", "k2", "5"), ("MSET", "k3", "a", "x", "b"),
                ("MGET", "k1", "k3", "x"), ("SET", "x", "1"), ("GET", "x"), ("PING",), ("DECR", "x")])
            assert _pipelined(ours, pipeline, 10) == _pipelined(theirs, pipeline, 10), name
        finally:
            ours.close()
            theirs.close()
    ours, theirs = (_as(s, "app") for s in servers)
    try:
        revoke = encode_command("SET", "k1", "a") + encode_command("ACL", "WHOAMI")
        assert _pipelined(ours, revoke, 2) == _pipelined(theirs, revoke, 2)
        acl_pair.same("ACL", "SETUSER", "app", "-set", "resetkeys", "%R~*")  # no SET, and keys read-only
        after = encode_command("SET", "k1", "b") + encode_command("GET", "k1") + encode_command("INCR", "k2")
        got = _pipelined(ours, after, 3)
        assert got == _pipelined(theirs, after, 3)
        assert got == [b"-NOPERM", b"$1\r\na\r\n", b"-NOPERM"]
        # the general path's commands the user may run anywhere skip the check the same way
        acl_pair.same("ACL", "SETUSER", "app", "+set", "allkeys")
        general = b"".join(encode_command(*cmd) for cmd in [
            ("LPUSH", "l", "a", "b"), ("HSET", "h", "f", "v"), ("ZADD", "z", "1", "m"), ("LRANGE", "l", "0", "-1"),
            ("KEYS", "*"), ("PUBLISH", "ch", "m"), ("SADD", "s", "x")])
        got = _pipelined(ours, general, 7)
        assert got == _pipelined(theirs, general, 7)
        assert got[4] == got[5] == b"-NOPERM"  # @dangerous, and channels not granted
        acl_pair.same("ACL", "SETUSER", "app", "-lpush")
        again = encode_command("LPUSH", "l", "c") + encode_command("RPUSH", "l", "d")
        got = _pipelined(ours, again, 2)
        assert got == _pipelined(theirs, again, 2) == [b"-NOPERM", b":3\r\n"]
    finally:
        ours.close()
        theirs.close()


def test_key_pattern_users_match_redis_in_pipelines(servers: tuple[ServerProcess, ServerProcess],
                                                    acl_pair: Pair) -> None:
    """Users with literal and prefix key patterns (what the C loop checks itself,
    ``User.keyed_commands``), with read-only/write-only patterns and selectors: pipelines of
    allowed and refused keys give Redis's replies and Redis's ACL LOG; a rule change between
    pipelines applies at once."""
    acl_pair.same("ACL", "SETUSER", "keyed", "on", ">pw", "~app:*", "%R~ro:*", "%W~wo:*", "~exact", "+@all",
                  "-@dangerous", "(~sel:* +get +lpush)")
    ours, theirs = (_as(s, "keyed") for s in servers)
    commands: list[tuple[str, ...]] = [
        ("SET", "app:1", "v"), ("GET", "app:1"), ("SET", "ro:1", "v"), ("GET", "ro:1"), ("SET", "wo:1", "v"),
        ("GET", "wo:1"), ("SET", "wo:2", "v", "GET"), ("LPUSH", "app:l", "a"), ("LPUSH", "sel:l", "a"),
        ("LPUSH", "other", "a"), ("LRANGE", "sel:l", "0", "-1"), ("GET", "sel:x"), ("MSET", "app:2", "x", "app:3", "y"),
        ("MSET", "app:2", "x", "ro:2", "y"), ("MGET", "app:2", "ro:2", "wo:9"), ("MGET", "app:2", "ro:1"),
        ("SET", "exact", "1"), ("SET", "exactly", "1"), ("SET", "app:", "e"), ("GET", "app"), ("PING",),
        ("DBSIZE",), ("HSET", "app:h", "f", "v"), ("HGETALL", "ro:h"), ("RENAME", "app:1", "ro:1"),
        ("COPY", "app:2", "app:4"), ("LMOVE", "app:l", "wo:l", "LEFT", "RIGHT"), ("EXISTS", "app:1", "zz"),
        ("ZADD", "app:z", "1", "m"), ("ZUNIONSTORE", "app:u", "1", "app:z"), ("ZUNIONSTORE", "app:u", "1", "ro:z"),
        ("BITFIELD", "app:b", "SET", "u8", "0", "1"), ("BITFIELD", "ro:b", "GET", "u8", "0"),
        ("BITFIELD", "ro:b", "SET", "u8", "0", "1"), ("PFADD", "app:hll", "a", "b"), ("PFCOUNT", "app:hll"),
        ("PFADD", "ro:hll", "a"), ("PFCOUNT", "ro:hll"), ("PFADD", "wo:hll", "a"), ("PFCOUNT", "wo:hll"), ("FLUSHALL",)]
    try:
        pipeline = b"".join(encode_command(*cmd) for cmd in commands)
        got = _pipelined(ours, pipeline, len(commands))
        assert got == _pipelined(theirs, pipeline, len(commands))
        assert got.count(b"-NOPERM") >= 10  # the pipeline exercises refusals, not only passes
        log = [acl_pair.both("ACL", "LOG", "100")[i] for i in (0, 1)]
        fields = [[(e[1], e[3], e[5], e[7]) for e in parse_reply(x)] for x in log]  # type: ignore[union-attr]
        assert fields[0] == fields[1]  # count, reason, context, object of every denial
        acl_pair.same("ACL", "SETUSER", "keyed", "resetkeys", "~ro:*")  # ro: writable now, app: gone
        after = [("SET", "ro:1", "w"), ("GET", "app:2"), ("LPUSH", "sel:l", "b"), ("SET", "app:9", "v")]
        data = b"".join(encode_command(*cmd) for cmd in after)
        got = _pipelined(ours, data, len(after))
        assert got == _pipelined(theirs, data, len(after))
        assert got[0] == b"+OK\r\n" and got[1] == got[3] == b"-NOPERM"
    finally:
        ours.close()
        theirs.close()


def test_c_key_check_never_allows_what_the_acl_refuses() -> None:
    """The C loop's own key check (``_fastpath.keys_allowed`` over ``User.keyed_commands``)
    runs a command unasked only where ``User.check`` allows it, and for rules made only of
    literal and prefix patterns it answers exactly as ``User.check``."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from dumpling import accel
    from dumpling.acl import OK, RuleError, User
    from dumpling.commands import load_table

    if accel.fastpath is None:
        pytest.skip("the C request loop is not built (pure install)")
    load_table()
    fast = accel.fastpath
    names = ["get", "set", "lpush", "mset", "mget", "del", "rename", "copy", "lmove", "bitfield", "ping", "exists",
             "hset", "zunionstore", "sinterstore", "getex", "getdel", "append", "object|encoding", "xadd"]
    from dumpling.acl import lookup

    keys = st.sampled_from([b"a", b"ab", b"abc", b"b", b"", b"a*", b"x:1", b"x:", b"x", b"y:2"])
    pattern = st.sampled_from([b"~a*", b"~ab", b"%R~a*", b"%W~x:*", b"~x:*", b"%RW~y*", b"~*", b"%R~*", b"~a?c",
                               b"~[ax]*", b"~a\\*", b"allkeys"])
    rules = st.lists(pattern, max_size=3)
    commands = st.sampled_from(["+@all", "+@read", "+@write", "+get", "+lpush|x", "-@string", "+@list"])

    @settings(max_examples=examples(400), deadline=None)
    @given(root=rules, root_cmds=st.lists(commands, max_size=3), sel=st.none() | rules, sel_cmds=st.lists(commands, max_size=2),
           name=st.sampled_from(names), args=st.lists(keys, min_size=1, max_size=5))
    def check(root: list[bytes], root_cmds: list[str], sel: list[bytes] | None, sel_cmds: list[str], name: str,
              args: list[bytes]) -> None:
        user = User(b"u")
        rules = [b"on", *root, *(c.encode() for c in root_cmds)]
        if sel is not None:
            rules.append(b"(" + b" ".join([*sel, *(c.encode() for c in sel_cmds)]) + b")")
        for rule in rules:
            try:
                user.apply(rule, False)
            except RuleError:  # e.g. a pattern after '~*': Redis refuses it too; the rest still applies
                continue
        cmd = lookup(name.encode())
        assert cmd is not None
        argv = [*(p.encode() for p in name.split("|")), *args]
        if name == "bitfield":
            argv += [b"GET", b"u8", b"0"]
        expected = user.check(cmd, argv)[0] == OK
        rule = user.keyed_commands().get(cmd.name)
        if rule is None:
            return
        answer = fast.keys_allowed(rule, argv)
        assert not answer or expected, (root, root_cmds, sel, sel_cmds, argv)
        if all(b"?" not in p and b"[" not in p and b"\\" not in p for p in [*root, *(sel or [])]) and name != "bitfield":
            assert answer == expected, (root, root_cmds, sel, sel_cmds, argv)

    check()
