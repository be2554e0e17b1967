"""The decision API: ``POST /authorize`` and ``POST /authorize/batch``. Parsed by hand: it is the hot path."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.api import serializers as s
from governance.authorization import Decision, DecisionQuery
from governance.services.decisions import authorize
from steward.errors import ProblemCollector, ValidationFailed
from steward.identity import Actor
from steward.times import TimeProblem, parse_aware_time

MAX_BATCH = 10_000
_KEYS = frozenset({"subject", "action", "asset", "at"})


def _path(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def parse_query(item: Any, prefix: str, problems: ProblemCollector) -> DecisionQuery | None:
    """One decision question from JSON; every problem is added under ``prefix`` (``requests[3]``)."""
    if not isinstance(item, dict):
        problems.add(prefix or "body", "Must be an object with subject, action and asset.", "invalid_type")
        return None
    bad = len(problems.problems)
    for key in item.keys() - _KEYS:
        problems.add(_path(prefix, key), "Unknown field.", "unknown_field")
    fields: dict[str, Any] = {}

    subject = item.get("subject")
    if isinstance(subject, int) and not isinstance(subject, bool) and subject > 0:
        fields["user_id"] = subject
    elif isinstance(subject, str) and subject.startswith("workspace:"):
        try:
            fields["workspace_id"] = UUID(subject[10:])
        except ValueError:
            problems.add(_path(prefix, "subject"), "workspace:<id> needs a UUID.", "invalid")
    elif isinstance(subject, str) and 0 < len(subject.removeprefix("user:")) <= 150:
        fields["username"] = subject.removeprefix("user:")
    else:
        problems.add(
            _path(prefix, "subject"),
            'Give a user id (integer), a username, or "workspace:<uuid>".',
            "required" if subject is None else "invalid",
        )

    action = item.get("action")
    if action != "read":
        problems.add(
            _path(prefix, "action"),
            "Required: read."
            if action is None
            else f"{str(action)[:30]!r} is not decided here; the privilege is read.",
            "required" if action is None else "unsupported_action",
        )

    asset = item.get("asset")
    if isinstance(asset, dict) and set(asset) == {"id"}:
        asset = asset["id"]
    if isinstance(asset, str):
        try:
            fields["dataset_id"] = UUID(asset)
        except ValueError:
            problems.add(_path(prefix, "asset"), "Not a dataset id (a UUID).", "invalid")
    elif (
        isinstance(asset, dict)
        and set(asset) == {"namespace", "name"}
        and all(isinstance(asset[k], str) and asset[k] for k in asset)
    ):
        fields["namespace"], fields["name"] = asset["namespace"], asset["name"]
    else:
        problems.add(
            _path(prefix, "asset"),
            'Give a dataset id, or {"namespace": ..., "name": ...}.',
            "required" if asset is None else "invalid",
        )

    at = item.get("at")
    if at is not None:
        try:
            fields["at"] = parse_aware_time(at)
        except TimeProblem as problem:
            problems.add(_path(prefix, "at"), problem.message, problem.code)
    if len(problems.problems) > bad:
        return None
    return DecisionQuery(action="read", **fields)


def _quick(item: Any) -> DecisionQuery | None:
    """The common question (a username, ``read``, a dataset by namespace and name, no time) as ``parse_query``
    reads it, without its general checks; ``None`` for anything else, which ``parse_query`` then reads."""
    if type(item) is not dict or len(item) != 3 or item.get("action") != "read":
        return None
    subject, asset = item.get("subject"), item.get("asset")
    if type(subject) is not str or type(asset) is not dict or len(asset) != 2 or subject.startswith("workspace:"):
        return None
    namespace, name, username = asset.get("namespace"), asset.get("name"), subject.removeprefix("user:")
    if type(namespace) is not str or type(name) is not str or not namespace or not name or not username:
        return None
    return DecisionQuery("read", username=username, namespace=namespace, name=name) if len(username) <= 150 else None


def _time_text(value: datetime) -> str:
    """As DRF's encoder writes a time: ISO 8601, ``Z`` for UTC."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _answer(d: Decision) -> dict[str, Any]:
    # Rendered here, as DRF's encoder would (the fast path's encoder then calls back into Python for nothing).
    return {
        "decision": d.decision,
        "reason": d.reason,
        "grant_id": None if d.grant_id is None else str(d.grant_id),
        "expires_at": None if d.expires_at is None else _time_text(d.expires_at),
    }


def decide_one(actor: Actor, body: Any) -> dict[str, Any]:
    """``POST /authorize``: parse, decide (auditing a denial), answer. Raises ``ValidationFailed``,
    ``PermissionDenied``. Shared by the DRF view and the WSGI fast path (``governance.api.fastpath``)."""
    problems = ProblemCollector()
    query = _quick(body) or parse_query(body, "", problems)
    problems.raise_if_any()
    (decision,) = authorize(actor=actor, queries=[query])  # type: ignore[list-item]
    return _answer(decision)


def decide_batch(actor: Actor, body: Any) -> dict[str, Any]:
    """``POST /authorize/batch``: as ``decide_one`` for up to ``MAX_BATCH`` questions, answered in order."""
    items = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise ValidationFailed.one("requests", 'Send {"requests": [{subject, action, asset}, ...]}.', "required")
    if len(items) > MAX_BATCH:
        raise ValidationFailed.one("requests", f"At most {MAX_BATCH} per call.", "too_many")
    unknown = sorted(set(body) - {"requests"})
    if unknown:
        raise ValidationFailed.one(unknown[0], "Unknown field.", "unknown_field")
    problems = ProblemCollector()
    paths = [f"requests[{i}]" for i in range(len(items))]
    queries = [_quick(item) or parse_query(item, path, problems) for item, path in zip(items, paths, strict=True)]
    problems.raise_if_any()
    decisions = authorize(actor=actor, queries=queries, paths=paths)  # type: ignore[arg-type]
    return {"decisions": [_answer(d) for d in decisions]}


class AuthorizeView(APIView):
    """May this subject read this dataset (now, or at ``at``)? Denials are audited.

    Service accounts, admins and compliance officers ask about anyone; others only about themselves. Calls with
    a bearer API token are answered by ``governance.api.fastpath`` before they reach this view.
    """

    @extend_schema(summary="Decide one access", request=s.AuthorizeInput, responses=s.AuthorizeDecisionSerializer)
    def post(self, request: Request) -> Response:
        return Response(decide_one(request.user, request.data))


class AuthorizeBatchView(APIView):
    """Many decisions in one call (up to 10,000), answered in the order asked."""

    @extend_schema(
        summary="Decide many accesses at once", request=s.AuthorizeBatchInput, responses=s.AuthorizeBatchSerializer
    )
    def post(self, request: Request) -> Response:
        return Response(decide_batch(request.user, request.data))
