"""Server commands: INFO, CONFIG, TIME, LASTSAVE, MEMORY, SLOWLOG, MONITOR, LATENCY,
DEBUG, SHUTDOWN, and the accepted-but-inert persistence/replication commands."""

from __future__ import annotations

import os
import platform
import re
import resource
import tempfile
import time
from typing import Any

from dumpling import REDIS_VERSION, acl, buildinfo, configrewrite
from dumpling.commands.common import help_header, protected_action_allowed, to_int
from dumpling.commands.registry import TABLE, command, container
from dumpling.config import ConfigError, parse_memory
from dumpling.datatypes.hashes import HashValue
from dumpling.datatypes.lists import ListValue, set_packed_threshold
from dumpling.datatypes.zsets import ZSetValue
from dumpling.digest import ZERO as ZERO_DIGEST
from dumpling.digest import dataset_digest, value_digest
from dumpling.dispatch import Blocked
from dumpling.errors import NO_SUCH_KEY, SYNTAX, CommandError
from dumpling.fpconv import d2string
from dumpling.keyspace import lru_clock
from dumpling.latencyhist import cumulative_usec, percentiles_line
from dumpling.listeners import ListenError
from dumpling.protocol import NO_REPLY, OK, Double, Map, Status, Verbatim

SRV = {"group": "server"}


def human_bytes(n: float) -> str:
    if n < 1024:
        return f"{int(n)}B"
    for unit in "KMGTP":
        n /= 1024
        if n < 1024 or unit == "P":
            return f"{n:.2f}{unit}"
    return f"{n:.2f}P"


# ----------------------------------------------------------------------------- INFO

SECTIONS = ("server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules",
            "commandstats", "errorstats", "latencystats", "cluster", "keyspace")
DEFAULT_SECTIONS = tuple(s for s in SECTIONS if s not in ("commandstats", "latencystats"))


def _section_server(server: Any) -> list[str]:
    uname = platform.uname()
    uptime = int(time.time() - server.start_time)
    port = server.config["port"]
    binds = ",".join("bind=" + b for b in server.config["bind"].split())
    return [
        f"redis_version:{REDIS_VERSION}",
        "redis_git_sha1:00000000",
        "redis_git_dirty:0",
        f"redis_build_id:{buildinfo.build_id()}",  # the build= of dumpling-server --version
        f"redis_mode:{'cluster' if server.cluster is not None else 'standalone'}",
        f"os:{uname.system} {uname.release} {uname.machine}",
        "arch_bits:64",
        "monotonic_clock:POSIX clock_gettime",
        "multiplexing_api:epoll",
        "atomicvar_api:c11-builtin",
        "gcc_version:0.0.0",
        f"process_id:{os.getpid()}",
        "process_supervised:no",
        f"run_id:{server.run_id}",
        f"tcp_port:{port}",
        f"server_time_usec:{time.time_ns() // 1000}",
        f"uptime_in_seconds:{uptime}",
        f"uptime_in_days:{uptime // 86400}",
        f"hz:{server.hz}",
        f"configured_hz:{server.config['hz']}",
        f"lru_clock:{lru_clock(time.time_ns() // 1_000_000)}",
        f"executable:{server.executable}",
        f"config_file:{server.config.config_file}",
        "io_threads_active:0",
        # while a shutdown waits for lagging replicas: the time it still gives them
        *([f"shutdown_in_milliseconds:{server.shutdown_deadline_ms - server.keyspace.now}"]
          if server.shutdown_deadline_ms else []),
        # Redis 7.4 numbers listeners by connection type (tcp 0, unix 1) and lists the open ones.
        *([f"listener0:name=tcp,{binds},port={port}"] if port else []),
        *([f"listener1:name=unix,bind={server.config['unixsocket']}"] if server.config["unixsocket"] else []),
    ]


def _section_clients(server: Any) -> list[str]:
    clients = list(server.clients.values())
    return [
        # (replicas are not counted here: connected_slaves in INFO replication)
        f"connected_clients:{sum(1 for c in clients if getattr(c, 'repl_kind', None) != 'replica')}",
        "cluster_connections:0",
        f"maxclients:{server.config['maxclients']}",
        f"client_recent_max_input_buffer:{max((c.query_buffer_size() for c in clients), default=0)}",
        f"client_recent_max_output_buffer:{max((c.output_buffer_size() for c in clients), default=0)}",
        f"blocked_clients:{sum(1 for c in clients if c.blocked is not None)}",
        f"tracking_clients:{server.tracking.clients if server.tracking is not None else 0}",
        f"pubsub_clients:{sum(1 for c in clients if c.channels or c.patterns or c.shard_channels)}",
        f"watching_clients:{sum(1 for c in clients if c.watched)}",
        f"clients_in_timeout_table:{sum(1 for c in clients if c.blocked is not None and c.blocked.timer is not None)}",
        f"total_watched_keys:{len(server.keyspace.watched)}",
        f"total_blocking_keys:{len(server.keyspace.blocked_keys)}",
        f"total_blocking_keys_on_nokey:{_blocking_keys_on_nokey(server)}",
    ]


def _blocking_keys_on_nokey(server: Any) -> int:
    """Keys with a client blocked that is released when the key goes away: XREADGROUP (Redis's
    ``unblock_on_nokey``), which then answers -NOGROUP."""
    return sum(
        1 for waiting in server.keyspace.blocked_keys.values()
        if any(c.blocked is not None and c.blocked.cmd is not None and c.blocked.cmd.name == "xreadgroup"
               for c in waiting)
    )


def _section_memory(server: Any) -> list[str]:
    used = server.used_memory()
    rss = _rss_bytes()
    server.peak_memory = max(getattr(server, "peak_memory", 0), used)
    peak = server.peak_memory
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    maxmemory = server.config["maxmemory"]
    return [
        f"used_memory:{used}",
        f"used_memory_human:{human_bytes(used)}",
        f"used_memory_rss:{rss}",
        f"used_memory_rss_human:{human_bytes(rss)}",
        f"used_memory_peak:{peak}",
        f"used_memory_peak_human:{human_bytes(peak)}",
        f"used_memory_peak_perc:{used * 100 / peak if peak else 100:.2f}%",
        "used_memory_overhead:0",
        "used_memory_startup:0",
        f"used_memory_dataset:{used}",
        "used_memory_dataset_perc:100.00%",
        f"allocator_allocated:{used}",
        f"allocator_active:{used}",
        f"allocator_resident:{rss}",
        f"total_system_memory:{total}",
        f"total_system_memory_human:{human_bytes(total)}",
        *_scripting_memory(server),
        f"maxmemory:{maxmemory}",
        f"maxmemory_human:{human_bytes(maxmemory)}",
        f"maxmemory_policy:{server.config['maxmemory-policy']}",
        "allocator_frag_ratio:1.00",
        "allocator_frag_bytes:0",
        "allocator_rss_ratio:1.00",
        "allocator_rss_bytes:0",
        "rss_overhead_ratio:1.00",
        "rss_overhead_bytes:0",
        f"mem_fragmentation_ratio:{rss / used if used else 1:.2f}",
        f"mem_fragmentation_bytes:{rss - used}",
        "mem_not_counted_for_evict:0",
        f"mem_replication_backlog:{server.replication.backlog_bytes()}",
        f"mem_total_replication_buffers:{server.replication.backlog_bytes() + server.replication.replica_buffer_bytes()}",
        f"mem_clients_slaves:{server.replication.replica_buffer_bytes()}",
        f"mem_clients_normal:{server.clients_memory}",
        "mem_cluster_links:0",
        "mem_aof_buffer:0",
        "mem_allocator:libc",
        f"mem_overhead_db_hashtable_rehashing:{server.dictstats.overheads()[2]}",
        "active_defrag_running:0",
        "lazyfree_pending_objects:0",
        f"lazyfreed_objects:{server.keyspace.stat_lazyfreed_objects}",
    ]


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _section_persistence(server: Any) -> list[str]:
    snap = server.snapshots
    aof = server.aof
    now = time.time()
    child = snap.child_pid != -1
    lines = [
        f"loading:{int(snap.loading)}",
        f"async_loading:{int(snap.async_loading)}",  # (a replica's swapdb load, serving the old data)
        f"current_cow_peak:{snap.current_cow_peak}",
        f"current_cow_size:{snap.current_cow}",
        f"current_cow_size_age:{int(now - snap.current_cow_updated) if child and snap.current_cow_updated else 0}",
        f"current_fork_perc:{snap.keys_processed * 100 / snap.keys_total if child and snap.keys_total else 0:.2f}",
        f"current_save_keys_processed:{snap.keys_processed if child else 0}",
        f"current_save_keys_total:{snap.keys_total if child else 0}",
        f"rdb_changes_since_last_save:{server.keyspace.dirty}",
        # (a diskless replication transfer is an RDB child too, as in Redis)
        f"rdb_bgsave_in_progress:{int(child or server.replication.transfer_child_running())}",
        f"rdb_last_save_time:{server.last_save}",
        f"rdb_last_bgsave_status:{'ok' if snap.bgsave_ok else 'err'}",
        f"rdb_last_bgsave_time_sec:{snap.last_bgsave_seconds}",
        f"rdb_current_bgsave_time_sec:{int(now - snap.child_started) if child else -1}",
        f"rdb_saves:{snap.saves}",
        f"rdb_last_cow_size:{snap.last_cow_size}",
        f"rdb_last_load_keys_expired:{snap.last_load_keys_expired}",
        f"rdb_last_load_keys_loaded:{snap.last_load_keys_loaded}",
        f"aof_enabled:{int(aof.enabled)}",
        f"aof_rewrite_in_progress:{int(aof.child_pid != -1)}",
        f"aof_rewrite_scheduled:{int(aof.scheduled)}",
        f"aof_last_rewrite_time_sec:{aof.last_rewrite_seconds}",
        f"aof_current_rewrite_time_sec:{int(now - aof.child_started) if aof.child_pid != -1 else -1}",
        f"aof_last_bgrewrite_status:{'ok' if aof.last_rewrite_ok else 'err'}",
        f"aof_rewrites:{aof.rewrites}",
        f"aof_rewrites_consecutive_failures:{aof.consecutive_failures}",
        f"aof_last_write_status:{'ok' if aof.write_ok else 'err'}",
        f"aof_last_cow_size:{aof.last_cow_size}",
        "module_fork_in_progress:0",
        "module_fork_last_cow_size:0",
    ]
    if aof.enabled:
        lines += [
            f"aof_current_size:{aof.current_size()}",
            f"aof_base_size:{aof.base_size}",
            f"aof_pending_rewrite:{int(aof.scheduled)}",
            "aof_buffer_length:0",
            "aof_pending_bio_fsync:0",
            "aof_delayed_fsync:0",
        ]
    if snap.loading or snap.async_loading:
        elapsed = now - snap.loading_start
        total, loaded = snap.loading_total_bytes, snap.loading_loaded_bytes
        perc = loaded * 100 / total if total else 0.0
        eta = int((total - loaded) / (loaded / elapsed)) if loaded and elapsed > 0 else 1
        lines += [
            f"loading_start_time:{snap.loading_start}",
            f"loading_total_bytes:{total}",
            f"loading_rdb_used_mem:{snap.loading_rdb_used_mem}",
            f"loading_loaded_bytes:{loaded}",
            f"loading_loaded_perc:{perc:.2f}",
            f"loading_eta_seconds:{eta}",
        ]
    return lines


def _section_stats(server: Any) -> list[str]:
    ks = server.keyspace
    pubsub = server.pubsub
    channels = pubsub.channel_count() if pubsub is not None and hasattr(pubsub, "channel_count") else 0
    patterns = pubsub.pattern_count() if pubsub is not None and hasattr(pubsub, "pattern_count") else 0
    shard = pubsub.shard_channel_count() if pubsub is not None and hasattr(pubsub, "shard_channel_count") else 0
    migrate_sockets = server.migrate_cache.size() if getattr(server, "migrate_cache", None) is not None else 0
    return [
        f"total_connections_received:{server.stat_connections}",
        f"total_commands_processed:{server.stat_commands}",
        f"instantaneous_ops_per_sec:{server.instantaneous_ops()}",
        f"total_net_input_bytes:{server.stat_net_input}",
        f"total_net_output_bytes:{server.stat_net_output}",
        f"total_net_repl_input_bytes:{server.replication.stat_repl_input}",
        f"total_net_repl_output_bytes:{getattr(server, 'stat_net_repl_output', 0)}",
        f"instantaneous_input_kbps:{server.loop_stats.input_rate.value() / 1024:.2f}",
        f"instantaneous_output_kbps:{server.loop_stats.output_rate.value() / 1024:.2f}",
        "instantaneous_input_repl_kbps:0.00",
        "instantaneous_output_repl_kbps:0.00",
        f"rejected_connections:{server.stat_rejected}",
        f"sync_full:{server.replication.stat_sync_full}",
        f"sync_partial_ok:{server.replication.stat_sync_partial_ok}",
        f"sync_partial_err:{server.replication.stat_sync_partial_err}",
        f"expired_subkeys:{ks.stat_expired_subkeys}",
        f"expired_keys:{ks.stat_expired}",
        f"expired_stale_perc:{ks.stat_expired_stale_perc * 100:.2f}",
        f"expired_time_cap_reached_count:{ks.stat_expired_time_cap_reached}",
        "expire_cycle_cpu_milliseconds:0",
        f"evicted_keys:{ks.stat_evicted}",
        f"evicted_clients:{server.stat_evicted_clients}",
        f"evicted_scripts:{server.scripting.evicted_scripts}",
        "total_eviction_exceeded_time:0",
        "current_eviction_exceeded_time:0",
        f"keyspace_hits:{ks.stat_hits}",
        f"keyspace_misses:{ks.stat_misses}",
        f"pubsub_channels:{channels}",
        f"pubsub_patterns:{patterns}",
        f"pubsubshard_channels:{shard}",
        f"latest_fork_usec:{getattr(server, 'stat_fork_usec', 0)}",
        f"total_forks:{getattr(server, 'stat_total_forks', 0)}",
        f"migrate_cached_sockets:{migrate_sockets}",
        f"slave_expires_tracked_keys:{len(server.keyspace.replica_keys_with_expire)}",
        "active_defrag_hits:0",
        "active_defrag_misses:0",
        "active_defrag_key_hits:0",
        "active_defrag_key_misses:0",
        "total_active_defrag_time:0",
        "current_active_defrag_time:0",
        f"tracking_total_keys:{len(server.tracking.table) if server.tracking is not None else 0}",
        f"tracking_total_items:{server.tracking.total_items if server.tracking is not None else 0}",
        f"tracking_total_prefixes:{len(server.tracking.prefixes) if server.tracking is not None else 0}",
        f"unexpected_error_replies:{server.stat_unexpected_errors}",
        f"total_error_replies:{server.stat_error_replies}",
        f"dump_payload_sanitizations:{getattr(server, 'stat_sanitizations', 0)}",
        f"total_reads_processed:{server.stat_reads}",
        f"total_writes_processed:{server.stat_writes}",
        "io_threaded_reads_processed:0",
        "io_threaded_writes_processed:0",
        f"client_query_buffer_limit_disconnections:{server.stat_qbuf_disconnections}",
        f"client_output_buffer_limit_disconnections:{server.stat_obuf_disconnections}",
        f"reply_buffer_shrinks:{server.stat_reply_buffer_shrinks}",
        f"reply_buffer_expands:{server.stat_reply_buffer_expands}",
        *_eventloop_lines(server),
        f"acl_access_denied_auth:{server.acl.denied[acl.DENIED_AUTH]}",
        f"acl_access_denied_cmd:{server.acl.denied[acl.DENIED_CMD]}",
        f"acl_access_denied_key:{server.acl.denied[acl.DENIED_KEY]}",
        f"acl_access_denied_channel:{server.acl.denied[acl.DENIED_CHANNEL]}",
    ]


def _eventloop_lines(server: Any) -> list[str]:
    stats = server.loop_stats
    commands_us = sum(cmd.usec for cmd in _all_commands())  # (calls inside EXEC and scripts included)
    return [
        f"eventloop_cycles:{server.loop_cycles()}",
        f"eventloop_duration_sum:{server.busy_us()}",
        f"eventloop_duration_cmd_sum:{commands_us}",
        f"instantaneous_eventloop_cycles_per_sec:{int(stats.cycle_rate.value())}",
        f"instantaneous_eventloop_duration_usec:{stats.duration_per_cycle_us()}",
    ]


def _section_debug(server: Any) -> list[str]:
    stats = server.loop_stats
    aof = getattr(server, "aof", None)
    return [
        f"eventloop_duration_aof_sum:{getattr(aof, 'flush_us', 0)}",
        f"eventloop_duration_cron_sum:{stats.cron_us}",
        f"eventloop_duration_max:{stats.max_us}",
        f"eventloop_cmd_per_cycle_max:{stats.commands_per_cycle_max}",
        # Redis's jemalloc arena for Lua; Lua's memory here is in used_memory_lua
        "allocator_allocated_lua:0",
        "allocator_active_lua:0",
        "allocator_resident_lua:0",
        "allocator_frag_bytes_lua:0",
    ]


def _section_replication(server: Any) -> list[str]:
    return server.replication.info_lines()


def _section_cpu(server: Any) -> list[str]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return [
        f"used_cpu_sys:{me.ru_stime:.6f}",
        f"used_cpu_user:{me.ru_utime:.6f}",
        f"used_cpu_sys_children:{kids.ru_stime:.6f}",
        f"used_cpu_user_children:{kids.ru_utime:.6f}",
        f"used_cpu_sys_main_thread:{me.ru_stime:.6f}",
        f"used_cpu_user_main_thread:{me.ru_utime:.6f}",
    ]


def _all_commands() -> list[Any]:
    out = []
    for cmd in TABLE.values():
        out.append(cmd)
        out.extend(cmd.subcommands.values())
    return out


def _section_commandstats(server: Any) -> list[str]:
    lines = []
    for cmd in _all_commands():
        if cmd.calls or cmd.rejected_calls or cmd.failed_calls:
            per = cmd.usec / cmd.calls if cmd.calls else 0
            lines.append(
                f"cmdstat_{cmd.name}:calls={cmd.calls},usec={cmd.usec},usec_per_call={per:.2f},"
                f"rejected_calls={cmd.rejected_calls},failed_calls={cmd.failed_calls}"
            )
    return lines


def _section_errorstats(server: Any) -> list[str]:
    return [f"errorstat_{code}:count={n}" for code, n in sorted(server.errorstats.items())]


def _section_latencystats(server: Any) -> list[str]:
    if not server.latency_tracking:
        return []
    percentiles = server.config["latency-tracking-info-percentiles"].split()  # as configured
    return [percentiles_line(cmd.name, cmd.latency, percentiles) for cmd in _all_commands() if cmd.latency is not None]


def _section_cluster(server: Any) -> list[str]:
    return [f"cluster_enabled:{1 if server.cluster is not None else 0}"]


def _section_keyspace(server: Any) -> list[str]:
    lines = []
    subexpiry = getattr(server, "subexpiry_count", None)
    for db in server.keyspace.dbs:
        if len(db):
            sub = subexpiry(db) if subexpiry is not None else 0
            lines.append(f"db{db.index}:keys={len(db)},expires={len(db.expires)},avg_ttl={db.avg_ttl},subexpiry={sub}")
    return lines


_BUILDERS = {
    "server": _section_server,
    "clients": _section_clients,
    "memory": _section_memory,
    "persistence": _section_persistence,
    "stats": _section_stats,
    "replication": _section_replication,
    "cpu": _section_cpu,
    "modules": lambda server: [],
    "commandstats": _section_commandstats,
    "errorstats": _section_errorstats,
    "latencystats": _section_latencystats,
    "cluster": _section_cluster,
    "keyspace": _section_keyspace,
    "debug": _section_debug,  # only when named: not in all or everything
}


def info_text(server: Any, wanted: list[str]) -> str:
    chosen: set[str] = set()
    if not wanted:
        chosen.update(DEFAULT_SECTIONS)
    for name in wanted:
        if name == "default":
            chosen.update(DEFAULT_SECTIONS)
        elif name in ("all", "everything"):
            chosen.update(SECTIONS)
        elif name in _BUILDERS:
            chosen.add(name)
    parts = []
    for name in (*SECTIONS, "debug"):
        if name in chosen:
            title = name.capitalize() if name != "cpu" else "CPU"
            lines = [f"# {title}", *_BUILDERS[name](server)]
            parts.append("\r\n".join(lines) + "\r\n")
    return "\r\n".join(parts)


@command("info", -1, "loading stale", **SRV, summary="Returns information and statistics about the server.",
         args="[section...]", acl="dangerous", complexity="O(1)",
         tips="nondeterministic_output request_policy:all_shards response_policy:special",
         history=(("7.0.0", "Added support for taking multiple section arguments."),))
def info(c: Any, argv: list[bytes]) -> Any:
    return Verbatim(info_text(c.server, [a.decode("utf-8", "replace").lower() for a in argv[1:]]))


# ----------------------------------------------------------------------------- CONFIG

container("config", group="server", since="2.0.0", summary="A container for server configuration commands.")


@command("config|get", -3, "admin noscript loading stale", **SRV, since="2.0.0",
         summary="Returns the effective values of configuration parameters.", args="parameter...",
         complexity="O(N) when N is the number of configuration parameters provided",
         history=(("7.0.0", "Added the ability to pass multiple pattern parameters in one call"),))
def config_get(c: Any, argv: list[bytes]) -> Any:
    patterns = [a.decode("utf-8", "surrogateescape") for a in argv[2:]]
    pairs = c.server.config.get_matching(patterns)
    return Map((k.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape")) for k, v in pairs)


# Settings CONFIG SET refuses while a dataset loads (Redis's DENY_LOADING_CONFIG).
_DENY_LOADING = frozenset({"appendonly", "repl-diskless-load", "dir"})


@command("config|set", -4, "admin noscript loading stale", **SRV, since="2.0.0",
         summary="Sets configuration parameters in-flight.", args="data=(parameter value)...",
         complexity="O(N) when N is the number of configuration parameters provided",
         tips="request_policy:all_nodes response_policy:all_succeeded",
         history=(("7.0.0", "Added the ability to set multiple parameters in one call."),))
def config_set(c: Any, argv: list[bytes]) -> Any:
    if len(argv) % 2:
        raise CommandError(SYNTAX)
    cfg = c.server.config
    items: list[tuple[str, Any, str]] = []
    seen: set[str] = set()
    for i in range(2, len(argv), 2):
        name = argv[i].decode("utf-8", "surrogateescape")
        setting = cfg.lookup(name)
        if setting is None:
            raise CommandError(f"Unknown option or number of arguments for CONFIG SET - '{name}'")
        if setting.immutable:
            raise CommandError(f"CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config")
        if setting.protected and not protected_action_allowed(c, cfg["enable-protected-configs"]):
            raise CommandError(f"CONFIG SET failed (possibly related to argument '{name}') - can't set protected config")
        if setting.name in seen:
            raise CommandError(f"CONFIG SET failed (possibly related to argument '{name}') - duplicate parameter")
        if setting.name in _DENY_LOADING and (c.server.snapshots.loading or c.server.snapshots.async_loading):
            raise CommandError("-LOADING Redis is loading the dataset in memory")  # (DENY_LOADING_CONFIG)
        seen.add(setting.name)
        items.append((name, setting, argv[i + 1].decode("utf-8", "surrogateescape")))
    converted = []
    for name, setting, text in items:
        try:
            args = [text] if setting.kind not in ("list", "save", "obl", "oom", "percentiles") else text.split()
            if setting.kind in ("list", "save", "percentiles") and not args:
                args = [""]
            converted.append((setting, cfg.convert(setting, args)))
        except ConfigError as e:
            raise CommandError(f"CONFIG SET failed (possibly related to argument '{name}') - {e}") from None
        if setting.name == "dir":
            if not os.path.isdir(text):
                raise CommandError(f"CONFIG SET failed (possibly related to argument '{name}') - No such file or directory")
    previous = [(setting, cfg.values[setting.name]) for setting, _ in converted]
    applies: list[tuple[str, Any]] = []  # (the argument that asked first, apply function): once each
    for (name, _, _), (setting, value) in zip(items, converted, strict=True):
        apply = _APPLY.get(setting.name)
        if apply is not None and value != cfg.values[setting.name] and all(apply is not f for _, f in applies):
            applies.append((name, apply))
        cfg.apply(setting.name, value)
        if setting.name == "dir":
            os.chdir(value)
    for done, (name, apply) in enumerate(applies):
        reason = apply(c.server)
        if reason is not None:  # Redis's rollback: the old values, and the applies that ran again
            for setting, value in previous:
                cfg.apply(setting.name, value)
                if setting.name == "dir" and value:
                    os.chdir(value)
            for _, undo in applies[:done]:
                undo(c.server)
            raise CommandError(f"CONFIG SET failed (possibly related to argument '{name}') - {reason}")
    return OK


def _apply_listeners(server: Any, reason: str) -> str | None:
    try:
        server.listen_tcp()
    except ListenError as e:  # the listeners stay as they were
        server.log("warning", f"Warning: Could not create server TCP listening socket {e.host}:"
                   f"{server.config['port']}: {e.strerror}")
        return reason
    return None


def _apply_oom_score(server: Any) -> str | None:
    if not server.apply_oom_score():
        return "Failed to set current oom_score_adj. Check server logs."
    return None


# What CONFIG SET does once a setting has a new value (Redis's apply functions); a reason on failure.
_APPLY = {
    "port": lambda server: _apply_listeners(server, "Unable to listen on this port. Check server logs."),
    "bind": lambda server: _apply_listeners(server, "Failed to bind to specified addresses."),
    "oom-score-adj": _apply_oom_score,
    "oom-score-adj-values": _apply_oom_score,
}


@command("config|resetstat", 2, "admin noscript loading stale", **SRV, since="2.0.0",
         summary="Resets the server's statistics.")
def config_resetstat(c: Any, argv: list[bytes]) -> Any:
    server = c.server
    ks = server.keyspace
    for cmd in _all_commands():
        cmd.calls = cmd.usec = cmd.rejected_calls = cmd.failed_calls = 0
        cmd.latency = None
    server.errorstats.clear()
    server.errorstats_enabled = True
    server.stat_connections = server.stat_rejected = server.stat_commands = 0
    server.stat_net_input = server.stat_net_output = 0
    server.stat_error_replies = server.stat_unexpected_errors = 0
    server.stat_sanitizations = server.stat_obuf_disconnections = server.stat_evicted_clients = 0
    server.stat_qbuf_disconnections = 0
    server.stat_reply_buffer_shrinks = server.stat_reply_buffer_expands = 0
    server.reset_loop_stats()
    ks.stat_hits = ks.stat_misses = ks.stat_expired = ks.stat_evicted = ks.stat_expired_subkeys = 0
    ks.stat_lazyfreed_objects = 0
    server.scripting.evicted_scripts = 0
    ks.stat_expired_time_cap_reached = 0
    ks.stat_expired_stale_perc = 0.0
    for reason in server.acl.denied:
        server.acl.denied[reason] = 0
    server.replication.reset_stats()
    return OK


@command("config|rewrite", 2, "admin noscript loading stale", **SRV, since="2.8.0",
         summary="Persists the effective configuration to file.")
def config_rewrite(c: Any, argv: list[bytes]) -> Any:
    if not c.server.config.config_file:
        raise CommandError("The server is running without a config file")
    try:
        rewrite_config_file(c.server, force_all=False)
    except OSError as e:
        raise CommandError(f"Rewriting config file: {e.strerror}") from None
    return OK


def rewrite_config_file(server: Any, force_all: bool) -> None:
    """CONFIG REWRITE (``force_all``: DEBUG CONFIG-REWRITE-FORCE-ALL, every setting written even at
    its default); raises OSError, logged, leaving the old file whole."""
    cfg = server.config
    users = None
    if not cfg["aclfile"]:  # rewriteConfigUserOption: the users live in the config file
        table = server.acl.users
        users = [f"user {(name + b' ' + table[name].describe()).decode('utf-8', 'surrogateescape')}"
                 for name in sorted(table)]
    try:
        try:
            with open(cfg.config_file, encoding="utf-8", errors="surrogateescape") as f:
                old = f.read()
        except FileNotFoundError:
            old = ""  # a file removed since the start is written anew
        _replace_file(cfg.config_file, configrewrite.rewrite(old, cfg, users, force_all))
    except OSError as e:
        server.log("warning", f"CONFIG REWRITE failed: {e.strerror}")
        raise
    server.log("notice", "CONFIG REWRITE executed with success.")


def _replace_file(path: str, content: str) -> None:
    """rewriteConfigOverwriteFile: a temporary file next to it, synced, mode 0644 less the
    umask, renamed over it, the directory synced; the old file stays whole on any error."""
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(f.fileno(), 0o644 & ~umask)
        os.rename(tmp, path)
    except OSError:
        os.unlink(tmp)
        raise
    dir_fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@command("config|help", 2, "loading stale", **SRV, since="5.0.0", summary="Returns helpful text about the different subcommands.")
def config_help(c: Any, argv: list[bytes]) -> Any:
    return _help(argv, [
        "GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>", "    Set the configuration <directive> to <value>.",
        "RESETSTAT", "    Reset statistics reported by the INFO command.",
        "REWRITE", "    Rewrite the configuration file.",
    ])


def _help(argv: list[bytes], body: list[str]) -> list[Status]:
    lines = [help_header(argv), *body, "HELP", "    Print this help."]
    return [Status(line) for line in lines]


# ----------------------------------------------------------------------------- TIME / LASTSAVE / SAVE


@command("time", 1, "loading stale fast", **SRV, since="2.6.0", summary="Returns the server time.",
         tips="nondeterministic_output")
def time_(c: Any, argv: list[bytes]) -> Any:
    server = c.server
    # Inside a script or EXEC, the time snapshot of the command that contains it (Redis 7).
    now = (server.cmd_time_ns if server.in_exec else time.time_ns()) // 1000
    return [str(now // 1_000_000).encode(), str(now % 1_000_000).encode()]


@command("lastsave", 1, "loading stale fast", **SRV, summary="Returns the Unix timestamp of the last successful save to disk.",
         acl="admin dangerous", tips="nondeterministic_output")
def lastsave(c: Any, argv: list[bytes]) -> Any:
    return c.server.last_save


# ----------------------------------------------------------------------------- MEMORY

container("memory", group="server", since="4.0.0", summary="A container for memory diagnostics commands.")


@command("memory|usage", -3, "readonly", (2, 2, 1), **SRV, key_flags="RO", since="4.0.0", summary="Estimates the memory usage of a key.",
         args="key [SAMPLES count:integer]", complexity="O(N) where N is the number of samples.")
def memory_usage(c: Any, argv: list[bytes]) -> Any:
    if len(argv) == 5 and argv[3].lower() == b"samples":
        samples = to_int(argv[4])
        if samples < 0:
            raise CommandError(SYNTAX)
    elif len(argv) != 3:
        raise CommandError(SYNTAX)
    value = c.db.peek(argv[2])
    if value is None:
        return None
    from dumpling.memory import key_memory

    return key_memory(argv[2], value)


@command("memory|stats", 2, "", **SRV, since="4.0.0", summary="Returns details about memory usage.",
         tips="nondeterministic_output request_policy:all_shards response_policy:special")
def memory_stats(c: Any, argv: list[bytes]) -> Any:
    server = c.server
    used = server.used_memory()
    pairs: list[tuple[bytes, Any]] = [
        (b"peak.allocated", max(getattr(server, "peak_memory", 0), used)),
        (b"total.allocated", used),
        (b"startup.allocated", 0),
        (b"replication.backlog", server.replication.backlog_bytes()),
        (b"clients.slaves", server.replication.replica_buffer_bytes()),
        (b"clients.normal", 0),
        (b"cluster.links", 0),
        (b"aof.buffer", 0),
        (b"lua.caches", 0),
        (b"functions.caches", 184),
    ]
    keys = sum(len(db) for db in server.keyspace.dbs)
    per_db, lut, rehashing, rehashing_dicts = server.dictstats.overheads()
    for index, main, expires in per_db:
        pairs.append((f"db.{index}".encode(), Map([(b"overhead.hashtable.main", main),
                                                   (b"overhead.hashtable.expires", expires)])))
    pairs += [
        (b"overhead.db.hashtable.lut", lut),
        (b"overhead.db.hashtable.rehashing", rehashing),
        (b"overhead.total", 0),
        (b"db.dict.rehashing.count", rehashing_dicts),
        (b"keys.count", keys),
        (b"keys.bytes-per-key", used // keys if keys else 0),
        (b"dataset.bytes", used),
        (b"dataset.percentage", Double(100.0)),
        (b"peak.percentage", Double(100.0)),
        (b"allocator.allocated", used),
        (b"allocator.active", used),
        (b"allocator.resident", _rss_bytes()),
        (b"allocator-fragmentation.ratio", Double(1.0)),
        (b"allocator-fragmentation.bytes", 0),
        (b"allocator.rss-ratio", Double(1.0)),
        (b"allocator.rss-bytes", 0),
        (b"rss-overhead.ratio", Double(1.0)),
        (b"rss-overhead.bytes", 0),
        (b"fragmentation", Double(1.0)),
        (b"fragmentation.bytes", 0),
    ]
    return Map(pairs)


@command("memory|doctor", 2, "", **SRV, since="4.0.0", summary="Outputs a memory problems report.",
         tips="nondeterministic_output request_policy:all_shards response_policy:special")
def memory_doctor(c: Any, argv: list[bytes]) -> Any:
    return Verbatim(
        "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these "
        "conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be "
        "back to our programming as soon as I finished rebooting."
    )


@command("memory|malloc-stats", 2, "", **SRV, since="4.0.0", summary="Returns the allocator statistics.",
         tips="nondeterministic_output request_policy:all_shards response_policy:special",
         complexity="Depends on how much memory is allocated, could be slow")
def memory_malloc_stats(c: Any, argv: list[bytes]) -> Any:
    return Verbatim("Stats not supported for the current allocator")


@command("memory|purge", 2, "", **SRV, since="4.0.0", summary="Asks the allocator to release memory.",
         tips="request_policy:all_shards response_policy:all_succeeded",
         complexity="Depends on how much memory is allocated, could be slow")
def memory_purge(c: Any, argv: list[bytes]) -> Any:
    return OK


@command("memory|help", 2, "loading stale", **SRV, since="4.0.0", summary="Returns helpful text about the different subcommands.")
def memory_help(c: Any, argv: list[bytes]) -> Any:
    return _help(argv, [
        "DOCTOR", "    Return memory problems reports.",
        "MALLOC-STATS", "    Return internal statistics report from the memory allocator.",
        "PURGE", "    Attempt to purge dirty pages for reclamation by the allocator.",
        "STATS", "    Return information about the memory usage of the server.",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: 5, 0 means sample all).",
    ])


# ----------------------------------------------------------------------------- SLOWLOG

container("slowlog", group="server", since="2.2.12", summary="A container for slow log commands.")


@command("slowlog|get", -2, "admin loading stale", **SRV, since="2.2.12", summary="Returns the slow log's entries.",
         args="[count:integer]", tips="request_policy:all_nodes nondeterministic_output",
         history=(("4.0.0", "Added client IP address, port and name to the reply."),),
         complexity="O(N) where N is the number of entries returned")
def slowlog_get(c: Any, argv: list[bytes]) -> Any:
    count = 10
    if len(argv) == 3:
        count = to_int(argv[2], "count should be greater than or equal to -1")
        if count < -1:
            raise CommandError("count should be greater than or equal to -1")
        if count == -1:
            count = len(c.server.slowlog)
    elif len(argv) > 3:
        raise CommandError("wrong number of arguments for 'slowlog|get' command")
    return [list(entry) for entry in list(c.server.slowlog)[:count]]


@command("slowlog|len", 2, "admin loading stale", **SRV, since="2.2.12", summary="Returns the number of entries in the slow log.",
         tips="request_policy:all_nodes response_policy:agg_sum nondeterministic_output")
def slowlog_len(c: Any, argv: list[bytes]) -> Any:
    return len(c.server.slowlog)


@command("slowlog|reset", 2, "admin loading stale", **SRV, since="2.2.12", summary="Clears all entries from the slow log.",
         tips="request_policy:all_nodes response_policy:all_succeeded",
         complexity="O(N) where N is the number of entries in the slowlog")
def slowlog_reset(c: Any, argv: list[bytes]) -> Any:
    c.server.slowlog.clear()
    return OK


@command("slowlog|help", 2, "loading stale", **SRV, since="6.2.0", summary="Show helpful text about the different subcommands")
def slowlog_help(c: Any, argv: list[bytes]) -> Any:
    return _help(argv, [
        "GET [<count>]", "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:", "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN", "    Return the length of the slowlog.",
        "RESET", "    Reset the slowlog.",
    ])


# ----------------------------------------------------------------------------- MONITOR


@command("monitor", 1, "admin noscript loading stale", **SRV, since="1.0.0",
         summary="Listens for all requests received by the server in real-time.",
         complexity="")
def monitor(c: Any, argv: list[bytes]) -> Any:
    server = c.server
    if server.in_exec:
        raise CommandError("MONITOR isn't allowed for DENY BLOCKING client")
    if not c.monitor:
        c.monitor = True
        server.monitors.append(c)
    return OK


# ----------------------------------------------------------------------------- LATENCY

container("latency", group="server", since="2.8.13", summary="A container for latency diagnostics commands.")


@command("latency|latest", 2, "admin noscript loading stale", **SRV, since="2.8.13",
         summary="Returns the latest latency samples for all events.", tips="nondeterministic_output request_policy:all_nodes response_policy:special")
def latency_latest(c: Any, argv: list[bytes]) -> Any:
    return c.server.latency.latest()


@command("latency|history", 3, "admin noscript loading stale", **SRV, since="2.8.13", args="event",
         summary="Returns timestamp-latency samples for an event.", tips="nondeterministic_output request_policy:all_nodes response_policy:special")
def latency_history(c: Any, argv: list[bytes]) -> Any:
    return c.server.latency.history(argv[2].decode("utf-8", "surrogateescape"))


@command("latency|graph", 3, "admin noscript loading stale", **SRV, since="2.8.13", args="event",
         summary="Returns a latency graph for an event.", complexity="O(1)", tips="nondeterministic_output request_policy:all_nodes response_policy:special")
def latency_graph(c: Any, argv: list[bytes]) -> Any:
    event = argv[2].decode("utf-8", "surrogateescape")
    graph = c.server.latency.graph(event, int(time.time()))
    if graph is None:
        raise CommandError(f"No samples available for event '{event}'")
    return Verbatim(graph)


@command("latency|reset", -2, "admin noscript loading stale", **SRV, since="2.8.13", args="[event...]",
         summary="Resets the latency data for one or more events.", tips="request_policy:all_nodes response_policy:all_succeeded")
def latency_reset(c: Any, argv: list[bytes]) -> Any:
    events = [a.decode("utf-8", "surrogateescape") for a in argv[2:]]
    return c.server.latency.reset(events or None)


@command("latency|doctor", 2, "admin noscript loading stale", **SRV, since="2.8.13",
         summary="Returns a human-readable latency analysis report.", tips="nondeterministic_output request_policy:all_nodes response_policy:special")
def latency_doctor(c: Any, argv: list[bytes]) -> Any:
    cfg = c.server.config
    return Verbatim(c.server.latency.doctor(int(time.time()), cfg["latency-monitor-threshold"],
                                            cfg["slowlog-log-slower-than"], cfg["slowlog-max-len"], cfg["hz"]))


@command("latency|histogram", -2, "admin noscript loading stale", **SRV, since="7.0.0", args="[command...]",
         summary="Returns the cumulative distribution of latencies of a subset or all commands.",
         tips="nondeterministic_output request_policy:all_nodes response_policy:special",
         complexity="O(N) where N is the number of commands with latency information being retrieved.")
def latency_histogram(c: Any, argv: list[bytes]) -> Any:
    if len(argv) == 2:
        chosen = _all_commands()
    else:  # latencySpecificCommandsFillCDF: in the order named, repeats included; a container
        chosen = []  # brings its subcommands; unknown names are skipped
        for name in argv[2:]:
            cmd = _command_by_full_name(name)
            if cmd is not None:
                chosen.append(cmd)
                chosen.extend(cmd.subcommands.values())
    return Map([(cmd.name.encode(), _histogram_reply(cmd.latency)) for cmd in chosen if cmd.latency is not None])


def _command_by_full_name(name: bytes) -> Any:
    """lookupCommandBySds: ``get`` or ``config|get``, any case."""
    parts = name.lower().split(b"|")
    cmd = TABLE.get(parts[0])
    if cmd is None or len(parts) == 1:
        return cmd
    return cmd.subcommands.get(parts[1]) if len(parts) == 2 else None


def _histogram_reply(histogram: Any) -> Map:
    """fillCommandCDF: the calls recorded, and the cumulative counts at power-of-two µs buckets."""
    total = histogram.total
    return Map([(b"calls", total), (b"histogram_usec", Map(cumulative_usec(histogram.items(), total)))])


@command("latency|help", 2, "loading stale", **SRV, since="2.8.13", summary="Returns helpful text about the different subcommands.")
def latency_help(c: Any, argv: list[bytes]) -> Any:
    return _help(argv, [
        "DOCTOR", "    Return a human readable latency analysis report.",
        "GRAPH <event>", "    Return an ASCII latency graph for the <event> class.",
        "HISTORY <event>", "    Return time-latency samples for the <event> class.",
        "LATEST", "    Return the latest latency samples for all events.",
        "RESET [<event> ...]", "    Reset latency data of one or more <event> classes.",
        "    (default: reset all data for all event classes)",
        "HISTOGRAM [COMMAND ...]", "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
        "    If no commands are specified then all histograms are replied.",
    ])


# ----------------------------------------------------------------------------- SHUTDOWN


@command("shutdown", -1, "admin noscript loading stale no_multi allow_busy", **SRV, since="1.0.0",
         summary="Synchronously saves the database(s) to disk and shuts down the Redis server.",
         args="[save-selector=(NOSAVE | SAVE)] [NOW@7.0.0] [FORCE@7.0.0] [ABORT@7.0.0]",
         history=(("7.0.0", "Added the `NOW`, `FORCE` and `ABORT` modifiers."),),
         complexity=("O(N) when saving, where N is the total number of keys in all databases when saving data, "
                     "otherwise O(1)"))
def shutdown(c: Any, argv: list[bytes]) -> Any:
    opts = {a.lower() for a in argv[1:]}
    if not opts <= {b"nosave", b"save", b"now", b"force", b"abort"}:
        raise CommandError(SYNTAX)
    server = c.server
    if b"abort" in opts:
        if len(argv) > 2:
            raise CommandError(SYNTAX)
        if not server.abort_shutdown():
            raise CommandError("No shutdown in progress.")
        return OK
    if b"save" in opts and b"nosave" in opts:
        raise CommandError(SYNTAX)
    flags = frozenset(a.decode() for a in opts)
    done = server.request_shutdown("User requested shutdown...", flags)
    if done is None or (done is False and server.shutdown_deadline_ms):
        # Waiting for lagging replicas (started now, or by an earlier SHUTDOWN or SIGTERM):
        # this client waits with it, answered only if the shutdown fails or is aborted.
        server.shutdown_waiters.append(c)
        return Blocked([], 0, lambda: None, None)
    if not done:
        raise CommandError("Errors trying to SHUTDOWN. Check logs.")
    c.flags_close_after_reply = True
    return NO_REPLY


# ----------------------------------------------------------------------------- RDB snapshots (dumpling.persistence)


@command("save", 1, "admin noscript no_async_loading no_multi", **SRV, summary="Synchronously saves the database(s) to disk.",
         complexity="O(N) where N is the total number of keys in all databases")
def save(c: Any, argv: list[bytes]) -> Any:
    snapshots = c.server.snapshots
    if snapshots.child_pid != -1:
        raise CommandError("Background save already in progress")
    snapshots.saves += 1
    if not snapshots.save():
        raise CommandError("-ERR")
    return OK


@command("bgsave", -1, "admin noscript no_async_loading", **SRV, summary="Asynchronously saves the database(s) to disk.",
         args="[SCHEDULE@3.2.2]", complexity="O(1)", history=(("3.2.2", "Added the `SCHEDULE` option."),))
def bgsave(c: Any, argv: list[bytes]) -> Any:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].lower() != b"schedule"):
        raise CommandError(SYNTAX)
    server = c.server
    snapshots = server.snapshots
    if snapshots.child_pid != -1 or server.replication.transfer_child_running():  # (any RDB child, as Redis)
        raise CommandError("Background save already in progress")
    if server.in_exec or server.aof.child_pid != -1:
        if len(argv) == 2 or server.in_exec:
            snapshots.scheduled = True
            return Status("Background saving scheduled")
        raise CommandError("Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in "
                           "order to schedule a BGSAVE whenever possible.")
    if not snapshots.bgsave():
        raise CommandError("-ERR")
    return Status("Background saving started")


@command("bgrewriteaof", 1, "admin noscript no_async_loading", **SRV, since="1.0.0",
         summary="Asynchronously rewrites the append-only file to disk.")
def bgrewriteaof(c: Any, argv: list[bytes]) -> Any:
    server = c.server
    aof = server.aof
    if aof.child_pid != -1:
        raise CommandError("Background append only file rewriting already in progress")
    if server.snapshots.child_pid != -1 or server.in_exec:
        aof.scheduled = True
        aof.consecutive_failures = 0
        return Status("Background append only file rewriting scheduled")
    if not aof.rewrite():
        raise CommandError("Can't execute an AOF background rewriting. Please check the server logs for more "
                           "information.")
    return Status("Background append only file rewriting started")


# ----------------------------------------------------------------------------- DEBUG

_DEBUG_HELP = [
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANGE-REPL-ID", "    Change the replication IDs of the instance.",
    "CONFIG-REWRITE-FORCE-ALL", "    Like CONFIG REWRITE but writes all configuration options, including",
    "    keywords not listed in original configuration file or default values.",
    "DIGEST", "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]", "    Output a hex signature of the values of all the specified keys.",
    "ERROR <string>", "    Return a Redis protocol error with <string> as message.",
    "LISTPACK <key>", "    Show low level info about the listpack encoding of <key>.",
    "HTSTATS <dbid> [full]", "    Return hash table statistics of the specified Redis database.",
    "HTSTATS-KEY <key> [full]", "    Like HTSTATS but for the hash table stored at <key>'s value.",
    "LOG <message>", "    Write <message> to the server log.",
    "OBJECT <key>", "    Show low level info about `key` and associated value.",
    "PAUSE-CRON <0|1>", "    Stop periodic cron job processing.",
    "PROTOCOL <type>", "    Reply with a test value of the specified type.",
    "QUICKLIST-PACKED-THRESHOLD <size>",
    "    Elements of at least <size> bytes get plain quicklist nodes (up to 4GB; 0 restores the size rules).",
    "SET-ACTIVE-EXPIRE <0|1>", "    Setting it to 0 disables expiring keys in background when they are not accessed.",
    "SET-DISABLE-DENY-SCRIPTS <0|1>", "    Setting it to 1 enables commands flagged noscript in scripts.",
    "SET-SKIP-CHECKSUM-VALIDATION <0|1>", "    Enables or disables checksum checks for RDB files and RESTORE's payload.",
    "SLEEP <seconds>", "    Stop the server for <seconds>. Decimals allowed.",
    "POPULATE <count> [<prefix>] [<size>]", "    Create <count> string keys named key:<num>.",
    "REPLYBUFFER PEAK-RESET-TIME <NEVER||RESET|time>",
    "    Sets the time (in milliseconds) to wait between client reply buffer peak resets.",
    "    In case NEVER is provided the last observed peak will never be reset",
    "    In case RESET is provided the peak reset time will be restored to the default value",
    "REPLYBUFFER RESIZING <0|1>",
    "    Enable or disable the reply buffer resize cron job",
    "DICT-RESIZING <0|1>", "    Enable or disable the main dict and expire dict resizing.",
    "HELP", "    Print this help.",
]


def _scripting_memory(server: Any) -> list[str]:
    """The Lua and scripts fields of INFO memory (Redis 7.4's names)."""
    scripting = server.scripting
    vm_eval = scripting.eval_state.memory()
    vm_functions = scripting.functions_vm_memory()
    libraries = scripting.libraries
    scripts_eval = scripting.scripts_memory()
    functions = scripting.functions_memory()
    return [
        f"used_memory_lua:{vm_eval}",
        f"used_memory_vm_eval:{vm_eval}",
        f"used_memory_lua_human:{human_bytes(vm_eval)}",
        f"used_memory_scripts_eval:{scripts_eval}",
        f"number_of_cached_scripts:{len(scripting.scripts)}",
        f"number_of_functions:{len(libraries.functions)}",
        f"number_of_libraries:{len(libraries.libraries)}",
        f"used_memory_vm_functions:{vm_functions}",
        f"used_memory_vm_total:{vm_eval + vm_functions}",
        f"used_memory_vm_total_human:{human_bytes(vm_eval + vm_functions)}",
        f"used_memory_functions:{functions}",
        f"used_memory_scripts:{scripts_eval + functions}",
        f"used_memory_scripts_human:{human_bytes(scripts_eval + functions)}",
    ]


def debug_enabled(c: Any) -> bool:
    return protected_action_allowed(c, c.server.config["enable-debug-command"])


@command("debug", -2, "admin noscript loading stale", **SRV, since="1.0.0", summary="A container for debugging commands.",
         args="", complexity="Depends on subcommand.", doc_flags="syscmd")
def debug(c: Any, argv: list[bytes]) -> Any:
    if not debug_enabled(c):
        raise CommandError(
            "DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from "
            "a local connection, otherwise you need to set this option in the configuration file, and then restart "
            "the server."
        )
    sub = argv[1].lower()
    n = len(argv)
    server, ks = c.server, c.keyspace
    if sub == b"help" and n == 2:
        return [Status(help_header(argv)), *(Status(line) for line in _DEBUG_HELP[1:])]
    if sub == b"sleep" and n == 3:
        from dumpling.commands.common import to_float

        time.sleep(max(to_float(argv[2]), 0.0))
        return OK
    if sub == b"set-active-expire" and n == 3:
        ks.active_expire_enabled = to_int(argv[2]) != 0
        return OK
    if sub == b"pause-cron" and n == 3:
        number = re.match(rb"\s*[+-]?[0-9]+", argv[2])  # atoi: anything else is 0
        server.cron_paused = number is not None and int(number.group()) != 0
        return OK
    if sub == b"set-disable-deny-scripts" and n == 3:
        server.scripting.disable_deny_script = to_int(argv[2]) != 0
        return OK
    if sub == b"set-skip-checksum-validation" and n == 3:
        server.skip_checksum = to_int(argv[2]) != 0
        return OK
    if sub == b"error" and n == 3:
        from dumpling.protocol import ErrorReply

        return ErrorReply(argv[2].decode("utf-8", "replace"))
    if sub == b"log" and n == 3:
        server.log("warning", "DEBUG LOG: " + argv[2].decode("utf-8", "replace"))
        return OK
    if sub == b"replicate" and n >= 3:  # to the replicas only, not run here (a test knob, as in Redis)
        server.replication.feed_command(*argv[2:])
        return OK
    if sub == b"change-repl-id" and n == 2:
        import secrets

        server.replid = secrets.token_hex(20)
        return OK
    if sub == b"object" and n == 3:
        return _debug_object(c, argv[2])
    if sub == b"htstats" and n >= 3:
        dbid = to_int(argv[2])
        if not 0 <= dbid < len(ks.dbs):
            raise CommandError("Out of range database")
        full = n >= 4 and argv[3].lower() == b"full"
        return Verbatim(server.dictstats.htstats(ks.dbs[dbid], full))
    if sub == b"htstats-key" and n >= 3:
        return _debug_htstats_key(c, argv[2], n >= 4 and argv[3].lower() == b"full")
    if sub == b"dict-resizing" and n == 3:
        number = re.match(rb"\s*[+-]?[0-9]+", argv[2])  # atoi
        server.dictstats.set_resizing(number is not None and int(number.group()) != 0)
        return OK
    if sub == b"listpack" and n == 3:
        return _debug_listpack(c, argv[2])
    if sub == b"protocol" and n == 3:
        return _debug_protocol(c, argv[2])
    if sub == b"populate" and 3 <= n <= 5:
        return _debug_populate(c, argv)
    if sub == b"reload":
        return _debug_reload(c, argv)
    if sub == b"loadaof" and n == 2:
        if not server.aof.reload(c):
            raise CommandError("Error trying to load the AOF files, check server logs.")
        return OK
    if sub == b"digest" and n == 2:
        return Status(dataset_digest(ks.dbs).hex())
    if sub == b"digest-value":
        # dbFind, not a lookup: logically expired keys are digested too, nothing is touched
        db = c.db
        return [Status(ZERO_DIGEST.hex() if (value := db.data.get(key)) is None
                       else value_digest(value, key in db.expires).hex()) for key in argv[2:]]
    if sub == b"replybuffer" and n == 4:
        return _debug_replybuffer(server, argv[1], argv[2].lower(), argv[3])
    if sub == b"config-rewrite-force-all" and n == 2:
        try:
            rewrite_config_file(server, force_all=True)
        except OSError as e:
            raise CommandError(f"CONFIG-REWRITE-FORCE-ALL failed: {e.strerror}") from None
        return OK
    if sub == b"quicklist-packed-threshold" and n == 3:
        size = parse_memory(argv[2].decode("latin-1"))
        if size is None or size < 0 or not set_packed_threshold(size):
            raise CommandError("argument must be a memory value bigger than 1 and smaller than 4gb")
        return OK
    if sub in (b"quicklist-packed-threshold", b"segfault", b"panic", b"assert", b"oom", b"restart",
               b"crash-and-recover", b"leak"):
        raise CommandError(f"DEBUG {argv[1].decode('utf-8', 'replace').upper()} is not supported by dumpling")
    text = argv[1][:128].decode("utf-8", "replace")
    raise CommandError(f"unknown subcommand or wrong number of arguments for '{text}'. Try DEBUG HELP.")


def _debug_reload(c: Any, argv: list[bytes]) -> Any:
    """DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: save, flush, load the file back."""
    merge, flush, save_first = False, True, True
    for opt in argv[2:]:
        word = opt.lower()
        if word == b"merge":
            merge = True
        elif word == b"noflush":
            flush = False
        elif word == b"nosave":
            save_first = False
        else:
            raise CommandError("DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.")
    error = c.server.snapshots.debug_reload(c, merge, flush, save_first)
    if error is not None:
        raise CommandError(error or "-ERR")
    return OK


def _debug_object(c: Any, key: bytes) -> Any:
    db = c.db
    value = db.data.get(key)  # as Redis's dbFind: a logically expired key is still shown
    if value is None:
        raise CommandError(NO_SUCH_KEY)
    from dumpling.commands.keys import REFCOUNT_SHARED, encoding_of, shares_integer
    from dumpling.keyspace import lru_idle_ms

    encoding = encoding_of(value).decode()
    shared = shares_integer(c, value)
    field = 0 if shared else db.field(key, 0)  # (the shared object's LRU field is never touched)
    length = len(value) if isinstance(value, (bytes, bytearray)) else len(value)
    idle = lru_idle_ms(field, c.keyspace.now) // 1000
    return Status(
        f"Value at:0x{_object_address(db.index, key, value, encoding, shared):x} "
        f"refcount:{REFCOUNT_SHARED if shared else 1} encoding:{encoding} serializedlength:{length} "
        f"lru:{field} lru_seconds_idle:{idle}{_quicklist_fields(c, value)}"
    )


_SHARED_INTEGERS_AT = 0x7E0000000000  # where the model puts Redis's shared.integers[0..9999]
_INT_OBJECTS_AT = 0x7F0000000000


def _object_address(db_index: int, key: bytes, value: Any, encoding: str, shared: bool) -> int:
    """DEBUG OBJECT's ``at:``, the address of Redis's robj for the value.  An integer 0..9999 is
    one shared object for every key holding it; any other int-encoded string is an object INCR
    edits in place for as long as the key holds an int (dumpling's integers are immutable bytes,
    so the model gives the key's int object one address); other values are their own objects."""
    if shared:
        return _SHARED_INTEGERS_AT + int(value) * 16
    if encoding == "int":
        return _INT_OBJECTS_AT | (hash((db_index, key)) & 0xFFFFFFFFFF) << 4
    return id(value)


def _debug_htstats_key(c: Any, key: bytes, full: bool) -> Any:
    """DEBUG HTSTATS-KEY <key> [full]: the table of a hashtable set/hash or skiplist zset."""
    from dumpling.dictstats import table_stats, value_table

    value = c.db.peek(key)  # objectCommandLookup
    if value is None:
        raise CommandError(NO_SUCH_KEY)
    encoding = getattr(value, "encoding", None)
    if encoding not in ("hashtable", "skiplist"):
        raise CommandError("The value stored at the specified key is not represented using an hash table")
    if isinstance(value, HashValue):
        members: list[bytes] = list(value.fields)
    elif isinstance(value, ZSetValue):
        members = [member for member, _ in value.items_by_score()]
    else:
        members = list(value)
    return Verbatim(table_stats([(value_table(len(members)), members if full else None)]))


def _quicklist_fields(c: Any, value: Any) -> str:
    """DEBUG OBJECT's extra fields for a quicklist (debug.c): node count, average node fill,
    the fill and compression settings, and the bytes of all nodes (a plain node's size is its
    element's).  Redis keeps fill and depth as they were when the quicklist was made; dumpling
    lists do not remember them, so the current settings are shown."""
    if type(value) is not ListValue or value.encoding != "quicklist":
        return ""
    fill = c.server.config["list-max-listpack-size"]
    nodes = value.nodes(fill)
    size = value.listpack_bytes(fill)
    index = 0
    for count, plain in nodes:
        if plain:
            size += len(value.items[index])
        index += count
    average = len(value) / len(nodes) if nodes else 0.0
    compressed = int(c.server.config["list-compress-depth"] != 0)
    return (f" ql_nodes:{len(nodes)} ql_avg_node:{average:.2f} ql_listpack_max:{fill}"
            f" ql_compressed:{compressed} ql_uncompressed_size:{size}")


def _debug_listpack(c: Any, key: bytes) -> Any:
    """DEBUG LISTPACK: Redis prints the listpack's entries on stdout (lpRepr) and says so.
    dumpling prints the entries it holds, one per line, after the entry count."""
    value = c.db.peek(key)  # objectCommandLookup: no LRU touch, but lazy expiry
    if value is None:
        raise CommandError(NO_SUCH_KEY)
    if isinstance(value, (bytes, bytearray)) or value.encoding not in ("listpack", "listpackex"):
        raise CommandError("Not a listpack encoded object.")
    if isinstance(value, ZSetValue):
        entries = [x for member, score in value.items_by_score() for x in (member, d2string(score))]
    elif isinstance(value, HashValue):
        entries = [x for item in value.fields.items() for x in item]
    else:
        entries = list(value)
    lines = [f"{{num entries {len(entries)}}}", *(repr(entry) for entry in entries)]
    print("\n".join(lines), flush=True)
    return Status("Listpack structure printed on stdout")


def _debug_replybuffer(server: Any, typed: bytes, what: bytes, value: bytes) -> Any:
    """DEBUG REPLYBUFFER PEAK-RESET-TIME <never|reset|ms> | RESIZING <0|1> (dumpling.replybuffer)."""
    from dumpling.replybuffer import DEFAULT_PEAK_RESET_MS

    if what == b"peak-reset-time":
        if value.lower() == b"never":
            server.reply_buffer_peak_reset_ms = -1
        elif value.lower() == b"reset":
            server.reply_buffer_peak_reset_ms = DEFAULT_PEAK_RESET_MS
        else:
            server.reply_buffer_peak_reset_ms = to_int(value)
    elif what == b"resizing":
        number = re.match(rb"\s*[+-]?[0-9]+", value)  # atoi
        server.reply_buffer_resizing = number is not None and int(number.group()) != 0
    else:
        name = typed[:128].decode("utf-8", "replace")
        raise CommandError(f"unknown subcommand or wrong number of arguments for '{name}'. Try DEBUG HELP.")
    return OK


def _debug_protocol(c: Any, kind: bytes) -> Any:
    from dumpling.protocol import BigNumber, Bool, Push, Raw, SetReply

    k = kind.lower()
    if k == b"string":
        return b"Hello World"
    if k == b"integer":
        return 12345
    if k == b"double":
        return Double(3.141)
    if k == b"bignum":
        return BigNumber(b"1234567999999999999999999999999999999")
    if k == b"null":
        return None
    if k == b"array":
        return [0, 1, 2]
    if k == b"set":
        return SetReply([0, 1, 2])
    if k == b"map":
        return Map([(0, Bool(False)), (1, Bool(True)), (2, Bool(False))])
    if k == b"attrib":
        # Attributes are not replies: in RESP3 one goes before the real reply, in RESP2 nothing.
        reply = b"Some real reply following the attribute"
        if not c.resp3:
            return reply
        return Raw(b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$%d\r\n%s\r\n" % (len(reply), reply))
    if k == b"push":
        if not c.resp3:
            raise CommandError("RESP2 is not supported by this command")
        c.server.pending_pushes.append(Push([b"server-cpu-usage", 42]))  # after the reply, as 7.2+
        return b"Some real reply following the push reply"
    if k == b"true":
        return Bool(True)
    if k == b"false":
        return Bool(False)
    if k == b"verbatim":
        return Verbatim("This is a verbatim\nstring")
    raise CommandError(
        "Wrong protocol type name. Please use one of the following: "
        "string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false"
    )


def _debug_populate(c: Any, argv: list[bytes]) -> Any:
    count = to_int(argv[2], "value is out of range")
    if count < 0:
        raise CommandError("value is out of range")
    prefix = argv[3] if len(argv) > 3 else b"key"
    size = to_int(argv[4]) if len(argv) > 4 else 0
    db, ks = c.db, c.keyspace
    for i in range(count):
        key = b"%s:%d" % (prefix, i)
        if db.lookup_write(key) is not None:
            continue
        value = b"value:%d" % i
        if size:
            value = value[:size].ljust(size, b"\x00")
        db.add(key, value)
        ks.dirty += 1
    return OK


def setup(server: Any) -> None:
    """RDB snapshots: SAVE/BGSAVE/SHUTDOWN/DEBUG RELOAD/INFO read ``server.snapshots``; the
    model of Redis's hash tables (DEBUG HTSTATS, dict overheads) follows the key counts."""
    from dumpling.dictstats import DictStats
    from dumpling.persistence.snapshots import setup as setup_snapshots

    setup_snapshots(server)
    server.dictstats = DictStats(server)
    server.cron_hooks.append(server.dictstats.cron)
