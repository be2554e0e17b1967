"""The one parser for times a client sends (query parameters, bodies, OpenLineage ``eventTime``, results).

A time is ISO 8601 with a UTC offset. Refused, each with its own code: text that is not such a time or names an
impossible one (``12:99``, month 13, second 60, an offset of ``+24:00``: ``invalid_datetime``), a time without an
offset (``naive_datetime``), and one whose UTC instant falls outside years 1..9999
(``0001-01-01T00:00:00+01:00``: ``out_of_range``), which Python cannot represent in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = ["TimeProblem", "parse_aware_time"]


class TimeProblem(ValueError):
    """Why a value is not an acceptable time: ``message`` for people, ``code`` for programs."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def parse_aware_time(value: Any) -> datetime:
    """``value`` (ISO 8601 text or an aware ``datetime``) as an aware ``datetime`` in UTC; else ``TimeProblem``."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value)
        except ValueError:
            raise TimeProblem(
                f"Not an ISO 8601 time (or not a possible one): {value[:64]!r}.", "invalid_datetime"
            ) from None
    elif isinstance(value, datetime):
        parsed = value
    else:
        raise TimeProblem("Must be an ISO 8601 time with a UTC offset, as a string.", "invalid_type")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise TimeProblem("The time has no UTC offset; add one (e.g. Z or +01:00).", "naive_datetime")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise TimeProblem("The time falls outside years 1 to 9999 once converted to UTC.", "out_of_range") from None
