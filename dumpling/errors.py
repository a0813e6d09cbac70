"""Every error a command can answer, with Redis's exact texts, in one place.

Handlers raise ``CommandError``; the dispatcher turns it into an error reply.  As in
Redis's ``addReplyError``, a message starting with ``-`` carries its own error code
(``-WRONGTYPE ...``); any other message gets the ``ERR`` prefix.
"""

from __future__ import annotations


class CommandError(Exception):
    """An error reply.  ``message`` is the full text after the ``-`` (code included)."""

    def __init__(self, message: str, counted: bool = False) -> None:
        super().__init__(message)
        self.message = message[1:] if message.startswith("-") else "ERR " + message
        # The error statistics already counted this error (a script passing on the error
        # of a command it ran): the command still counts as failed, errorstats do not.
        self.counted = counted

    @property
    def code(self) -> str:
        return self.message.split(" ", 1)[0]


class ProtocolError(Exception):
    """The peer broke the request framing; the connection is closed after the reply."""


# Texts shared by many commands.
WRONGTYPE = "-WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INTEGER = "value is not an integer or out of range"
NOT_FLOAT = "value is not a valid float"
SYNTAX = "syntax error"
NO_SUCH_KEY = "no such key"
OVERFLOW = "increment or decrement would overflow"
DB_INDEX = "DB index is out of range"
NOAUTH = "-NOAUTH Authentication required."
WRONGPASS = "-WRONGPASS invalid username-password pair or user is disabled."
OUT_OF_RANGE_INDEX = "index out of range"
BUSYKEY = "-BUSYKEY Target key name already exists."


class WrongType(CommandError):
    def __init__(self) -> None:
        super().__init__(WRONGTYPE)


def wrong_type() -> CommandError:
    return CommandError(WRONGTYPE)


def syntax_error() -> CommandError:
    return CommandError(SYNTAX)
