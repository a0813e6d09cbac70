"""Redis Cluster, the pure parts: key -> slot, the node table and slot map, nodes.conf,
request routing and the per-slot key index.

    slots.key_slot(key)                     -> slot (CRC-16/XMODEM, {hash tags})
    nodes.ClusterState / ClusterNode        -> who exists, who owns which slot, epochs
    nodesconf.parse_nodes_conf / render_*   -> nodes.conf and CLUSTER NODES text
    routing.route(...)                      -> None, or MOVED/ASK/TRYAGAIN/CROSSSLOT/CLUSTERDOWN
    slotindex.SlotIndex                     -> keys per slot (COUNTKEYSINSLOT/GETKEYSINSLOT)

No sockets and no server state here: ``dumpling.commands.cluster`` wires these into
the server (CLUSTER commands, ASKING/READONLY, the routing check, saving the file).
The node table keeps the bus fields (ports, flags, epochs, links, failure reports) so
the gossip bus can be added later without reshaping it.
"""

from dumpling.cluster.slots import CLUSTER_SLOTS, crc16, key_slot

__all__ = ["CLUSTER_SLOTS", "crc16", "key_slot"]
