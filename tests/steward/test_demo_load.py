"""The demo data set loads once, into an empty database, audited as the system; a restart changes nothing."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from catalog import services as catalog
from catalog.models import Dataset
from governance.models import AccessRequest
from ledger.models import AuditEvent

pytestmark = pytest.mark.django_db


def load(django_capture_on_commit_callbacks) -> str:
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("demo_load", stdout=out)
    return out.getvalue()


def test_the_demo_loads_once_as_the_system_and_a_restart_keeps_later_changes(
    django_capture_on_commit_callbacks, workspace_templates
):
    before = AuditEvent.objects.count()
    assert "Demo data ready" in load(django_capture_on_commit_callbacks)
    loaded = AuditEvent.objects.filter(seq__gt=AuditEvent.objects.order_by("seq")[before - 1].seq if before else 0)
    assert Dataset.objects.count() > 100 and AccessRequest.objects.exists()
    actors = set(loaded.values_list("actor_name", flat=True))
    assert actors == {"system"}, f"the demo is audited as the system, not as {actors - {'system'}}"
    assert not loaded.filter(actor_id__isnull=False).exists()

    # Someone tags a demo dataset, then the service restarts (make run loads the demo again).
    from django.contrib.auth.models import User

    stella = User.objects.get(username="stella")
    orders = Dataset.objects.filter(name__contains="orders").order_by("name").first()
    catalog.tag_create(actor=stella, key="reviewed")
    catalog.dataset_tag_add(actor=stella, dataset=orders, key="reviewed")
    orders.description = "Edited after the demo was loaded."
    Dataset.objects.filter(pk=orders.pk).update(description=orders.description)
    events = AuditEvent.objects.count()
    datasets = Dataset.objects.count()

    assert "not empty" in load(django_capture_on_commit_callbacks)
    orders.refresh_from_db()
    assert orders.description == "Edited after the demo was loaded."
    assert "reviewed" in {a.tag.key for a in orders.tag_assignments.all()}
    assert (AuditEvent.objects.count(), Dataset.objects.count()) == (events, datasets), "a restart writes nothing"


def test_a_database_with_its_own_data_gets_no_demo(make_dataset):
    make_dataset("real.public.table")
    out = io.StringIO()
    call_command("demo_load", stdout=out)
    assert "not empty" in out.getvalue() and Dataset.objects.count() == 1
