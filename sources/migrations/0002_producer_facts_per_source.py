"""``Dataset.producer_facts["source"]`` (one crawled source's say) becomes ``producer_facts["sources"]``, keyed by
source id, so that two sources of one dataset (a PostgreSQL crawl and a dbt project) each keep their own."""

from django.db import migrations


def forwards(apps, schema_editor):
    Dataset = apps.get_model("catalog", "Dataset")
    Source = apps.get_model("sources", "Source")
    sources = {s.name: s for s in Source.objects.all()}
    for ds in Dataset.objects.filter(producer_facts__has_key="source").iterator(chunk_size=2000):
        facts = dict(ds.producer_facts)
        said = dict(facts.pop("source") or {})
        source = sources.get(said.get("name"))
        key = str(source.pk) if source else f"name:{said.get('name', '')}"
        if source:
            said.setdefault("source_kind", source.kind)
        facts.setdefault("sources", {})[key] = said
        ds.producer_facts = facts
        ds.save(update_fields=["producer_facts"])


def backwards(apps, schema_editor):
    Dataset = apps.get_model("catalog", "Dataset")
    for ds in Dataset.objects.filter(producer_facts__has_key="sources").iterator(chunk_size=2000):
        facts = dict(ds.producer_facts)
        by_source = facts.pop("sources") or {}
        if by_source:
            facts["source"] = next(iter(by_source.values()))
        ds.producer_facts = facts
        ds.save(update_fields=["producer_facts"])


class Migration(migrations.Migration):
    dependencies = [("sources", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards, elidable=True)]
