"""Garbage-collector settings of the serving processes (granian or gunicorn workers, the Celery worker).

CPython runs a young-generation collection every 700 net allocations of container objects, and a full one every
100 of those, each of which walks every object alive, Django's modules, models and URLconf included. A request
that builds many small objects (an OpenLineage batch parses thousands of dicts) paid a third to a half of its CPU
time in collections of objects that live for the whole process (measured with ``bench/lineage_profile.py``).
``tune`` freezes what is alive once the application is loaded (never collected again: it lives until exit
anyway, and the frozen pages are not dirtied after a fork) and raises the thresholds
(``STEWARD_GC_THRESHOLD``); reference counting still frees almost everything at once, only cycles wait longer.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["parse_threshold", "paused", "tune"]


def parse_threshold(raw: str) -> tuple[int, int, int] | None:
    """``"50000,50,100"`` → the three thresholds; ``""`` → ``None`` (Python's own settings)."""
    if not raw.strip():
        return None
    parts = [int(p) for p in raw.split(",")]
    if len(parts) != 3 or parts[0] < 1 or any(p < 0 for p in parts):
        raise ValueError(f"STEWARD_GC_THRESHOLD must be three integers like 50000,50,100, got {raw!r}")
    return parts[0], parts[1], parts[2]


def tune() -> None:
    """Freeze the objects alive now and apply ``STEWARD_GC_THRESHOLD`` (call once the application is loaded)."""
    from django.conf import settings

    threshold = parse_threshold(settings.STEWARD_GC_THRESHOLD)
    if threshold is None:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(*threshold)


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside the block: for bounded batch work whose objects live until the block ends (a
    drain's 500 parsed events, their rows and model instances), which every collection would otherwise walk again
    only to find them alive (a fifth of a drain's CPU, measured with ``bench/lineage_profile.py``). Reference
    counting still frees what the block drops; cycles made in it wait for the next collection after it. The
    collector is process-wide: a block entered while it is already paused (another thread's, or nested) leaves it
    to the block that paused it."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
