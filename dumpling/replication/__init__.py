"""Replication: PSYNC both ways with Redis.

* ``wire`` - the protocol's byte formats (pure).
* ``backlog`` - the replication backlog (pure).
* ``manager`` - ``Replication`` (``server.replication``): role, IDs, offsets, the stream
  fed to replicas, the gates, WAIT, INFO/ROLE.
* ``upstream`` - this server as a replica (the link to its master).
* ``downstream`` - this server as a master (replicas, full syncs).

The commands are in ``dumpling.commands.replication``.
"""
