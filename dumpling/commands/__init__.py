"""Command families.  Each module registers its handlers in the one command table
(``dumpling.commands.registry``) when imported; ``install`` imports them all and
lets modules that keep server-wide state (pub/sub, cluster) attach it.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dumpling.dispatch import Server

# Families in the order COMMAND lists them; a missing optional module is skipped
# only while it is being written (ImportError of the module itself).
FAMILIES = (
    "connection",
    "tracking",
    "pause",
    "modules",
    "lolwut",
    "keys",
    "strings",
    "bitmaps",
    "admin",
    "replication",
    "acl",
    "introspection",
    "transactions",
    "lists",
    "sets",
    "hashes",
    "sorting",
    "zsets",
    "streams",
    "pubsub",
    "scripting",
    "dump",
    "migrate",
    "cluster",
    "hyperloglog",
    "geo",
)


def load_table() -> list[ModuleType]:
    """Import every family (filling the command table); the modules, in FAMILIES order."""
    modules = []
    for family in FAMILIES:
        try:
            modules.append(importlib.import_module(f"dumpling.commands.{family}"))
        except ModuleNotFoundError as e:
            if e.name == f"dumpling.commands.{family}":
                continue
            raise
    return modules


def install(server: Server) -> None:
    for module in load_table():
        setup = getattr(module, "setup", None)
        if setup is not None:
            setup(server)
