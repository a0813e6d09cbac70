"""The ACL command family, logins, and the ACL checks the dispatcher and scripts call.

The rules themselves (users, selectors, matching) are pure and live in ``dumpling.acl``;
this module owns the server side: ``server.acl`` (set up here), which client runs as
which user (``login``/``logout``: ``client.user``, ``client.authenticated`` and
``client.unrestricted``, the one attribute the fast paths test), the ``-NOPERM`` refusals
with their ACL LOG entries, the ``aclfile`` and ``user`` directives, and what becomes of
connected clients when their user is changed or deleted.
"""

from __future__ import annotations

import os
import secrets
import time
from typing import TYPE_CHECKING, Any

from dumpling import accel, acl
from dumpling.acl import Acl, RuleError, User
from dumpling.commands.common import to_int
from dumpling.commands.registry import ACL_ORDER, Command, command, container
from dumpling.errors import CommandError
from dumpling.protocol import OK, Double, ErrorReply, Map, SetReply, Status

if TYPE_CHECKING:
    from dumpling.dispatch import Server
    from dumpling.server import Client

ACLS = {"group": "server"}
NO_ACLFILE = ("This Redis instance is not configured to use an ACL file. You may want to specify users via the "
              "ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file "
              "set) in order to store users in the Redis configuration.")


def setup(server: Server) -> None:
    config = server.config
    server.acl = Acl(pubsub_all=config["acl-pubsub-default"] == "allchannels")
    server.acl.set_default_password(config["requirepass"])

    def changed(name: str) -> None:
        if name == "requirepass":
            server.acl.set_default_password(config["requirepass"])
        elif name == "acl-pubsub-default":
            server.acl.pubsub_all = config["acl-pubsub-default"] == "allchannels"

    config.listeners.append(changed)
    server.startup_tasks.insert(0, lambda: _load_at_startup(server))


async def _load_at_startup(server: Server) -> bool:
    """ACLLoadUsersAtStartup: ``user`` directives of the config, or the ``aclfile``."""
    directives: list[list[bytes]] = getattr(server.config, "user_directives", [])
    filename = server.config["aclfile"]
    if filename and directives:
        server.log("warning", "Configuring Redis with users defined in redis.conf and at the same setting an ACL "
                   "file path is invalid. This setup is very likely to lead to configuration errors and security "
                   "holes, please define either an ACL file or declare users directly in your redis.conf, but "
                   "not both.")
        return False
    seen: set[bytes] = set()
    for words in directives:
        name, rules = words[0], words[1:]
        if name in seen:
            server.log("warning", f"Error in user declaration '{_s(name)}': {acl.ERR_EALREADY}")
            return False
        seen.add(name)
        if acl.has_spaces(name):
            server.log("warning", "Spaces not allowed in ACL usernames")
            return False
        user = server.acl.users.get(name)
        if user is None:
            user = server.acl.users[name] = server.acl.new_user(name)
        else:
            user.apply(b"reset", server.acl.pubsub_all)
        try:
            merged = acl.merge_selector_args(rules)
        except RuleError as e:
            server.log("warning", f"Error in user declaration '{e.reason}': {acl.ERR_WRONG}")
            return False
        for op in merged:
            try:
                user.apply(op, server.acl.pubsub_all)
            except RuleError as e:
                server.log("warning", f"Error loading ACL rule '{_s(op)}' for the user named '{_s(name)}': {e.reason}")
                server.log("warning", "Critical error while loading ACLs. Exiting.")
                return False
        if not user.enabled:
            server.log("notice", f"The user '{_s(name)}' is disabled (there is no 'on' modifier in the user "
                       "description). Make sure this is not a configuration error.")
    if filename:
        errors = load_file(server, filename)
        if errors is not None:
            server.log("warning", f"Aborting Redis startup because of ACL errors: {errors}")
            return False
    refresh_clients(server)
    return True


def _s(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


# -- which user a client runs as ----------------------------------------------------------------------


def set_access(c: Client) -> None:
    """What the fast paths may skip for ``c``: every check (``unrestricted``), the ACL check
    of the commands in ``acl_free`` (the C loop's general path), the C twins (``twins_ok``:
    all of them are in ``acl_free``); ``acl_keyed``: the commands whose keys the C loop matches
    against the user's literal and prefix patterns itself (User.keyed_commands)."""
    c.unrestricted = c.authenticated and c.user.unrestricted
    c.acl_free = c.user.free_commands() if c.authenticated and not c.unrestricted else frozenset()
    c.acl_keyed = c.user.keyed_commands() if c.authenticated and not c.unrestricted else {}
    c.twins_ok = c.unrestricted or (accel.fastpath is not None and c.acl_free.issuperset(accel.fastpath.commands()))


def login(c: Client, user: User) -> None:
    c.user = user
    c.authenticated = True
    set_access(c)


def reset_login(c: Client) -> None:
    """A new or RESET connection: the default user, authenticated if it needs no password."""
    server_acl: Acl = c.server.acl
    c.user = server_acl.default
    c.authenticated = not server_acl.auth_required()
    set_access(c)


def deauthenticate_and_close(c: Client) -> None:
    """deauthenticateAndCloseClient: the current client closes after its reply."""
    server = c.server
    c.user = server.acl.default
    c.authenticated = False
    set_access(c)
    if c is server.current_client:
        c.flags_close_after_reply = True
    else:
        c.close()


def refresh_clients(server: Server) -> None:
    """After a user's rules changed: which clients may skip the checks."""
    for c in server.clients.values():
        set_access(c)


def authenticate(c: Client, name: bytes, password: bytes, verb: bytes) -> bool:
    """checkPasswordBasedAuth: log in, or count and log the failure (False)."""
    user = c.server.acl.authenticate(name, password)
    if user is not None:
        login(c, user)
        return True
    log_denial(c, acl.DENIED_AUTH, verb, name)
    return False


def log_denial(c: Client, reason: int, obj: bytes, username: bytes | None = None, context: str | None = None) -> None:
    from dumpling.commands.connection import client_info_line

    server = c.server
    cinfo = client_info_line(c).rstrip("\n").encode("utf-8", "surrogateescape")
    server.acl.add_log(reason, context or acl.client_context(c), obj,
                       c.user.name if username is None else username, cinfo, server.config["acllog-max-len"])


def refusal(c: Client, user: User, cmd: Command, argv: list[bytes], context: str) -> str | None:
    """ACLCheckAllPerm + addACLLogEntry + getAclErrorMessage: the (non-verbose) refusal
    text, or None when ``user`` may run the command."""
    result, idx = user.check(cmd, argv)
    if result == acl.OK:
        return None
    obj = cmd.name.encode() if result == acl.DENIED_CMD else argv[idx]
    log_denial(c, result, obj, user.name, context)
    return acl.error_message(result, user, cmd, argv[idx], False)


def check_command(c: Client, cmd: Command, argv: list[bytes]) -> str | None:
    """The dispatcher's ACL step for a restricted client: the -NOPERM error text, or None."""
    c.last_cmd = cmd.name  # Redis sets lastcmd at lookup: a refused command shows in CLIENT LIST too
    message = refusal(c, c.user, cmd, argv, acl.client_context(c))
    return None if message is None else "NOPERM " + message


def guard_blocked(c: Client, cmd: Command, argv: list[bytes], blocked: Any) -> None:
    """A blocked command of a restricted client is checked again when it would be served
    (Redis reprocesses it): refused then, it is answered with -NOPERM."""
    retry = blocked.retry

    def checked_retry() -> Any:
        message = check_command(c, cmd, argv)
        if message is not None:
            cmd.rejected_calls += 1
            c.server.count_error("NOPERM")
            blocked.rejected = True
            return ErrorReply(message)
        return retry()

    blocked.retry = checked_retry


def full_key_access(c: Client, argv: list[bytes]) -> bool:
    """SORT's BY and GET patterns name arbitrary keys: allowed only to a user who may read
    every key with this command."""
    if c.unrestricted:
        return True
    cmd = acl.lookup(argv[0])
    return cmd is not None and c.user.unrestricted_key_access(cmd, argv, acl.READ)


EXEC_REASONS = {
    acl.DENIED_CMD: "no permission to execute the command or subcommand",
    acl.DENIED_KEY: "no permission to touch the specified keys",
    acl.DENIED_CHANNEL: "no permission to access one of the channels used as arguments",
}


def check_queued(c: Client, cmd: Command, argv: list[bytes]) -> str | None:
    """EXEC re-checks every queued command (the rules may have changed since)."""
    result, idx = c.user.check(cmd, argv)
    if result == acl.OK:
        return None
    log_denial(c, result, cmd.name.encode() if result == acl.DENIED_CMD else argv[idx], None, "multi")
    return ("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. "
            "This command is no longer allowed for the following reason: " + EXEC_REASONS[result])


# -- secrets kept out of SLOWLOG and MONITOR ----------------------------------------------------------------

REDACTED = b"(redacted)"
_SENSITIVE_CONFIGS = {b"requirepass", b"masterauth", b"masteruser", b"tls-key-file-pass", b"tls-client-key-file-pass"}


def _redacted_positions(name: str, argv: list[bytes]) -> list[int]:
    """The arguments Redis's handlers pass to redactClientCommandArgument."""
    if name == "auth":
        return [1, 2] if len(argv) == 3 else [1]
    if name in ("acl|setuser", "acl|deluser"):
        return list(range(2, len(argv)))
    if name == "acl|getuser":
        return [2]
    out: list[int] = []
    if name == "hello":
        i = 2
        while i < len(argv):
            opt = argv[i].lower()
            if opt == b"auth" and i + 2 < len(argv):
                out += [i + 1, i + 2]
                i += 3
            elif opt == b"setname" and i + 1 < len(argv):
                i += 2
            else:
                break
    elif name == "migrate":
        for j in range(6, len(argv)):
            opt = argv[j].lower()
            if opt == b"auth":
                out.append(j + 1)
            elif opt == b"auth2":
                out += [j + 1, j + 2]
    elif name == "config|set":
        for j in range(2, len(argv) - 1, 2):
            if argv[j].lower() in _SENSITIVE_CONFIGS:
                out.append(j + 1)
    return out


def redacted(cmd: Command, argv: list[bytes]) -> list[bytes]:
    """``argv`` as SLOWLOG and MONITOR show it: passwords and ACL rules as ``(redacted)``."""
    if cmd.name not in _REDACTING:
        return argv
    shown = list(argv)
    for i in _redacted_positions(cmd.name, argv):
        if i < len(shown):
            shown[i] = REDACTED
    return shown


_REDACTING = frozenset({"auth", "hello", "acl|setuser", "acl|deluser", "acl|getuser", "migrate", "config|set"})


# -- file -----------------------------------------------------------------------------------------------


def acl_path(server: Server, filename: str) -> str:
    """A relative ``aclfile`` is found in ``dir`` (Redis chdir()s there at startup)."""
    directory = server.config["dir"]
    return os.path.join(directory, filename) if directory and not os.path.isabs(filename) else filename


def load_file(server: Server, filename: str) -> str | None:
    """ACLLoadFromFile: replace all users, or change nothing and return the errors."""
    try:
        with open(acl_path(server, filename), "rb") as f:
            text = f.read()
    except OSError as e:
        return f"Error loading ACLs, opening file '{filename}': {e.strerror}"
    shown = server.config["aclfile"]
    users: dict[bytes, User] = {}
    errors = ""
    for number, raw in enumerate(text.split(b"\n"), 1):
        line = raw.strip(b" \t\r\n")
        if not line:
            continue
        words = line.split(b" ")  # sdssplitlen on single spaces: doubled spaces give empty (no-op) rules
        if words[0] != b"user" or len(words) < 2:
            errors += f"{shown}:{number} should start with user keyword followed by the username. "
            continue
        name = words[1]
        if acl.has_spaces(name):
            errors += f"'{shown}:{number}: username '{_s(name)}' contains invalid characters. "
            continue
        if name in users:
            errors += f"WARNING: Duplicate user '{_s(name)}' found on line {number}. "
            continue
        user = users[name] = server.acl.new_user(name)
        try:
            merged = acl.merge_selector_args(words[2:])
        except RuleError:
            errors += f"{shown}:{number}: Unmatched parenthesis in selector definition."
            merged = []
        syntax_error = False
        for op in merged:
            op = op.strip(b"\t\r\n")
            try:
                user.apply(op, server.acl.pubsub_all)
            except RuleError as e:
                if e.reason == acl.ERR_ENOENT:
                    errors += f"{shown}:{number}: Error in applying operation '{_s(op)}': {e.reason}. "
                elif not syntax_error:
                    errors += f"{shown}:{number}: {e.reason}. "
                    syntax_error = True
    if errors:
        return errors + "WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
    state: Acl = server.acl
    new_default = users.pop(b"default", None)
    if new_default is None:
        new_default = state._create_default()
    state.default.copy_from(new_default)
    old = state.users
    state.users = {b"default": state.default}
    state.users.update(users)
    for c in list(server.clients.values()):
        if c.from_script:
            continue
        user = state.users.get(c.user.name)
        if user is None or _loses_channels(c, user):
            deauthenticate_and_close(c)
            continue
        c.user = user
    del old
    refresh_clients(server)
    return None


def save_file(server: Server, filename: str) -> bool:
    """ACLSaveToFile: write every user through a temporary file, then rename it."""
    users = server.acl.users
    data = b"".join(b"user " + name + b" " + users[name].describe() + b"\n" for name in sorted(users))
    filename = acl_path(server, filename)
    tmp = f"{filename}.tmp-{os.getpid()}-{int(time.time() * 1000)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, filename)
    except OSError as e:
        server.log("warning", f"Writing ACL file for ACL SAVE: {e.strerror}")
        try:
            os.unlink(tmp)
        except OSError as gone:
            server.log("debug", f"ACL SAVE temporary file: {gone.strerror}")
        return False
    return True


# -- pub/sub clients that lose their channels ---------------------------------------------------------


def _upcoming_channels(new: User, original: User) -> list[bytes] | None:
    """getUpcomingChannelList: None when ``new`` keeps every channel ``original`` had."""
    if any(s.allchannels for s in new.selectors):
        return None
    upcoming = [ch for s in new.selectors for ch in s.channels]
    for s in original.selectors:
        if s.allchannels:
            return upcoming
        if any(ch not in upcoming for ch in s.channels):
            return upcoming
    return None


def _must_kill(c: Client, upcoming: list[bytes]) -> bool:
    if not (c.channels or c.patterns or c.shard_channels):
        return False
    return (any(not acl.channel_in_list(upcoming, p, True) for p in c.patterns)
            or any(not acl.channel_in_list(upcoming, ch, False) for ch in c.channels)
            or any(not acl.channel_in_list(upcoming, ch, False) for ch in c.shard_channels))


def _loses_channels(c: Client, new: User) -> bool:
    upcoming = _upcoming_channels(new, c.user)
    return upcoming is not None and _must_kill(c, upcoming)


def kill_pubsub_clients(server: Server, new: User, original: User) -> None:
    """ACLKillPubsubClientsIfNeeded: subscribers whose channels were revoked are closed."""
    upcoming = _upcoming_channels(new, original)
    if upcoming is None:
        return
    for c in list(server.clients.values()):
        if c.user is original and _must_kill(c, upcoming):
            deauthenticate_and_close(c)


# -- ACL ---------------------------------------------------------------------------------------------------

container("acl", group="server", since="6.0.0", summary="A container for Access List Control commands.")


@command("acl|setuser", -3, "admin noscript loading stale", **ACLS, since="6.0.0",
         summary="Creates and modifies an ACL user and its rules.", complexity="O(N). Where N is the number of rules provided.",
         args="username:string [rule:string...]", tips="request_policy:all_nodes response_policy:all_succeeded",
         history=(("6.2.0", "Added Pub/Sub channel patterns."), ("7.0.0", "Added selectors and key based permissions.")))
def acl_setuser(c: Any, argv: list[bytes]) -> Any:
    name = argv[2]
    if acl.has_spaces(name):
        raise CommandError("Usernames can't contain spaces or null characters")
    state: Acl = c.server.acl
    user = state.users.get(name)
    try:
        staged = state.staged(user, name, argv[3:])
    except RuleError as e:
        raise CommandError(e.reason.replace("\r", " ").replace("\n", " ")) from None
    if user is None:
        state.users[name] = staged
    else:
        kill_pubsub_clients(c.server, staged, user)
        user.copy_from(staged)
    refresh_clients(c.server)
    return OK


@command("acl|deluser", -3, "admin noscript loading stale", **ACLS, since="6.0.0",
         summary="Deletes ACL users, and terminates their connections.",
         complexity="O(1) amortized time considering the typical user.", args="username:string...",
         tips="request_policy:all_nodes response_policy:all_succeeded")
def acl_deluser(c: Any, argv: list[bytes]) -> Any:
    if b"default" in argv[2:]:
        raise CommandError("The 'default' user cannot be removed")
    state: Acl = c.server.acl
    deleted = 0
    for name in argv[2:]:
        user = state.users.pop(name, None)
        if user is None:
            continue
        deleted += 1
        for other in list(c.server.clients.values()):
            if other.user is user:
                deauthenticate_and_close(other)
    return deleted


def _selector_map(s: acl.Selector) -> list[tuple[bytes, Any]]:
    return [(b"commands", s.command_rules()), (b"keys", s.keys_text()), (b"channels", s.channels_text())]


@command("acl|getuser", 3, "admin noscript loading stale", **ACLS, since="6.0.0",
         summary="Lists the ACL rules of a user.",
         complexity="O(N). Where N is the number of password, command and pattern rules that the user has.",
         args="username:string",
         history=(("6.2.0", "Added Pub/Sub channel patterns."),
                  ("7.0.0", "Added selectors and changed the format of key and channel patterns from a list to "
                   "their rule representation.")))
def acl_getuser(c: Any, argv: list[bytes]) -> Any:
    user = c.server.acl.users.get(argv[2])
    if user is None:
        return None
    fields: list[tuple[bytes, Any]] = [
        (b"flags", SetReply(user.flag_names())),
        (b"passwords", [p.encode() for p in user.passwords]),
    ]
    fields += _selector_map(user.root)
    fields.append((b"selectors", [Map(_selector_map(s)) for s in user.selectors[1:]]))
    return Map(fields)


@command("acl|list", 2, "admin noscript loading stale", **ACLS, since="6.0.0",
         summary="Dumps the effective rules in ACL file format.",
         complexity="O(N). Where N is the number of configured users.")
def acl_list(c: Any, argv: list[bytes]) -> Any:
    users = c.server.acl.users
    return [b"user " + name + b" " + users[name].describe() for name in sorted(users)]  # a rax: name order


@command("acl|users", 2, "admin noscript loading stale", **ACLS, since="6.0.0", summary="Lists all ACL users.",
         complexity="O(N). Where N is the number of configured users.")
def acl_users(c: Any, argv: list[bytes]) -> Any:
    return sorted(c.server.acl.users)


@command("acl|whoami", 2, "noscript loading stale", **ACLS, since="6.0.0",
         summary="Returns the authenticated username of the current connection.")
def acl_whoami(c: Any, argv: list[bytes]) -> Any:
    return c.user.name


@command("acl|load", 2, "admin noscript loading stale", **ACLS, since="6.0.0",
         summary="Reloads the rules from the configured ACL file.",
         complexity="O(N). Where N is the number of configured users.")
def acl_load(c: Any, argv: list[bytes]) -> Any:
    filename = c.server.config["aclfile"]
    if not filename:
        raise CommandError(NO_ACLFILE)
    errors = load_file(c.server, filename)
    if errors is not None:
        raise CommandError(errors)
    return OK


@command("acl|save", 2, "admin noscript loading stale", **ACLS, since="6.0.0",
         summary="Saves the effective ACL rules in the configured ACL file.",
         complexity="O(N). Where N is the number of configured users.",
         tips="request_policy:all_nodes response_policy:all_succeeded")
def acl_save(c: Any, argv: list[bytes]) -> Any:
    filename = c.server.config["aclfile"]
    if not filename:
        raise CommandError(NO_ACLFILE)
    if not save_file(c.server, filename):
        raise CommandError("There was an error trying to save the ACLs. Please check the server logs for more "
                           "information")
    return OK


@command("acl|cat", -2, "noscript loading stale", **ACLS, since="6.0.0",
         summary="Lists the ACL categories, or the commands inside a category.",
         complexity="O(1) since the categories and commands are a fixed set.", args="[category:string]")
def acl_cat(c: Any, argv: list[bytes]) -> Any:
    if len(argv) == 2:
        return [name.encode() for name in ACL_ORDER]
    if len(argv) != 3:
        raise CommandError(_syntax(argv))
    category = argv[2].lower().decode("latin-1")
    if category not in ACL_ORDER:
        raise CommandError(f"Unknown category '{_s(argv[2][:128])}'")
    return [cmd.name.encode() for cmd in acl.category_commands(category)]


@command("acl|genpass", -2, "noscript loading stale", **ACLS, since="6.0.0",
         summary="Generates a pseudorandom, secure password that can be used to identify ACL users.",
         args="[bits:integer]")
def acl_genpass(c: Any, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise CommandError(_syntax(argv))
    bits = to_int(argv[2]) if len(argv) == 3 else 256
    if bits <= 0 or bits > 4096:
        raise CommandError("ACL GENPASS argument must be the number of bits for the output password, a positive "
                           "number up to 4096")
    chars = (bits + 3) // 4
    return secrets.token_hex((chars + 1) // 2)[:chars].encode()


@command("acl|log", -2, "admin noscript loading stale", **ACLS, since="6.0.0",
         summary="Lists recent security events generated due to ACL rules.",
         complexity="O(N) with N being the number of entries shown.", args="[operation=(count:integer|RESET)]",
         history=(("7.2.0", "Added entry ID, timestamp created, and timestamp last updated."),))
def acl_log(c: Any, argv: list[bytes]) -> Any:
    if len(argv) > 3:
        raise CommandError(_syntax(argv))
    state: Acl = c.server.acl
    count = 10
    if len(argv) == 3:
        if argv[2].lower() == b"reset":
            state.log.clear()
            return OK
        count = max(to_int(argv[2]), 0)
    now = c.keyspace.now
    out = []
    for n, e in enumerate(state.log):
        if n >= count:
            break
        out.append(Map([
            (b"count", e.count),
            (b"reason", acl.REASONS[e.reason].encode()),
            (b"context", e.context.encode()),
            (b"object", e.object),
            (b"username", e.username),
            (b"age-seconds", Double((now - e.ctime) / 1000)),
            (b"client-info", e.cinfo),
            (b"entry-id", e.entry_id),
            (b"timestamp-created", e.created),
            (b"timestamp-last-updated", e.ctime),
        ]))
    return out


@command("acl|dryrun", -4, "admin noscript loading stale", **ACLS, since="7.0.0",
         summary="Simulates the execution of a command by a user, without executing the command.",
         args="username:string command:string [arg:string...]",
         complexity="O(1).")
def acl_dryrun(c: Any, argv: list[bytes]) -> Any:
    user = c.server.acl.users.get(argv[2])
    if user is None:
        raise CommandError(f"User '{_s(argv[2])}' not found")
    target = argv[3:]
    cmd = c.server.lookup_command(target)
    if isinstance(cmd, CommandError):
        if "wrong number of arguments" in cmd.message:
            raise cmd
        raise CommandError(f"Command '{_s(argv[3])}' not found")
    result, idx = user.check(cmd, target)
    if result != acl.OK:
        return acl.error_message(result, user, cmd, target[idx], True).encode("utf-8", "surrogateescape")
    return OK


@command("acl|help", 2, "loading stale", **ACLS, since="6.0.0",
         summary="Returns helpful text about the different subcommands.")
def acl_help(c: Any, argv: list[bytes]) -> Any:
    lines = [
        "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command categories",
        "    when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users.",
        "DRYRUN <username> <command> [<arg> ...]",
        "    Returns whether the user can execute the given command without executing the command.",
        "GETUSER <username>",
        "    Get the user's details.",
        "GENPASS [<bits>]",
        "    Generate a secure 256-bit user password. The optional `bits` argument can",
        "    be used to specify a different size.",
        "LIST",
        "    Show users details in config file format.",
        "LOAD",
        "    Reload users from the ACL file.",
        "LOG [<count> | RESET]",
        "    Show the ACL log entries.",
        "SAVE",
        "    Save the current config to the ACL file.",
        "SETUSER <username> <attribute> [<attribute> ...]",
        "    Create or modify a user with the specified attributes.",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username.",
        "HELP",
        "    Print this help.",
    ]
    return [Status(line) for line in lines]


def _syntax(argv: list[bytes]) -> str:
    return (f"unknown subcommand or wrong number of arguments for '{_s(argv[1][:128])}'. Try ACL HELP.")
