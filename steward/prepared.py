"""Hot statements as server-side prepared statements on PostgreSQL (planned once per connection).

For the few statements the decision API runs on every call (token lookup, the decision itself, the audit
append of a denial): on this machine planning the decision's join cost more than running it. Django's cursors
bind parameters client-side and cannot prepare, so these go through a psycopg server-side-binding cursor on
Django's own connection (same transaction, same error wrapping). While queries are being logged (``DEBUG``,
``CaptureQueriesContext`` in tests) they go through Django's cursor instead, so they stay visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

__all__ = ["execute_prepared"]

_NEVER_AUTOMATIC = 2**31 - 1


def execute_prepared(sql: str, params: Sequence[Any], *, fetch: str = "all") -> Any:
    """Run ``sql`` (``%s`` placeholders; ``%b`` for a parameter psycopg should send in binary, such as a long
    list: its text form is escaped in Python) with ``params``; return all rows (``fetch="all"``), the first row
    (``"one"``) or nothing (``"none"``)."""
    db = connections[DEFAULT_DB_ALIAS]  # once: each use of ``connection`` looks the thread's wrapper up again
    if db.vendor != "postgresql" or db.queries_logged:
        with db.cursor() as cursor:
            cursor.execute(sql.replace("%b", "%s"), params)
            return _fetch(cursor, fetch)
    import psycopg

    db.ensure_connection()
    raw = db.connection
    if raw.prepare_threshold is None:
        # Django turns psycopg's preparation off (None); a threshold nothing reaches prepares only what asks.
        raw.prepare_threshold = _NEVER_AUTOMATIC
    with db.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        cursor.execute(sql, params, prepare=True, binary=True)
        return _fetch(cursor, fetch)


def _fetch(cursor: Any, fetch: str) -> Any:
    if fetch == "all":
        return cursor.fetchall()
    if fetch == "one":
        return cursor.fetchone()
    return None
