"""Build configuration that pyproject.toml cannot express: the optional C accelerators.

Both are optional: without a compiler the install still succeeds and dumpling runs on
its pure-Python paths (``dumpling.accel`` reports which accelerators are loaded).
"""

from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).resolve().parent
SOURCES = {
    "dumpling._fastpath": "dumpling/_fastpath.c",
    "dumpling._fpconv": "dumpling/_fpconv.c",
    "dumpling._untrack": "dumpling/_untrack.c",
    "dumpling.payload._speedups": "dumpling/payload/_speedups.c",
    "dumpling.payload._listpack": "dumpling/payload/_listpack.c",
    "dumpling.persistence._snapshot": "dumpling/persistence/_snapshot.c",
    "dumpling._hllgeo": "dumpling/_hllgeo.c",
    "dumpling._collections": "dumpling/_collections.c",
    "dumpling._bigops": "dumpling/_bigops.c",
    "dumpling._elementlist": "dumpling/_elementlist.c",
    "dumpling._zsetindex": "dumpling/_zsetindex.c",
    "dumpling._keytable": "dumpling/_keytable.c",
    "dumpling._reply": "dumpling/_reply.c",
    "dumpling.scripting._luabridge": "dumpling/scripting/_luabridge.c",
}
# Floating point that must match Python's step for step: no fused multiply-add (which some
# targets, aarch64 for one, would otherwise use).
EXTRA_FLAGS = {"dumpling._hllgeo": ["-ffp-contract=off"]}
# Headers shared between extensions (rebuilt when they change, shipped in the sdist).
DEPENDS = {"dumpling._fastpath": ["dumpling/_native.h", "dumpling/_keytable.h", "dumpling/_slots.h"],
           "dumpling._bigops": ["dumpling/_native.h", "dumpling/_keytable.h"],
           "dumpling._hllgeo": ["dumpling/_native.h", "dumpling/_keytable.h"],
           "dumpling._collections": ["dumpling/_native.h", "dumpling/_keytable.h", "dumpling/_slots.h", "dumpling/_elementlist.h",
                                     "dumpling/_lpentry.h"],
           "dumpling._elementlist": ["dumpling/_lpentry.h", "dumpling/_elementlist.h", "dumpling/_native.h", "dumpling/_keytable.h"],
           "dumpling._keytable": ["dumpling/_keytable.h", "dumpling/_native.h"],
           "dumpling._zsetindex": ["dumpling/_native.h", "dumpling/_keytable.h"],
           "dumpling.persistence._snapshot": ["dumpling/_native.h", "dumpling/_keytable.h"],
           "dumpling.payload._speedups": ["dumpling/_native.h", "dumpling/_keytable.h"], "dumpling.payload._listpack": ["dumpling/_slots.h", "dumpling/_lpentry.h", "dumpling/_native.h", "dumpling/_keytable.h"],
           "dumpling.scripting._luabridge": ["dumpling/_native.h", "dumpling/_keytable.h", "dumpling/_slots.h"]}

setup(
    ext_modules=[
        Extension(name, [source], depends=DEPENDS.get(name, []), optional=True,
                  extra_compile_args=["-O2", *EXTRA_FLAGS.get(name, [])])
        for name, source in SOURCES.items()
        if (HERE / source).exists()
    ]
)
