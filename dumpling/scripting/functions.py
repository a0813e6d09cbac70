"""Redis Functions: libraries loaded with FUNCTION LOAD, their functions, and the
FUNCTION DUMP / RESTORE payload (the RDB ``FUNCTION2`` records in a DUMP envelope).

A library is ``#!lua name=<lib>`` and a body that registers functions with
``redis.register_function``.  Loading runs the body in the function Lua state with
only the library API visible; the functions it registers keep the full API when
FCALL runs them.  Every change is all-or-nothing: a library that fails to load, or
a payload that fails to restore, leaves the loaded set as it was.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from dumpling.errors import CommandError
from dumpling.payload.envelope import FOOTER_SIZE, check_envelope, seal
from dumpling.payload.errors import PayloadError
from dumpling.payload.primitives import append_string, read_string
from dumpling.protocol import split_args
from dumpling.scripting.engine import ScriptFailure

if TYPE_CHECKING:
    from dumpling.scripting.manager import Scripting

RDB_OPCODE_FUNCTION_PRE_GA = 246
RDB_OPCODE_FUNCTION2 = 245
LOAD_TIMEOUT_S = 0.5
_NAME_RE = re.compile(rb"[A-Za-z0-9_]+\Z")
BAD_NAME = ("Library names can only contain letters, numbers, or underscores(_) and must be at least one "
            "character long")


class Function:
    __slots__ = ("name", "label", "func", "library", "description", "flags", "handle")

    def __init__(self, name: bytes, func: Any, library: Library, description: bytes | None, flags: int) -> None:
        self.name = name
        self.label = name.decode("utf-8", "replace")  # as error texts and logs name it
        self.func = func
        self.handle: int | None = None  # how the C bridge finds func (LuaState.handle), from its first run
        self.library = library
        self.description = description
        self.flags = flags


class Library:
    __slots__ = ("name", "engine", "code", "functions")

    def __init__(self, name: bytes, code: bytes) -> None:
        self.name = name
        self.engine = b"LUA"
        self.code = code
        self.functions: dict[bytes, Function] = {}


class Libraries:
    """The loaded libraries and the functions they registered."""

    def __init__(self, scripting: Scripting) -> None:
        self.scripting = scripting
        self.libraries: dict[bytes, Library] = {}
        self.functions: dict[bytes, Function] = {}
        self._loading: Library | None = None
        # Redis registers its Lua engine at start and again on every FUNCTION FLUSH, and its
        # memory accounting keeps each registration (accounting.ENGINE_REGISTRATION).
        self.engine_registrations = 1

    # -- loading ----------------------------------------------------------------------------

    def load(self, code: bytes, replace: bool, timeout: bool = True) -> bytes:
        """FUNCTION LOAD: compile and run the library body; returns the library name."""
        name, _ = extract_metadata(code)
        old = self.libraries.get(name)
        if old is not None and not replace and _NAME_RE.match(name):
            raise CommandError(f"Library '{_s(name)}' already exists")
        library = self.compile(code, timeout)
        for name in library.functions:
            owner = self.functions.get(name.lower())
            if owner is not None and owner.library is not old:
                raise CommandError(f"Function {_s(name)} already exists")
        if old is not None:
            self._unlink(old)
        self._link(library)
        self.scripting.function_state.gc_tick()
        return library.name

    def compile(self, code: bytes, timeout: bool = True) -> Library:
        """A library from its code (not linked): metadata, compile, register functions."""
        name, body = extract_metadata(code)
        if not _NAME_RE.match(name):
            raise CommandError(BAD_NAME)
        state = self.scripting.function_state
        library = Library(name, code)
        try:
            func = state.compile(body, b"@user_function", env=state.function_env)
        except ScriptFailure as e:
            raise CommandError(f"Error compiling function: {e.message}") from None
        self._loading = library
        scripting = self.scripting
        scripting.load_deadline = time.monotonic() + LOAD_TIMEOUT_S if timeout else 0.0
        state.loading(True)
        try:
            ok, err = state.run(func, (), hook=True, load=True)
        finally:
            state.loading(False)
            self._loading = None
            scripting.load_deadline = 0.0
        if not ok:
            message = _error_message(state, err)
            raise CommandError(f"Error registering functions: {message}")
        if not library.functions:
            raise CommandError("No functions registered")
        return library

    def register_function(self, args: tuple[Any, ...]) -> tuple[int, Any]:
        """redis.register_function(name, callback) or ({function_name=, callback=, flags=, description=})."""
        library = self._loading
        state = self.scripting.function_state
        if library is None:
            return 1, _err_table(state, "redis.register_function can only be called on FUNCTION LOAD command")
        if len(args) not in (1, 2):
            return 1, _err_table(state, "wrong number of arguments to redis.register_function")
        description: bytes | None = None
        flags = 0
        if len(args) == 1:
            named = args[0]
            if state.type_of(named) != b"table":
                return 1, _err_table(state, "calling redis.register_function with a single argument is only "
                                            "applicable to Lua table (representing named arguments).")
            name = callback = None
            for key, value in named.items():
                if type(key) is not bytes:
                    return 1, _err_table(state, "named argument key given to redis.register_function is not a string")
                lowered = key.lower()
                if type(value) in (int, float) and lowered in (b"function_name", b"description"):
                    value = _number_text(value)
                if lowered == b"function_name":
                    if type(value) is not bytes:
                        return 1, _err_table(state, "function_name argument given to redis.register_function must "
                                                    "be a string")
                    name = value
                elif lowered == b"description":
                    if type(value) is not bytes:
                        return 1, _err_table(state, "description argument given to redis.register_function must "
                                                    "be a string")
                    description = value
                elif lowered == b"callback":
                    if state.type_of(value) != b"function":
                        return 1, _err_table(state, "callback argument given to redis.register_function must be "
                                                    "a function")
                    callback = value
                elif lowered == b"flags":
                    if state.type_of(value) != b"table":
                        return 1, _err_table(state, "flags argument to redis.register_function must be a table "
                                                    "representing function flags")
                    parsed = parse_flag_table(value)
                    if parsed is None:
                        return 1, _err_table(state, "unknown flag given")
                    flags = parsed
                else:
                    return 1, _err_table(state, "unknown argument given to redis.register_function")
            if name is None:
                return 1, _err_table(state, "redis.register_function must get a function name argument")
            if callback is None:
                return 1, _err_table(state, "redis.register_function must get a callback argument")
        else:
            name, callback = args
            if type(name) in (int, float):
                name = _number_text(name)
            if type(name) is not bytes:
                return 1, _err_table(state, "first argument to redis.register_function must be a string")
            if state.type_of(callback) != b"function":
                return 1, _err_table(state, "second argument to redis.register_function must be a function")
        if not _NAME_RE.match(name):
            return 1, _err_table(state, BAD_NAME)
        if name in library.functions:  # case-sensitive within a library, as Redis's
            return 1, _err_table(state, "Function already exists in the library")
        library.functions[name] = Function(name, callback, library, description, flags)
        return 0, None

    # -- the loaded set ------------------------------------------------------------------------

    def _link(self, library: Library) -> None:
        self.libraries[library.name] = library
        for name, function in library.functions.items():
            self.functions[name.lower()] = function  # function names are case-insensitive

    def _unlink(self, library: Library) -> None:
        del self.libraries[library.name]
        for name in library.functions:
            self.functions.pop(name.lower(), None)

    def find(self, name: bytes) -> Function | None:
        return self.functions.get(name.lower())

    def delete(self, name: bytes) -> None:
        library = self.libraries.get(name)
        if library is None:
            raise CommandError("Library not found")
        self._unlink(library)

    def flush(self) -> None:
        self.libraries.clear()
        self.functions.clear()

    def flush_and_reset(self, lazy: bool = False) -> None:
        """FUNCTION FLUSH: no libraries, and no Lua state until the next one (Redis rebuilds
        its functions VM), so what the old libraries allocated is freed.  ``lazy`` (ASYNC):
        Redis frees more than 64 functions and the engine in its lazyfree thread, counting
        them in INFO's lazyfreed_objects (``freeFunctionsAsync``)."""
        from dumpling.scripting.manager import LAZYFREE_THRESHOLD

        if lazy and len(self.functions) > LAZYFREE_THRESHOLD:
            self.scripting.server.keyspace.stat_lazyfreed_objects += len(self.functions) + 1
        self.flush()
        self.scripting.drop_function_state()
        self.engine_registrations += 1

    # -- DUMP / RESTORE ----------------------------------------------------------------------------

    def dump(self, rdb_version: int) -> bytes:
        """FUNCTION DUMP: a FUNCTION2 record per library, in a DUMP envelope (footer
        ``dump-rdb-version``, as DUMP's, so that the Redis version DUMP targets takes it)."""
        out = bytearray()
        for library in self.libraries.values():
            out.append(RDB_OPCODE_FUNCTION2)
            append_string(out, library.code)
        return seal(bytes(out), rdb_version)

    def restore(self, payload: bytes, policy: bytes) -> None:
        """FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE] (default APPEND)."""
        try:
            check_envelope(payload)
        except PayloadError:
            raise CommandError("DUMP payload version or checksum are wrong") from None
        end = len(payload) - FOOTER_SIZE
        pos = 0
        loaded: dict[bytes, Library] = {}
        while pos < end:
            opcode = payload[pos]
            pos += 1
            if opcode == RDB_OPCODE_FUNCTION_PRE_GA:
                raise CommandError("Pre-GA function format not supported")
            if opcode != RDB_OPCODE_FUNCTION2:
                raise CommandError("given type is not a function")
            try:
                code, pos = read_string(payload, pos, end)
            except PayloadError:
                raise CommandError("failed loading the given functions payload") from None
            library = self.compile_for_restore(code)
            if library.name in loaded:
                raise CommandError(f"Library {_s(library.name)} already exists")
            for name in library.functions:
                for other in loaded.values():
                    if name.lower() in (n.lower() for n in other.functions):
                        raise CommandError(f"Function {_s(name)} already exists")
            loaded[library.name] = library
        self.install(loaded, policy)

    def compile_for_restore(self, code: bytes) -> Library:
        """A library from a FUNCTION2 record (errors as Redis's rdbFunctionLoad words them)."""
        try:
            return self.compile(code, timeout=False)
        except CommandError as e:
            raise CommandError(e.message.removeprefix("ERR ")) from None

    def install(self, loaded: dict[bytes, Library], policy: bytes) -> None:
        """Join restored libraries to the loaded set (``libraryJoin``), or replace it (FLUSH)."""
        if policy == b"flush":
            self.flush()
            for library in loaded.values():
                self._link(library)
            return
        replace = policy == b"replace"
        replaced = []
        for name in loaded:
            if name in self.libraries:
                if not replace:
                    raise CommandError(f"Library {_s(name)} already exists")
                replaced.append(self.libraries[name])
        for old in replaced:
            self._unlink(old)
        for library in loaded.values():
            for name in library.functions:
                if name.lower() in self.functions:
                    for old in replaced:  # put back what REPLACE took out
                        self._link(old)
                    raise CommandError(f"Function {_s(name)} already exists")
        for library in loaded.values():
            self._link(library)

    def load_record(self, code: bytes, replace: bool) -> None:
        """A FUNCTION2 record of an RDB file (``rdbFunctionLoad``); ValueError with Redis's
        reason if it does not load."""
        try:
            self.load(code, replace, timeout=False)
        except CommandError as e:
            raise ValueError(e.message.removeprefix("ERR ")) from None

    def records(self) -> list[bytes]:
        """Library codes in load order (for RDB files)."""
        return [library.code for library in self.libraries.values()]


def extract_metadata(code: bytes) -> tuple[bytes, bytes]:
    """``functionExtractLibMetaData``: (library name, code after the shebang)."""
    if not code.startswith(b"#!"):
        raise CommandError("Missing library metadata")
    end = code.find(b"\n")
    if end < 0:
        raise CommandError("Invalid library metadata")
    parts = split_args(code[:end])
    if not parts:
        raise CommandError("Invalid library metadata")
    engine = parts[0][2:]
    name: bytes | None = None
    for part in parts[1:]:
        if part[:5].lower() == b"name=":
            if name is not None:
                raise CommandError("Invalid metadata value, name argument was given multiple times")
            name = part[5:]
            continue
        raise CommandError(f"Invalid metadata value given: {_s(part)}")
    if name is None:
        raise CommandError("Library name was not given")
    if engine.upper() != b"LUA" and _NAME_RE.match(name):
        raise CommandError(f"Engine '{_s(engine)}' not found")
    return name, code[end:]


def parse_flag_table(table: Any) -> int | None:
    from dumpling.scripting.manager import FLAG_NAMES

    flags = 0
    i = 1
    while True:
        value = table[i]
        if value is None:
            return flags
        if type(value) not in (bytes, int, float):
            return None
        flag = FLAG_NAMES.get(_s(value if type(value) is bytes else str(value).encode()).lower())
        if flag is None:
            return None
        flags |= flag
        i += 1


def _number_text(value: int | float) -> bytes:
    """A Lua number as lua_tostring prints it (``%.14g``)."""
    return (b"%.14g" % value) if type(value) is float else b"%d" % value


def _err_table(state: Any, message: str) -> Any:
    return state.table({b"err": ("ERR " + message).encode()})


def _error_message(state: Any, err: Any) -> str:
    if type(err) is bytes:
        return "ERR " + _s(err)
    if err is not None and state.type_of(err) == b"table":
        message = err[b"err"]
        if type(message) is bytes:
            return _s(message)
    return "ERR " + str(err)


def _s(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")
