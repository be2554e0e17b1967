"""Producer authorization: who may write which lineage (docs/lineage.md "Setting up producers").

- Sending lineage at all needs the right to produce it (``permissions.can_emit_lineage``).
- A job namespace belongs to its producers (``NamespaceProducer``): the first producer of an unowned namespace
  claims it, admins assign more. A run or job event in a namespace owned by others is refused.
- An output (or a DatasetEvent's dataset) whose event would change it, that is state a schema, column
  lineage, or open edges from inputs, needs a producer allowed on the dataset's namespace. The dataset's own
  existence is never consulted, so a refusal reveals no hidden name; an unowned namespace is claimed only
  while it holds no datasets at all (a namespace already populated, e.g. by a connector, must be assigned).
- Inputs never refuse an event: their schema is simply not applied to an existing dataset in a namespace
  the caller is not allowed on (see ``ingest``), which says nothing about whether it exists.

Every refusal is audited (``lineage.ingest.refused``) in its own transaction, so it stays when the call
rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from catalog.models import Dataset
from ledger import audit
from lineage import permissions
from lineage.actions import INGEST_REFUSED, NAMESPACE
from lineage.models import NamespaceProducer
from lineage.openlineage import ParsedEvent
from steward.errors import FieldProblem, NotFound, PermissionDenied, ValidationFailed
from steward.identity import Actor, Role, authenticated_user, has_role

__all__ = [
    "Authorization",
    "lineage_authorize",
    "namespace_producer_assign",
    "namespace_producer_remove",
    "namespaces_allowed",
]


@dataclass
class Authorization:
    """What a call may do: namespaces it is allowed on, and the ones it claims (written with the events)."""

    allowed: set[str] = field(default_factory=set)
    claims: set[str] = field(default_factory=set)
    everywhere: bool = False

    def allows(self, namespace: str) -> bool:
        return self.everywhere or namespace in self.allowed


def _is_admin(actor: Actor) -> bool:
    """Admins are allowed on every namespace, unless they call with a scoped token (a producer's)."""
    return has_role(actor, Role.ADMIN) and not getattr(actor, "_steward_token_scopes", None)


def namespaces_allowed(actor: Actor, namespaces: set[str]) -> set[str]:
    return set(
        NamespaceProducer.objects.filter(namespace__in=namespaces, producer_id=actor.pk).values_list(
            "namespace", flat=True
        )
    )


def _refuse(actor: Actor, problems: list[FieldProblem], message: str) -> None:
    with transaction.atomic():
        audit.record(
            actor=actor,
            action=INGEST_REFUSED,
            target_type="lineage.event",
            after={"problems": [{"field": p.field, "message": p.message} for p in problems]},
            reason=message,
        )
    raise PermissionDenied(message, problems=problems)


def lineage_right_check(actor: Actor) -> None:
    """403 naming what is missing for a caller without the right to produce lineage (audited)."""
    if permissions.can_emit_lineage(actor):
        return
    scopes = getattr(actor, "_steward_token_scopes", None)
    if scopes:
        message = "Sending lineage needs a token with the lineage:write scope; this one has " + ", ".join(
            sorted(scopes)
        )
    else:
        message = (
            "Sending lineage needs the lineage-producer role (or an API token with the lineage:write scope); "
            "ask an admin to make you, or your pipeline's service account, a producer."
        )
    _refuse(actor, [FieldProblem(None, message, "permission_denied")], message)


def _changes(event: ParsedEvent, ref: Any) -> bool:
    return bool(
        ref.fields is not None or ref.column_lineage or ref.meaning or (event.kind in ("run", "job") and event.inputs)
    )


def lineage_authorize(
    *, actor: Actor, events: list[ParsedEvent], where: Any, raw: list[Any] | None = None
) -> Authorization:
    """Check every event against the caller's namespaces; raise an audited 403 naming each refused place.
    ``where(field, index)`` turns a field of event ``index`` into its path in the request."""
    lineage_right_check(actor)
    job_namespaces = {e.job_namespace for e in events if e.kind in ("run", "job")}
    dataset_namespaces = {
        r.namespace for e in events for r in [*e.inputs, *e.outputs, *([e.dataset] if e.dataset else [])]
    }
    wanted = job_namespaces | dataset_namespaces
    if _is_admin(actor):
        return Authorization(everywhere=True)
    # Who produces each of these namespaces, in one query: those of the caller's, and those owned at all.
    auth = Authorization()
    owned: set[str] = set()
    for ns, producer_id in NamespaceProducer.objects.filter(namespace__in=wanted).values_list(
        "namespace", "producer_id"
    ):
        owned.add(ns)
        if producer_id == actor.pk:
            auth.allowed.add(ns)
    populated = set(
        Dataset.objects.filter(namespace__in=dataset_namespaces - owned).values_list("namespace", flat=True).distinct()
    )
    problems: list[FieldProblem] = []
    for i, event in enumerate(events):
        if event.kind in ("run", "job"):
            ns = event.job_namespace
            if ns not in owned:
                auth.claims.add(ns)
                auth.allowed.add(ns)
            elif ns not in auth.allowed:
                problems.append(
                    FieldProblem(
                        where("job.namespace", i),
                        f"Job namespace {ns!r} belongs to other producers; an admin may assign it to you.",
                        "namespace_not_yours",
                    )
                )
        targets = [(f"outputs[{j}]", ref) for j, ref in enumerate(event.outputs)]
        if event.dataset is not None and (event.dataset.fields is not None or event.dataset.meaning):
            targets.append(("dataset", event.dataset))
        for path, ref in targets:
            if path != "dataset" and not _changes(event, ref):
                continue
            ns = ref.namespace
            if ns in auth.allowed:
                continue
            if ns not in owned and ns not in populated:
                auth.claims.add(ns)
                auth.allowed.add(ns)
                continue
            problems.append(
                FieldProblem(
                    where(path, i),
                    f"You are not a producer allowed on namespace {ns!r}, so you may not change the schema of or "
                    "open edges into its datasets; an admin may assign it to you.",
                    "namespace_not_yours",
                )
            )
    if problems:
        _refuse(actor, problems, "; ".join(f"{p.field}: {p.message}" for p in problems[:5]))
    return auth


def namespace_claims_write(*, actor: Actor, claims: set[str]) -> None:
    """Record the namespaces a producer claimed as their first producer (inside the ingest transaction)."""
    if not claims:
        return
    producer = authenticated_user(actor)
    created = NamespaceProducer.objects.bulk_create(
        [NamespaceProducer(namespace=ns, producer=producer) for ns in sorted(claims)], ignore_conflicts=True
    )
    audit.record_many(
        actor=actor,
        entries=[
            audit.AuditEntry(
                action=NAMESPACE["claim"],
                target_type="lineage.namespace",
                target_id=ns.namespace,
                target_repr=ns.namespace,
                after={"namespace": ns.namespace, "producer": actor.get_username()},
            )
            for ns in created
        ],
    )


def _admin_check(actor: Actor) -> None:
    if not _is_admin(actor):
        _refuse(
            actor,
            [FieldProblem(None, "Only admins assign namespaces to producers.", "permission_denied")],
            "Only admins assign namespaces to producers.",
        )


@transaction.atomic
def namespace_producer_assign(*, actor: Actor, namespace: str, username: str) -> NamespaceProducer:
    """Allow ``username`` (a lineage producer) on ``namespace``; idempotent."""
    _admin_check(actor)
    namespace = (namespace or "").strip()
    if not namespace or len(namespace) > 255:
        raise ValidationFailed.one("namespace", "Required: 1 to 255 characters.", "required")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ValidationFailed.one("producer", f"No user {username!r}.", "not_found")
    row, created = NamespaceProducer.objects.get_or_create(
        namespace=namespace, producer=user, defaults={"assigned_by": authenticated_user(actor)}
    )
    if created:
        audit.record(actor=actor, action=NAMESPACE["assign"], target=row, after=row.snapshot())
    return row


@transaction.atomic
def namespace_producer_remove(*, actor: Actor, pk: Any) -> None:
    _admin_check(actor)
    row = NamespaceProducer.objects.select_related("producer").filter(pk=pk).first()
    if row is None:
        raise NotFound(f"No namespace assignment {pk}.")
    before = row.snapshot()
    row.delete()
    audit.record(actor=actor, action=NAMESPACE["remove"], target_type="lineage.namespace", before=before)
