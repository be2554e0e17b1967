"""Catalog services: effective classification, idempotent upserts, audit, permissions."""

import pytest

from catalog import services
from catalog.models import Dataset, SchemaField, TagAssignment
from ledger.models import AuditEvent
from steward.errors import Conflict, PermissionDenied, ValidationFailed
from tests.conftest import spec

pytestmark = pytest.mark.django_db

NS = "postgres://warehouse:5432"


def test_field_tag_raises_dataset_to_the_tags_implied_level(make_dataset):
    ds = make_dataset(
        "crm.public.contacts",
        fields=[{"name": "email", "type": "text", "tags": ["pii.email"]}, {"name": "id", "type": "int"}],
    )
    assert ds.effective_classification == "C3"
    assert ds.classification == ""


def test_without_tags_or_level_a_dataset_is_the_lowest_level(make_dataset):
    assert make_dataset("crm.public.plain").effective_classification == "C1"


def test_direct_level_wins_when_higher_than_tags(make_dataset):
    ds = make_dataset("crm.public.x", classification="C4", tags=["pii.email"])
    assert ds.effective_classification == "C4"


def test_field_classification_counts_towards_the_dataset(make_dataset, data_steward):
    ds = make_dataset("crm.public.y", fields=[{"name": "ssn", "classification": "C4"}])
    assert ds.effective_classification == "C4"
    services.dataset_classify(actor=data_steward, dataset=ds, level=None, field_name="ssn")
    ds.refresh_from_db()
    assert ds.effective_classification == "C1"


def test_removing_the_tag_lowers_the_level_again(make_dataset, data_steward):
    ds = make_dataset("crm.public.z", tags=["pii.email"])
    services.dataset_tag_remove(actor=data_steward, dataset=ds, key="pii.email")
    ds.refresh_from_db()
    assert ds.effective_classification == "C1"


def test_changing_a_tags_implied_level_reclassifies_its_datasets(make_dataset, data_steward, tags):
    ds = make_dataset("crm.public.w", tags=["finance"])
    services.tag_update(actor=data_steward, tag=tags["finance"], implied_level="C2")
    ds.refresh_from_db()
    assert ds.effective_classification == "C2"


def test_same_upsert_twice_changes_nothing_and_audits_once(data_steward, tags):
    item = {
        "namespace": NS,
        "name": "a.b.c",
        "fields": [{"name": "x", "type": "int", "tags": ["finance"]}],
        "tags": ["finance"],
        "owners": ["stella"],
    }
    first = services.dataset_bulk_upsert(actor=data_steward, specs=[spec(item)])
    events = AuditEvent.objects.filter(action__startswith="catalog.dataset").count()
    second = services.dataset_bulk_upsert(actor=data_steward, specs=[spec(item)])
    assert len(first.created) == 1
    assert second.unchanged == first.created
    assert AuditEvent.objects.filter(action__startswith="catalog.dataset").count() == events


def test_upsert_replaces_schema_fields_exactly(data_steward, tags):
    item = {"namespace": NS, "name": "a.b.d", "fields": [{"name": "x"}, {"name": "y", "tags": ["finance"]}]}
    services.dataset_bulk_upsert(actor=data_steward, specs=[spec(item)])
    item["fields"] = [{"name": "y", "type": "text"}, {"name": "z"}]
    services.dataset_bulk_upsert(actor=data_steward, specs=[spec(item)])
    ds = Dataset.objects.get(name="a.b.d")
    assert [(f.name, f.type, f.ordinal) for f in ds.fields.order_by("ordinal")] == [("y", "text", 0), ("z", "", 1)]
    assert not TagAssignment.objects.filter(dataset=ds).exists()


def test_partial_update_keeps_what_it_does_not_mention(make_dataset, data_steward):
    ds = make_dataset("a.b.e", description="orders", fields=[{"name": "x"}], tags=["finance"])
    services.dataset_update(
        actor=data_steward, dataset=ds, spec=spec({"namespace": NS, "name": "a.b.e", "description": "all orders"})
    )
    ds.refresh_from_db()
    assert ds.description == "all orders"
    assert list(ds.fields.values_list("name", flat=True)) == ["x"]
    assert list(ds.tag_assignments.values_list("tag__key", flat=True)) == ["finance"]


def test_creating_an_existing_dataset_conflicts(make_dataset):
    make_dataset("a.b.f")
    with pytest.raises(Conflict):
        make_dataset("a.b.f")


def test_bulk_with_one_unknown_tag_writes_nothing_and_names_the_item(data_steward, tags):
    specs = [spec({"namespace": NS, "name": f"t.{i}"}, f"datasets[{i}]") for i in range(3)]
    specs.append(spec({"namespace": NS, "name": "t.bad", "tags": ["no.such"]}, "datasets[3]"))
    with pytest.raises(ValidationFailed) as err:
        services.dataset_bulk_upsert(actor=data_steward, specs=specs)
    assert err.value.problems[0].field == "datasets[3].tags"
    assert "no.such" in err.value.problems[0].message
    assert not Dataset.objects.filter(name__startswith="t.").exists()


def test_bulk_duplicate_identity_is_rejected(data_steward):
    specs = [
        spec({"namespace": NS, "name": "dup"}, "datasets[0]"),
        spec({"namespace": NS, "name": "dup"}, "datasets[1]"),
    ]
    with pytest.raises(ValidationFailed) as err:
        services.dataset_bulk_upsert(actor=data_steward, specs=specs)
    assert err.value.problems[0].field == "datasets[1].name"


def test_new_dataset_is_owned_by_its_creator_when_no_owner_named(data_owner, tags):
    result = services.dataset_bulk_upsert(actor=data_owner, specs=[spec({"namespace": NS, "name": "o.1"})])
    ds = Dataset.objects.get(pk=result.ids[0])
    assert list(ds.owner_users.values_list("username", flat=True)) == ["olive"]


def test_data_scientist_cannot_register_datasets(data_scientist):
    with pytest.raises(PermissionDenied):
        services.dataset_create(actor=data_scientist, spec=spec({"namespace": NS, "name": "nope"}))
    assert not Dataset.objects.filter(name="nope").exists()


def test_data_owner_cannot_change_someone_elses_dataset(make_dataset, data_owner):
    ds = make_dataset("theirs")
    with pytest.raises(PermissionDenied):
        services.dataset_bulk_upsert(
            actor=data_owner, specs=[spec({"namespace": NS, "name": "theirs", "description": "mine now"})]
        )
    ds.refresh_from_db()
    assert ds.description == ""


def test_group_owner_may_change_the_dataset(make_dataset, data_owner):
    ds = make_dataset("team.table", owners=["group:sales-eng"])
    services.dataset_update(
        actor=data_owner, dataset=ds, spec=spec({"namespace": NS, "name": "team.table", "description": "ours"})
    )
    ds.refresh_from_db()
    assert ds.description == "ours"


def test_every_write_is_audited_with_its_actor(make_dataset, data_steward):
    ds = make_dataset("audited")
    services.dataset_tag_add(actor=data_steward, dataset=ds, key="finance")
    actions = list(AuditEvent.objects.filter(target_id=str(ds.pk)).values_list("action", "actor_name"))
    assert actions == [("catalog.dataset.create", "stella"), ("catalog.dataset.tag_add", "stella")]


def test_tag_on_unknown_field_is_rejected(make_dataset, data_steward):
    ds = make_dataset("f.table", fields=[{"name": "a"}])
    with pytest.raises(ValidationFailed) as err:
        services.dataset_tag_add(actor=data_steward, dataset=ds, key="finance", field_name="b")
    assert err.value.problems[0].field == "field"
    assert not SchemaField.objects.filter(name="b").exists()


def test_tag_in_use_cannot_be_deleted(make_dataset, data_steward, tags):
    make_dataset("uses.tag", tags=["finance"])
    with pytest.raises(Conflict):
        services.tag_delete(actor=data_steward, tag=tags["finance"])
