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
