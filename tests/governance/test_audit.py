"""The audit chain detects an edited event."""

import pytest
from django.db import connection

from governance import audit
from governance.models import AuditEvent

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
