"""The decision API: answers, reasons, batches in order, who may ask, denials audited, a fixed query count."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from governance.models import Grant
from ledger.models import AuditEvent
from tests.conftest import make_user
from tests.governance.conftest import errors

pytestmark = pytest.mark.django_db


@pytest.fixture
def service(db):
    return make_user("gatekeeper", "service")


@pytest.fixture
def granted(ask, act, data_scientist, data_owner, levelled):
    act(data_owner, ask(data_scientist, [levelled["C2"]], purpose="analytics", duration="P1D").json()["id"], "approve")
    return Grant.objects.get()


def test_allow_names_the_grant_and_its_expiry(client_for, service, granted):
    res = client_for(service).post(
        "/api/v1/authorize", {"subject": "dana", "action": "read", "asset": str(granted.dataset_id)}, format="json"
    )
    assert res.status_code == 200, res.json()
    body = res.json()
    assert body == {
        "decision": "allow",
        "reason": "granted",
        "grant_id": str(granted.pk),
        "expires_at": body["expires_at"],
    }
    assert body["expires_at"].startswith(granted.valid_until.strftime("%Y-%m-%dT%H:%M:%S"))


def test_subjects_and_assets_in_every_form(client_for, service, granted, data_scientist):
    ds = granted.dataset
    forms = [
        {"subject": data_scientist.pk, "asset": str(ds.pk)},
        {"subject": "user:dana", "asset": {"id": str(ds.pk)}},
        {"subject": "dana", "asset": {"namespace": ds.namespace, "name": ds.name}},
    ]
    res = client_for(service).post(
        "/api/v1/authorize/batch", {"requests": [{"action": "read", **f} for f in forms]}, format="json"
    )
    assert [d["decision"] for d in res.json()["decisions"]] == ["allow"] * 3


def test_a_batch_is_answered_in_order_with_reasons(client_for, service, granted, levelled, other_scientist):
    ws = "workspace:5b0d7c1e-3f7a-4c2e-9a51-1d2b3c4d5e6f"
    asks = [
        ("dana", str(granted.dataset_id)),
        ("oscar", str(granted.dataset_id)),
        ("nobody", str(granted.dataset_id)),
        ("dana", {"namespace": "s3://nowhere", "name": "x"}),
        ("dana", str(levelled["C3"].pk)),
        (ws, str(granted.dataset_id)),
        ("dana", str(granted.dataset_id)),
    ]
    body = {"requests": [{"subject": s, "action": "read", "asset": a} for s, a in asks]}
    decisions = client_for(service).post("/api/v1/authorize/batch", body, format="json").json()["decisions"]
    assert [(d["decision"], d["reason"]) for d in decisions] == [
        ("allow", "granted"),
        ("deny", "no_grant"),
        ("deny", "unknown_subject"),
        ("deny", "unknown_asset"),
        ("deny", "no_grant"),
        ("deny", "no_grant"),
        ("allow", "granted"),
    ]
    assert decisions[1]["grant_id"] is None and decisions[1]["expires_at"] is None


def test_denials_are_audited_in_one_append(client_for, service, granted, other_scientist):
    before = AuditEvent.objects.count()
    body = {
        "requests": [
            {"subject": "oscar", "action": "read", "asset": str(granted.dataset_id)},
            {"subject": "dana", "action": "read", "asset": str(granted.dataset_id)},
            {"subject": "nobody", "action": "read", "asset": str(granted.dataset_id)},
        ]
    }
    client_for(service).post("/api/v1/authorize/batch", body, format="json")
    denied = list(AuditEvent.objects.filter(seq__gt=0).order_by("seq")[before:])
    assert [(e.action, e.actor_name, e.after["subject"], e.after["reason"]) for e in denied] == [
        ("governance.decision.deny", "gatekeeper", "oscar", "no_grant"),
        ("governance.decision.deny", "gatekeeper", "nobody", "unknown_subject"),
    ]
    assert denied[0].target_id == str(granted.dataset_id)
    assert len({e.at for e in denied}) == 1


def test_a_past_time_is_decided_as_of_then(client_for, service, granted):
    def at(t):
        body = {"subject": "dana", "action": "read", "asset": str(granted.dataset_id), "at": t.isoformat()}
        return client_for(service).post("/api/v1/authorize", body, format="json").json()

    assert at(granted.valid_from - timedelta(seconds=1))["reason"] == "not_yet_valid"
    assert at(granted.valid_from + timedelta(hours=1))["decision"] == "allow"
    assert at(granted.valid_until)["reason"] == "expired"
    z = granted.valid_until.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
    body = {"subject": "dana", "action": "read", "asset": str(granted.dataset_id), "at": z}
    assert client_for(service).post("/api/v1/authorize", body, format="json").json()["reason"] == "expired"


def test_a_deactivated_user_is_denied(client_for, service, granted, data_scientist):
    data_scientist.is_active = False
    data_scientist.save()
    body = {"subject": "dana", "action": "read", "asset": str(granted.dataset_id)}
    assert client_for(service).post("/api/v1/authorize", body, format="json").json()["reason"] == "inactive_subject"


@pytest.mark.parametrize(
    ("item", "field", "code"),
    [
        ({"subject": "dana", "action": "read", "asset": "x", "at": "2026-01-01T10:00:00"}, "at", "naive_datetime"),
        ({"subject": "dana", "action": "read", "asset": "x", "at": "yesterday"}, "at", "invalid_datetime"),
        ({"subject": "dana", "action": "write", "asset": "x"}, "action", "unsupported_action"),
        ({"subject": "dana", "asset": "x"}, "action", "required"),
        ({"subject": True, "action": "read", "asset": "x"}, "subject", "invalid"),
        ({"subject": "workspace:nope", "action": "read", "asset": "x"}, "subject", "invalid"),
        ({"subject": "dana", "action": "read", "asset": "not-a-uuid"}, "asset", "invalid"),
        ({"subject": "dana", "action": "read", "asset": {"name": "x"}}, "asset", "invalid"),
        ({"subject": "dana", "action": "read", "asset": "x", "why": 1}, "why", "unknown_field"),
    ],
)
def test_bad_questions_are_refused_naming_the_field(client_for, service, granted, item, field, code):
    item = {**item, "asset": str(granted.dataset_id)} if item.get("asset") == "x" else item
    before = AuditEvent.objects.count()
    single = client_for(service).post("/api/v1/authorize", item, format="json")
    assert single.status_code == 400 and errors(single).get(field) == code, single.json()
    ok = {"subject": "dana", "action": "read", "asset": str(granted.dataset_id)}
    batch = client_for(service).post("/api/v1/authorize/batch", {"requests": [ok, item]}, format="json")
    assert batch.status_code == 400 and errors(batch).get(f"requests[1].{field}") == code, batch.json()
    assert AuditEvent.objects.count() == before


def test_batch_shape_is_checked(client_for, service):
    assert errors(client_for(service).post("/api/v1/authorize/batch", {}, format="json")) == {"requests": "required"}
    too_many = {"requests": [{}] * 10_001}
    assert errors(client_for(service).post("/api/v1/authorize/batch", too_many, format="json")) == {
        "requests": "too_many"
    }


def test_people_ask_only_about_themselves(client_for, granted, data_scientist, other_scientist, levelled):
    about_me = {"subject": "dana", "action": "read", "asset": str(granted.dataset_id)}
    assert client_for(data_scientist).post("/api/v1/authorize", about_me, format="json").json()["decision"] == "allow"
    by_id = {**about_me, "subject": data_scientist.pk}
    assert client_for(data_scientist).post("/api/v1/authorize", by_id, format="json").json()["decision"] == "allow"
    res = client_for(other_scientist).post("/api/v1/authorize", about_me, format="json")
    assert res.status_code == 403 and errors(res) == {"subject": "not_yourself"}
    batch = {"requests": [{**about_me, "subject": "oscar"}, about_me]}
    res = client_for(other_scientist).post("/api/v1/authorize/batch", batch, format="json")
    assert res.status_code == 403 and errors(res) == {"requests[1].subject": "not_yourself"}
    # A self-asker learns nothing about which hidden names exist: unknown assets read as no grant.
    hidden = {"namespace": levelled["C4"].namespace, "name": levelled["C4"].name}
    for asset in (hidden, {"namespace": "s3://nowhere", "name": "x"}):
        mine = {"subject": "dana", "action": "read", "asset": asset}
        assert client_for(data_scientist).post("/api/v1/authorize", mine, format="json").json()["reason"] == "no_grant"


def test_a_batch_costs_the_same_few_queries_whatever_its_size(client_for, service, granted, levelled):
    import uuid

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(service)
    small = {"requests": [{"subject": "dana", "action": "read", "asset": str(granted.dataset_id)}]}
    many = {
        "requests": [
            {
                "subject": ["dana", "oscar", 7][i % 3] if i % 5 else "dana",
                "action": "read",
                "asset": str(granted.dataset_id)
                if i % 5 == 0
                else (str(uuid.uuid4()) if i % 2 else {"namespace": "s3://lake", "name": f"t{i}"}),
            }
            for i in range(2000)
        ]
    }
    with CaptureQueriesContext(connection) as one:
        client.post("/api/v1/authorize/batch", small, format="json")
    with CaptureQueriesContext(connection) as lots:
        res = client.post("/api/v1/authorize/batch", many, format="json")
    assert len(res.json()["decisions"]) == 2000
    assert res.json()["decisions"][0]["decision"] == "allow"
    grant_queries = [q for q in lots.captured_queries if "governance_grant" in q["sql"]]
    assert len(grant_queries) == 1, "one query for every (subject, dataset) pair"
    # Session, user, roles, subjects, named datasets, grants; then the audit append for the denials.
    assert len(lots.captured_queries) <= len(one.captured_queries) + 5
    assert len(lots.captured_queries) <= 10


def test_of_several_grants_the_valid_one_ending_last_allows(data_scientist, levelled):
    from django.utils import timezone

    from governance.authorization import DecisionQuery, decide_many

    now = timezone.now()
    ds = levelled["C2"]

    def grant(start_h, end_h, **extra):
        return Grant.objects.create(
            user=data_scientist,
            dataset=ds,
            valid_from=now + timedelta(hours=start_h),
            valid_until=now + timedelta(hours=end_h),
            approved_level="C2",
            **extra,
        )

    old = grant(-10, -5)
    grant(-20, -15)
    ask = [DecisionQuery(user_id=data_scientist.pk, dataset_id=ds.pk)]
    (d,) = decide_many(ask, now=now)
    assert (d.reason, d.grant_id) == ("expired", old.pk), "the most recent of the expired grants is named"
    grant(-1, 1)
    long = grant(-1, 3)
    grant(-1, 5, revoked_at=now - timedelta(minutes=1))
    (d,) = decide_many(ask, now=now)
    assert (d.decision, d.grant_id, d.expires_at) == ("allow", long.pk, long.valid_until)
