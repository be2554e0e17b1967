"""ISO 8601 durations (``PT8H``, ``P30D``, ``P1DT12H``) as the API reads and writes them."""

from __future__ import annotations

import re
from datetime import timedelta

from steward.errors import ValidationFailed

__all__ = ["format_duration", "parse_duration"]

# Days, hours, minutes and seconds only: months and years have no fixed length.
_ISO = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


_MAX = timedelta(days=3653)


def parse_duration(value: object, field: str) -> timedelta:
    """Parse an ISO 8601 duration of weeks, days, hours, minutes and seconds; raise a 400 naming ``field``."""
    text = value.strip().upper() if isinstance(value, str) else None
    match = _ISO.match(text or "")
    if text is None or match is None or text in ("P", "PT") or text.endswith("T"):
        raise ValidationFailed.one(
            field, f"Not an ISO 8601 duration: {str(value)[:40]!r}; use e.g. PT8H, P7D or P1DT12H.", "invalid_duration"
        )
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    try:
        duration = timedelta(**parts)
    except OverflowError:
        duration = _MAX + _MAX
    if duration > _MAX:
        raise ValidationFailed.one(field, "The duration is longer than ten years.", "invalid_duration")
    if duration <= timedelta(0):
        raise ValidationFailed.one(field, "The duration must be longer than zero.", "invalid_duration")
    return duration


def format_duration(duration: timedelta) -> str:
    """The shortest ISO 8601 form: ``PT8H``, ``P30D``, ``P1DT2H30M``."""
    total = int(duration.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    if not days and not time:
        return "PT0S"
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")
