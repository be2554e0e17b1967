"""Grants carried into the data plane: a login for the holder, signed grant tokens, removal when a grant ends.

Roles are created only when the holder asks for credentials (``grant_credentials_issue``), never at approval:
the password exists once, in that answer, so a role made earlier would be one nobody can use. Revocation,
suspension and expiry queue the role's removal (``grants_dataplane_remove``, from the ``grant_changed``
receiver); the periodic reconcile (``governance.selectors.dataplane_grants``) drops whatever a lost message
left behind. See docs/enforcement.md.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID

import jwt
from django.db import transaction
from django.utils import timezone

from connectors.dataplane import Credentials, DataGrant, DatasetNotManaged, get_connector, remove_later
from governance.actions import GRANT_CREDENTIALS, GRANT_TOKEN
from governance.choices import GrantState
from governance.models import Grant
from governance.selectors import grant_get_for_use, grants_valid_at
from governance.services.signing import MAX_TOKEN_LIFETIME, issue_token
from ledger import audit
from steward.errors import Conflict, FieldProblem, ValidationFailed
from steward.identity import Actor, Role

__all__ = [
    "TOKEN_ISSUERS",
    "GrantNotInForce",
    "grant_credentials_issue",
    "grant_token_issue",
    "grants_dataplane_remove",
]

logger = logging.getLogger(__name__)

# Besides the holder, who may mint a grant token (a data-plane proxy acting for the holder; admins).
TOKEN_ISSUERS = (Role.SERVICE, Role.ADMIN)


class GrantNotInForce(Conflict):
    """The grant is not valid now; ``code`` names why (``grant_revoked``, ``grant_suspended``, ...)."""

    def __init__(self, grant: Grant, state: str) -> None:
        super().__init__(f"Grant {grant.pk} is {state.replace('_', ' ')}: nothing can be issued for it.")
        self.code = f"grant_{state}"


def _require_in_force(grant: Grant, now: datetime) -> None:
    state = "not_yet_valid" if now < grant.valid_from else grant.state_at(now)
    if state != GrantState.ACTIVE:
        raise GrantNotInForce(grant, state)


def _not_managed(message: str) -> DatasetNotManaged:
    return DatasetNotManaged(message, problems=[FieldProblem("dataset", message, "dataset_not_managed")])


def _data_grant(grant: Grant) -> DataGrant:
    return DataGrant(
        grant_id=grant.pk,
        subject=grant.user.get_username() if grant.user else f"workspace:{grant.workspace_id}",
        namespace=grant.dataset.namespace,
        name=grant.dataset.name,
        valid_until=grant.valid_until,
    )


def grant_credentials_issue(*, actor: Actor, grant_id: UUID | str, now: datetime | None = None) -> Credentials:
    """A login for the holder of a grant valid now: creates the grant's role in the managed database, or gives
    the existing one a new password (the old one stops working). The password is in the returned value only:
    never stored, logged or audited.

    Only the grant's user (anyone else: ``NotFound``). Raises ``GrantNotInForce`` (409), ``DatasetNotManaged``
    (400, field ``dataset``), ``DataPlaneError`` (409), ``BackendUnavailable`` (503). The grant row stays locked
    until the audit event commits, so a concurrent revocation waits and then removes the role it made.
    """
    now = now or timezone.now()
    connector = get_connector()
    with transaction.atomic():
        grant = grant_get_for_use(user=actor, pk=grant_id)
        _require_in_force(grant, now)
        dataset = grant.dataset
        if not connector.manages(dataset.namespace):
            raise _not_managed(
                f"{dataset} is not in a data plane Steward enforces grants on, so it has no login; "
                "ask its owners how to reach it"
            )
        try:
            creds = connector.apply(_data_grant(grant), reset_password=True, now=now)
        except DatasetNotManaged as exc:
            raise _not_managed(f"{dataset} does not name a table of its managed database: {exc}") from None
        assert creds is not None  # reset_password always sets one
        audit.record(
            actor=actor,
            action=GRANT_CREDENTIALS,
            target=grant,
            after={
                "role": creds.user,
                "host": creds.host,
                "port": creds.port,
                "database": creds.database,
                "valid_until": creds.valid_until.isoformat(),
            },
            at=now,
        )
    logger.info(
        "credentials issued for grant %s (role %s)",
        grant.pk,
        creds.user,
        extra={"grant_id": str(grant.pk), "dataplane_role": creds.user},
    )
    return creds


def grant_token_issue(
    *, actor: Actor, grant_id: UUID | str, lifetime: timedelta | None = None, now: datetime | None = None
) -> tuple[str, datetime]:
    """A signed token for a grant valid now (``governance.services.signing.issue_token``); returns it and its
    expiry. Lifetime at most one hour and at most the grant's remaining time (``lifetime`` may ask for less).

    The holder, or a ``service`` or ``admin`` caller for any grant (anyone else: ``NotFound``). Raises
    ``GrantNotInForce`` (409) and ``ValidationFailed`` (``lifetime_seconds``). The audit event records the
    token's ``jti`` and expiry, never the token.
    """
    now = now or timezone.now()
    if lifetime is not None and not timedelta(0) < lifetime <= MAX_TOKEN_LIFETIME:
        raise ValidationFailed.one(
            "lifetime_seconds", f"Between 1 and {int(MAX_TOKEN_LIFETIME.total_seconds())} seconds.", "out_of_range"
        )
    with transaction.atomic():
        grant = grant_get_for_use(user=actor, pk=grant_id, any_grant_roles=TOKEN_ISSUERS)
        _require_in_force(grant, now)
        data = _data_grant(grant)
        token, expires_at = issue_token(
            grant_id=grant.pk,
            subject=data.subject,
            asset={"id": str(grant.dataset_id), "namespace": data.namespace, "name": data.name},
            grant_valid_until=grant.valid_until,
            now=now,
            lifetime=lifetime,
        )
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
        audit.record(
            actor=actor,
            action=GRANT_TOKEN,
            target=grant,
            after={
                "jti": claims["jti"],
                "kid": header["kid"],
                "subject": data.subject,
                "expires_at": expires_at.isoformat(),
            },
            at=now,
        )
    return token, expires_at


def grants_dataplane_remove(grant_ids: Iterable[UUID], *, now: datetime | None = None) -> list[UUID]:
    """Queue removal (after commit, on Celery) of the data-plane access of these grants: those on datasets the
    connector manages that are not in force now. Returns the ids queued.

    Idempotent, for the ``grant_changed`` receiver: a repeated announcement queues a removal that finds nothing,
    and a stale one (a grant resumed since) queues nothing, since the grant is in force again.
    """
    ids = list(grant_ids)
    if not ids:
        return []
    now = now or timezone.now()
    connector = get_connector()
    rows = (
        Grant.objects.filter(pk__in=ids)
        .exclude(pk__in=grants_valid_at(at=now).filter(pk__in=ids).values("pk"))
        .values_list("pk", "dataset__namespace")
    )
    queued = [pk for pk, namespace in rows if connector.manages(namespace)]
    for pk in queued:
        remove_later(pk)
    return queued
