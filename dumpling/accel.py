"""The optional C accelerators, and the switch that turns them off.

``dumpling._fastpath`` parses and dispatches the requests of plain connections in C and
runs the data commands' Python handlers from there, the hot string commands entirely in C
(``Client.data_received`` offers it each read first); ``dumpling._fpconv`` prints doubles
(``dumpling.fpconv``); ``dumpling._hllgeo`` runs the HyperLogLog and GEO inner loops
(``dumpling.hyperloglog``, ``dumpling.geohash``); ``dumpling._collections`` a list's node
bookkeeping and the native handlers of the hot list/hash/set writes; ``dumpling._bigops`` the
per-element steps of commands on big spans (``dumpling.bigops``); ``dumpling._keytable``
a database's keys, values and LRU/LFU fields (``dumpling.keytable``); ``dumpling._reply``
``protocol.Raw`` (a pre-encoded reply); ``dumpling.payload._speedups``
reads and writes the bodies of big collections and ``dumpling.payload._listpack``
listpack blobs.  All are built by ``setup.py`` when a compiler is present; without them
dumpling runs the same code paths in Python.  ``DUMPLING_PURE=1`` in the environment
disables all of them, ``DUMPLING_PURE_PAYLOAD=1`` just the payload codec's two (tests
compare both ways).
"""

from __future__ import annotations

import os
from types import ModuleType


def _set(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


PURE = _set("DUMPLING_PURE")
PURE_PAYLOAD = PURE or _set("DUMPLING_PURE_PAYLOAD")  # read by the payload codec at import


def _load(name: str) -> ModuleType | None:
    if PURE:
        return None
    try:
        module = __import__(name, fromlist=["_"])
    except ImportError:
        return None
    return module


fastpath = _load("dumpling._fastpath")
fpconv = _load("dumpling._fpconv")  # dumpling.fpconv in C: the text of double replies
hllgeo = _load("dumpling._hllgeo")  # HLL registers and GEO scans in C
collections = _load("dumpling._collections")  # list/hash/set internals and native handlers in C
bigops = _load("dumpling._bigops")  # the per-element steps of big spans (dumpling.bigops)
reply = _load("dumpling._reply")  # protocol.Raw as a C type


def loaded() -> list[str]:
    """Names of the accelerators in use (for the startup log)."""
    from dumpling import collector, keytable
    from dumpling.payload import bulk, compression, listpack  # the payload codec decides (DUMPLING_PURE_PAYLOAD too)
    from dumpling.scripting import engine

    names = []
    if fastpath is not None:
        names.append("fastpath")
    if fpconv is not None:
        names.append("fpconv")
    if hllgeo is not None:
        names.append("hllgeo")
    if collections is not None:
        names.append("collections")
    if bigops is not None:
        names.append("bigops")
    if reply is not None:
        names.append("reply")
    if collector.ACCELERATED:
        names.append("untrack")
    if keytable.NATIVE is not None:
        names.append("keytable")
    if engine.bridge_available():
        names.append("luabridge")
    if bulk.ACCELERATED:
        names.append("payload")
    if listpack.native is not None:
        names.append("listpack")
    if compression.ACCELERATED:  # python-lzf, the optional `lzf` extra (else the pure LZF codec)
        names.append("lzf")
    return names
