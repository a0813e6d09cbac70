"""Replication: PSYNC both ways with Redis.

* ``wire`` - the protocol's byte formats (pure: bytes in, values out).
* ``backlog`` - the replication backlog (pure).
* ``manager`` - ``Replication`` (``server.replication``): role, IDs, offsets, the stream
  fed to replicas, the gates (-READONLY, -MASTERDOWN, -NOREPLICAS), WAIT/WAITAOF, INFO/ROLE.
* ``upstream`` - this server as a replica (the link to its master, the master client).
* ``downstream`` - this server as a master (attached replicas, full syncs).

The stream a master produces is the propagation stream of
``dumpling.persistence.propagation`` (the same records the AOF logs); a replica proxies its
master's bytes instead, so offsets agree along a chain.  The commands are in
``dumpling.commands.replication``.
"""
