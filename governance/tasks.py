"""Governance background work: expiry sweeps (display state and hooks), notification e-mail, signing keys."""

from __future__ import annotations

import smtplib
from typing import Any

from celery import shared_task


@shared_task(name="governance.grants_expire", acks_late=True)
def grants_expire_task() -> int:
    """Mark grants past their window expired and announce them. Idempotent; beat runs it every minute.

    Decisions never depend on it: they compare ``valid_until`` with the decision time.
    """
    from governance.services.grants import grants_expire

    return grants_expire()


@shared_task(name="governance.access_requests_expire", acks_late=True)
def access_requests_expire_task() -> int:
    """Expire pending requests past their deadline. Idempotent; beat runs it every minute."""
    from governance.services.access_requests import access_requests_expire

    return access_requests_expire()


@shared_task(
    name="governance.notifications_send",
    acks_late=True,
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def notifications_send_task(messages: list[dict[str, object]]) -> int:
    """Send notification e-mails: each message is ``{"subject", "body", "to": [addresses]}``."""
    from governance.notifications import send_now

    return send_now(messages)


@shared_task(name="governance.signing_keys_maintain", acks_late=True)
def signing_keys_maintain_task() -> dict[str, Any]:
    """Rotate the grant-token signing key when due and delete retired keys whose tokens all expired (beat)."""
    from governance.services.signing import maintain

    return maintain()


@shared_task(name="governance.audit_checkpoint", acks_late=True)
def audit_checkpoint_task() -> int | None:
    """Sign a checkpoint of the audit chain's last event (beat; idempotent). Returns its sequence number."""
    from governance.services.audit_checkpoints import audit_checkpoint_create

    checkpoint = audit_checkpoint_create()
    return checkpoint.seq if checkpoint else None
