"""Describe a static cluster in nodes.conf files: every node knows every other node, its
address and the slots it owns, from the first start on (no MEET, no bus needed).

    python -m dumpling.cluster.layout 127.0.0.1:7001 127.0.0.1:7002 127.0.0.1:7003 --dir conf/

writes ``conf/nodes-7001.conf`` ... with redis-cli's slot split (0-5460, 5461-10922,
10923-16383 for three masters) and config epochs 1..N; start each node with
``--cluster-enabled yes --cluster-config-file <that file>``.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field

from dumpling.cluster.nodes import MASTER, ClusterNode, ClusterState, random_node_id
from dumpling.cluster.nodesconf import render_file
from dumpling.cluster.slots import CLUSTER_SLOTS


def split_slots(masters: int) -> list[tuple[int, int]]:
    """redis-cli --cluster create's allocation: contiguous, near-equal ranges."""
    per_node = CLUSTER_SLOTS / masters
    ranges = []
    first = 0
    cursor = 0.0
    for i in range(masters):
        last = round(cursor + per_node - 1)
        if last > CLUSTER_SLOTS - 1 or i == masters - 1:
            last = CLUSTER_SLOTS - 1
        ranges.append((first, last))
        first = last + 1
        cursor += per_node
    return ranges


@dataclass
class NodeSpec:
    host: str
    port: int
    ranges: list[tuple[int, int]] = field(default_factory=list)
    node_id: str = field(default_factory=random_node_id)
    cport: int = 0


def static_cluster(specs: list[NodeSpec]) -> dict[int, str]:
    """nodes.conf text per node port: everyone knows everyone and who owns what."""
    files: dict[int, str] = {}
    for me_index, me_spec in enumerate(specs):
        nodes = [
            ClusterNode(s.node_id, flags=MASTER, ip=s.host, port=s.port, cport=s.cport or s.port + 10000,
                        config_epoch=i + 1, shard_id=s.node_id[::-1])
            for i, s in enumerate(specs)
        ]
        state = ClusterState(nodes[me_index])
        for node in nodes:
            state.add_node(node)
        for node, spec in zip(nodes, specs, strict=True):
            for first, last in spec.ranges:
                for slot in range(first, last + 1):
                    state.bind(slot, node)
        state.current_epoch = len(specs)
        files[me_spec.port] = render_file(state)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dumpling.cluster.layout", description=__doc__.split("\n\n")[0])
    parser.add_argument("nodes", nargs="+", help="host:port of every master, in slot order")
    parser.add_argument("--dir", default=".", help="where to write nodes-<port>.conf")
    args = parser.parse_args(argv)
    specs = []
    for text, ranges in zip(args.nodes, split_slots(len(args.nodes)), strict=True):
        host, _, port = text.rpartition(":")
        if not host or not port.isdigit():
            parser.error(f"not host:port: {text}")
        specs.append(NodeSpec(host, int(port), [ranges]))
    os.makedirs(args.dir, exist_ok=True)
    for port, text in static_cluster(specs).items():
        path = os.path.join(args.dir, f"nodes-{port}.conf")
        with open(path, "w") as f:
            f.write(text)
        sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
