"""One sandboxed Lua 5.1 state, as Redis sets one up, and the conversions between
Lua values and dumpling's reply values.

This module knows Lua and replies; it does not run commands.  ``LuaState`` gets a
``host`` (``dumpling.scripting.manager.Scripting``) whose methods the sandbox calls
back: ``redis_call`` for ``redis.call``/``redis.pcall``, ``hook`` from the count hook,
``log``, ``setresp``, ``set_repl``, ``acl_check``.  Scripts never see a Python object:
the Python callables live in upvalues of the Lua functions in ``sandbox.lua``, and
everything handed to Lua is a Lua string, number, boolean, nil or table.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from importlib import resources
from typing import Any

import hiredis
from lupa import lua51

from dumpling import REDIS_VERSION, accel
from dumpling.fpconv import double_as_long_long, fpconv_dtoa
from dumpling.protocol import (
    NULL_ARRAY,
    BigNumber,
    Bool,
    Double,
    ErrorReply,
    Map,
    Push,
    Raw,
    SetReply,
    Status,
    Verbatim,
    format_double,
)
from dumpling.scripting.lib_common import make_spreading
from dumpling.scripting.libs import load_library
from dumpling.scripting.untail import without_tail_calls

lua_type = lua51.lua_type


def _load_bridge() -> Any:
    """``dumpling.scripting._luabridge`` with the Lua C API of lupa's lua51 found, or None
    (no compiler, ``DUMPLING_PURE=1``, or a lupa whose module does not export it)."""
    if accel.PURE:
        return None
    try:
        from dumpling.scripting import _luabridge
    except ImportError:
        return None
    return _luabridge if _luabridge.resolve(lua51.__file__) else None


_bridge_module = _load_bridge()
# Lua states made from now on run redis.call and their runs through the C bridge
# (``use_bridge(False)``: through lupa, as the pure install does; tests compare both).
_bridge_on = _bridge_module is not None
STASHED = object()  # Bridge.run's marker: the outcome waits in the bridge's stash


def use_bridge(on: bool) -> bool:
    """Switch the C bridge for the Lua states made from now on; returns the old setting."""
    global _bridge_on
    old = _bridge_on
    _bridge_on = on and _bridge_module is not None
    return old


def bridge_available() -> bool:
    return _bridge_module is not None


def engine_bridge_module() -> Any:
    """The C bridge module (None: not built, or DUMPLING_PURE=1)."""
    return _bridge_module


def use_twins(twin_call: Any, record_latency: Callable[[Any, int], None], database: type) -> None:
    """Give the bridge ``dumpling._fastpath``'s twins (its ``twin_call`` capsule; None: none),
    which its redis.call runs for GET, SET, INCR, ... in a ``Run.twins`` run, on the dicts it
    reads from the slots of ``database`` (``keyspace.Database``)."""
    if _bridge_module is not None:
        _bridge_module.use_twins(twin_call, record_latency, database)


_SANDBOX = resources.files("dumpling.scripting").joinpath("sandbox.lua").read_bytes()
_LDB = resources.files("dumpling.scripting").joinpath("ldb.lua").read_bytes()
_VERSION_NUM = sum(int(part) << (8 * (2 - i)) for i, part in enumerate(REDIS_VERSION.split(".")[:3]))
# Nesting of a returned table beyond which Redis's Lua stack runs out ("reached lua stack limit").
MAX_REPLY_DEPTH = 400
REPLY_SLICE = 4000  # elements of a long array reply fetched from Lua per call (Lua's C stack holds 8,000)
GC_CYCLE_PERIOD = 50
INT64_MIN = -(2**63)
_NO_MORE = object()  # hiredis' "need more data" marker


def sha1hex(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


class ScriptCallError(Exception):
    """Raised by the Python side of the ``redis`` API: the error text, whether the stats
    counted it already (a redis.call error), and whether it is a Lua-style error that
    takes the calling position as a prefix ("user_script:1: bad argument ...")."""

    def __init__(self, message: bytes, counted: bool = False, positional: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.counted = counted
        self.positional = positional


def error_info(exc: Any) -> tuple[Any, bool, bool]:
    """For the error handler: the message of a Python exception raised under Lua."""
    if isinstance(exc, ScriptCallError):
        return exc.message, exc.counted, exc.positional
    if isinstance(exc, BaseException):
        return f"ERR internal error in script call: {type(exc).__name__}".encode(), False, False
    return None, False, False


def lua_type_name(value: Any) -> str:
    """Lua's type name of a value that came from Lua ("no value" for a missing one)."""
    if value is None:
        return "nil"
    t = type(value)
    if t is bytes:
        return "string"
    if t is bool:
        return "boolean"
    if t is int or t is float:
        return "number"
    return lua_type(value) or "userdata"


def lua_tonumber(value: Any) -> float | None:
    """``lua_isnumber``/``lua_tonumber``: numbers and numeric strings."""
    t = type(value)
    if t is int or t is float:
        return float(value)
    if t is bytes:
        text = value.strip()
        try:
            return float(int(text, 16)) if text.lower().startswith((b"0x", b"-0x")) else float(text)
        except ValueError:
            return None
    return None


def _no_attributes(obj: Any, name: Any, setting: bool) -> Any:
    """lupa's attribute filter: a script may never reach into a Python object."""
    raise AttributeError("access to Python attributes is not allowed")


class ScriptFailure(Exception):
    """A script (or library) that does not compile or load: the error reply text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LuaState:
    """A Lua 5.1 state with Redis's libraries, ``redis`` API and read-only globals."""

    def __init__(self, host: Any, library_api: bool = False) -> None:
        self.lua = lua51.LuaRuntime(
            encoding=None, unpack_returned_tuples=True, register_eval=False, register_builtins=False,
            attribute_filter=_no_attributes,
        )
        chunk, err = _loaded(self.lua.eval("loadstring")(_SANDBOX, b"@dumpling"))
        if chunk is None:
            raise RuntimeError(f"sandbox.lua does not compile: {err!r}")
        self.bridge: Any = None
        bridge_api = self._attach_bridge(host) if _bridge_on else None
        callbacks = self.lua.table_from(
            {
                b"bridge": bridge_api,
                b"call": host.redis_call,
                b"call_raise": host.redis_call_raise,
                b"error_info": error_info,
                b"random": host.random,
                b"randomseed": host.randomseed,
                b"sha1hex": host.sha1hex,
                b"log": host.log,
                b"setresp": host.setresp,
                b"set_repl": host.set_repl,
                b"acl_check": host.acl_check,
                b"hook": host.hook,
                b"spreading": make_spreading(self.lua),
                b"load_hook": host.load_hook,
                b"library": self._load_library,
                b"ldb_breakpoint": host.ldb_breakpoint,
                b"version": REDIS_VERSION.encode(),
                b"version_num": _VERSION_NUM,
                b"functions": library_api,
            }
        )
        helpers = chunk(callbacks)
        self.helpers = helpers
        if bridge_api is not None:
            bridge_api[b"set_runners"](helpers[b"eval_bridged"], helpers[b"function_with"],
                                       self.lua.eval("setmetatable({}, {__mode = 'v'})"), helpers[b"env"])
            self._handle = bridge_api[b"handle"]
            self._stash = bridge_api[b"stash"]
            self.take = bridge_api[b"take"]
            if not self.bridge.attached:
                raise RuntimeError("the Lua bridge did not attach")
        self._host = host
        self._debugger: Any = None
        self._inspect = helpers[b"inspect"]
        self._slice = helpers[b"slice"]
        self._sethook = helpers[b"sethook"]
        self._kill_hook = helpers[b"kill_hook"]
        self._count_hook_gone = helpers[b"count_hook_gone"]
        self._load_hook = helpers[b"load_hook"]
        # A run: ``run_eval(f, hook, numkeys, *keys_then_args)`` runs an EVAL script (KEYS and
        # ARGV as globals), ``run_function`` a function (``f(keys, args)``), under the error
        # handler, with the count hook if ``hook``: (True, value) or (False, error).  One
        # Python to Lua call per run.  From ``lib_common.MAX_DIRECT_ARGS`` arguments on,
        # ``run_many`` passes them as one table (lupa cannot push ~8000 values onto the stack).
        self.run_eval = helpers[b"run_eval"]
        self.run_function = helpers[b"run_function"]
        self._run_eval_table = helpers[b"run_eval_table"]
        self._run_function_table = helpers[b"run_function_table"]
        self._loadstring = helpers[b"loadstring"]
        self._setfenv = helpers[b"setfenv"]
        self._dump = helpers[b"dump"]
        self.error_handler = helpers[b"error_handler"]
        self.type_of = helpers[b"type"]
        self._table_from = self.lua.table_from
        self.error_counted = False  # the last error table converted by to_reply had been counted
        self.gc_count = 0  # (with the bridge, the bridge counts: ``runs_since_gc``)
        if self.bridge is not None:
            self.bridge.gc_period = GC_CYCLE_PERIOD
        self._gc_step = self.lua.eval("function() collectgarbage('step', %d) end" % GC_CYCLE_PERIOD)
        self.library_api = None
        if library_api:
            # FUNCTION LOAD runs the library body with only redis.register_function,
            # redis.log and the version fields visible (Redis's LIBRARY_API).
            self.register_function = self.lua.eval(
                "function(py) return function(...) local kind, v = py(...) "
                "if kind ~= 0 then error(v) end end end"
            )(host.register_function)
        self.globals = helpers[b"seal"]()
        self._xpcall = self.lua.eval(
            "function(handler, f, ...) local n = select('#', ...) local args = {...} "
            "return xpcall(function() return f(unpack(args, 1, n)) end, handler) end"
        )
        self.function_env: Any = None
        self._loading_mode: Any = None
        if library_api:
            self.library_api = self._make_library_api()
            self.function_env, self._loading_mode = helpers[b"function_env"](self.library_api)
        self._collect = self.lua.eval("function() collectgarbage('collect') end")
        # the setup's garbage (compiling the sandbox): its chunk too, and with it the code of
        # what the bridge's guards replaced
        del chunk, callbacks
        self._collect()

    def _attach_bridge(self, host: Any) -> Any:
        """The C functions of ``_luabridge`` on this state (see its header): Lua's own
        package.loadlib opens the module's entry point, which sees this runtime's
        lua_State.  None if the module cannot be opened from Lua (the state then runs
        through lupa alone)."""
        bridge = _bridge_module.Bridge(host.call_reply, self._fallback, lua_number_arg, ScriptCallError, Status,
                                       NULL_ARRAY, STASHED, host.server, host.plain_reply)
        opened = self.lua.eval("package.loadlib")(_bridge_module.__file__.encode(), b"dumpling_luabridge_open")
        opener = opened[0] if type(opened) is tuple else opened
        if opener is None:
            return None
        bridge.begin_attach()
        api = opener()
        if api is None:
            return None
        self.bridge = bridge
        return api

    def _fallback(self, reply: Any) -> None:
        """A reply the bridge does not convert itself: converted here, left in its stash."""
        self._stash(self.from_reply(reply, bool(self.bridge.resp3)))

    def handle(self, func: Any) -> int | None:
        """The number by which the bridge runs ``func`` (None without the bridge)."""
        return None if self.bridge is None else int(self._handle(func))

    def _load_library(self, name: bytes) -> Any:
        """cjson/cmsgpack/bit/struct, the first time a script touches it; the compiler's
        garbage is collected at once (it is about as big as the library)."""
        library = load_library(self.lua, name)
        self._collect()
        return library

    def debugger(self) -> Any:
        """The Lua debugger's helpers (``ldb.lua``), compiled by the first session."""
        if self._debugger is None:
            chunk, err = _loaded(self._loadstring(_LDB, b"@dumpling"))
            if chunk is None:
                raise RuntimeError(f"ldb.lua does not compile: {err!r}")
            self._debugger = chunk(self.helpers[b"ldb_internals"], self._host.ldb_line, self._host.ldb_debug)
        return self._debugger

    def loading(self, on: bool) -> None:
        """Switch the functions' environment to the library API (FUNCTION LOAD) or back."""
        self._loading_mode(on)

    def _make_library_api(self) -> Any:
        """The globals a library body sees while FUNCTION LOAD runs it."""
        make = self.lua.eval(
            """
            function(register, redis, protect, missing)
                local api = {register_function = register, log = redis.log,
                             LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
                             REDIS_VERSION = redis.REDIS_VERSION, REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM}
                setmetatable(api, {__index = missing})
                local env = {redis = protect(api)}
                setmetatable(env, {__index = missing})
                return protect(env)
            end
            """
        )
        missing = self.lua.eval(
            "function(_, name) error(\"Script attempted to access nonexistent global variable '\" "
            ".. tostring(name) .. \"'\", 2) end"
        )
        return make(self.register_function, self.helpers[b"redis"], self.helpers[b"protect"], missing)

    # -- compiling -------------------------------------------------------------------

    def compile(self, code: bytes, chunk_name: bytes, env: Any = None) -> Any:
        """A Lua function for ``code`` (``ScriptFailure`` with Lua's message if it does not
        compile).  Binary chunks are refused, as Redis refuses them."""
        if code[:1] == b"\x1b":
            raise ScriptFailure(chunk_name[1:].decode() + ": bad binary format (precompiled chunk)")
        func, err = _loaded(self._loadstring(code, chunk_name))
        if func is None:
            raise ScriptFailure(_text(err))
        # Library functions (cjson, cmsgpack, bit) are Lua here, C in Redis: a script's
        # ``return cjson.decode(x)`` must keep its frame for the error position, so the
        # chunk is reloaded with its tail calls made ordinary calls.
        # (Only when there is a tail call to rewrite: a second copy is as much garbage again.)
        dumped = self._dump(func)
        rewritten = without_tail_calls(dumped)
        if rewritten != dumped:
            untailed, _ = _loaded(self._loadstring(rewritten, chunk_name))
            if untailed is not None:
                func = untailed
        self._setfenv(func, self.globals if env is None else env)
        return func

    # -- running -----------------------------------------------------------------------

    def run(self, func: Any, args: tuple[Any, ...], hook: bool, load: bool = False) -> tuple[bool, Any]:
        """Call ``func(*args)`` under the error handler: (True, value) or (False, error table)."""
        if hook:
            self._sethook(self._load_hook if load else self._kill_hook, b"", 100000)
        try:
            result = self._xpcall(self.error_handler, func, *args)
        finally:
            if hook:
                self._sethook()
                self._count_hook_gone()
        if type(result) is tuple:
            return bool(result[0]), result[1] if len(result) > 1 else None
        return bool(result), None

    def run_many(self, eval_mode: bool, func: Any, hook: bool, numkeys: int, args: list[bytes]) -> Any:
        """``run_eval``/``run_function`` for a long argument list (handed over as one table)."""
        runner = self._run_eval_table if eval_mode else self._run_function_table
        return runner(func, hook, numkeys, self._table_from(args), len(args))

    def table(self, values: Any) -> Any:
        return self._table_from(values)

    def gc_tick(self) -> None:
        """Redis's ``luaGC``: every 50 script runs or compilations, 50 steps of the Lua
        collector, so garbage (a compiled chunk's, a run's tables) never piles up between
        Lua's own cycles and no single call pays for a full one.  (A run counts itself in
        ``gc_count`` and calls ``gc_step`` when it is due; with the C bridge the bridge counts,
        so that ScriptCommand's runs write no Python attribute.)"""
        if self.bridge is not None:
            self.bridge.gc_tick()
            return
        self.gc_count += 1
        if self.gc_count >= GC_CYCLE_PERIOD:
            self.gc_step()

    def gc_step(self) -> None:
        self.gc_count = 0
        if self.bridge is not None:
            self.bridge.gc_step()
        else:
            self._gc_step()

    def runs_since_gc(self) -> int:
        """Runs and compilations counted since the last collector step."""
        return self.gc_count if self.bridge is None else int(self.bridge.gc_count)

    def memory(self) -> int:
        """The Lua heap as Redis reports it: ``lua_gc(LUA_GCCOUNT) * 1024`` (whole KB)."""
        return int(self.lua.eval("collectgarbage('count')")) * 1024

    # -- Lua -> reply ----------------------------------------------------------------------

    def to_reply(self, value: Any, resp3_script: bool, depth: int = 0) -> Any:
        """A script's return value as a reply (``luaReplyToRedisReply``)."""
        t = type(value)
        if t is bytes:
            return value
        if t is int:
            return value if -(2**63) <= value < 2**63 else INT64_MIN
        if t is float:
            return lua_number_to_int(value)
        if t is bool:
            if resp3_script:
                return Bool(value)
            return 1 if value else None
        if value is None:
            return None
        if lua_type(value) != "table":
            return None
        if depth >= MAX_REPLY_DEPTH:
            return ErrorReply("ERR reached lua stack limit")
        inspected = self._inspect(value)
        kind = inspected[0]
        if kind == b"array":
            a, b = inspected[1], inspected[2]
            if b <= 8:  # the elements came along
                return [self.to_reply(item, resp3_script, depth + 1) for item in inspected[3:3 + b]]
            items = []
            for start in range(1, b + 1, REPLY_SLICE):
                part = self._slice(a, start, min(start + REPLY_SLICE - 1, b))
                items.extend(part if type(part) is tuple else (part,))
            to_reply = self.to_reply
            return [item if type(item) is bytes else to_reply(item, resp3_script, depth + 1) for item in items]
        kind, a, b, c, d = _pad5(inspected)
        if kind == b"err":
            reply, self.error_counted = error_from_table(a, b, c, d, None)
            return reply
        if kind == b"ok":
            return Status(a.replace(b"\r", b" ").replace(b"\n", b" "))
        if kind == b"double":
            return Double(float(a))
        if kind == b"map":
            flat = [self.to_reply(a[i], resp3_script, depth + 1) for i in range(1, b + 1)]
            return Map(list(zip(flat[::2], flat[1::2], strict=True)))
        if kind == b"set":
            return SetReply([self.to_reply(a[i], resp3_script, depth + 1) for i in range(1, b + 1)])
        if kind == b"big_number":
            return BigNumber(a.replace(b"\r", b" ").replace(b"\n", b" "))
        if kind == b"verbatim":
            return Verbatim(a, b[:3])
        return None

    # -- reply -> Lua -------------------------------------------------------------------------

    def from_reply(self, value: Any, resp3: bool) -> Any:
        """A command's reply as the Lua value ``redis.call`` returns (RESP2 or RESP3 rules,
        as ``redisProtocolToLuaType`` reads them from the wire)."""
        t = type(value)
        if t is bytes:
            return value
        if t is int:
            return value
        if value is None or value is NULL_ARRAY:
            return None if resp3 else False
        if t is Status:
            return self._table_from({b"ok": value.text})
        if t is list or t is tuple or t is Push:
            items = value.items if t is Push else value
            return self._table_from([self.from_reply(item, resp3) for item in items])
        if t is bytearray:
            return bytes(value)
        if t is Map:
            if resp3:
                inner = self._table_from(
                    {_key(self.from_reply(k, resp3)): self.from_reply(v, resp3) for k, v in value.pairs}
                )
                return self._table_from({b"map": inner})
            flat: list[Any] = []
            for k, v in value.pairs:
                flat.append(self.from_reply(k, resp3))
                flat.append(self.from_reply(v, resp3))
            return self._table_from(flat)
        if t is SetReply:
            if resp3:
                inner = self._table_from({_key(self.from_reply(k, resp3)): True for k in value.items})
                return self._table_from({b"set": inner})
            return self._table_from([self.from_reply(item, resp3) for item in value.items])
        if t is Double or t is float:
            number = value.value if t is Double else value
            if resp3:
                return self._table_from({b"double": number})
            return format_double(number)
        if t is bool or t is Bool:
            flag = value if t is bool else value.value
            return flag if resp3 else (1 if flag else 0)
        if t is Verbatim:
            if resp3:
                inner = self._table_from({b"format": value.fmt, b"string": value.text})
                return self._table_from({b"verbatim_string": inner})
            return value.text
        if t is BigNumber:
            return self._table_from({b"big_number": value.digits}) if resp3 else value.digits
        if t is ErrorReply:
            return self._table_from({b"err": _error_text(value.message)})
        if t is Raw:
            reader = hiredis.Reader(notEnoughData=_NO_MORE)
            reader.feed(value.wire)
            parsed = reader.gets()
            if value.wire[:1] == b"|":
                # A RESP3 attribute before the reply: scripts do not see attributes (Redis's
                # parser skips them).  hiredis 3 hands it out as a value of its own.
                following = reader.gets()
                if following is not _NO_MORE:
                    parsed = following
            return self.from_reply(_from_hiredis(parsed), resp3)
        raise TypeError(f"no Lua form for reply {t.__name__}")


def lua_number_to_int(value: float) -> int:
    """C's ``(long long)`` cast of a Lua number as x86-64 does it (NaN and overflow give INT64_MIN)."""
    if value != value or math.isinf(value) or not -9.3e18 < value < 9.3e18:
        return INT64_MIN
    n = int(value)
    return n if -(2**63) <= n < 2**63 else INT64_MIN


def lua_number_arg(value: int | float) -> bytes:
    """A Lua number passed to redis.call, as Redis 7.4's luaArgsToRedisArgv prints it:
    integral values within ±LLONG_MAX/2 (``double2ll``) as integers, everything else,
    inf and nan included, with ``fpconv_dtoa``."""
    number = float(value)  # a Lua 5.1 number is a double; lupa may hand over an int
    as_long = double_as_long_long(number)
    return b"%d" % as_long if as_long is not None else fpconv_dtoa(number)


def error_from_table(message: bytes, source: Any, line: Any, ignore_stats: Any,
                     funcname: str | None) -> tuple[ErrorReply, bool]:
    """The error reply for an ``{err=...}`` table (``luaExtractErrorInformation``), and
    whether the error statistics already counted it (a redis.call error)."""
    text = _text(message)
    if funcname is not None and source is not None and line is not None:
        text += f" script: {funcname}, on {_text(source)}:{_text(line)}."
    return ErrorReply(_error_text(text.encode("utf-8", "surrogateescape"))), bool(ignore_stats)


def _error_text(message: bytes) -> str:
    text = message.decode("utf-8", "surrogateescape")
    return text[1:] if text.startswith("-") else text


def _text(value: Any) -> str:
    if type(value) is bytes:
        return value.decode("utf-8", "surrogateescape")
    if type(value) is float and value.is_integer():
        return str(int(value))
    return str(value)


def _key(value: Any) -> Any:
    """A Lua table key from a converted reply (tables are not hashable in Python: use
    their identity-free string form, as they cannot be looked up anyway)."""
    return value if type(value) in (bytes, int, float, bool) else repr(value).encode()


def _loaded(result: Any) -> tuple[Any, Any]:
    """loadstring's results: the function, or nil and the message."""
    if type(result) is tuple:
        return result[0], result[1] if len(result) > 1 else None
    return result, None


def _pad5(values: Any) -> tuple[Any, Any, Any, Any, Any]:
    if type(values) is not tuple:
        values = (values,)
    return (tuple(values) + (None,) * 5)[:5]  # type: ignore[return-value]


def _from_hiredis(value: Any) -> Any:
    if isinstance(value, hiredis.ReplyError):
        return ErrorReply(str(value))
    if isinstance(value, list):
        return [_from_hiredis(v) for v in value]
    return value
