"""Classification levels: an ordered, configurable list (``STEWARD_CLASSIFICATION_LEVELS``), lowest first."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.core.signals import setting_changed

from steward.errors import ValidationFailed

__all__ = ["Level", "hidden_codes", "level", "levels", "lowest", "max_level", "validate_code"]


@dataclass(frozen=True)
class Level:
    """One classification level; a higher ``rank`` is more sensitive."""

    code: str
    name: str
    rank: int
    hides_metadata: bool


@cache
def _table() -> tuple[tuple[Level, ...], dict[str, Level]]:
    items = tuple(
        Level(
            code=item["code"],
            name=item.get("name", item["code"]),
            rank=rank,
            hides_metadata=bool(item.get("hides_metadata", False)),
        )
        for rank, item in enumerate(settings.STEWARD_CLASSIFICATION_LEVELS)
    )
    if not items:
        raise ValueError("STEWARD_CLASSIFICATION_LEVELS must list at least one level")
    return items, {lvl.code: lvl for lvl in items}


setting_changed.connect(lambda **kw: _table.cache_clear() if kw["setting"] == "STEWARD_CLASSIFICATION_LEVELS" else None)


def levels() -> tuple[Level, ...]:
    return _table()[0]


def lowest() -> Level:
    return levels()[0]


def level(code: str) -> Level:
    """The level for ``code``; raises ``KeyError`` for an unknown code."""
    return _table()[1][code]


def validate_code(code: str, field: str) -> str:
    """Return ``code`` if it names a level, else raise a 400 naming ``field`` and the valid codes."""
    if code not in _table()[1]:
        valid = ", ".join(lvl.code for lvl in levels())
        raise ValidationFailed.one(
            field, f"Unknown classification level {code!r}; use one of {valid}.", "unknown_level"
        )
    return code


def max_level(codes: Iterable[str | None]) -> str:
    """The most sensitive of ``codes`` (blank and ``None`` ignored); the lowest level when none."""
    table = _table()[1]
    best = lowest()
    for code in codes:
        if code and table[code].rank > best.rank:
            best = table[code]
    return best.code


def hidden_codes() -> frozenset[str]:
    """Codes whose assets are hidden from viewers who neither own nor hold them."""
    return frozenset(lvl.code for lvl in levels() if lvl.hides_metadata)
