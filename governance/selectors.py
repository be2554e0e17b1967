"""Governance reads, restricted to what the viewer may see and prefetched for the serializers."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from catalog.models import Dataset
from catalog.selectors import visible_q
from connectors.dataplane import DataGrant, get_connector
from governance.approvals import fillable_slot_q, group_ids_of
from governance.choices import RequestState
from governance.models import AccessRequest, AccessRequestItem, ApprovalSlot, Grant, GrantSuspension, PolicyVersion
from governance.policy import default_policy_document
from ledger.models import AuditEvent
from steward.api.params import as_uuid, parse_uuid
from steward.errors import NotFound, PermissionDenied
from steward.identity import Role, has_role, viewer_for

__all__ = [
    "READ_ALL_REQUESTS",
    "access_request_get",
    "access_request_list",
    "audit_list",
    "awaiting_q",
    "dataplane_grants",
    "grant_get",
    "grant_get_for_use",
    "grant_list",
    "grants_valid_at",
    "policy_current",
    "policy_version_get",
    "policy_versions",
]

# Roles that see every access request and grant (compliance reads everything; admins run the system).
READ_ALL_REQUESTS = (Role.COMPLIANCE_OFFICER, Role.ADMIN)
# Roles that see every grant: the above, and the roles that may revoke any grant.
READ_ALL_GRANTS = (Role.COMPLIANCE_OFFICER, Role.ADMIN, Role.DATA_STEWARD, Role.PRIVACY_OFFICER)
AUDIT_READERS = (Role.COMPLIANCE_OFFICER, Role.ADMIN)


def awaiting_q(user: Any, *, now: datetime | None = None) -> Q:
    """Pending requests of others that still need an approval this user could give, and they have not given one."""
    now = now or timezone.now()
    fillable = ApprovalSlot.objects.filter(request=OuterRef("pk"), filled_at__isnull=True).filter(fillable_slot_q(user))
    given = ApprovalSlot.objects.filter(request=OuterRef("pk"), filled_by=user)
    return Q(state=RequestState.PENDING, expires_at__gt=now) & ~Q(requester=user) & Exists(fillable) & ~Exists(given)


def _requests_prefetched(qs: QuerySet[AccessRequest], user: Any) -> QuerySet[AccessRequest]:
    """Prefetched for the serializer; each item says whether ``user`` may see its dataset (``dataset_visible``):
    a request may name, by id, a dataset its requester may not see, whose name and level are then withheld."""
    visible = Dataset.objects.filter(visible_q(Dataset, viewer_for(user)), pk=OuterRef("dataset_id"))
    items = AccessRequestItem.objects.select_related("dataset").annotate(dataset_visible=Exists(visible))
    return qs.select_related("requester", "decided_by").prefetch_related(
        Prefetch("items", queryset=items),
        Prefetch("slots", queryset=ApprovalSlot.objects.select_related("dataset")),
        Prefetch("grants", queryset=Grant.objects.only("id", "request_id")),
    )


def access_request_list(*, user: Any, awaiting_me: bool = False, state: str | None = None) -> QuerySet[AccessRequest]:
    """``awaiting_me``: the user's approval queue. Otherwise their own requests; compliance officers and admins
    see all. Approvers find the requests they may act on through the queue."""
    qs = AccessRequest.objects.all()
    if awaiting_me:
        qs = qs.filter(awaiting_q(user))
    elif not has_role(user, *READ_ALL_REQUESTS):
        qs = qs.filter(requester=user)
    if state:
        qs = qs.filter(state=state)
    return _requests_prefetched(qs, user)


def access_request_get(*, user: Any, pk: UUID | str) -> AccessRequest:
    """A request the user may see: their own, one they approved, denied or may approve, or any for compliance
    officers and admins. Anything else is ``NotFound`` (never a hint that it exists)."""
    qs = AccessRequest.objects.filter(pk=as_uuid(pk, "access request"))
    if not has_role(user, *READ_ALL_REQUESTS):
        qs = qs.filter(
            Q(requester=user)
            | Q(decided_by=user)
            | Exists(ApprovalSlot.objects.filter(request=OuterRef("pk"), filled_by=user))
            | awaiting_q(user)
        )
    found = _requests_prefetched(qs, user).first()
    if found is None:
        raise NotFound("No such access request.")
    return found


def _grant_visibility(user: Any) -> Q:
    if has_role(user, *READ_ALL_GRANTS):
        return Q()
    owned_ids = Dataset.objects.filter(Q(owner_users=user) | Q(owner_groups__in=group_ids_of(user))).values("pk")
    return Q(user=user) | Q(request__requester=user) | Q(dataset_id__in=owned_ids)


def grant_list(*, user: Any, filters: dict[str, Any] | None = None) -> QuerySet[Grant]:
    """The user's grants (and those of workspaces they asked for), grants on datasets they own; every grant for
    stewards, privacy officers, compliance officers and admins. Filters: ``dataset``, ``state``, ``user``."""
    filters = filters or {}
    qs = Grant.objects.filter(_grant_visibility(user))
    dataset_id = parse_uuid(filters.get("dataset"), "dataset")
    if dataset_id is not None:
        qs = qs.filter(dataset_id=dataset_id)
    if filters.get("user"):
        qs = qs.filter(user__username=filters["user"])
    if filters.get("state"):
        qs = qs.filter(state=filters["state"])
    return qs.select_related("user", "dataset", "revoked_by", "request")


def grant_get(*, user: Any, pk: UUID | str) -> Grant:
    found = grant_list(user=user).prefetch_related("suspensions").filter(pk=as_uuid(pk, "grant")).first()
    if found is None:
        raise NotFound("No such grant.")
    return found


def grant_get_for_use(*, user: Any, pk: UUID | str, any_grant_roles: tuple[str, ...] = ()) -> Grant:
    """A grant the user may *use* (fetch credentials or a token for): one they hold, or any grant for
    ``any_grant_roles``. Anything else is ``NotFound``, even a grant the user may see (an owner's view),
    so using a grant never hints at another holder's. Locked ``FOR UPDATE`` when inside a transaction,
    so a revocation or suspension waits for the use to commit (and then removes what it made)."""
    qs = Grant.objects.select_related("user", "dataset").filter(pk=as_uuid(pk, "grant"))
    if not (any_grant_roles and has_role(user, *any_grant_roles)):
        qs = qs.filter(user_id=user.pk)
    if connection.in_atomic_block:
        qs = qs.select_for_update(of=("self",))
    found = qs.first()
    if found is None:
        raise NotFound("No grant of yours has this id.")
    return found


def grants_valid_at(
    *,
    at: datetime,
    dataset_ids: list[UUID] | None = None,
    user_id: int | None = None,
    workspace_id: UUID | None = None,
) -> QuerySet[Grant]:
    """Grants valid at ``at``: inside their window, not revoked by then, not suspended then.

    For enforcement connectors and token issuers (what should exist in the data plane at ``at``).
    """
    suspended = GrantSuspension.objects.filter(grant=OuterRef("pk"), started_at__lte=at).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gt=at)
    )
    qs = Grant.objects.filter(valid_from__lte=at, valid_until__gt=at).filter(
        Q(revoked_at__isnull=True) | Q(revoked_at__gt=at)
    )
    qs = qs.exclude(Exists(suspended))
    if dataset_ids is not None:
        qs = qs.filter(dataset_id__in=dataset_ids)
    if user_id is not None:
        qs = qs.filter(user_id=user_id)
    if workspace_id is not None:
        qs = qs.filter(workspace_id=workspace_id)
    return qs


def dataplane_grants(*, now: datetime | None = None) -> list[DataGrant]:
    """The user grants in force now (started, not ended, not revoked, not suspended) on datasets whose
    namespace the data-plane connector manages, as ``DataGrant`` values.

    The default ``STEWARD_DATAPLANE_GRANTS_SELECTOR``: the periodic reconcile keeps exactly these roles and
    drops every other managed one. Workspace grants are not included (their credentials come with the
    workspace, not a login role). Two queries: the namespaces that have datasets, then the grants.
    """
    now = now or timezone.now()
    connector = get_connector()
    namespaces = Dataset.objects.order_by().values_list("namespace", flat=True).distinct()
    managed = [ns for ns in namespaces if connector.manages(ns)]
    if not managed:
        return []
    rows = (
        grants_valid_at(at=now)
        # The current flag too (as decisions about now use it), besides the recorded suspension periods.
        .filter(user__isnull=False, suspended_at__isnull=True, dataset__namespace__in=managed)
        .order_by()
        .values_list("id", "user__username", "dataset__namespace", "dataset__name", "valid_until")
    )
    return [
        DataGrant(grant_id=gid, subject=username, namespace=ns, name=name, valid_until=until)
        for gid, username, ns, name, until in rows
    ]


def audit_list(*, user: Any, filters: dict[str, Any]) -> QuerySet[AuditEvent]:
    """The audit log (compliance officers and admins only). Filters: ``actor`` (username), ``action`` (exact, or
    a prefix ending in ``*`` or ``.``), ``object`` (target id, or ``type:id``), ``since``, ``until`` (times)."""
    if not has_role(user, *AUDIT_READERS):
        raise PermissionDenied("Only compliance officers and admins read the audit log.")
    qs = AuditEvent.objects.all()
    if filters.get("actor"):
        qs = qs.filter(actor_name=filters["actor"])
    action = filters.get("action")
    if action:
        qs = (
            qs.filter(action__startswith=action.rstrip("*"))
            if action.endswith(("*", "."))
            else qs.filter(action=action)
        )
    obj = filters.get("object")
    if obj:
        kind, sep, ident = obj.rpartition(":")
        qs = qs.filter(target_type=kind, target_id=ident) if sep and "." in kind else qs.filter(target_id=obj)
    if filters.get("since"):
        qs = qs.filter(at__gte=filters["since"])
    if filters.get("until"):
        qs = qs.filter(at__lt=filters["until"])
    return qs


def policy_current() -> PolicyVersion:
    """The version in effect: the highest stored one, or (on an empty table) the unsaved defaults as version 0."""
    latest = PolicyVersion.objects.order_by("-version").first()
    if latest is not None:
        return latest
    doc = default_policy_document()
    return PolicyVersion(version=0, note="built-in defaults", **doc)


def policy_version_get(version: int) -> PolicyVersion | None:
    """One stored version; 0 is the built-in defaults that apply before anything was stored."""
    if version == 0:
        return PolicyVersion(version=0, note="built-in defaults", **default_policy_document())
    return PolicyVersion.objects.filter(version=version).first()


def policy_versions(*, limit: int = 100) -> list[PolicyVersion]:
    """The stored versions, newest first (at most ``limit``)."""
    return list(PolicyVersion.objects.order_by("-version")[:limit])
