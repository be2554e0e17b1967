"""Checks on an access request before anything is written: datasets, policy, overlap, toxic combinations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.db.models import Q

from catalog.classification import level as classification_level
from catalog.models import Dataset
from catalog.selectors import dataset_tag_keys, visible_q
from governance.choices import RequestState
from governance.models import AccessRequest, AccessRequestItem, Grant, PolicyVersion
from governance.policy import LevelRule
from steward.durations import format_duration
from steward.errors import Conflict, FieldProblem, ProblemCollector, ValidationFailed
from steward.identity import Actor, viewer_for

__all__ = [
    "MAX_DATASETS",
    "DatasetRef",
    "Subject",
    "check_overlap",
    "check_policy",
    "check_toxic",
    "rank",
    "resolve_datasets",
    "subject_of",
]

MAX_DATASETS = 100

# A dataset named by id, or by its OpenLineage identity (namespace, name).
DatasetRef = UUID | tuple[str, str]


@dataclass(frozen=True)
class Subject:
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


def subject_of(request: AccessRequest) -> Subject:
    if request.workspace_id is not None:
        return Subject(None, request.workspace_id)
    return Subject(request.requester_id, None)


def rank(code: str) -> int:
    try:
        return classification_level(code).rank
    except KeyError:  # a level removed from settings: treat as the most sensitive
        return 1_000


# --- checks (no writes) ----------------------------------------------------------------------------------------


def resolve_datasets(actor: Actor, refs: Sequence[DatasetRef]) -> list[Dataset]:
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
    if by_id:  # asking by id is allowed, but what the actor may not see stays unnamed in every answer
        shown = set(
            Dataset.objects.filter(visible_q(Dataset, viewer_for(actor)), pk__in=by_id).values_list("pk", flat=True)
        )
        for pk, listed in by_id.items():
            # Read back by ``label`` and ``check_policy`` through getattr: not a field of the catalog's model.
            setattr(listed, "hidden_from_requester", pk not in shown)  # noqa: B010
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


def label(ds: Dataset) -> str:
    """How a message names the dataset to the one asking: never the name of one they may not see."""
    return "a dataset you may not see" if getattr(ds, "hidden_from_requester", False) else str(ds)


def check_policy(
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
        if getattr(ds, "hidden_from_requester", False):  # neither its name nor its level, nor what they imply
            if (rule is None or purpose not in rule.purposes) and not any(p.field == "purpose" for p in problems):
                problems.append(
                    FieldProblem("purpose", f"{purpose!r} is not allowed for datasets[{i}].", "purpose_not_allowed")
                )
            elif rule is not None and duration > rule.max_duration and not any(p.field == "duration" for p in problems):
                problems.append(
                    FieldProblem(
                        "duration", f"Longer than the policy allows for datasets[{i}].", "duration_exceeds_policy"
                    )
                )
            continue
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


def check_overlap(
    subject: Subject, datasets: list[Dataset], now: datetime, *, exclude_grant: UUID | None = None
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


def check_toxic(policy: PolicyVersion, subject: Subject, datasets: list[Dataset], now: datetime) -> None:
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
            named = {t: sorted(label(d) for d in datasets if t in keys.get(d.pk, ())) for t in tags}
            sources = sorted(f"{t} ({', '.join(named[t] or ['a current grant'])})" for t in tags)
            message = (
                f"Toxic combination {combo['name']!r}: one subject may not hold {', '.join(sorted(tags))} at once "
                f"({'; '.join(sources)}). {combo.get('description', '')}".strip()
            )
            raise Conflict(message, problems=[FieldProblem("datasets", message, "toxic_combination")])
