"""The audit chain detects an edited event; the audit API filters, pages and verifies (compliance and admins)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from governance.actions import DECISION_DENY
from ledger import audit
from ledger.models import AuditEvent
from tests.governance.conftest import errors

pytestmark = pytest.mark.django_db


def test_chain_verifies_and_detects_tampering(make_dataset):
    for i in range(3):
        make_dataset(f"t{i}")
    assert audit.verify() is None
    victim = AuditEvent.objects.order_by("seq")[len(AuditEvent.objects.all()) // 2]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE governance_auditevent SET actor_name = 'mallory' WHERE seq = %s", [victim.seq])
    broken = audit.verify()
    assert broken is not None and broken.seq == victim.seq


def test_a_bulk_upsert_chains_one_event_per_dataset_with_its_content(client_for, data_steward):
    items = [
        {"namespace": "postgres://db:5432", "name": f"s.t{i}", "fields": [{"name": "id", "type": "int"}]}
        for i in range(3)
    ]
    res = client_for(data_steward).post("/api/v1/datasets/bulk", {"datasets": items}, format="json")
    assert res.status_code == 200, res.content
    events = list(AuditEvent.objects.filter(target_type="catalog.dataset").order_by("seq"))
    assert len(events) == 3 and {e.actor_name for e in events} == {"stella"}
    assert events[0].after["name"] == "s.t0" and events[0].after["fields"][0][0] == "id"  # JSON, readable
    assert audit.verify() is None
    with connection.cursor() as cursor:  # change what the event says, not its hash: the chain notices
        cursor.execute("UPDATE governance_auditevent SET target_repr = 'renamed' WHERE seq = %s", [events[1].seq])
    assert audit.verify().seq == events[1].seq


def test_verify_endpoint_reports_exactly_the_edited_event(
    client_for, compliance_officer, ask, data_scientist, levelled
):
    ask(data_scientist, [levelled["C1"]], purpose="analytics")
    client = client_for(compliance_officer)
    clean = client.get("/api/v1/audit/verify").json()
    assert clean["ok"] is True and clean["first_broken"] is None and clean["checked"] == AuditEvent.objects.count()
    victim = AuditEvent.objects.get(action="governance.access_request.create")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE governance_auditevent SET reason = %s WHERE seq = %s", ["approved by the CEO", victim.seq]
        )
    report = client.get("/api/v1/audit/verify").json()
    assert report["ok"] is False
    assert report["first_broken"]["seq"] == victim.seq
    assert report["first_broken"]["action"] == "governance.access_request.create"


def test_deleting_an_event_breaks_the_link_of_the_next(client_for, admin_user, make_dataset):
    for i in range(3):
        make_dataset(f"d{i}")
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM governance_auditevent WHERE seq = %s", [seqs[1]])
    assert client_for(admin_user).get("/api/v1/audit/verify").json()["first_broken"]["seq"] == seqs[2]


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("data_scientist", 403),
        ("data_owner", 403),
        ("data_steward", 403),
        ("privacy_officer", 403),
        ("compliance_officer", 200),
        ("admin_user", 200),
    ],
)
def test_only_compliance_and_admins_read_the_audit_log(request, client_for, role, status):
    client = client_for(request.getfixturevalue(role))
    assert client.get("/api/v1/audit").status_code == status
    assert client.get("/api/v1/audit/verify").status_code == status
    assert client_for(None).get("/api/v1/audit").status_code == 401


def test_audit_filters(client_for, compliance_officer, ask, act, data_scientist, data_owner, levelled):
    pk = ask(data_scientist, [levelled["C2"]], purpose="analytics").json()["id"]
    act(data_owner, pk, "approve")
    client = client_for(compliance_officer)

    def actions(query):
        res = client.get(f"/api/v1/audit?{query}")
        assert res.status_code == 200, res.json()
        return [e["action"] for e in res.json()["results"]]

    assert actions("actor=olive") == [
        "governance.grant.create",
        "governance.access_request.approved",
        "governance.access_request.approve",
    ]
    assert actions(f"object={pk}") == [
        "governance.access_request.approved",
        "governance.access_request.approve",
        "governance.access_request.create",
    ]
    assert actions(f"object=governance.accessrequest:{pk}") == actions(f"object={pk}")
    assert actions("action=governance.grant.*") == ["governance.grant.create"]
    assert actions("action=governance.grant.create") == ["governance.grant.create"]
    assert "catalog.dataset.create" in actions("action=catalog.")
    later = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert actions(f"since={later.replace('+', '%2B')}") == []
    assert len(actions(f"until={later.replace('+', '%2B')}")) == AuditEvent.objects.count()
    naive = client.get("/api/v1/audit?since=2026-01-01T00:00:00")
    assert naive.status_code == 400 and errors(naive) == {"since": "naive_datetime"}


def test_audit_pages_newest_first(client_for, admin_user, make_dataset):
    for i in range(5):
        make_dataset(f"p{i}")
    client = client_for(admin_user)
    first = client.get("/api/v1/audit?page_size=2").json()
    second = client.get(first["next"]).json()
    seqs = [e["seq"] for e in first["results"] + second["results"]]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 4


def test_events_appended_alone_chain_as_record_many_does(db, make_dataset):
    """``record_alone`` (the decision API's denials: one statement on PostgreSQL) hashes the very bytes
    ``record_many`` does, in the same chain, non-ASCII and odd text included."""
    make_dataset("sales.public.before")
    entries = [
        audit.AuditEntry(
            DECISION_DENY,
            "catalog.dataset",
            "x",
            f"read t{i} by zoë",
            after={"reason": "no_grant", "note": 'quote " and \\ and ü', "prev": "not the chain's", "i": i},
        )
        for i in range(3)
    ]
    assert audit.record_alone(actor=None, entries=entries) == 3
    assert audit.record_alone(actor=None, entries=entries * 100) == 300  # a batch's denials, one statement too
    make_dataset("sales.public.after")
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.action for e in events[-304:-1]] == [DECISION_DENY] * 303
    assert [e.after["i"] for e in events[-304:-1]] == [0, 1, 2] * 101  # in the order given
    assert all(a.hash == b.prev_hash for a, b in zip(events, events[1:], strict=False))
    assert audit.verify() is None
    assert events[-2].after["note"] == 'quote " and \\ and ü'


def test_events_appended_alone_store_every_kind_of_value_as_verify_reads_it(db, data_steward):
    """The text ``alone_call`` assembles from its parts is the canonical text, whatever the values hold: quotes,
    backslashes, control characters, non-ASCII, a ``before`` and none, a UUID and a time inside ``after``, a
    reason, an actor and a request id. ``verify`` recomputes each event from its stored columns."""
    import uuid

    from steward.middleware import bind_request_id, unbind_request_id

    odd = 'q" b\\ n\n t\t nul-free \u2028 ü 🙂 </script>'
    entries = [
        audit.AuditEntry(DECISION_DENY, "catalog.dataset", "x1", f"read {odd}", after={"why": odd, "n": 1.5}),
        audit.AuditEntry(
            DECISION_DENY,
            "catalog.dataset",
            uuid.uuid4(),  # type: ignore[arg-type]  # a caller passing the id itself: stored as its text
            "r" * 700,  # cut to the column's 600
            before={"state": "active", "list": [1, None, True]},
            after={"id": uuid.uuid4(), "at": timezone.now(), "nested": {"b": 2, "a": [odd]}},
            reason=odd,
        ),
        audit.AuditEntry(DECISION_DENY, "", "", ""),
    ]
    token = bind_request_id('req-"1"')
    try:
        assert audit.record_alone(actor=data_steward, entries=entries) == 3
    finally:
        unbind_request_id(token)
    events = list(AuditEvent.objects.order_by("-seq")[:3])[::-1]
    assert audit.verify() is None
    assert events[0].after == {"why": odd, "n": 1.5} and events[0].actor_name == data_steward.username
    assert len(events[1].target_repr) == 600 and events[1].reason == odd and events[1].before["list"] == [1, None, True]
    assert events[2].after is None and events[2].request_id == 'req-"1"'
