"""Persistence: RDB files (``rdb``: the file format, pure) and the server side of
snapshots (``snapshots``: SAVE/BGSAVE with a forked child, save points, loading at
startup, the MISCONF and LOADING gates, INFO persistence)."""
