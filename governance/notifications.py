"""Notification e-mails (Django's mail backend): approvers of new requests, requesters of decisions,
holders of suspended grants. Messages are queued after commit, so a rolled-back change sends nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mass_mail
from django.db import transaction

__all__ = ["Message", "queue", "send_now"]

logger = logging.getLogger(__name__)

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

    def enqueue() -> None:
        from governance.tasks import notifications_send_task

        try:
            notifications_send_task.delay(batch)
        except Exception:  # noqa: BLE001 - the change is committed; a lost e-mail must not fail the request
            logger.exception("could not queue %d notification e-mail(s)", len(batch))

    transaction.on_commit(enqueue)


def send_now(messages: list[Message]) -> int:
    """Send the messages with the configured backend; returns how many were sent."""
    datatuple = [(m["subject"], m["body"], settings.DEFAULT_FROM_EMAIL, list(m["to"])) for m in messages]
    return send_mass_mail(datatuple, fail_silently=False)


def users_by_id(ids: Iterable[int]) -> list[Any]:
    ids = set(ids)
    if not ids:
        return []
    return list(get_user_model().objects.filter(pk__in=ids, is_active=True))
