"""Template filters for audit events."""

from __future__ import annotations

from typing import Any

from django import template

from ledger.actions import describe

register = template.Library()


@register.filter
def audit_sentence(event: dict[str, Any]) -> str:
    """The registered sentence for an audit event as a reconstruction lists it (``actor``, ``action``, ``target``)."""
    return describe(event.get("action", ""), actor=event.get("actor", ""), target=event.get("target", ""))
