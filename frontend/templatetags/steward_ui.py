"""Template filters for the access pages (formatting only; the meaning lives in ``governance.portal``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template

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
