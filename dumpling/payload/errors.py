"""The one exception the payload codec raises for bad input, with Redis's reply texts.

``PayloadError.message`` is the reply text without the ``ERR`` prefix (the same
convention as ``dumpling.errors.CommandError``); ``detail`` says what exactly was
wrong, for logs and tests, the way Redis logs it at verbose level.
"""

from __future__ import annotations

# Reply texts, exactly as Redis and Valkey send them (after "-ERR ").
BAD_ENVELOPE = "DUMP payload version or checksum are wrong"
BAD_DATA_FORMAT = "Bad data format"
FOREIGN_TYPE = "Unsupported foreign data type: {type_byte}"  # Valkey >= 9, relaxed version check


class PayloadError(Exception):
    """A DUMP payload that must be refused.  Never raised for our own programming errors."""

    def __init__(self, message: str = BAD_DATA_FORMAT, detail: str = "") -> None:
        super().__init__(message if not detail else f"{message} ({detail})")
        self.message = message
        self.detail = detail


def bad_data(detail: str) -> PayloadError:
    """The error for any inconsistency inside the body of a payload."""
    return PayloadError(BAD_DATA_FORMAT, detail)
