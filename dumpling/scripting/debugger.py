"""The Lua debugger (LDB): ``SCRIPT DEBUG YES|SYNC|NO`` and the session an EVAL runs
under it, as Redis 7.4's ldb* functions in eval.c do it (what ``redis-cli --ldb`` drives).

A session talks to its client directly over the client's socket, with blocking I/O, while the
script stands still in the line hook: the debugger's log goes out as an array of status
lines, and the client's commands come in as RESP arrays (``parse_command``).  In SYNC mode
the server itself waits, as Redis does.  In YES mode Redis forks and the child runs the
session, so the script's changes die with the child; dumpling forks the same way
(``Scripting.debug_eval``): the child never returns to the event loop, every other client's
transport is dropped in it and propagation is cut, so nothing but the debugging client hears
from it.

The pure parts (``parse_command``, ``repr_bytes``, ``reply_to_human``, ``Session``'s text) are
kept apart from the I/O (``Channel``) so they can be tested without sockets.
"""

from __future__ import annotations

import os
import select
import time
from typing import Any

from dumpling.protocol import repr_bytes  # sdscatrepr, as ldbRepr uses it

HELP = [
    "Redis Lua debugger help:",
    "[h]elp               Show this help.",
    "[s]tep               Run current line and stop again.",
    "[n]ext               Alias for step.",
    "[c]ontinue           Run till next breakpoint.",
    "[l]ist               List source code around current line.",
    "[l]ist [line]        List source code around [line].",
    "                     line = 0 means: current position.",
    "[l]ist [line] [ctx]  In this form [ctx] specifies how many lines",
    "                     to show before/after [line].",
    "[w]hole              List all source code. Alias for 'list 1 1000000'.",
    "[p]rint              Show all the local variables.",
    "[p]rint <var>        Show the value of the specified variable.",
    "                     Can also show global vars KEYS and ARGV.",
    "[b]reak              Show all breakpoints.",
    "[b]reak <line>       Add a breakpoint to the specified line.",
    "[b]reak -<line>      Remove breakpoint from the specified line.",
    "[b]reak 0            Remove all breakpoints.",
    "[t]race              Show a backtrace.",
    "[e]val <code>        Execute some Lua code (in a different callframe).",
    "[r]edis <cmd>        Execute a Redis command.",
    "[m]axlen [len]       Trim logged Redis replies and Lua var dumps to len.",
    "                     Specifying zero as <len> means unlimited.",
    "[a]bort              Stop the execution of the script. In sync",
    "                     mode dataset changes will be retained.",
    "",
    "Debugger functions you can call from Lua scripts:",
    "redis.debug()        Produce logs in the debugger console.",
    "redis.breakpoint()   Stop execution like if there was a breakpoint in the",
    "                     next line of code.",
]
MAX_LEN_DEFAULT = 256  # LDB_MAX_LEN_DEFAULT
BREAKPOINTS_MAX = 64
MAX_BUFFER = 1 << 20  # a client sending more than this without a whole command is cut off
SEND_TIMEOUT_S = 5.0
PROTOCOL_ERROR = "protocol error"


# ------------------------------------------------------------------------------ pure parts


class _NeedMore(Exception):
    """parse_command: the command is not whole yet."""


class _Malformed(Exception):
    """parse_command: a protocol error."""


def _header_number(buf: bytes, at: int) -> tuple[int, int]:
    """The 1..1024 number after the '*' or '$' at ``at`` and the position after its line."""
    end = buf.find(b"\r\n", at)
    if end < 0:
        raise _NeedMore
    number = _atoi(buf[at + 1:end])
    if number <= 0 or number > 1024:
        raise _Malformed
    return number, end + 2


def parse_command(buf: bytes) -> tuple[list[bytes] | None, bool]:
    """``ldbReplParseCommand``: (argv, False) for a whole command at the start of ``buf``,
    (None, False) when more bytes are needed, (None, True) for a protocol error.  As Redis's,
    it is forgiving: it seeks the first '*', and takes 1..1024 arguments of 1..1024 bytes."""
    if not buf:
        return None, False
    star = buf.find(b"*")
    if star < 0:
        return None, True
    argv: list[bytes] = []
    try:
        count, pos = _header_number(buf, star)
        while len(argv) < count:
            if pos >= len(buf):
                raise _NeedMore
            if buf[pos:pos + 1] != b"$":
                raise _Malformed
            length, start = _header_number(buf, pos)
            if start + length + 2 > len(buf):
                raise _NeedMore
            argv.append(buf[start:start + length])
            if buf[start + length:start + length + 2] != b"\r\n":
                raise _Malformed
            pos = start + length + 2
    except _NeedMore:
        return None, False
    except _Malformed:
        return None, True
    return argv, False


def _pairs(table: Any) -> list[tuple[Any, Any]]:
    """A Lua array of alternating items (name, value, name, value…) as pairs."""
    items = [table[i] for i in range(1, len(table) + 1)]
    return list(zip(items[0::2], items[1::2], strict=False))


def _atoi(text: bytes) -> int:
    """C's atoi: leading blanks, a sign, digits; 0 when there are none."""
    text = text.lstrip(b" \t\n\v\f\r")
    sign = 1
    if text[:1] in (b"-", b"+"):
        sign = -1 if text[:1] == b"-" else 1
        text = text[1:]
    digits = 0
    for byte in text:
        if not 48 <= byte <= 57:
            break
        digits = digits * 10 + byte - 48
        if digits > 2**31:
            break
    return sign * digits




def reply_to_human(wire: bytes) -> str:
    """``ldbRedisProtocolToHuman``: a RESP reply as the debugger logs it."""
    text, _ = _human(wire, 0)
    return text


def _line_end(wire: bytes, pos: int) -> int:
    end = wire.find(b"\r", pos + 1)
    return len(wire) if end < 0 else end


def _human(wire: bytes, pos: int) -> tuple[str, int]:
    kind = wire[pos:pos + 1]
    end = _line_end(wire, pos)
    head = wire[pos + 1:end]
    if kind == b":":
        return head.decode("latin-1"), end + 2
    if kind == b"$":
        length = int(head)
        if length == -1:
            return "NULL", end + 2
        return repr_bytes(wire[end + 2:end + 2 + length]), end + 2 + length + 2
    if kind in (b"+", b"-"):
        return repr_bytes(wire[pos:end]), end + 2
    if kind in (b"*", b"~", b"%"):
        count = int(head)
        pos = end + 2
        if kind == b"*" and count == -1:
            return "NULL", pos
        parts = []
        for _ in range(count):
            if kind == b"%":
                key, pos = _human(wire, pos)
                value, pos = _human(wire, pos)
                parts.append(key + " => " + value)
            else:
                item, pos = _human(wire, pos)
                parts.append(item)
        opening, closing = {b"*": ("[", "]"), b"~": ("~(", ")"), b"%": ("{", "}")}[kind]
        return opening + ",".join(parts) + closing, pos
    if kind == b"_":
        return "(null)", end + 2
    if kind == b"#":
        return ("#true" if head[:1] == b"t" else "#false"), end + 2
    if kind == b",":
        return "(double) " + head.decode("latin-1"), end + 2
    return "", len(wire)  # a type Redis's converter does not know: it writes nothing


def source_lines(body: bytes) -> list[bytes]:
    """The script split into lines as the debugger lists them (trailing newlines dropped)."""
    return body.rstrip(b"\r\n").split(b"\n") if body.rstrip(b"\r\n") else []


# ------------------------------------------------------------------------------ I/O


class ChannelClosed(Exception):
    """The debugging client went away (or a send timed out)."""


class Channel:
    """Blocking reads and writes on the debugging client's socket, by polling its descriptor
    (its non-blocking flag is shared with the event loop's copy, so it is left alone)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.monotonic() + SEND_TIMEOUT_S
        while view:
            try:
                sent = os.write(self.fd, view)
            except BlockingIOError:
                sent = 0
            except OSError as e:
                raise ChannelClosed(str(e)) from None
            view = view[sent:]
            if view:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ChannelClosed("send timeout")
                _wait(self.fd, select.POLLOUT, left)

    def read(self) -> bytes:
        """Some bytes (waiting as long as it takes); b"" once the client is gone."""
        while True:
            _wait(self.fd, select.POLLIN, None)
            try:
                return os.read(self.fd, 1024)
            except BlockingIOError:
                continue
            except OSError:
                return b""


def _wait(fd: int, events: int, timeout_s: float | None) -> None:
    poller = select.poll()
    poller.register(fd, events | select.POLLHUP | select.POLLERR)
    poller.poll(None if timeout_s is None else int(timeout_s * 1000) + 1)


# ------------------------------------------------------------------------------ a session


class Session:
    """One debugging session (Redis's ``ldb`` while ``ldb.active``).  ``lua`` is the EVAL
    engine's ``LuaState`` (``debugger()``: the helpers of ``ldb.lua``); ``channel``
    the client's socket; ``forked`` for YES mode."""

    def __init__(self, lua: Any, channel: Channel, body: bytes, forked: bool, start_time: float) -> None:
        self.lua = lua
        self.helpers = lua.debugger()
        self.channel = channel
        self.forked = forked
        self.src = source_lines(body)
        self.logs: list[str] = []
        self.cbuf = b""
        self.step = True
        self.luabp = False
        self.breakpoints: list[int] = []
        self.maxlen = MAX_LEN_DEFAULT
        self.maxlen_hint_sent = False
        self.currentline = -1
        self.start_time = start_time
        self.timeout_ms = 5000

    # -- the log ----------------------------------------------------------------------------

    def log(self, entry: str) -> None:
        self.logs.append(entry)

    def log_with_maxlen(self, entry: str) -> None:
        trimmed = False
        if self.maxlen and len(entry.encode("utf-8", "surrogateescape")) > self.maxlen:
            raw = entry.encode("utf-8", "surrogateescape")[:self.maxlen]
            entry = raw.decode("utf-8", "surrogateescape") + " ..."
            trimmed = True
        self.log(entry)
        if trimmed and not self.maxlen_hint_sent:
            self.maxlen_hint_sent = True
            self.log("<hint> The above reply was trimmed. Use 'maxlen 0' to disable trimming.")

    def send_logs(self, tail: bytes = b"") -> None:
        """``ldbSendLogs``: the pending log lines as one array of status replies (then ``tail``)."""
        parts = [b"*%d\r\n" % len(self.logs)]
        for entry in self.logs:
            raw = entry.encode("utf-8", "surrogateescape").replace(b"\r", b" ").replace(b"\n", b" ")
            parts.append(b"+" + raw + b"\r\n")
        self.logs.clear()
        try:
            self.channel.write(b"".join(parts) + tail)
        except ChannelClosed:
            return  # the client is gone: the next read finds it and ends the stepping

    def source_line(self, line: int) -> str:
        if 1 <= line <= len(self.src):
            return self.src[line - 1].decode("utf-8", "surrogateescape")
        return "<out of range source code line>"

    def log_source_line(self, line: int) -> None:
        bp = line in self.breakpoints
        current = self.currentline == line
        prefix = "->#" if current and bp else "-> " if current else "  #" if bp else "   "
        self.log("%s%-3d %s" % (prefix, line, self.source_line(line)))

    def list_source(self, around: int, context: int) -> None:
        for line in range(1, len(self.src) + 1):
            if around != 0 and abs(around - line) > context:
                continue
            self.log_source_line(line)

    # -- what scripts and redis.call log --------------------------------------------------------

    @property
    def logging(self) -> bool:
        """``ldbIsEnabled``: commands, replies and errors are logged while stepping."""
        return self.step

    def log_command(self, argv: list[bytes]) -> None:
        parts = ["<redis>"]
        for j, arg in enumerate(argv):
            if j == 10:
                parts.append(" ... (%d more)" % (len(argv) - j - 1))
                break
            parts.append(" " + arg.decode("utf-8", "surrogateescape"))
        self.log("".join(parts))

    def log_error(self, text: str) -> None:
        self.log("<error> " + text)

    def log_reply(self, wire: bytes) -> None:
        self.log_with_maxlen("<reply> " + reply_to_human(wire))

    def debug(self, line: int, text: str) -> None:
        """redis.debug() on ``line``: its arguments, already written as values."""
        self.log("<debug> line %d: %s" % (line, text))

    # -- the line hook ------------------------------------------------------------------------

    def line_hook(self, count_event: bool, line: int) -> str | None:
        """``luaLdbLineHook``: stop here if stepping, at a breakpoint or after
        redis.breakpoint(), and run the REPL.  Returns an error text to raise in the script
        (abort, a protocol error), else None."""
        self.currentline = line
        bp = line in self.breakpoints or self.luabp
        timeout = False
        if count_event and not self.step and not bp:
            if (time.monotonic() - self.start_time) * 1000 >= self.timeout_ms:
                timeout = True
                self.step = True
            else:
                return None
        if not (self.step or bp):
            return None
        reason = "step over"
        if bp:
            reason = "redis.breakpoint() called" if self.luabp else "break point"
        elif timeout:
            reason = "timeout reached, infinite loop?"
        self.step = False
        self.luabp = False
        self.log("* Stopped at %d, stop reason = %s" % (line, reason))
        self.log_source_line(line)
        self.send_logs()
        try:
            outcome = self.repl()
        finally:
            self.start_time = time.monotonic()
            self.sync()
        if outcome is False and timeout:
            return "ERR timeout during Lua debugging with client closing connection"
        if isinstance(outcome, str):
            return outcome
        return None

    def sync(self) -> None:
        """Tell the Lua hook which lines must come to ``line_hook`` (the others it passes over)."""
        self.helpers[b"sync"](self.step, self.luabp, *self.breakpoints)

    def breakpoint(self) -> None:
        """redis.breakpoint(): stop at the next line."""
        self.luabp = True
        self.sync()

    def repl(self) -> bool | str:
        """``ldbRepl``: serve debugger commands until one resumes the script.  True to go
        on, False when the client went away (the script then runs to its end without
        stopping), or an error text to raise."""
        while True:
            argv, bad = parse_command(self.cbuf)
            if argv is None:
                if bad:
                    return "ERR " + PROTOCOL_ERROR
                data = self.channel.read()
                if not data:
                    self.step = False
                    self.breakpoints.clear()
                    return False
                self.cbuf += data
                if len(self.cbuf) > MAX_BUFFER:
                    self.cbuf = b""
                    return "ERR max client buffer reached"
                continue
            self.cbuf = b""
            name = argv[0].lower()
            if name in (b"s", b"step", b"n", b"next"):
                self.step = True
                return True
            if name in (b"c", b"continue"):
                return True
            if name in (b"a", b"abort"):
                return "ERR script aborted for user request"
            self.command(name, argv)
            self.send_logs()

    def command(self, name: bytes, argv: list[bytes]) -> None:
        """A debugger command that does not resume the script: its output goes to the log."""
        argc = len(argv)
        if name in (b"h", b"help"):
            for line in HELP:
                self.log(line)
        elif name in (b"t", b"trace"):
            self.trace()
        elif name in (b"m", b"maxlen"):
            self.set_maxlen(argv)
        elif name in (b"b", b"break"):
            self.breaks(argv)
        elif name in (b"e", b"eval"):
            self.eval(b" ".join(argv[1:]))
        elif argc > 1 and name in (b"r", b"redis"):
            self.step = True  # the call logs itself, as when stepping (ldbRedis)
            try:
                self.helpers[b"redis"](*argv[1:])
            finally:
                self.step = False
        elif name in (b"p", b"print"):
            if argc == 2:
                self.print_var(argv[1])
            else:
                self.print_all()
        elif name in (b"l", b"list"):
            around, context = self.currentline, 5
            if argc > 1:
                number = _atoi(argv[1])
                if number > 0:
                    around = number
            if argc > 2:
                context = _atoi(argv[2])
            self.list_source(around, context)
        elif name in (b"w", b"whole"):
            self.list_source(1, 1000000)
        else:
            self.log("<error> Unknown Redis Lua debugger command or wrong number of arguments.")

    def trace(self) -> None:
        frames = _pairs(self.helpers[b"trace"]())
        if not frames:
            self.log("<error> Can't retrieve Lua stack.")
            return
        for index, (name, line) in enumerate(frames):
            self.log("%s %s:" % ("In" if index == 0 else "From", _text(name)))
            self.log_source_line(int(line))

    def set_maxlen(self, argv: list[bytes]) -> None:
        if len(argv) == 2:
            value = _atoi(argv[1])
            self.maxlen_hint_sent = True
            if value != 0 and value <= 60:
                value = 60
            self.maxlen = value
        if self.maxlen:
            self.log("<value> replies are truncated at %d bytes." % self.maxlen)
        else:
            self.log("<value> replies are unlimited.")

    def breaks(self, argv: list[bytes]) -> None:
        if len(argv) == 1:
            if not self.breakpoints:
                self.log("No breakpoints set. Use 'b <line>' to add one.")
                return
            self.log("%d breakpoints set:" % len(self.breakpoints))
            for line in self.breakpoints:
                self.log_source_line(line)
            return
        for arg in argv[1:]:
            line = _strict_long(arg)
            if line is None:
                self.log("Invalid argument:'%s'" % arg.decode("utf-8", "surrogateescape"))
            elif line == 0:
                self.breakpoints.clear()
                self.log("All breakpoints removed.")
            elif line > 0:
                if len(self.breakpoints) == BREAKPOINTS_MAX:
                    self.log("Too many breakpoints set.")
                elif 0 < line <= len(self.src) and line not in self.breakpoints:
                    self.breakpoints.append(line)
                    self.list_source(line, 1)
                else:
                    self.log("Wrong line number.")
            elif -line in self.breakpoints:
                self.breakpoints.remove(-line)
                self.log("Breakpoint removed.")
            else:
                self.log("No breakpoint in the specified line.")

    def eval(self, code: bytes) -> None:
        ok, text = _pair(self.helpers[b"eval"](code))
        if ok:
            self.log_with_maxlen("<retval> " + _text(text))
        else:
            self.log("<error> " + _text(text))

    def print_var(self, name: bytes) -> None:
        text = self.helpers[b"print"](name)
        if text is None:
            self.log("No such variable.")
        else:
            self.log_with_maxlen("<value> " + _text(text))

    def print_all(self) -> None:
        variables = _pairs(self.helpers[b"locals"]())
        if not variables:
            self.log("No local variables in the current context.")
            return
        for name, value in variables:
            self.log_with_maxlen("<value> %s = %s" % (_text(name), _text(value)))

    def end(self, reply_wire: bytes) -> None:
        """``ldbEndSession``: the last log lines, <endsession>, then the EVAL's reply."""
        self.log("<endsession>")
        self.send_logs(reply_wire)


def _strict_long(arg: bytes) -> int | None:
    """``string2l``: a whole decimal integer (no spaces, no '+', no leading zeros)."""
    text = arg.decode("latin-1")
    if not text or text != text.strip() or text.startswith("+"):
        return None
    body = text[1:] if text.startswith("-") else text
    if not body.isdigit() or (len(body) > 1 and body[0] == "0") or (text == "-0"):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


def _text(value: Any) -> str:
    if type(value) is bytes:
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def _pair(result: Any) -> tuple[Any, Any]:
    if type(result) is tuple:
        return result[0], result[1] if len(result) > 1 else None
    return result, None
