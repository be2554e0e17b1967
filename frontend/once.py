"""Show-once secrets across a Post/Redirect/Get.

A POST that creates a secret (an API token, a grant token, a database login) stores it in the session and
redirects; the next GET pops it and renders it with ``Cache-Control: no-store``. A reload of that page, or the
browser's back button, finds nothing: the secret is shown exactly once and never by a repeatable POST answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.dateparse import parse_datetime

_KEY = "frontend.once"


def secret_stash(request: HttpRequest, page: str, value: dict[str, Any]) -> None:
    """Keep ``value`` (JSON-able, datetimes allowed at the top level) for the next GET of ``page``."""
    plain = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in value.items()}
    dates = [k for k, v in value.items() if isinstance(v, datetime)]
    request.session[_KEY] = {"page": page, "value": plain, "dates": dates}


def secret_pop(request: HttpRequest, page: str) -> dict[str, Any] | None:
    """The stashed value for ``page``, removed from the session (whatever page asks, it is gone after one look)."""
    stored = request.session.pop(_KEY, None)
    if not stored or stored.get("page") != page:
        return None
    value = dict(stored["value"])
    for key in stored.get("dates", []):
        value[key] = parse_datetime(value[key])
    return value


def no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response
