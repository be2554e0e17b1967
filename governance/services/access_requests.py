"""Access requests: create, approve, deny, withdraw, expire, escalate, and re-approval of suspended grants.

State machine: pending → approved (every approval slot filled, or no slot: auto-approved by policy) | denied
(by an approver, or by the system when a dataset rises to a level that disallows the purpose) | withdrawn (by
the requester) | expired (no decision before ``expires_at``). Approval creates the grants in the same
transaction. Every transition is audited; every check happens before the first write, and each service runs
in one transaction, so a refused call writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from catalog.classification import level as classification_level
from catalog.models import Dataset
from catalog.selectors import dataset_tag_keys, visible_q
from catalog.validation import ProblemCollector
from governance import audit, notifications
from governance.approvals import approver_ids, can_fill, dataset_owner_ids
from governance.audit import AuditEntry
from governance.choices import APPROVER_ORDER, ApproverRole, GrantChange, GrantState, RequestState
from governance.constants import (
    GRANT_CREATE,
    GRANT_REAPPROVE,
    REQUEST_APPROVE,
    REQUEST_APPROVED,
    REQUEST_CREATE,
    REQUEST_DENY,
    REQUEST_ESCALATE,
    REQUEST_EXPIRE,
    REQUEST_WITHDRAW,
)
from governance.identity import roles_of, viewer_for
from governance.models import AccessRequest, AccessRequestItem, ApprovalSlot, Grant, GrantSuspension, PolicyVersion
from governance.services.policy import LevelRule, level_rules, policy_current
from governance.signals import announce_grant_change
from steward.durations import format_duration
from steward.errors import Conflict, FieldProblem, PermissionDenied, ValidationFailed

__all__ = [
    "MAX_DATASETS",
    "DatasetRef",
    "SelfApproval",
    "access_request_approve",
    "access_request_create",
    "access_request_deny",
    "access_request_withdraw",
    "access_requests_escalate",
    "access_requests_expire",
    "grant_reapproval_request",
]

MAX_DATASETS = 100

# A dataset named by id, or by its OpenLineage identity (namespace, name).
DatasetRef = UUID | tuple[str, str]


class SelfApproval(PermissionDenied):
    code = "self_approval"


@dataclass(frozen=True)
class _Subject:
    """Who a request or grant is for: the requesting user, or a workspace."""

    user_id: int | None
    workspace_id: UUID | None

    def grant_q(self) -> Q:
        if self.workspace_id is not None:
            return Q(workspace_id=self.workspace_id)
        return Q(user_id=self.user_id, workspace_id__isnull=True)

    def request_q(self, prefix: str = "") -> Q:
        if self.workspace_id is not None:
            return Q(**{f"{prefix}workspace_id": self.workspace_id})
        return Q(**{f"{prefix}requester_id": self.user_id, f"{prefix}workspace_id__isnull": True})


def _subject_of(request: AccessRequest) -> _Subject:
    if request.workspace_id is not None:
        return _Subject(None, request.workspace_id)
    return _Subject(request.requester_id, None)


def _rank(code: str) -> int:
    try:
        return classification_level(code).rank
    except KeyError:  # a level removed from settings: treat as the most sensitive
        return 1_000


# --- checks (no writes) ----------------------------------------------------------------------------------------


def _resolve_datasets(actor: Any, refs: Sequence[DatasetRef]) -> list[Dataset]:
    """The datasets, in order. By id: any dataset (an unguessable id was shared with you); by namespace and
    name: only datasets the actor may see, so hidden names leak nothing. Problems name ``datasets[i]``."""
    problems = ProblemCollector()
    if not refs:
        raise ValidationFailed.one("datasets", "Name at least one dataset.", "required")
    if len(refs) > MAX_DATASETS:
        raise ValidationFailed.one("datasets", f"At most {MAX_DATASETS} datasets per request.", "too_many")
    by_id = Dataset.objects.in_bulk([r for r in refs if isinstance(r, UUID)])
    names = [r for r in refs if isinstance(r, tuple)]
    by_name: dict[tuple[str, str], Dataset] = {}
    if names:
        q = Q()
        for namespace, name in names:
            q |= Q(namespace=namespace, name=name)
        visible = Dataset.objects.filter(visible_q(Dataset, viewer_for(actor))).filter(q)
        by_name = {(d.namespace, d.name): d for d in visible}
    found: list[Dataset] = []
    seen: dict[UUID, int] = {}
    for i, ref in enumerate(refs):
        ds = by_id.get(ref) if isinstance(ref, UUID) else by_name.get(ref)
        if ds is None:
            what = ref if isinstance(ref, UUID) else f"{ref[0]}/{ref[1]}"
            problems.add(f"datasets[{i}]", f"No such dataset: {what}.", "unknown_dataset")
        elif ds.pk in seen:
            problems.add(f"datasets[{i}]", f"Listed twice (also datasets[{seen[ds.pk]}]).", "duplicate_dataset")
        else:
            seen[ds.pk] = i
            found.append(ds)
    problems.raise_if_any()
    return found


def _check_policy(
    policy: PolicyVersion, rules: dict[str, LevelRule], datasets: list[Dataset], purpose: str, duration: timedelta
) -> None:
    """Purpose known and allowed at every dataset's level; duration within every level's maximum."""
    if purpose not in policy.purposes:
        known = ", ".join(sorted(policy.purposes))
        raise ValidationFailed.one(
            "purpose", f"Unknown purpose {purpose!r}; the policy knows: {known}.", "unknown_purpose"
        )
    problems: list[FieldProblem] = []
    for i, ds in enumerate(datasets):
        level = ds.effective_classification
        rule = rules.get(level)
        if rule is None:
            problems.append(
                FieldProblem(
                    f"datasets[{i}]", f"The policy has no rule for level {level}; ask an admin to add one.", "no_rule"
                )
            )
            continue
        if purpose not in rule.purposes and not any(p.field == "purpose" for p in problems):
            allowed = ", ".join(sorted(rule.purposes))
            problems.append(
                FieldProblem(
                    "purpose",
                    f"{purpose!r} is not allowed for {level} data ({ds}); allowed: {allowed}.",
                    "purpose_not_allowed",
                )
            )
        if duration > rule.max_duration and not any(p.field == "duration" for p in problems):
            problems.append(
                FieldProblem(
                    "duration",
                    f"At most {format_duration(rule.max_duration)} for {level} data ({ds}); "
                    f"you asked for {format_duration(duration)}.",
                    "duration_exceeds_policy",
                )
            )
    if problems:
        first = problems[0]
        raise ValidationFailed(f"{first.field}: {first.message}", problems=problems)


def _check_overlap(
    subject: _Subject, datasets: list[Dataset], now: datetime, *, exclude_grant: UUID | None = None
) -> None:
    """No pending request and no current (or suspended) grant for the same subject and dataset."""
    index = {ds.pk: i for i, ds in enumerate(datasets)}
    pending = (
        AccessRequestItem.objects.filter(dataset_id__in=index, request__state=RequestState.PENDING)
        .filter(request__expires_at__gt=now)
        .filter(subject.request_q("request__"))
        .values_list("dataset_id", "request_id")
    )
    problems: list[FieldProblem] = []
    for ds_id, request_id in pending:
        problems.append(
            FieldProblem(
                f"datasets[{index[ds_id]}]",
                f"Request {request_id} for this dataset is still pending; withdraw it or wait for its decision.",
                "overlapping_request",
            )
        )
    granted = Grant.objects.filter(
        subject.grant_q(), dataset_id__in=index, revoked_at__isnull=True, valid_until__gt=now
    )
    if exclude_grant is not None:
        granted = granted.exclude(pk=exclude_grant)
    for ds_id, grant_id, suspended_at in granted.values_list("dataset_id", "id", "suspended_at"):
        hint = "it is suspended: ask for its re-approval instead" if suspended_at else "it is still valid"
        problems.append(
            FieldProblem(
                f"datasets[{index[ds_id]}]",
                f"Grant {grant_id} already covers this dataset ({hint}).",
                "already_granted",
            )
        )
    if problems:
        problems.sort(key=lambda p: p.field or "")
        raise Conflict(f"{problems[0].field}: {problems[0].message}", problems=problems)


def _check_toxic(policy: PolicyVersion, subject: _Subject, datasets: list[Dataset], now: datetime) -> None:
    """Refuse when the subject would hold every tag of a toxic combination at once because of these datasets.

    Held means: tags (direct, on fields, propagated) of datasets under the subject's unrevoked, unexpired grants
    (suspended ones included: they may resume). A combination already complete without these datasets is not
    this request's doing and does not block it.
    """
    combos = policy.toxic_combinations or []
    if not combos:
        return
    held_ids = set(
        Grant.objects.filter(subject.grant_q(), revoked_at__isnull=True, valid_until__gt=now).values_list(
            "dataset_id", flat=True
        )
    )
    requested = {ds.pk for ds in datasets}
    keys = dataset_tag_keys(list(held_ids | requested))
    held_tags = set().union(*(keys.get(pk, set()) for pk in held_ids))
    all_tags = held_tags.union(*(keys.get(pk, set()) for pk in requested))
    for combo in combos:
        tags = set(combo["tags"])
        if tags <= all_tags and not tags <= held_tags:
            sources = sorted(
                f"{t} ({', '.join(sorted(str(d) for d in datasets if t in keys.get(d.pk, ())) or ['a current grant'])})"
                for t in tags
            )
            message = (
                f"Toxic combination {combo['name']!r}: one subject may not hold {', '.join(sorted(tags))} at once "
                f"({'; '.join(sources)}). {combo.get('description', '')}".strip()
            )
            raise Conflict(message, problems=[FieldProblem("datasets", message, "toxic_combination")])


# --- slots and notifications -----------------------------------------------------------------------------------


def _add_slots(
    request: AccessRequest, levels: dict[UUID, str], rules: dict[str, LevelRule], *, existing: Iterable[ApprovalSlot]
) -> list[ApprovalSlot]:
    """Create the approval slots the datasets' levels require that the request does not have yet."""
    have = {(s.role, s.dataset_id) for s in existing}
    owners = dataset_owner_ids(levels)
    new: list[ApprovalSlot] = []
    for ds_id, level in levels.items():
        for role in rules[level].approvers:
            key = (role, ds_id if role == ApproverRole.OWNER else None)
            if key in have:
                continue
            have.add(key)
            fallback = role == ApproverRole.OWNER and not (owners.get(ds_id, set()) - {request.requester_id})
            new.append(ApprovalSlot(request=request, role=role, dataset_id=key[1], owner_fallback=fallback))
    ApprovalSlot.objects.bulk_create(new)
    return new


def _describe_slots(slots: Iterable[ApprovalSlot], names: dict[UUID, str] | None = None) -> str:
    parts = []
    for s in slots:
        if s.role == ApproverRole.OWNER:
            what = (names or {}).get(s.dataset_id, str(s.dataset_id))
            parts.append(
                f"an owner of {what}" + (" (or a data steward: it has no other owner)" if s.owner_fallback else "")
            )
        else:
            parts.append(f"a {ApproverRole(s.role).label.lower()}")
    return "; ".join(parts)


def _notify_approvers(request: AccessRequest, slots: list[ApprovalSlot], *, why: str) -> None:
    if not slots:
        return
    ids = approver_ids(slots, requester_id=request.requester_id)
    items = list(request.items.select_related("dataset"))
    names = {i.dataset_id: str(i.dataset) for i in items}
    body = (
        f"{request.requester.get_username()} asks to read, for {request.purpose} during "
        f"{format_duration(request.duration)}:\n"
        + "".join(f"  - {i.dataset} ({i.level})\n" for i in items)
        + f"\nJustification: {request.justification}\n\n{why}\nApprovals needed: {_describe_slots(slots, names)}.\n"
        f"Review it: {notifications.link(f'/api/v1/access-requests/{request.pk}')}\n"
        f"Your queue: {notifications.link('/api/v1/access-requests?awaiting=me')}\n"
    )
    notifications.queue(
        [
            notifications.message(
                to=notifications.users_by_id(ids),
                subject=f"[Steward] Access request {str(request.pk)[:8]} awaits your approval",
                body=body,
            )
        ]
    )


def _notify_requester(request: AccessRequest, subject: str, body: str) -> None:
    notifications.queue(
        [
            notifications.message(
                to=[request.requester],
                subject=f"[Steward] {subject}",
                body=body + f"\n{notifications.link(f'/api/v1/access-requests/{request.pk}')}\n",
            )
        ]
    )


# --- create ----------------------------------------------------------------------------------------------------


def _lock_subject(actor: Any) -> None:
    """Serialise one user's request writes, so two concurrent requests cannot both pass the overlap check."""
    get_user_model().objects.select_for_update().filter(pk=actor.pk).first()


@transaction.atomic
def access_request_create(
    *,
    actor: Any,
    datasets: Sequence[DatasetRef],
    purpose: str,
    justification: str,
    duration: timedelta,
    workspace_id: UUID | None = None,
    workspace_label: str = "",
    now: datetime | None = None,
) -> AccessRequest:
    """Ask to read ``datasets`` for ``purpose`` during ``duration`` (for oneself, or for a workspace).

    Datasets whose level the policy auto-approves need no approval; if none needs one, the request is approved
    at once and its grants exist when this returns. Otherwise the approvers are e-mailed.
    """
    if not getattr(actor, "is_authenticated", False):
        raise PermissionDenied("Log in to request access.")
    now = now or timezone.now()
    if not (justification or "").strip():
        raise ValidationFailed.one("justification", "Say why you need this data.", "required")
    if duration <= timedelta(0):
        raise ValidationFailed.one("duration", "The duration must be longer than zero.", "invalid_duration")
    resolved = _resolve_datasets(actor, datasets)
    policy = policy_current()
    rules = level_rules(policy)
    _check_policy(policy, rules, resolved, purpose, duration)
    _lock_subject(actor)
    subject = _Subject(None, workspace_id) if workspace_id else _Subject(actor.pk, None)
    _check_overlap(subject, resolved, now)
    _check_toxic(policy, subject, resolved, now)

    request = AccessRequest.objects.create(
        requester=actor,
        workspace_id=workspace_id,
        workspace_label=(workspace_label or "")[:200],
        purpose=purpose,
        justification=justification.strip(),
        duration=duration,
        policy_version=policy if policy.version else None,
        created_at=now,
        expires_at=now + timedelta(hours=settings.STEWARD_ACCESS_REQUEST_TTL_HOURS),
    )
    return _open(request, resolved, rules, now=now, action=REQUEST_CREATE)


def _open(
    request: AccessRequest, datasets: list[Dataset], rules: dict[str, LevelRule], *, now: datetime, action: str
) -> AccessRequest:
    levels = {ds.pk: ds.effective_classification for ds in datasets}
    AccessRequestItem.objects.bulk_create(
        [AccessRequestItem(request=request, dataset=ds, level=levels[ds.pk]) for ds in datasets]
    )
    slots = _add_slots(request, levels, rules, existing=())
    audit.record(
        actor=request.requester,
        action=action,
        target=request,
        after={
            **request.snapshot(),
            "datasets": [{"id": str(ds.pk), "name": str(ds), "level": levels[ds.pk]} for ds in datasets],
            "justification": request.justification,
            "approvals_needed": [{"role": s.role, "dataset": str(s.dataset_id or "")} for s in slots],
            "policy_version": request.policy_version_id,
        },
        at=now,
    )
    if slots:
        _notify_approvers(request, slots, why="You are asked because of your role or your ownership of a dataset.")
    else:
        _finalize(request, actor=None, now=now)
    return request


@transaction.atomic
def grant_reapproval_request(
    *, actor: Any, grant: Grant, justification: str = "", now: datetime | None = None
) -> AccessRequest:
    """Ask for a suspended grant to be re-approved under its dataset's new level (by the grant's holder).

    Creates a request for the same dataset and purpose, needing the approvals the new level requires. When
    approved, the same grant resumes (its window unchanged, or shortened to the new level's maximum).
    """
    now = now or timezone.now()
    holder = grant.user_id if grant.user_id else (grant.request.requester_id if grant.request_id else None)
    if getattr(actor, "pk", None) != holder:
        raise PermissionDenied("Only the grant's holder asks for its re-approval.")
    grant = Grant.objects.select_for_update(of=("self",)).select_related("dataset", "request").get(pk=grant.pk)
    if grant.revoked_at is not None or grant.valid_until <= now:
        raise Conflict(f"This grant is {grant.state_at(now)}; file a new access request instead.")
    if grant.suspended_at is None:
        raise Conflict("This grant is not suspended; it needs no re-approval.")
    dataset = grant.dataset
    policy = policy_current()
    rules = level_rules(policy)
    purpose = grant.request.purpose if grant.request_id else ""
    remaining = grant.valid_until - now
    try:
        _check_policy(policy, rules, [dataset], purpose, timedelta(0))
    except ValidationFailed as exc:
        raise Conflict(
            f"The grant cannot be re-approved at level {dataset.effective_classification}: {exc.message} "
            "Revoke it and file a new request.",
            problems=exc.problems,
        ) from None
    _lock_subject(actor)
    subject = _Subject(None, grant.workspace_id) if grant.workspace_id else _Subject(grant.user_id, None)
    _check_overlap(subject, [dataset], now, exclude_grant=grant.pk)
    request = AccessRequest.objects.create(
        requester=actor,
        workspace_id=grant.workspace_id,
        workspace_label=grant.workspace_label,
        purpose=purpose,
        justification=(justification or "").strip()
        or f"Re-approval of grant {grant.pk} after {dataset} became {dataset.effective_classification}.",
        duration=remaining,
        reapproval_of=grant,
        policy_version=policy if policy.version else None,
        created_at=now,
        expires_at=min(now + timedelta(hours=settings.STEWARD_ACCESS_REQUEST_TTL_HOURS), grant.valid_until),
    )
    return _open(request, [dataset], rules, now=now, action=REQUEST_CREATE)


# --- decide ----------------------------------------------------------------------------------------------------


def _lock(request: AccessRequest) -> AccessRequest:
    return AccessRequest.objects.select_for_update(of=("self",)).select_related("requester").get(pk=request.pk)


def _check_open(request: AccessRequest, now: datetime) -> None:
    if request.state != RequestState.PENDING:
        raise Conflict(f"This request is already {request.state}.")
    if now >= request.expires_at:
        raise Conflict(f"This request expired at {request.expires_at.isoformat()} without a decision.")


@transaction.atomic
def access_request_approve(
    *, actor: Any, request: AccessRequest, role: str | None = None, comment: str = "", now: datetime | None = None
) -> AccessRequest:
    """Give one approval. A person approves a request once, in one role: ``role`` when given, else the first
    they can fill of owner, privacy officer, data steward (as owner, it covers every dataset of the request they
    own). The last missing approval approves the request and creates its grants."""
    now = now or timezone.now()
    request = _lock(request)
    _check_open(request, now)
    if request.requester_id == actor.pk:
        raise SelfApproval("Nobody approves their own request.")
    if role is not None and role not in ApproverRole.values:
        raise ValidationFailed.one("role", f"Unknown role {role!r}; use one of {', '.join(ApproverRole.values)}.")
    slots = list(request.slots.all())
    mine_before = [s for s in slots if s.filled_by_id == actor.pk]
    if mine_before:
        raise Conflict(
            f"You already approved this request as {mine_before[0].role}; each further approval needs another person."
        )
    open_slots = [s for s in slots if s.filled_at is None]
    owners = dataset_owner_ids(s.dataset_id for s in open_slots if s.role == ApproverRole.OWNER)
    roles = roles_of(actor)
    fillable = [s for s in open_slots if can_fill(user_id=actor.pk, roles=roles, slot=s, owners=owners)]
    if role is not None:
        fillable = [s for s in fillable if s.role == role]
    if not fillable:
        names = dict(request.items.values_list("dataset_id", "dataset__name"))
        raise PermissionDenied(
            f"This request still needs {_describe_slots(open_slots, names)}; "
            f"you cannot give any of these approvals{f' as {role}' if role else ''}."
        )
    chosen = next(r for r in APPROVER_ORDER if any(s.role == r for s in fillable))
    filled = [s for s in fillable if s.role == chosen]
    for s in filled:
        s.filled_by, s.filled_by_name, s.filled_at, s.comment = actor, actor.get_username(), now, comment or ""
    ApprovalSlot.objects.bulk_update(filled, ["filled_by", "filled_by_name", "filled_at", "comment"])
    audit.record(
        actor=actor,
        action=REQUEST_APPROVE,
        target=request,
        after={"role": chosen, "datasets": sorted(str(s.dataset_id) for s in filled if s.dataset_id)},
        reason=comment or "",
        at=now,
    )
    if len(filled) == len(open_slots):
        _finalize(request, actor=actor, now=now)
    return request


def _finalize(request: AccessRequest, *, actor: Any, now: datetime) -> None:
    """All approvals are in: create the grants (or resume the grant being re-approved).

    If a dataset's level rose since the approvals were asked for (a missed reclassification), the request is
    escalated instead and stays pending.
    """
    items = list(request.items.all())
    levels = dict(
        Dataset.objects.filter(pk__in=[i.dataset_id for i in items]).values_list("pk", "effective_classification")
    )
    risen = {i.dataset_id: levels[i.dataset_id] for i in items if _rank(levels[i.dataset_id]) > _rank(i.level)}
    if risen:
        added = _escalate(request, risen, now=now)
        if request.state != RequestState.PENDING or added:
            return
    policy = policy_current()
    rules = level_rules(policy)
    subject = _subject_of(request)
    datasets = list(Dataset.objects.filter(pk__in=levels))
    entries: list[AuditEntry] = []
    if request.reapproval_of_id:
        grant = _reapprove(request, levels, rules, policy, now=now, entries=entries)
        grant_ids = [grant.pk]
    else:
        _check_toxic(policy, subject, datasets, now)
        grants = []
        for item in items:
            level = levels[item.dataset_id]
            rule = rules.get(level)
            length = min(request.duration, rule.max_duration) if rule else request.duration
            grants.append(
                Grant(
                    user_id=subject.user_id,
                    workspace_id=subject.workspace_id,
                    workspace_label=request.workspace_label,
                    dataset_id=item.dataset_id,
                    valid_from=now,
                    valid_until=now + length,
                    request=request,
                    approved_level=level,
                    policy_version=policy if policy.version else None,
                    created_at=now,
                )
            )
        Grant.objects.bulk_create(grants)
        grant_ids = [g.pk for g in grants]
        entries += [AuditEntry(GRANT_CREATE, "governance.grant", str(g.pk), str(g), after=g.snapshot()) for g in grants]
    request.state = RequestState.APPROVED
    request.decided_at = now
    request.decided_by = actor if getattr(actor, "pk", None) else None
    request.save(update_fields=["state", "decided_at", "decided_by"])
    how = "auto-approved by policy" if actor is None else "approved"
    entries.insert(
        0,
        AuditEntry(
            REQUEST_APPROVED,
            "governance.accessrequest",
            str(request.pk),
            str(request),
            after={"state": request.state, "grants": [str(g) for g in grant_ids], "how": how},
        ),
    )
    audit.record_many(actor=actor, entries=entries, at=now)
    announce_grant_change(GrantChange.RESUMED if request.reapproval_of_id else GrantChange.CREATED, grant_ids)
    _notify_requester(
        request,
        f"Access request {str(request.pk)[:8]} {how}",
        f"Your request ({request.purpose}) was {how}. "
        + (
            "The suspended grant is valid again." if request.reapproval_of_id else f"{len(grant_ids)} grant(s) created."
        ),
    )


def _reapprove(
    request: AccessRequest,
    levels: dict[UUID, str],
    rules: dict[str, LevelRule],
    policy: PolicyVersion,
    *,
    now: datetime,
    entries: list[AuditEntry],
) -> Grant:
    grant = Grant.objects.select_for_update(of=("self",)).get(pk=request.reapproval_of_id)
    if grant.revoked_at is not None or grant.valid_until <= now:
        raise Conflict(f"The grant was {grant.state_at(now)} while its re-approval was pending; file a new request.")
    before = grant.snapshot()
    level = levels[grant.dataset_id]
    rule = rules.get(level)
    grant.approved_level = level
    grant.policy_version = policy if policy.version else None
    if rule and grant.valid_until > now + rule.max_duration:
        grant.valid_until = now + rule.max_duration
    if grant.suspended_at is not None:
        GrantSuspension.objects.filter(grant=grant, ended_at__isnull=True).update(
            ended_at=now, end_reason="re-approved"
        )
        grant.suspended_at = None
        grant.state = GrantState.ACTIVE
    grant.save(update_fields=["approved_level", "policy_version", "valid_until", "suspended_at", "state"])
    entries.append(
        AuditEntry(
            GRANT_REAPPROVE,
            "governance.grant",
            str(grant.pk),
            str(grant),
            before=before,
            after=grant.snapshot(),
            reason=f"re-approved in request {request.pk}",
        )
    )
    return grant


@transaction.atomic
def access_request_deny(
    *, actor: Any, request: AccessRequest, reason: str, now: datetime | None = None
) -> AccessRequest:
    """Deny a pending request: anyone who could give one of its missing approvals may, with a reason."""
    now = now or timezone.now()
    request = _lock(request)
    _check_open(request, now)
    if request.requester_id == actor.pk:
        raise SelfApproval("You cannot decide your own request; withdraw it instead.")
    if not (reason or "").strip():
        raise ValidationFailed.one("reason", "Say why the request is denied.", "required")
    open_slots = [s for s in request.slots.all() if s.filled_at is None]
    owners = dataset_owner_ids(s.dataset_id for s in open_slots if s.role == ApproverRole.OWNER)
    roles = roles_of(actor)
    if not any(can_fill(user_id=actor.pk, roles=roles, slot=s, owners=owners) for s in open_slots):
        raise PermissionDenied("Only someone who could give one of its missing approvals denies a request.")
    _close(request, RequestState.DENIED, actor=actor, reason=reason.strip(), now=now, action=REQUEST_DENY)
    _notify_requester(
        request,
        f"Access request {str(request.pk)[:8]} denied",
        f"{actor.get_username()} denied your request ({request.purpose}): {reason.strip()}",
    )
    return request


@transaction.atomic
def access_request_withdraw(
    *, actor: Any, request: AccessRequest, reason: str = "", now: datetime | None = None
) -> AccessRequest:
    """The requester withdraws their pending request."""
    now = now or timezone.now()
    request = _lock(request)
    if request.requester_id != actor.pk:
        raise PermissionDenied("Only the requester withdraws a request.")
    _check_open(request, now)
    _close(
        request, RequestState.WITHDRAWN, actor=actor, reason=(reason or "").strip(), now=now, action=REQUEST_WITHDRAW
    )
    return request


def _close(request: AccessRequest, state: str, *, actor: Any, reason: str, now: datetime, action: str) -> None:
    before = request.snapshot()
    request.state = state
    request.decided_at = now
    request.decided_by = actor if getattr(actor, "pk", None) else None
    request.decision_reason = reason
    request.save(update_fields=["state", "decided_at", "decided_by", "decision_reason"])
    audit.record(
        actor=actor, action=action, target=request, before=before, after=request.snapshot(), reason=reason, at=now
    )


# --- background ------------------------------------------------------------------------------------------------


def access_requests_expire(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Expire pending requests past their deadline (the periodic task); returns how many. Idempotent."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            AccessRequest.objects.select_for_update(of=("self",))
            .select_related("requester")
            .filter(state=RequestState.PENDING, expires_at__lte=now)
            .order_by("expires_at")[:limit]
        )
        if not due:
            return 0
        AccessRequest.objects.filter(pk__in=[r.pk for r in due]).update(state=RequestState.EXPIRED, decided_at=now)
        audit.record_many(
            actor=None,
            entries=[
                AuditEntry(
                    REQUEST_EXPIRE,
                    "governance.accessrequest",
                    str(r.pk),
                    str(r),
                    before={"state": RequestState.PENDING},
                    after={"state": RequestState.EXPIRED},
                    reason=f"no decision before {r.expires_at.isoformat()}",
                )
                for r in due
            ],
            at=now,
        )
        for r in due:
            _notify_requester(
                r,
                f"Access request {str(r.pk)[:8]} expired",
                f"Your request ({r.purpose}) got no decision before {r.expires_at:%Y-%m-%d %H:%M} UTC and expired.",
            )
    return len(due)


def _escalate(request: AccessRequest, risen: dict[UUID, str], *, now: datetime) -> list[ApprovalSlot]:
    """Datasets of a pending request rose to a higher level: require what the new level requires.

    Approvals already given stand. If the purpose is not allowed at the new level, the system denies the request.
    Returns the approval slots added.
    """
    policy = policy_current()
    rules = level_rules(policy)
    AccessRequestItem.objects.bulk_update(
        [
            AccessRequestItem(pk=pk, level=risen[ds])
            for pk, ds in request.items.filter(dataset_id__in=risen).values_list("pk", "dataset_id")
        ],
        ["level"],
    )
    names = dict(Dataset.objects.filter(pk__in=risen).values_list("pk", "name"))
    for ds_id, level in risen.items():
        rule = rules.get(level)
        if rule is None or request.purpose not in rule.purposes:
            reason = f"{names.get(ds_id, ds_id)} is now {level}, where {request.purpose!r} is not an allowed purpose."
            _close(request, RequestState.DENIED, actor=None, reason=reason, now=now, action=REQUEST_DENY)
            _notify_requester(request, f"Access request {str(request.pk)[:8]} denied", reason)
            return []
    added = _add_slots(request, dict(risen), rules, existing=request.slots.all())
    audit.record(
        actor=None,
        action=REQUEST_ESCALATE,
        target=request,
        after={
            "levels": {str(k): v for k, v in risen.items()},
            "approvals_added": [{"role": s.role, "dataset": str(s.dataset_id or "")} for s in added],
        },
        at=now,
    )
    _notify_approvers(request, added, why="A requested dataset's classification rose; your approval is now needed.")
    return added


def access_requests_escalate(levels: dict[UUID, str], *, now: datetime | None = None) -> int:
    """Escalate pending requests naming these datasets whose level rose above what their approvals assumed."""
    now = now or timezone.now()
    items = list(
        AccessRequestItem.objects.filter(dataset_id__in=levels, request__state=RequestState.PENDING).values_list(
            "request_id", "dataset_id", "level"
        )
    )
    by_request: dict[UUID, dict[UUID, str]] = {}
    for request_id, ds_id, level in items:
        if _rank(levels[ds_id]) > _rank(level):
            by_request.setdefault(request_id, {})[ds_id] = levels[ds_id]
    for request in (
        AccessRequest.objects.select_for_update(of=("self",)).select_related("requester").filter(pk__in=by_request)
    ):
        _escalate(request, by_request[request.pk], now=now)
    return len(by_request)
