"""0002: the one ``producer_facts["source"]`` of datasets crawled before becomes ``producer_facts["sources"]``."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from catalog.models import Dataset
from sources.models import Source

migration = importlib.import_module("sources.migrations.0002_producer_facts_per_source")


@pytest.mark.django_db
def test_the_single_source_entry_becomes_one_keyed_by_source_id():
    source = Source.objects.create(name="warehouse", kind="postgres")
    said = {"name": "warehouse", "kind": "table", "description": "Orders", "columns": {}, "properties": {}}
    crawled = Dataset.objects.create(
        namespace="postgres://db:5432", name="shop.public.orders", producer_facts={"source": said, "by": "x"}
    )
    gone = Dataset.objects.create(
        namespace="postgres://db:5432", name="shop.public.old", producer_facts={"source": {**said, "name": "deleted"}}
    )
    migration.forwards(apps, None)
    crawled.refresh_from_db()
    gone.refresh_from_db()
    assert crawled.producer_facts == {"by": "x", "sources": {str(source.pk): {**said, "source_kind": "postgres"}}}
    assert gone.producer_facts == {"sources": {"name:deleted": {**said, "name": "deleted"}}}
    migration.backwards(apps, None)
    crawled.refresh_from_db()
    assert crawled.producer_facts["source"]["description"] == "Orders" and "sources" not in crawled.producer_facts
