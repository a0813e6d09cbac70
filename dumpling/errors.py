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
# clientAcceptHandler's answer to a non-loopback connection while protected-mode is on and
# the default user has no password (Redis 7.4's text, written to the socket as is).
PROTECTED_MODE_DENIED = (
    "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set "
    "for the default user. In this mode connections are only accepted from the loopback interface. If you "
    "want to connect from external computers to Redis you may adopt one of the following solutions: "
    "1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback "
    "interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is "
    "not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. "
    "2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and "
    "setting the protected mode option to 'no', and then restarting the server. 3) If you started the "
    "server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an "
    "authentication password for the default user. NOTE: You only need to do one of the above things in "
    "order for the server to start accepting connections from the outside.\r\n"
)
OUT_OF_RANGE_INDEX = "index out of range"
BUSYKEY = "-BUSYKEY Target key name already exists."


class WrongType(CommandError):
    def __init__(self) -> None:
        super().__init__(WRONGTYPE)


def wrong_type() -> CommandError:
    return CommandError(WRONGTYPE)


def syntax_error() -> CommandError:
    return CommandError(SYNTAX)
