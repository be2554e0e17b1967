"""Personal API tokens: create (secret shown once), revoke, authenticate."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, models, transaction
from django.utils import timezone

from accounts.actions import TOKEN_CREATE, TOKEN_REVOKE
from accounts.models import ApiToken, TokenScope
from ledger import audit
from steward.errors import PermissionDenied, ValidationFailed
from steward.identity import Role, has_role, seed_roles
from steward.prepared import execute_prepared

__all__ = ["TOKEN_PREFIX", "token_authenticate", "token_create", "token_revoke"]

TOKEN_PREFIX = "stw_"
# Audit events name tokens as they did before the model moved to accounts (``?object=`` filters keep working).
TARGET_TYPE = "governance.apitoken"
MAX_TOKEN_DAYS = 366


@transaction.atomic
def token_create(
    *, actor, user, name: str, expires_in_days: int | None = 90, scopes: list[str] | None = None
) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns the row and the plain secret (never stored).

    ``scopes`` limits the token to those scopes (and grants nothing the scope does not name). A
    ``lineage:write`` token carries the right to produce lineage, so only a ``lineage-producer`` may hold
    one, or an admin may mint one for a service account.
    """
    name = (name or "").strip()
    if not name:
        raise ValidationFailed.one("name", "A token needs a name.", "required")
    for i, scope in enumerate(scopes or []):
        if scope not in TokenScope.values:
            raise ValidationFailed.one(
                f"scopes[{i}]", f"Unknown scope {scope!r}; known: {', '.join(TokenScope.values)}."
            )
    scopes = sorted(set(scopes or []))
    if TokenScope.LINEAGE_WRITE in scopes and not (
        has_role(user, Role.LINEAGE_PRODUCER) or has_role(actor, Role.ADMIN)
    ):
        raise PermissionDenied(
            "A lineage:write token is for lineage producers: its user needs the lineage-producer role "
            "(or an admin mints it).",
        )
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
        raise ValidationFailed.one("expires_in_days", f"Must be between 1 and {MAX_TOKEN_DAYS}.")
    prefix = secrets.token_hex(4)
    secret = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    now = timezone.now()
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        prefix=prefix,
        digest=ApiToken.hash_secret(secret),
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
        scopes=" ".join(scopes),
    )
    audit.record(
        actor=actor,
        action=TOKEN_CREATE,
        target=token,
        target_type=TARGET_TYPE,
        after={"name": token.name, "prefix": prefix, "scopes": scopes},
    )
    return token, secret


@transaction.atomic
def token_revoke(*, actor, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record(actor=actor, action=TOKEN_REVOKE, target=token, target_type=TARGET_TYPE)
    return token


def _token_sql() -> tuple[str, list[str], list[str]]:
    """One statement: the token, its user and (on PostgreSQL) the user's group names. Built once per process."""
    quote = connection.ops.quote_name
    user_model = get_user_model()
    token_fields = [f.attname for f in ApiToken._meta.concrete_fields]
    user_fields = [f.attname for f in user_model._meta.concrete_fields]
    columns = [f"t.{quote(f)}" for f in token_fields] + [f"u.{quote(f)}" for f in user_fields]
    if connection.vendor == "postgresql":
        membership = user_model.groups.through._meta
        columns.append(
            f"ARRAY(SELECT g.name FROM {quote(membership.db_table)} m JOIN {quote(Group._meta.db_table)} g "
            "ON g.id = m.group_id WHERE m.user_id = u.id)"
        )
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(ApiToken._meta.db_table)} t "
        f"JOIN {quote(user_model._meta.db_table)} u ON u.id = t.user_id WHERE t.digest = %s"
    )
    return sql, token_fields, user_fields


_token_statement: dict[str, tuple[str, list[str], list[str]]] = {}


def token_authenticate(secret: str, *, now: datetime | None = None) -> ApiToken | None:
    """The active token whose secret this is (with ``token.user`` loaded), or ``None``. Records last use at
    most once a minute. On PostgreSQL the user's roles come in the same query (the API's hot path)."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    now = now or timezone.now()
    if connection.alias not in _token_statement:
        _token_statement[connection.alias] = _token_sql()
    sql, token_fields, user_fields = _token_statement[connection.alias]
    row = execute_prepared(sql, [ApiToken.hash_secret(secret)], fetch="one")
    if row is None:
        return None
    values = list(row)
    token = ApiToken.from_db(connection.alias, token_fields, _convert(values[: len(token_fields)], ApiToken))
    user = get_user_model().from_db(
        connection.alias,
        user_fields,
        _convert(values[len(token_fields) : len(token_fields) + len(user_fields)], get_user_model()),
    )
    if len(values) > len(token_fields) + len(user_fields):
        seed_roles(user, values[-1])
    token.user = user
    if not token.is_active_at(now) or not user.is_active:
        return None
    # What this request may do, when the token is scoped (read by accounts.authentication).
    setattr(user, "_steward_token_scopes", token.scope_set)  # noqa: B010 - an ad hoc attribute the model lacks
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def _convert(values: list[Any], model: type[models.Model]) -> list[Any]:
    """Database values to Python ones, as the ORM would (SQLite keeps datetimes and UUIDs as text)."""
    if connection.vendor == "postgresql":
        return values
    out = []
    for field, value in zip(model._meta.concrete_fields, values, strict=True):
        col = field.get_col(model._meta.db_table)
        for converter in connection.ops.get_db_converters(col) + col.get_db_converters(connection):
            value = converter(value, col, connection)
        out.append(value)
    return out
