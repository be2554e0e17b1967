"""Governance and lineage kinds in history: grants, requests, the policy and declassifications, read back exactly as
of past instants, with no write path skipping history (``drift`` empty), and the commands that back-fill and check it.
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from catalog import services as catalog
from catalog.models import Dataset, Tag
from governance.history_kinds import ACCESS_REQUEST, GRANT, POLICY, POLICY_KEY
from governance.models import AccessRequest, Grant, PolicyVersion
from governance.policy import default_policy_document
from governance.selectors import policy_current
from governance.services.access_requests import (
    access_request_approve,
    access_request_create,
    access_request_deny,
    access_request_withdraw,
    access_requests_expire,
    grant_reapproval_request,
)
from governance.services.grants import grant_revoke, grants_expire
from governance.services.policy import policy_update
from governance.services.workspace_grants import workspace_grants_create, workspace_grants_revoke
from ledger import history
from lineage.history import DECLASSIFICATION
from lineage.models import Job
from lineage.propagation import drain
from lineage.services.declassify import declassification_decide, declassification_request, declassification_revoke
from lineage.services.ingest import ingest
from steward.identity import Role
from tests.conftest import make_producer, make_user
from tests.lineage.events import NS, complete

pytestmark = pytest.mark.django_db

# Well after the fixtures' catalog writes and the lineage events of tests.lineage.events (2026).
T0 = datetime(2031, 5, 1, 9, 0, tzinfo=UTC)
US = timedelta(microseconds=1)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture
def policy_v1(admin_user) -> PolicyVersion:
    """Version 1 of the policy (migration 0004's, or the defaults again if a transactional test flushed it)."""
    if not PolicyVersion.objects.exists():
        policy_update(actor=admin_user, document=default_policy_document(), note="defaults")
    assert policy_current().version == 1
    return policy_current()


@pytest.fixture
def pipeline(make_dataset, data_owner, data_steward):
    """raw → (job load) → clean (C2 by itself), and orders (C2), all owned by sales-eng (olive)."""
    owners = ["group:sales-eng"]
    raw = make_dataset("sales.public.raw_events", owners=owners)
    clean = make_dataset("sales.public.clean_events", owners=owners, classification="C2")
    orders = make_dataset("sales.public.orders", owners=owners, classification="C2")
    ingest(
        actor=make_producer(data_steward, NS, "etl"), events=[complete("load", [raw.name], [clean.name])], batch=True
    )
    drain()
    return raw, clean, orders


def backfill() -> str:
    out = io.StringIO()
    call_command("history_capture", "--all", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def ask(user, datasets, *, now: datetime, purpose: str = "analytics", duration=timedelta(days=3)) -> AccessRequest:
    return access_request_create(
        actor=user,
        datasets=[d.pk for d in datasets],
        purpose=purpose,
        justification="Quarterly churn analysis.",
        duration=duration,
        now=now,
    )


def assert_no_drift() -> None:
    drifted = {kind: history.drift(kind) for kind in history.kinds()}
    assert {kind: keys for kind, keys in drifted.items() if keys} == {}


def test_registered_kinds():
    assert {GRANT, ACCESS_REQUEST, POLICY, DECLASSIFICATION} <= set(history.kinds())


def test_a_scripted_timeline_reads_back_exactly_as_of_each_instant(
    pipeline, policy_v1, data_scientist, data_owner, data_steward, privacy_officer, admin_user
):
    raw, clean, orders = pipeline
    with time_machine.travel(at(0), tick=False) as clock:
        backfill()  # an installation with data from before history: the policy in force is recorded from T0

        # T1: dana asks for orders. The services are given their own ``now``, a little before the clock, so a
        # capture that used the clock instead of the change's time would start its row too late.
        clock.move_to(at(1) + timedelta(seconds=30))
        request = ask(data_scientist, [orders], now=at(1))
        # T2: olive (an owner, not the requester) approves: the grant is issued.
        clock.move_to(at(2) + timedelta(seconds=30))
        access_request_approve(actor=data_owner, request=request, comment="ok for Q3", now=at(2))
        grant = Grant.objects.get(request=request)
        # T3: stella revokes it.
        clock.move_to(at(3) + timedelta(seconds=30))
        grant_revoke(actor=data_steward, grant=grant, reason="project cancelled", now=at(3))
        # T4: ada publishes policy version 2 (the policy service takes the clock's time).
        clock.move_to(at(4))
        document = policy_v1.document()
        document["levels"]["C2"]["max_duration"] = "P14D"
        policy_update(actor=admin_user, document=document, note="shorter C2 grants")

    # The request: pending with its owner approval open at T1, approved by olive from T2.
    pending = history.as_of(ACCESS_REQUEST, request.pk, at(1))
    assert pending["state"] == "pending" and pending["requester"] == "dana" and pending["decided_at"] is None
    assert pending["items"] == [{"dataset_id": str(orders.pk), "level": "C2"}]
    assert pending["purpose"] == "analytics" and pending["justification"] == "Quarterly churn analysis."
    assert [(s["role"], s["filled_by"]) for s in pending["slots"]] == [("owner", None)]
    assert history.as_of(ACCESS_REQUEST, request.pk, at(1) - US) is None
    assert history.as_of(ACCESS_REQUEST, request.pk, at(2) - US) == pending
    approved = history.as_of(ACCESS_REQUEST, request.pk, at(2))
    assert approved["state"] == "approved" and approved["decided_at"] == at(2).isoformat()
    assert [(s["filled_by"], s["filled_at"], s["comment"]) for s in approved["slots"]] == [
        ("olive", at(2).isoformat(), "ok for Q3")
    ]

    # The grant: absent before T2, valid (not revoked) until T3, revoked by stella from T3 exactly.
    assert history.as_of(GRANT, grant.pk, at(2) - US) is None
    issued = history.as_of(GRANT, grant.pk, at(2))
    assert issued["user"] == "dana" and issued["dataset_id"] == str(orders.pk)
    assert issued["request_id"] == str(request.pk) and issued["approved_level"] == "C2"
    assert issued["valid_from"] == at(2).isoformat() and issued["policy_version"] == 1
    assert issued["state"] == "active" and issued["revoked_at"] is None
    assert history.as_of(GRANT, grant.pk, at(3) - US) == issued
    revoked = history.as_of(GRANT, grant.pk, at(3))
    assert revoked["state"] == "revoked" and revoked["revoked_at"] == at(3).isoformat()
    assert (revoked["revoked_by"], revoked["revoke_reason"]) == ("stella", "project cancelled")
    assert [r.valid_from for r in history.timeline(GRANT, grant.pk)] == [at(2), at(3)]

    # The policy in force: version 1 from the back-fill, version 2 from its publication.
    assert history.as_of(POLICY, POLICY_KEY, at(0))["version"] == 1
    assert history.as_of(POLICY, POLICY_KEY, at(1))["version"] == 1
    assert history.as_of(POLICY, POLICY_KEY, at(4) - US)["document"]["levels"]["C2"]["max_duration"] == "P30D"
    v2 = history.as_of(POLICY, POLICY_KEY, at(4))
    assert v2["version"] == 2 and v2["document"]["levels"]["C2"]["max_duration"] == "P14D"
    assert v2["created_by"] == "ada" and v2["note"] == "shorter C2 grants"

    with time_machine.travel(at(5), tick=False) as clock:
        # T5: dana gets a grant on clean (C2).
        second = ask(data_scientist, [clean], now=at(5))
        access_request_approve(actor=data_owner, request=second, now=at(5))
        suspended_grant = Grant.objects.get(request=second)
        # T6: an e-mail column upstream: pii.email propagates along `load`, clean becomes C3, the grant is suspended.
        clock.move_to(at(6))
        catalog.dataset_tag_add(actor=data_steward, dataset=raw, key="pii.email")
        drain()
        assert Dataset.objects.get(pk=clean.pk).effective_classification == "C3"
        # T7: priya asks to stop pii.email at `load`; T8: stella (not priya) approves, and clean is C2 again.
        clock.move_to(at(7))
        job = Job.objects.get(name="load")
        decl = declassification_request(
            actor=privacy_officer, job_id=job.pk, tag_keys=["pii.email"], justification="load drops the e-mails"
        )
        clock.move_to(at(8))
        declassification_decide(actor=data_steward, pk=decl.pk, approve=True, reason="checked the job")
        drain()
        assert Dataset.objects.get(pk=clean.pk).effective_classification == "C2"
        # T9: stella ends the block: clean is C3 again and the grant is suspended a second time.
        clock.move_to(at(9))
        declassification_revoke(actor=data_steward, pk=decl.pk, reason="load now keeps the e-mails")
        drain()

    active = history.as_of(GRANT, suspended_grant.pk, at(6) - US)
    assert active["state"] == "active" and active["suspended_at"] is None and active["suspensions"] == []
    suspended = history.as_of(GRANT, suspended_grant.pk, at(6))
    assert suspended["state"] == "suspended" and suspended["suspended_at"] == at(6).isoformat()
    assert "C3" in suspended["suspension_reason"] and suspended["approved_level"] == "C2"
    assert suspended["suspensions"] == [
        {"level": "C3", "started_at": at(6).isoformat(), "ended_at": None, "end_reason": ""}
    ]
    assert history.as_of(GRANT, suspended_grant.pk, at(8) - US) == suspended
    resumed = history.as_of(GRANT, suspended_grant.pk, at(8))
    assert resumed["state"] == "active" and resumed["suspended_at"] is None and resumed["suspension_reason"] is None
    assert resumed["suspensions"][0]["ended_at"] == at(8).isoformat()
    assert history.as_of(GRANT, suspended_grant.pk, at(6))["policy_version"] == 2  # approved under version 2

    assert history.as_of(DECLASSIFICATION, decl.pk, at(7) - US) is None
    asked = history.as_of(DECLASSIFICATION, decl.pk, at(7))
    assert asked["state"] == "pending" and asked["tags"] == ["pii.email"] and asked["job"] == "etl/load"
    assert (asked["requested_by"], asked["requested_at"], asked["decided_by"]) == ("priya", at(7).isoformat(), None)
    assert history.as_of(DECLASSIFICATION, decl.pk, at(8) - US) == asked
    decided = history.as_of(DECLASSIFICATION, decl.pk, at(8))
    assert decided["state"] == "approved" and decided["decided_by"] == "stella"
    assert decided["valid_from"] == decided["decided_at"] == at(8).isoformat() and decided["valid_to"] is None
    assert history.as_of(DECLASSIFICATION, decl.pk, at(9) - US) == decided
    ended = history.as_of(DECLASSIFICATION, decl.pk, at(9))
    assert (ended["state"], ended["valid_from"], ended["valid_to"]) == ("revoked", at(8).isoformat(), at(9).isoformat())
    again = history.as_of(GRANT, suspended_grant.pk, at(9))
    assert again["state"] == "suspended" and [p["started_at"] for p in again["suspensions"]] == [
        at(6).isoformat(),
        at(9).isoformat(),
    ]
    assert history.as_of(GRANT, suspended_grant.pk, at(9) - US) == resumed

    assert_no_drift()


def test_bulk_and_background_paths_keep_history(pipeline, policy_v1, data_scientist, data_owner, other_scientist):
    _, clean, orders = pipeline
    workspace = uuid.uuid4()
    with time_machine.travel(at(0), tick=False) as clock:
        backfill()
        granted = ask(data_scientist, [orders, clean], now=at(0))
        access_request_approve(actor=data_owner, request=granted, now=at(0))
        grants = list(Grant.objects.filter(request=granted))
        to_deny = ask(other_scientist, [orders], now=at(0))
        to_withdraw = ask(other_scientist, [clean], now=at(0), purpose="reporting")
        # A workspace gets grants derived from dana's (one bulk insert), then loses them (one bulk update).
        clock.move_to(at(1))
        pairs = workspace_grants_create(
            actor=data_scientist, workspace_id=workspace, workspace_label="churn", datasets=[orders, clean], now=at(1)
        )
        access_request_deny(actor=data_owner, request=to_deny, reason="not this quarter", now=at(1))
        access_request_withdraw(actor=other_scientist, request=to_withdraw, now=at(1))
        clock.move_to(at(2))
        workspace_grants_revoke(workspace_id=workspace, reason="workspace deleted", now=at(2))
        # Sweeps: a pending request past its deadline, grants past their window.
        late = ask(
            data_scientist, [Dataset.objects.get(name="sales.public.raw_events")], now=at(2), purpose="reporting"
        )
        clock.move_to(at(100))
        assert late.state == "approved"  # C1: auto-approved, so its grant expires too
        pending = ask(other_scientist, [orders], now=at(100))
        assert access_requests_expire(now=pending.expires_at) == 1
        assert grants_expire(now=at(24 * 7)) == len(grants) + 1

    ws_grants = [g.pk for _, g in pairs]
    assert {history.as_of(GRANT, pk, at(1))["workspace_label"] for pk in ws_grants} == {"churn"}
    assert {history.as_of(GRANT, pk, at(1))["state"] for pk in ws_grants} == {"active"}
    assert {history.as_of(GRANT, pk, at(2))["state"] for pk in ws_grants} == {"revoked"}
    assert history.as_of(ACCESS_REQUEST, to_deny.pk, at(1))["decided_by"] == "olive"
    assert history.as_of(ACCESS_REQUEST, to_deny.pk, at(1))["decision_reason"] == "not this quarter"
    assert history.as_of(ACCESS_REQUEST, to_withdraw.pk, at(1) - US)["state"] == "pending"
    assert history.as_of(ACCESS_REQUEST, to_withdraw.pk, at(1))["state"] == "withdrawn"
    assert history.as_of(ACCESS_REQUEST, pending.pk, pending.expires_at - US)["state"] == "pending"
    assert history.as_of(ACCESS_REQUEST, pending.pk, pending.expires_at)["state"] == "expired"
    for g in grants:
        assert history.as_of(GRANT, g.pk, at(24 * 7) - US)["state"] == "active"
        assert history.as_of(GRANT, g.pk, at(24 * 7))["state"] == "expired"
    assert_no_drift()


def test_escalation_reapproval_and_tag_deletion_keep_history(
    pipeline, policy_v1, data_scientist, other_scientist, data_owner, data_steward, privacy_officer
):
    raw, clean, _ = pipeline
    with time_machine.travel(at(0), tick=False) as clock:
        backfill()
        first = ask(data_scientist, [clean], now=at(0))
        access_request_approve(actor=data_owner, request=first, now=at(0))
        grant = Grant.objects.get(request=first)
        waiting = ask(other_scientist, [clean], now=at(0), purpose="incident-response", duration=timedelta(hours=4))
        # T1: clean rises to C3: dana's grant is suspended, oscar's pending request needs a privacy officer too.
        clock.move_to(at(1))
        catalog.dataset_tag_add(actor=data_steward, dataset=raw, key="pii.email")
        drain()
        # T2: dana asks for the re-approval; T3: the owner and the privacy officer give it, the grant resumes.
        clock.move_to(at(2))
        again = grant_reapproval_request(actor=data_scientist, grant=grant, now=at(2))
        clock.move_to(at(3))
        access_request_approve(actor=data_owner, request=again, now=at(3))
        access_request_approve(actor=privacy_officer, request=again, now=at(3))
        # T4: a declassification names a tag that is deleted at T5.
        clock.move_to(at(4))
        catalog.tag_create(actor=data_steward, key="aggregate.only")
        decl = declassification_request(
            actor=privacy_officer,
            job_id=Job.objects.get(name="load").pk,
            tag_keys=["aggregate.only", "pii.email"],
            justification="load aggregates",
        )
        clock.move_to(at(5))
        catalog.tag_delete(actor=data_steward, tag=Tag.objects.get(key="aggregate.only"))

    before = history.as_of(ACCESS_REQUEST, waiting.pk, at(1) - US)
    assert before["items"][0]["level"] == "C2" and [s["role"] for s in before["slots"]] == ["owner"]
    escalated = history.as_of(ACCESS_REQUEST, waiting.pk, at(1))
    assert escalated["state"] == "pending" and escalated["items"][0]["level"] == "C3"
    assert [s["role"] for s in escalated["slots"]] == ["owner", "privacy-officer"]

    suspended = history.as_of(GRANT, grant.pk, at(3) - US)
    assert (suspended["state"], suspended["approved_level"]) == ("suspended", "C2")
    resumed = history.as_of(GRANT, grant.pk, at(3))
    assert (resumed["state"], resumed["approved_level"], resumed["suspended_at"]) == ("active", "C3", None)
    assert resumed["suspensions"] == [
        {"level": "C3", "started_at": at(1).isoformat(), "ended_at": at(3).isoformat(), "end_reason": "re-approved"}
    ]
    reapproval = history.as_of(ACCESS_REQUEST, again.pk, at(2))
    assert reapproval["reapproval_of"] == str(grant.pk) and reapproval["state"] == "pending"
    assert history.as_of(ACCESS_REQUEST, again.pk, at(3))["state"] == "approved"

    assert history.as_of(DECLASSIFICATION, decl.pk, at(5) - US)["tags"] == ["aggregate.only", "pii.email"]
    assert history.as_of(DECLASSIFICATION, decl.pk, at(5))["tags"] == ["pii.email"]
    assert_no_drift()


def test_deleting_a_dataset_or_a_user_records_what_the_cascade_removed(
    pipeline, policy_v1, data_scientist, data_owner, data_steward
):
    _, clean, orders = pipeline
    leaving = make_user("lea", Role.DATA_SCIENTIST)
    with time_machine.travel(at(0), tick=False) as clock:
        backfill()
        request = ask(data_scientist, [orders, clean], now=at(0))
        access_request_approve(actor=data_owner, request=request, now=at(0))
        on_orders = Grant.objects.get(request=request, dataset=orders)
        on_clean = Grant.objects.get(request=request, dataset=clean)
        theirs = ask(leaving, [clean], now=at(0))
        clock.move_to(at(1))
        catalog.dataset_delete(actor=data_steward, dataset=orders)
        clock.move_to(at(2))
        with transaction.atomic():
            leaving.delete()

    assert history.as_of(GRANT, on_orders.pk, at(1) - US)["state"] == "active"
    assert history.as_of(GRANT, on_orders.pk, at(1)) is None, "the grant went with its dataset"
    assert [i["dataset_id"] for i in history.as_of(ACCESS_REQUEST, request.pk, at(1))["items"]] == [str(clean.pk)]
    assert history.as_of(GRANT, on_clean.pk, at(1))["state"] == "active"
    assert history.as_of(ACCESS_REQUEST, theirs.pk, at(2) - US)["requester"] == "lea"
    assert history.as_of(ACCESS_REQUEST, theirs.pk, at(2)) is None, "the request went with its requester"
    assert_no_drift()


def test_verify_reports_drift_and_capture_repairs_it(pipeline, policy_v1, data_scientist, data_owner):
    _, _, orders = pipeline
    request = ask(data_scientist, [orders], now=None)
    access_request_approve(actor=data_owner, request=request)
    grant = Grant.objects.get(request=request)
    backfill()
    out, err = io.StringIO(), io.StringIO()
    call_command("history_verify", stdout=out, stderr=err)
    assert f"{GRANT}: ok" in out.getvalue() and "match" in out.getvalue()

    # A write behind history's back (not through a service).
    Grant.objects.filter(pk=grant.pk).update(revoke_reason="edited in psql")
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("history_verify", stdout=out, stderr=err)
    assert exit_.value.code == 1
    assert f"{GRANT}: 1 drifted, e.g. {grant.pk}" in out.getvalue()
    assert f"{ACCESS_REQUEST}: ok" in out.getvalue()
    assert f"manage.py history_capture --kind {GRANT}" in err.getvalue()

    assert f"{GRANT}: " in backfill()
    assert history.as_of(GRANT, grant.pk, datetime.now(UTC))["revoke_reason"] == "edited in psql"
    out = io.StringIO()
    call_command("history_verify", stdout=out, stderr=io.StringIO())
    assert "History matches the live tables" in out.getvalue()


def test_capture_needs_all_or_known_kinds():
    with pytest.raises(CommandError, match="--all or at least one --kind"):
        call_command("history_capture", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="Unknown kind"):
        call_command("history_capture", "--kind", "governance.nope", stdout=io.StringIO(), stderr=io.StringIO())
