"""Notification e-mails (Django's mail backend): approvers of new requests, requesters of decisions,
holders of suspended grants. Messages are queued after commit, so a rolled-back change sends nothing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mass_mail

from steward.tasks import enqueue_on_commit

__all__ = ["Message", "queue", "send_now"]


Message = dict[str, Any]


def message(*, to: Iterable[Any], subject: str, body: str) -> Message | None:
    """A message to these users (those without an e-mail address are skipped); ``None`` when nobody is left."""
    addresses = sorted({u.email for u in to if getattr(u, "email", "")})
    if not addresses:
        return None
    return {"subject": subject[:200], "body": body, "to": addresses}


def link(path: str) -> str:
    return settings.STEWARD_BASE_URL.rstrip("/") + path


def queue(messages: Iterable[Message | None]) -> None:
    """Send these after the current transaction commits (through Celery, which retries on SMTP errors)."""
    batch = [m for m in messages if m]
    if not batch:
        return

    from governance.tasks import notifications_send_task

    # A lost e-mail must not fail the request: the change is committed, and the page shows it anyway.
    enqueue_on_commit(notifications_send_task, batch, recovery=f"{len(batch)} notification e-mail(s) not sent.")


def send_now(messages: list[Message]) -> int:
    """Send the messages with the configured backend; returns how many were sent."""
    datatuple = [(m["subject"], m["body"], settings.DEFAULT_FROM_EMAIL, list(m["to"])) for m in messages]
    return send_mass_mail(datatuple, fail_silently=False)


def users_by_id(ids: Iterable[int]) -> list[Any]:
    ids = set(ids)
    if not ids:
        return []
    return list(get_user_model().objects.filter(pk__in=ids, is_active=True))
