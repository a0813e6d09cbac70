"""Server configuration: the table of settings, redis.conf parsing and CONFIG GET/SET.

Each setting is declared once (name, aliases, kind, default, limits, mutability);
the command line, config files, ``CONFIG GET`` and ``CONFIG SET`` all read the same
table.  Settings that dumpling accepts for compatibility but that have no effect
(OOM score, transparent huge pages, ...) are flagged ``inert``: each one a
configuration sets is named once in the startup log.  ``rename-command`` lines are checked
here and applied to the command table by the server; ``dumpling.configrewrite`` writes the
file back for CONFIG REWRITE.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dumpling.protocol import repr_bytes, split_args
from dumpling.stringmatch import stringmatch

INT_MAX = 2**31 - 1
LLONG_MAX = 2**63 - 1


class ConfigError(Exception):
    """A value or directive was rejected; the text is Redis's reason."""


@dataclass
class Setting:
    name: str
    kind: str  # bool | int | memory | enum | flags | string | list | events | save
    default: Any
    min: int = 0
    max: int = LLONG_MAX
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    immutable: bool = False
    protected: bool = False
    inert: bool = False  # accepted and reported, no effect in dumpling
    hidden: bool = False  # Redis's HIDDEN_CONFIG: CONFIG GET names it only when asked by name
    # Extra validation of a converted value: Redis's reason, or None when it is valid.
    check: Callable[[Any], str | None] | None = field(default=None, repr=False)
    # Enum names that mean the same value: CONFIG GET shows the first name (Redis's configEnum order).
    synonyms: dict[str, str] = field(default_factory=dict)


def _s(name: str, kind: str, default: Any, **kw: Any) -> Setting:
    return Setting(name, kind, default, **kw)


POLICIES = (
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
)
EVENT_CLASSES = "g$lshzxetdnKEmA"

SETTINGS: list[Setting] = [
    # networking and clients
    _s("port", "int", 6379, max=65535),  # CONFIG SET moves the listeners (Server.listen_tcp)
    _s("bind", "list", "* -::*"),  # Redis's default: every interface (protected mode guards it)
    _s("protected-mode", "bool", True),
    _s("tcp-backlog", "int", 511, immutable=True),
    _s("tcp-keepalive", "int", 300, max=INT_MAX),
    _s("timeout", "int", 0, max=INT_MAX),
    _s("maxclients", "int", 10000, min=1, max=INT_MAX),
    _s("requirepass", "string", ""),
    _s("aclfile", "string", "", immutable=True),
    _s("acllog-max-len", "int", 128, max=LLONG_MAX),
    _s("acl-pubsub-default", "enum", "resetchannels", choices=("allchannels", "resetchannels")),
    _s("databases", "int", 16, min=1, max=INT_MAX, immutable=True),
    _s("proto-max-bulk-len", "memory", 512 * 1024 * 1024, min=1024 * 1024),
    _s("client-query-buffer-limit", "memory", 1024 * 1024 * 1024, min=1024 * 1024),
    _s(
        "client-output-buffer-limit",
        "obl",
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    ),
    _s("unixsocket", "string", "", immutable=True),
    _s("unixsocketperm", "octal", 0, max=0o777, immutable=True),
    _s("repl-disable-tcp-nodelay", "bool", False),
    # logging, process
    _s("loglevel", "enum", "notice", choices=("debug", "verbose", "notice", "warning", "nothing")),
    _s("logfile", "string", "", immutable=True),
    # Accepted (pytest-redis passes --syslog-enabled no); the log goes to logfile/stdout only.
    _s("syslog-enabled", "bool", False, immutable=True, inert=True),
    _s("syslog-ident", "string", "redis", immutable=True, inert=True),
    _s("syslog-facility", "enum", "local0", choices=("user", *(f"local{i}" for i in range(8))), immutable=True,
       inert=True),
    _s("dir", "string", "", protected=True),
    _s("daemonize", "bool", False, immutable=True),
    _s("pidfile", "string", "", immutable=True),
    _s("supervised", "enum", "no", choices=("upstart", "systemd", "auto", "no"), immutable=True, inert=True),
    _s("always-show-logo", "bool", False, immutable=True),
    _s("set-proc-title", "bool", True, immutable=True, inert=True),
    _s("proc-title-template", "string", "{title} {listen-addr} {server-mode}", inert=True,
       check=lambda v: None if valid_proc_title_template(v) else
       "template format is invalid or contains unknown variables"),
    # Redis calls setlocale(LC_COLLATE) with it; dumpling compares bytes (the C locale's order).
    _s("locale-collate", "string", "", inert=True),
    # dumpling.oomscore (master or replica class; a forked child takes the background child class)
    _s("oom-score-adj", "enum", "no", choices=("no", "yes", "relative", "absolute"), synonyms={"relative": "yes"}),
    _s("oom-score-adj-values", "oom", "0 200 800"),
    _s("disable-thp", "bool", True, immutable=True, inert=True),
    _s("jemalloc-bg-thread", "bool", True, inert=True),
    _s("enable-debug-command", "enum", "no", choices=("no", "yes", "local"), immutable=True),
    _s("enable-module-command", "enum", "no", choices=("no", "yes", "local"), immutable=True),
    _s("enable-protected-configs", "enum", "no", choices=("no", "yes", "local"), immutable=True),
    # What SIGTERM/SIGINT do: SHUTDOWN's options (Redis 7.0+); "default" is a plain SHUTDOWN.
    _s("shutdown-on-sigterm", "flags", "default", choices=("default", "save", "nosave", "now", "force")),
    _s("shutdown-on-sigint", "flags", "default", choices=("default", "save", "nosave", "now", "force")),
    _s("propagation-error-behavior", "enum", "ignore", choices=("ignore", "panic", "panic-on-replicas"),
       inert=True),
    _s("shutdown-timeout", "int", 10, max=INT_MAX),
    # expiry, eviction, LRU/LFU
    _s("hz", "int", 10, max=INT_MAX),
    _s("dynamic-hz", "bool", True),
    _s("active-expire-effort", "int", 1, min=1, max=10),
    _s("maxmemory", "memory", 0),
    _s("maxmemory-policy", "enum", "noeviction", choices=POLICIES),
    # Bytes, or "N%" of maxmemory (kept as -N, as Redis keeps it): dumpling.clientmemory evicts.
    _s("maxmemory-clients", "memory-percent", 0, min=-100),
    _s("maxmemory-samples", "int", 5, min=1, max=INT_MAX),
    _s("maxmemory-eviction-tenacity", "int", 10, max=100),
    _s("lfu-log-factor", "int", 10, max=INT_MAX),
    _s("lfu-decay-time", "int", 1, max=INT_MAX),
    _s("lazyfree-lazy-eviction", "bool", False),
    _s("lazyfree-lazy-expire", "bool", False),
    _s("lazyfree-lazy-server-del", "bool", False),
    _s("lazyfree-lazy-user-del", "bool", False),
    _s("lazyfree-lazy-user-flush", "bool", False),
    # encodings
    _s("hash-max-listpack-entries", "int", 512, aliases=("hash-max-ziplist-entries",)),
    _s("hash-max-listpack-value", "memory", 64, aliases=("hash-max-ziplist-value",)),
    _s("zset-max-listpack-entries", "int", 128, aliases=("zset-max-ziplist-entries",)),
    _s("zset-max-listpack-value", "memory", 64, aliases=("zset-max-ziplist-value",)),
    _s("set-max-intset-entries", "int", 512),
    _s("set-max-listpack-entries", "int", 128),
    _s("set-max-listpack-value", "int", 64),
    # Any int (Redis 7.0+): 0 acts as 1 element per node, below -5 as -5 (datatypes.lists.node_limits).
    _s("list-max-listpack-size", "int", -2, min=-INT_MAX - 1, max=INT_MAX, aliases=("list-max-ziplist-size",)),
    _s("list-compress-depth", "int", 0, max=INT_MAX),
    _s("stream-node-max-bytes", "memory", 4096),
    _s("stream-node-max-entries", "int", 100),
    _s("hll-sparse-max-bytes", "memory", 3000),
    _s("activerehashing", "bool", True),
    # slowlog, latency, notifications
    _s("slowlog-log-slower-than", "int", 10000, min=-1, max=LLONG_MAX),
    _s("slowlog-max-len", "int", 128, max=LLONG_MAX),
    _s("latency-monitor-threshold", "int", 0, max=LLONG_MAX),
    _s("latency-tracking", "bool", True),  # per-command histograms (latencyhist)
    _s("latency-tracking-info-percentiles", "percentiles", "50 99 99.9"),  # INFO latencystats
    _s("notify-keyspace-events", "events", ""),
    _s("tracking-table-max-keys", "int", 1000000, max=LLONG_MAX),
    # DUMP / RESTORE
    _s("sanitize-dump-payload", "enum", "no", choices=("no", "yes", "clients")),
    _s("dump-rdb-version", "int", 10, min=6, max=80),
    _s("rdb-version-check", "enum", "strict", choices=("strict", "relaxed")),
    _s("rdbcompression", "bool", True),
    _s("rdbchecksum", "bool", True, immutable=True),
    # RDB snapshots (dumpling.persistence)
    _s("save", "save", "3600 1 300 100 60 10000"),
    _s("dbfilename", "string", "dump.rdb", protected=True),
    _s("stop-writes-on-bgsave-error", "bool", True),
    _s("rdb-save-incremental-fsync", "bool", True),
    _s("rdb-key-save-delay", "int", 0, min=-INT_MAX - 1, max=INT_MAX, hidden=True),  # test knob: µs per key saved
    _s("key-load-delay", "int", 0, min=-INT_MAX - 1, max=INT_MAX, hidden=True),  # test knob: µs per key loaded
    # Redis serves clients every this many bytes loaded; dumpling's loader yields by time (~20 ms)
    _s("loading-process-events-interval-bytes", "int", 2 * 1024 * 1024, min=1024, max=INT_MAX, hidden=True,
       inert=True),
    # With persistence off, the RDB of a replication sync is not kept (dumpling.replication).
    _s("rdb-del-sync-files", "bool", False),
    # the append-only file (dumpling.persistence.aof)
    _s("appendonly", "bool", False),
    _s("appendfsync", "enum", "everysec", choices=("always", "everysec", "no")),
    _s("appendfilename", "string", "appendonly.aof", immutable=True),
    _s("appenddirname", "string", "appendonlydir", immutable=True),
    _s("aof-load-truncated", "bool", True),
    _s("auto-aof-rewrite-percentage", "int", 100, max=INT_MAX),
    _s("auto-aof-rewrite-min-size", "memory", 64 * 1024 * 1024),
    _s("aof-use-rdb-preamble", "bool", True),  # no: the AOF base is commands (persistence.aofrewrite)
    _s("aof-timestamp-enabled", "bool", False),  # #TS:<seconds> lines in the AOF; skipped when loading
    _s("aof-rewrite-incremental-fsync", "bool", True, inert=True),
    _s("no-appendfsync-on-rewrite", "bool", False, inert=True),
    # replication (dumpling.replication)
    _s("replicaof", "list", "", aliases=("slaveof",), immutable=True),  # "host port" from a config file
    _s("replica-read-only", "bool", True, aliases=("slave-read-only",)),
    _s("replica-serve-stale-data", "bool", True, aliases=("slave-serve-stale-data",)),
    _s("replica-ignore-maxmemory", "bool", True, aliases=("slave-ignore-maxmemory",), inert=True),
    _s("replica-priority", "int", 100, aliases=("slave-priority",), max=INT_MAX),  # (INFO; no Sentinel here)
    _s("replica-announced", "bool", True),
    _s("replica-announce-ip", "string", "", aliases=("slave-announce-ip",)),
    # the local address of this server's outgoing links: to its master and the cluster bus
    _s("bind-source-addr", "string", ""),
    _s("replica-announce-port", "int", 0, aliases=("slave-announce-port",), max=65535),
    _s("repl-backlog-size", "memory", 1048576),
    _s("repl-backlog-ttl", "int", 3600, max=INT_MAX),
    _s("repl-timeout", "int", 60, min=1, max=INT_MAX),
    _s("repl-ping-replica-period", "int", 10, min=1, max=INT_MAX, aliases=("repl-ping-slave-period",)),
    _s("repl-diskless-sync", "bool", True),
    _s("repl-diskless-sync-delay", "int", 5, max=INT_MAX),
    _s("repl-diskless-sync-max-replicas", "int", 0, max=INT_MAX),
    # Every mode loads the transfer from memory once it is whole and checked; "disabled" also
    # keeps it as dbfilename, as Redis does.
    _s("repl-diskless-load", "enum", "disabled", choices=("disabled", "on-empty-db", "swapdb")),
    _s("replica-lazy-flush", "bool", False, aliases=("slave-lazy-flush",), inert=True),
    _s("masterauth", "string", ""),
    _s("masteruser", "string", ""),
    _s("min-replicas-to-write", "int", 0, aliases=("min-slaves-to-write",), max=INT_MAX),
    _s("min-replicas-max-lag", "int", 10, aliases=("min-slaves-max-lag",), max=INT_MAX),
    _s("io-threads", "int", 1, min=1, max=128, immutable=True, inert=True),
    _s("busy-reply-threshold", "int", 5000, aliases=("lua-time-limit",), max=LLONG_MAX),
    # cluster
    _s("cluster-enabled", "bool", False, immutable=True),
    _s("cluster-config-file", "string", "nodes.conf", immutable=True),
    _s("cluster-node-timeout", "int", 15000, max=LLONG_MAX),
    _s("cluster-port", "int", 0, max=65535, immutable=True),
    _s("cluster-announce-ip", "string", ""),
    _s("cluster-announce-port", "int", 0, max=65535),
    _s("cluster-announce-bus-port", "int", 0, max=65535),
    _s("cluster-announce-hostname", "string", "", check=lambda v: _check_announced_hostname(v)),
    _s("cluster-require-full-coverage", "bool", True),
    _s("cluster-allow-reads-when-down", "bool", False),
    _s("cluster-preferred-endpoint-type", "enum", "ip", choices=("ip", "hostname", "unknown-endpoint")),
    _s("cluster-announce-human-nodename", "string", "",
       check=lambda v: "Announced human node name contained invalid character"
       if any(c in _AUX_FORBIDDEN for c in v) else None),
    _s("cluster-announce-tls-port", "int", 0, max=65535, inert=True),  # no TLS in dumpling
    # Redis built without TLS (BUILD_TLS=no) still has its TLS settings: the files and ciphers
    # are kept and used by nothing; a TLS port is what needs TLS, and dumpling refuses it.
    _s("tls-port", "int", 0, max=65535),  # (any port but 0 is refused: see ``convert``)
    *(_s(f"tls-{name}", "string", "", inert=True) for name in (
        "cert-file", "key-file", "key-file-pass", "client-cert-file", "client-key-file", "client-key-file-pass",
        "dh-params-file", "ca-cert-file", "ca-cert-dir", "protocols", "ciphers", "ciphersuites")),
    *(_s(f"tls-{name}", "bool", default, inert=True) for name, default in (
        ("cluster", False), ("replication", False), ("prefer-server-ciphers", False), ("session-caching", True))),
    _s("tls-auth-clients", "enum", "yes", choices=("no", "yes", "optional"), inert=True),
    _s("tls-session-cache-size", "int", 20 * 1024, max=INT_MAX, inert=True),
    _s("tls-session-cache-timeout", "int", 300, max=INT_MAX, inert=True),
    _s("cluster-allow-pubsubshard-when-down", "bool", True),
    _s("cluster-allow-replica-migration", "bool", True),
    _s("cluster-replica-validity-factor", "int", 10, max=INT_MAX, aliases=("cluster-slave-validity-factor",)),
    _s("cluster-replica-no-failover", "bool", False, aliases=("cluster-slave-no-failover",)),
    # Replicas never migrate to orphaned masters in dumpling, so the barrier has nothing to hold.
    _s("cluster-migration-barrier", "int", 1, max=INT_MAX),
    _s("cluster-link-sendbuf-limit", "memory", 0),
    _s("cluster-ping-interval", "int", 0, max=LLONG_MAX),  # Redis's hidden test setting (0: node-timeout / 2)
]

# Directives Redis accepts only in config files and silently ignores (deprecated).
IGNORED_DIRECTIVES = {"list-max-ziplist-entries", "list-max-ziplist-value", "lua-replicate-commands"}

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}


def parse_memory(text: str) -> int | None:
    """Redis's ``memtoull``: digits with an optional unit, no sign, no decimals."""
    low = text.lower()
    digits = low.rstrip("bkmg")
    unit = low[len(digits) :]
    if not digits.isdigit() or unit not in _UNITS or not digits.isascii():
        return None
    return int(digits) * _UNITS[unit]


_STRING2LL = re.compile(r"-?(?:0|[1-9][0-9]*)")
_STRTOLL_OCTAL = re.compile(r"[ \t\n\v\f\r]*[+-]?([0-7]+)")


def string2ll(text: str) -> int | None:
    """Redis's ``string2ll``: optional minus, no leading zeros, spaces or plus, within int64."""
    if not _STRING2LL.fullmatch(text):
        return None
    value = int(text)
    return value if -(2**63) <= value <= LLONG_MAX else None


def parse_octal(text: str) -> int | None:
    """``strtoll(text, &end, 8)`` that must reach the end (so an empty value is 0)."""
    if not text:
        return 0
    match = _STRTOLL_OCTAL.fullmatch(text)
    if match is None:
        return None
    value = int(match.group(1), 8)
    if value > LLONG_MAX:
        return None  # ERANGE
    return -value if "-" in text else value


# Redis's isValidAuxChar: a human node name is written into nodes.conf's aux fields.
_AUX_FORBIDDEN = frozenset("!#$%&()*+:;<>?@[]^{|}~\0")


def _check_announced_hostname(value: str) -> str | None:
    """isValidAnnouncedHostname: it travels in the bus's hostname extension."""
    if len(value.encode("utf-8", "surrogateescape")) >= 256:
        return "Hostnames must be less than 256 characters"
    if any(not (c.isascii() and (c.isalnum() or c in "-.")) for c in value):
        return "Hostnames may only contain alphanumeric characters, hyphens or dots"
    return None


def _check_save(args: list[str]) -> str:
    """The ``save`` value: pairs of ``<seconds> <changes>`` (or nothing), normalised."""
    words = " ".join(args).split()
    if len(words) % 2:
        raise ConfigError("Invalid save parameters")
    for i in range(0, len(words), 2):
        try:
            seconds, changes = int(words[i]), int(words[i + 1])
        except ValueError:
            raise ConfigError("Invalid save parameters") from None
        if seconds < 1 or changes < 0:
            raise ConfigError("Invalid save parameters")
    return " ".join(words)


_PROC_TITLE_VARIABLES = {
    # What each variable can expand to while validating (Redis expands with an empty title
    # and the template must not come out empty).
    "title": "",
    "listen-addr": "*:6379",
    "server-mode": "",
    "config-file": "-",
    "port": "6379",
    "tls-port": "0",
    "unixsocket": "",
}


def valid_proc_title_template(template: str) -> bool:
    """Redis's validateProcTitleTemplate: ``{var}`` names known, ``{{`` a brace, and something
    left once expanded with an empty title and trimmed of spaces."""
    out: list[str] = []
    pos = 0
    while pos < len(template):
        start = template.find("{", pos)
        if start < 0:
            out.append(template[pos:])
            break
        out.append(template[pos:start])
        if start + 1 >= len(template):
            return False
        if template[start + 1] == "{":
            out.append("{")
            pos = start + 2
            continue
        end = template.find("}", start + 1)
        if end < 0:
            return False
        value = _PROC_TITLE_VARIABLES.get(template[start + 1 : end])
        if value is None:
            return False
        out.append(value)
        pos = end + 1
    return bool("".join(out).strip(" "))


_STRING2D = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def format_percentile(value: float) -> str:
    """``%f`` with trailing zeros (and a bare point) trimmed, as Redis's trimDoubleString."""
    return f"{value:f}".rstrip("0").rstrip(".")


def _check_percentiles(args: list[str]) -> str:
    """latency-tracking-info-percentiles: numbers in [0, 100]; one empty argument means none."""
    if args == [""]:
        words: list[str] = []
    elif len(args) == 1:
        words = args[0].split()
    else:
        words = args
    values = []
    for word in words:
        if not _STRING2D.fullmatch(word):
            raise ConfigError("Invalid latency-tracking-info-percentiles parameters")
        value = float(word)
        if not 0.0 <= value <= 100.0:
            raise ConfigError("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]")
        values.append(format_percentile(value))
    return " ".join(values)


_STRTOL = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]*")


def _check_replicaof(args: list[str]) -> str:
    """replicaof <host> <port> (``no one``: none), as setConfigReplicaOfOption: the port is
    strtol's whole text (so an empty one is 0), within 0..65535."""
    if len(args) != 2:
        raise ConfigError("wrong number of arguments")
    host, port_text = args
    if host.lower() == "no" and port_text.lower() == "one":
        return ""
    digits = _STRTOL.fullmatch(port_text)
    number = digits.group().strip(" \t\n\v\f\r+-") if digits else None
    if number is None:
        raise ConfigError("Invalid master port")
    port = int(number or "0") * (-1 if "-" in port_text else 1)
    if not 0 <= port <= 65535:
        raise ConfigError("Invalid master port")
    return f"{host} {port}"


def _check_oom_values(args: list[str]) -> str:
    """oom-score-adj-values: three integers in -2000..2000 (one argument is split on spaces)."""
    words = args[0].split() if len(args) == 1 and args[0] else args
    if len(words) != 3:
        raise ConfigError("wrong number of arguments")
    for word in words:
        try:
            value = int(word)
        except ValueError:
            value = None
        if value is None or not -2000 <= value <= 2000 or not re.fullmatch(r"\s*[+-]?[0-9]+", word):
            raise ConfigError("Invalid oom-score-adj-values, elements must be between -2000 and 2000.")
    return " ".join(str(int(w)) for w in words)


def render_events(flags: str) -> str:
    """CONFIG GET's canonical form of notify-keyspace-events (``n`` is hidden by ``A``, as in Redis)."""
    classes = set(flags)
    if set("g$lshzxetd") <= classes:
        out = "A"
    else:
        out = "".join(c for c in "g$lshzxetdn" if c in classes)
    return out + "".join(c for c in "KEm" if c in classes)


def parse_events(text: str) -> str | None:
    flags = set()
    for ch in text:
        if ch == "A":
            flags.update("g$lshzxetd")
        elif ch in EVENT_CLASSES:
            flags.add(ch)
        else:
            return None
    return "".join(sorted(flags))


HZ_RANGE = (1, 500)  # CONFIG_MIN_HZ, CONFIG_MAX_HZ


def _adjusted(s: Setting, value: Any) -> Any:
    """A valid value as Redis stores it: ``hz`` is a hint, kept within 1..500 (updateHZ), so
    CONFIG GET and INFO's configured_hz show what is in force."""
    if s.name == "hz":
        return min(max(value, HZ_RANGE[0]), HZ_RANGE[1])
    return value


class Config:
    """Current values, keyed by canonical name."""

    def __init__(self) -> None:
        self.by_name: dict[str, Setting] = {}
        self.values: dict[str, Any] = {}
        for s in SETTINGS:
            self.by_name[s.name] = s
            for alias in s.aliases:
                self.by_name[alias] = s
            self.values[s.name] = s.default
        self.config_file: str = ""
        self.save_line_seen = False
        self.user_directives: list[list[bytes]] = []
        self.directives_seen: dict[str, None] = {}  # canonical names set by the file or command line
        # rename-command directives in order, (old, new) lower-case; new b"" removes the command.
        # The server applies them to the command table (dumpling.commands.registry.rename).
        self.renames: list[tuple[bytes, bytes]] = []
        self._command_names: set[bytes] | None = None
        self.listeners: list[Callable[[str], None]] = []

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def lookup(self, name: str) -> Setting | None:
        return self.by_name.get(name.lower())

    # -- parsing ------------------------------------------------------------

    def convert(self, s: Setting, args: list[str]) -> Any:
        """Turn directive arguments into a value; raises ConfigError with Redis's reason."""
        if s.name == "replicaof":
            return _check_replicaof(args)
        if s.kind == "list":
            return " ".join(args)
        if s.kind == "save":
            return _check_save(args)
        if s.kind == "obl":
            return self._merge_output_limits(" ".join(args).split())
        if s.kind == "oom":
            return _check_oom_values(args)
        if s.kind == "percentiles":
            return _check_percentiles(args)
        if s.kind == "flags":  # several words, in one argument or many
            args = [" ".join(args)]
        if len(args) != 1:
            raise ConfigError("wrong number of arguments")
        text = args[0]
        if s.kind == "bool":
            low = text.lower()
            if low not in ("yes", "no"):
                raise ConfigError("argument must be 'yes' or 'no'")
            return low == "yes"
        if s.kind == "octal":
            value = parse_octal(text)
            if value is None:
                raise ConfigError("argument couldn't be parsed as an octal number")
            if not s.min <= value <= s.max:  # an unsigned config: a negative value is huge
                raise ConfigError(f"argument must be between {s.min:o} and {s.max:o} inclusive")
            return value
        if s.kind == "int":
            value = string2ll(text)
            if value is None:
                raise ConfigError("argument couldn't be parsed into an integer")
            if not s.min <= value <= s.max:
                raise ConfigError(f"argument must be between {s.min} and {s.max} inclusive")
            if s.name == "dump-rdb-version" and not (6 <= value <= 12 or value == 80):
                raise ConfigError("argument must be one of 6 to 12, or 80 (Valkey 9)")
            if s.name == "tls-port" and value:
                raise ConfigError("dumpling has no TLS support")
            return value
        if s.kind == "memory-percent":  # numericParseString with MEMORY_CONFIG | PERCENT_CONFIG
            value = parse_memory(text)
            if value is None:
                percent = string2ll(text[:-1]) if len(text) > 1 and text.endswith("%") else None
                if percent is None or percent < 0:
                    raise ConfigError("argument must be a memory or percent value")
                if -percent < s.min:
                    raise ConfigError(f"percentage argument must be less or equal to {-s.min}")
                return -percent
            if value > s.max:
                raise ConfigError(f"argument must be between {s.min} and {s.max} inclusive")
            return value
        if s.kind == "memory":
            value = parse_memory(text)
            if value is None:
                raise ConfigError("argument must be a memory value")
            if not s.min <= value <= s.max:
                raise ConfigError(f"argument must be between {s.min} and {s.max} inclusive")
            return value
        if s.name == "dbfilename" and "/" in text:
            raise ConfigError("dbfilename can't be a path, just a filename")
        if s.name == "dir" and not os.path.isdir(text):
            raise ConfigError("No such file or directory")  # Redis chdir()s there at once
        if s.kind == "flags":
            words = text.lower().split()
            if not words:  # (configEnumGetValue: no argument is no valid value either)
                raise ConfigError("argument(s) must be one of the following: " + ", ".join(s.choices))
            for word in words:
                if word not in s.choices:
                    raise ConfigError("argument(s) must be one of the following: " + ", ".join(s.choices))
            if "save" in words and "nosave" in words:
                raise ConfigError("shutdown options SAVE and NOSAVE can't be used simultaneously")
            return " ".join(c for c in s.choices if c in words and c != "default") or "default"
        if s.kind == "enum":
            low = text.lower()
            if low not in s.choices:
                raise ConfigError("argument(s) must be one of the following: " + ", ".join(s.choices))
            return low
        if s.kind == "events":
            flags = parse_events(text)
            if flags is None:
                raise ConfigError("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")
            return flags
        if s.check is not None:
            reason = s.check(text)
            if reason is not None:
                raise ConfigError(reason)
        return text

    def _merge_output_limits(self, words: list[str]) -> str:
        """client-output-buffer-limit: update only the classes named, as Redis does."""
        if len(words) % 4:
            raise ConfigError("Wrong number of arguments in buffer limit configuration.")
        current = self.values["client-output-buffer-limit"].split()
        limits = {current[i]: current[i + 1 : i + 4] for i in range(0, len(current), 4)}
        for i in range(0, len(words), 4):
            name = words[i].lower()
            name = "slave" if name == "replica" else name
            if name not in ("normal", "slave", "pubsub"):
                raise ConfigError("Invalid client class specified in buffer limit configuration.")
            hard, soft = parse_memory(words[i + 1]), parse_memory(words[i + 2])
            seconds = words[i + 3]
            if hard is None or soft is None or not seconds.isdigit():
                raise ConfigError("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
            limits[name] = [str(hard), str(soft), seconds]
        return " ".join(f"{name} {' '.join(limits[name])}" for name in ("normal", "slave", "pubsub"))

    def render(self, name: str) -> str:
        s = self.by_name[name]
        value = self.values[s.name]
        if s.kind == "bool":
            return "yes" if value else "no"
        if s.kind == "events":
            return render_events(value)
        if s.kind == "enum":
            return s.synonyms.get(value, value)
        if s.kind == "octal":
            return f"{value:o}"
        if s.kind == "memory-percent" and value < 0:
            return f"{-value}%"
        if s.name == "dir":
            return os.path.abspath(value) if value else os.getcwd()
        return str(value)

    def apply(self, name: str, value: Any) -> None:
        s = self.by_name[name]
        self.values[s.name] = _adjusted(s, value)
        for listener in self.listeners:
            listener(s.name)

    # -- CONFIG GET ----------------------------------------------------------

    def get_matching(self, patterns: list[str]) -> list[tuple[str, str]]:
        seen: set[str] = set()
        out: list[tuple[str, str]] = []
        for pattern in patterns:
            if any(c in pattern for c in "*?["):
                # Redis's stringmatch(pattern, name, nocase): a C string, so up to a NUL byte
                pat = pattern.encode("utf-8", "surrogateescape").split(b"\0", 1)[0]
                for name, setting in self.by_name.items():
                    if name not in seen and not setting.hidden and stringmatch(pat, name.encode(), nocase=True):
                        seen.add(name)
                        out.append((name, self.render(name)))
            else:
                s = self.lookup(pattern)
                if s is not None and pattern.lower() not in seen:
                    seen.add(pattern.lower())
                    out.append((pattern, self.render(pattern.lower())))
        return out

    # -- config files and command line ----------------------------------------

    def load_text(self, text: str) -> None:
        """Apply redis.conf text; raises ConfigFileError naming the line."""
        for number, raw in enumerate(text.split("\n"), 1):
            line = raw.strip(" \t\r\n")
            if not line or line.startswith("#"):
                continue
            try:
                argv = [a.decode("utf-8", "surrogateescape") for a in split_args(line.encode())]
            except ValueError:
                raise ConfigFileError(number, line, "Unbalanced quotes in configuration line") from None
            if not argv:
                continue
            name = argv[0].lower()
            if name in IGNORED_DIRECTIVES:
                continue
            if name == "user" and len(argv) >= 2:  # ACL users: applied at startup (dumpling.commands.acl)
                self.user_directives.append([a.encode("utf-8", "surrogateescape") for a in argv[1:]])
                continue
            if name == "rename-command" and len(argv) == 3:
                reason = self._rename_command(argv[1], argv[2])
                if reason is not None:
                    raise ConfigFileError(number, line, reason)
                continue
            if name == "include":
                if len(argv) != 2:
                    raise ConfigFileError(number, line, "Bad directive or wrong number of arguments")
                try:
                    with open(argv[1]) as f:
                        self.load_text(f.read())
                except OSError as e:
                    raise ConfigFileError(number, line, f"Fatal error, can't open config file '{argv[1]}': {e.strerror}") from None
                continue
            s = self.lookup(name)
            if s is None:
                raise ConfigFileError(number, line, "Bad directive or wrong number of arguments")
            try:
                value = self.convert(s, argv[1:])
            except ConfigError as e:
                raise ConfigFileError(number, line, str(e)) from None
            if s.kind == "save":
                # The first save line replaces the default, later ones add save points (redis.conf).
                if value and self.save_line_seen:
                    value = f"{self.values[s.name]} {value}".strip()
                self.save_line_seen = True
            self.values[s.name] = _adjusted(s, value)
            self.directives_seen[s.name] = None

    def _rename_command(self, old: str, new: str) -> str | None:
        """Check one rename-command against the command table as renamed so far (Redis renames
        while it reads the file, so the errors name the line); None if it is fine."""
        if self._command_names is None:
            from dumpling.commands import load_table
            from dumpling.commands.registry import ORIGINAL

            load_table()
            self._command_names = set(ORIGINAL)
        names = self._command_names
        old_name = old.encode("utf-8", "surrogateescape").lower()
        new_name = new.encode("utf-8", "surrogateescape").lower()
        if old_name not in names:
            return "No such command in rename-command"
        names.discard(old_name)
        if new_name:
            if new_name in names:
                return "Target command name already exists"
            names.add(new_name)
        self.renames.append((old_name, new_name))
        return None

    def load_argv(self, argv: list[str], stdin: Any = None) -> None:
        """``[configfile] [--name value ...]`` as redis-server takes them (``-`` as the first or
        last argument: more configuration from ``stdin``)."""
        text = ""
        rest = argv
        if rest and not rest[0].startswith("-"):
            path = os.path.abspath(rest[0])
            try:
                with open(path) as f:
                    text = f.read()
            except OSError as e:
                raise StartupError(f"Fatal error, can't open config file '{rest[0]}': {e.strerror}") from None
            self.config_file = path
            rest = rest[1:]
        first = len(argv) - len(rest)  # index of rest[0] in argv
        options = []
        for j, arg in enumerate(rest):
            if arg == "-" and (first + j == 0 or j == len(rest) - 1):
                stream = stdin if stdin is not None else sys.stdin
                text += stream.read()
            else:
                options.append(arg)
        # Like redis-server: file text, a newline, then the options as config lines (so error
        # line numbers count the same way).
        self.load_text(text + "\n" + command_line_options(options))
        if self.values["logfile"]:
            # Redis opens the log file once the whole configuration is read: an error names no line.
            try:
                with open(os.path.join(self.render("dir"), self.values["logfile"]), "a"):
                    pass
            except OSError as e:
                raise ConfigFileError(0, "", f"Can't open the log file: {e.strerror}") from None

    def inert_directives(self) -> list[str]:
        """Directives the configuration set that dumpling accepts but does not act on."""
        return [name for name in self.directives_seen if self.by_name[name].inert]


def command_line_options(args: list[str]) -> str:
    """redis-server's command line after the config file, as config text: ``--name`` starts a
    line; the arguments after it are its values, quoted, until the next ``--name`` (a ``--word``
    right after a bare ``--name`` is a value: ``--port --bla``).  ``--name value`` in one argument
    is a whole line; a bare ``--save`` before another option or at the end means ``save ""``."""
    options = ""
    name_pending = False  # a bare --name took no value yet
    for j, arg in enumerate(args):
        if arg.startswith("--") and not name_pending:
            if options:
                options += "\n"
            options += arg[2:] + " "
            try:
                words = len(split_args(arg.encode("utf-8", "surrogateescape")))
            except ValueError:
                words = 0
            if words == 1:
                name_pending = True
                last = j == len(args) - 1
                if arg.lower() == "--save" and (last or args[j + 1].startswith("--")):
                    options += '""'
                    name_pending = last
                elif arg.lower() == "--sentinel" and not last and args[j + 1].startswith("--"):
                    name_pending = False
        else:
            options += repr_bytes(arg.encode("utf-8", "surrogateescape")) + " "
            name_pending = False
    return options


class ConfigFileError(Exception):
    def __init__(self, line_number: int, line: str, reason: str) -> None:
        super().__init__(reason)
        self.line_number = line_number
        self.line = line
        self.reason = reason


class StartupError(Exception):
    pass
