"""String commands (placeholder: GET/SET only until the full family lands)."""

from __future__ import annotations

from typing import Any

from dumpling.commands.common import check_string
from dumpling.commands.registry import command
from dumpling.protocol import OK

STR = {"group": "string"}


@command("get", 2, "readonly fast", (1, 1, 1), **STR, summary="Returns the string value of a key.", args="key")
def get(c: Any, argv: list[bytes]) -> Any:
    return check_string(c.db.lookup_read(argv[1]))


@command("set", -3, "write denyoom", (1, 1, 1), **STR, summary="Sets the string value of a key, ignoring its type.",
         args="key value:string")
def set_(c: Any, argv: list[bytes]) -> Any:
    db = c.db
    key = argv[1]
    db.lookup_write(key)
    db.set(key, argv[2])
    c.keyspace.changed(db, key, b"set", "$")
    return OK
