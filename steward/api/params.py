"""Query-parameter parsing shared by API views: each bad value is a 400 naming the parameter."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from django.utils import timezone

from steward.errors import NotFound, ValidationFailed
from steward.times import TimeProblem, parse_aware_time

_D = TypeVar("_D", int, None)

__all__ = ["as_uuid", "parse_body", "parse_bool", "parse_choice", "parse_int", "parse_time", "parse_uuid"]


def parse_time(value: str | None, field: str = "at", *, allow_future: bool = True) -> datetime | None:
    """An ISO 8601 time with a UTC offset, or ``None`` when absent; naive times are refused."""
    if value in (None, ""):
        return None
    try:
        parsed = parse_aware_time(value)
    except TimeProblem as problem:
        raise ValidationFailed.one(field, problem.message, problem.code) from None
    if not allow_future and parsed > timezone.now():
        raise ValidationFailed.one(field, "The time is in the future.", "future_datetime")
    return parsed


def as_uuid(value: UUID | str, what: str) -> UUID:
    """Parse an id from a URL; a malformed one is simply not found."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise NotFound(f"No such {what}.") from None


def parse_uuid(value: str | None, field: str) -> UUID | None:
    """A UUID, or ``None`` when absent."""
    if value in (None, ""):
        return None
    try:
        return UUID(value)
    except ValueError:
        raise ValidationFailed.one(field, f"Not a UUID: {value[:64]!r}.", "invalid_uuid") from None


def parse_int(value: str | None, field: str, default: _D) -> int | _D:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise ValidationFailed.one(field, f"Must be an integer, not {value[:32]!r}.", "invalid_int") from None


def parse_bool(value: str | None, field: str, default: bool = False) -> bool:
    if value in (None, ""):
        return default
    lowered = value.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise ValidationFailed.one(field, "Must be true or false.", "invalid_bool")


def parse_choice(value: str | None, field: str, choices: Sequence[str]) -> str | None:
    """``None`` when absent; else one of ``choices`` or a 400 naming the field and listing them."""
    if value in (None, ""):
        return None
    if value not in choices:
        raise ValidationFailed.one(field, f"Use one of {', '.join(choices)}.", "invalid_choice")
    return value


def parse_body(serializer_class: type[Any], data: Any, **kwargs: Any) -> dict[str, Any]:
    """A request body through a DRF input serializer; invalid input raises (a 400 naming each field)."""
    ser = serializer_class(data=data, **kwargs)
    ser.is_valid(raise_exception=True)
    return ser.validated_data
