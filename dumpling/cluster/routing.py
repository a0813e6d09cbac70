"""Request routing in cluster mode: Redis's ``getNodeByQuery`` (spec cluster.md §2.2).

``route`` looks at the keys of a command (or of every command queued for EXEC) and
answers ``None`` (serve here) or the redirection/refusal line: MOVED, ASK, TRYAGAIN,
CROSSSLOT or CLUSTERDOWN, with Redis's exact texts.  Pure: the caller passes the
cluster state, how to tell whether a key exists (logically expired keys count as
missing, nothing is touched), and the client's ASKING/READONLY flags.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dumpling.cluster.nodes import ClusterNode, ClusterState
from dumpling.cluster.slots import key_slot

CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot"
TRYAGAIN = "TRYAGAIN Multiple keys request during rehashing of slot"
DOWN_STATE = "CLUSTERDOWN The cluster is down"
DOWN_RO_STATE = "CLUSTERDOWN The cluster is down and only accepts read commands"
DOWN_UNBOUND = "CLUSTERDOWN Hash slot not served"

SHARD_PUBSUB = frozenset(("spublish", "ssubscribe", "sunsubscribe"))


def has_keys(cmd: Any) -> bool:
    """Whether routing looks at this command at all (key specs, movable keys, or EXEC)."""
    return bool(cmd.key_specs) or cmd.movable or cmd.name == "exec"


def route(
    state: ClusterState,
    commands: Sequence[tuple[Any, list[bytes]]],
    *,
    key_exists: Callable[[bytes], bool],
    endpoint: Callable[[ClusterNode], str],
    asking: bool,
    readonly_client: bool,
    is_migrate: bool,
    allow_reads_when_down: bool,
    allow_pubsubshard_when_down: bool = True,
) -> str | None:
    """None to serve locally, else the error line (without the leading ``-``)."""
    me = state.myself
    first: bytes | None = None
    slot = -1
    owner: ClusterNode | None = None
    migrating = importing = multiple = pubsub_shard = False
    missing = existing = 0
    is_write = asking_cmd = False
    for cmd, argv in commands:
        is_write = is_write or cmd.is_write
        asking_cmd = asking_cmd or "asking" in cmd.flags
        if not (cmd.key_specs or cmd.movable):
            continue
        try:
            positions = cmd.key_indices(argv)
        except ValueError:
            continue  # malformed arguments: no keys, the command reports its own error
        shard = cmd.name in SHARD_PUBSUB
        pubsub_shard = pubsub_shard or shard
        for pos in positions:
            if pos >= len(argv):
                continue
            key = argv[pos]
            key_slot_ = key_slot(key)
            if first is None:
                first, slot = key, key_slot_
                owner = state.owners[slot]
                if owner is None:
                    return DOWN_UNBOUND
                if owner is me and slot in state.migrating:
                    migrating = True
                elif slot in state.importing:
                    importing = True
            elif key != first:
                if key_slot_ != slot:
                    return CROSSSLOT
                multiple = True
            if (migrating or importing) and not shard:
                if key_exists(key):
                    existing += 1
                else:
                    missing += 1
    if first is None or owner is None:
        return None
    if not state.ok:
        if pubsub_shard:
            if not allow_pubsubshard_when_down:
                return DOWN_STATE
        elif not allow_reads_when_down:
            return DOWN_STATE
        elif is_write:
            return DOWN_RO_STATE
    if is_migrate and (migrating or importing):
        return None
    if migrating and missing:
        if existing:
            return TRYAGAIN
        return f"ASK {slot} {endpoint(state.migrating[slot])}"
    if importing and (asking or asking_cmd):
        if multiple and missing:
            return TRYAGAIN
        return None
    if (readonly_client or pubsub_shard) and not is_write and me.is_replica and me.master is owner:
        return None
    if owner is not me:
        return f"MOVED {slot} {endpoint(owner)}"
    return None
