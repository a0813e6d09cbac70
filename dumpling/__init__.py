"""dumpling: a Redis-compatible server whose heart is DUMP/RESTORE/MIGRATE."""

__version__ = "0.1.0"

# The Redis version whose command set and reply shapes we implement.  Hash field
# TTLs (HEXPIRE & co.) are 7.4 commands, so clients are told 7.4.
REDIS_VERSION = "7.4.0"
