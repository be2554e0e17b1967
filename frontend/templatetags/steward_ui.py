"""Template filters for the access pages (formatting only; the meaning lives in ``governance.portal``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django import template
from django.utils.dateparse import parse_datetime

from governance.portal import human_duration as _human_duration
from governance.portal import time_left as _time_left
from steward.durations import format_duration

register = template.Library()


@register.filter
def time_left(until: datetime | None) -> str:
    return _time_left(until) if until else ""


@register.filter
def duration(value: timedelta | None) -> str:
    return format_duration(value) if value else ""


@register.filter
def human_duration(value: timedelta | None) -> str:
    return _human_duration(value) if value else ""


@register.filter
def when(value: datetime | str | None) -> str:
    """A readable UTC time, ``2026-03-01 12:00:05 UTC``, from a datetime or an ISO string (as report bundles
    store them); anything else is returned as it is, and nothing as a dash."""
    if not value:
        return "–"
    moment = value if isinstance(value, datetime) else parse_datetime(str(value))
    if moment is None:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
