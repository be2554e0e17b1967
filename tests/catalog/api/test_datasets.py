"""The datasets API as a client sees it: CRUD, lookup, bulk, tags, classification, errors."""

import pytest

from catalog.models import Dataset

pytestmark = pytest.mark.django_db

NS = "postgres://warehouse:5432"
URL = "/api/v1/datasets"


def _body(name="sales.public.orders", **extra):
    return {"namespace": NS, "name": name, **extra}


def test_create_then_read_back_with_schema(client_for, data_steward, tags):
    client = client_for(data_steward)
    created = client.post(
        URL,
        _body(
            description="Orders",
            fields=[{"name": "order_id", "type": "bigint"}, {"name": "email", "type": "text", "tags": ["pii.email"]}],
        ),
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["platform"] == "postgres"
    assert body["effective_classification"] == "C3"
    assert [f["name"] for f in body["fields"]] == ["order_id", "email"]
    assert body["fields"][1]["tags"] == ["pii.email"]
    again = client.get(f"{URL}/{body['id']}")
    assert again.status_code == 200
    assert again.json()["description"] == "Orders"


def test_lookup_by_openlineage_identity(client_for, data_steward, make_dataset):
    ds = make_dataset("sales.public.orders")
    res = client_for(data_steward).get(f"{URL}/lookup", {"namespace": NS, "name": "sales.public.orders"})
    assert res.status_code == 200
    assert res.json()["id"] == str(ds.pk)
    missing = client_for(data_steward).get(f"{URL}/lookup", {"namespace": NS, "name": "nope"})
    assert missing.status_code == 404


def test_lookup_without_parameters_names_them(client_for, data_steward):
    res = client_for(data_steward).get(f"{URL}/lookup")
    assert res.status_code == 400
    assert {e["field"] for e in res.json()["errors"]} == {"namespace", "name"}


def test_list_filters_by_platform_and_tag(client_for, data_steward, make_dataset):
    make_dataset("a", tags=["finance"])
    make_dataset("b", namespace="s3://bucket")
    client = client_for(data_steward)
    assert [d["name"] for d in client.get(URL, {"platform": "s3"}).json()["results"]] == ["b"]
    assert [d["name"] for d in client.get(URL, {"tag": "finance"}).json()["results"]] == ["a"]


def test_list_pages_with_a_cursor(client_for, data_steward, make_dataset):
    for i in range(5):
        make_dataset(f"t{i}")
    client = client_for(data_steward)
    first = client.get(URL, {"page_size": 2}).json()
    second = client.get(first["next"]).json()
    names = [d["name"] for d in first["results"] + second["results"]]
    assert names == ["t0", "t1", "t2", "t3"]


def test_list_query_count_does_not_grow_with_rows(
    client_for, data_steward, make_dataset, django_assert_max_num_queries
):
    for i in range(30):
        make_dataset(f"q{i}", tags=["finance"], owners=["stella", "group:data-steward"])
    client = client_for(data_steward)
    with django_assert_max_num_queries(10):
        res = client.get(URL, {"page_size": 30})
    assert len(res.json()["results"]) == 30


def test_patch_changes_description_but_not_identity(client_for, data_steward, make_dataset):
    ds = make_dataset("p")
    client = client_for(data_steward)
    ok = client.patch(f"{URL}/{ds.pk}", {"description": "new"}, format="json")
    assert ok.status_code == 200 and ok.json()["description"] == "new"
    bad = client.patch(f"{URL}/{ds.pk}", {"name": "renamed"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "name"


def test_delete(client_for, data_steward, make_dataset):
    ds = make_dataset("gone")
    assert client_for(data_steward).delete(f"{URL}/{ds.pk}").status_code == 204
    assert not Dataset.objects.filter(pk=ds.pk).exists()


def test_tag_and_untag_a_field(client_for, data_steward, make_dataset):
    ds = make_dataset("tagged", fields=[{"name": "email"}])
    client = client_for(data_steward)
    res = client.post(f"{URL}/{ds.pk}/tags", {"key": "pii.email", "field": "email"}, format="json")
    assert res.status_code == 201
    assert res.json()["effective_classification"] == "C3"
    assert res.json()["fields"][0]["tags"] == ["pii.email"]
    removed = client.delete(f"{URL}/{ds.pk}/tags/pii.email?field=email")
    assert removed.status_code == 204
    assert client.get(f"{URL}/{ds.pk}").json()["effective_classification"] == "C1"
    again = client.delete(f"{URL}/{ds.pk}/tags/pii.email?field=email")
    assert again.status_code == 404


def test_classify_dataset_and_unknown_level(client_for, data_steward, make_dataset):
    ds = make_dataset("classified")
    client = client_for(data_steward)
    res = client.put(f"{URL}/{ds.pk}/classification", {"level": "C2"}, format="json")
    assert res.status_code == 200 and res.json()["classification"] == "C2"
    bad = client.put(f"{URL}/{ds.pk}/classification", {"level": "C9"}, format="json")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "level"
    assert "C9" in bad.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("payload", "field", "code"),
    [
        ({"namespace": "not a namespace", "name": "x"}, "namespace", "invalid_namespace"),
        ({"namespace": NS, "name": "x" * 513}, "name", "max_length"),
        ({"namespace": NS}, "name", "required"),
        ({"namespace": NS, "name": "x", "colour": "red"}, "colour", "unknown_field"),
        ({"namespace": NS, "name": "x", "tags": ["no.such.tag"]}, "tags", "unknown_tag"),
        ({"namespace": NS, "name": "x", "classification": "TOP"}, "classification", "unknown_level"),
        ({"namespace": NS, "name": "x", "fields": [{"name": "a"}, {"name": "a"}]}, "fields[1].name", "duplicate"),
        ({"namespace": NS, "name": "x", "fields": [{"type": "int"}]}, "fields[0].name", "required"),
        ({"namespace": NS, "name": "x", "owners": ["nobody-here"]}, "owners", "unknown_owner"),
        ({"namespace": NS, "name": "x", "description": "bell \x07 here"}, "description", "invalid"),
        ({"namespace": NS, "name": "x", "fields": [{"name": "a\x00b"}]}, "fields[0].name", "invalid"),
    ],
)
def test_bad_input_gets_400_naming_field_and_nothing_is_written(client_for, data_steward, tags, payload, field, code):
    res = client_for(data_steward).post(URL, payload, format="json")
    assert res.status_code == 400, res.content
    body = res.json()
    assert body["code"] == "validation_error"
    assert body["errors"][0]["field"] == field
    assert body["errors"][0]["code"] == code
    assert body["errors"][0]["message"]
    assert not Dataset.objects.exists()


def test_tabs_and_newlines_are_not_control_characters(client_for, data_steward):
    res = client_for(data_steward).post(URL, {"namespace": NS, "name": "x", "description": "a\tb\r\nc"}, format="json")
    assert res.status_code == 201, res.content
    assert res.json()["description"] == "a\tb\r\nc"


def test_malformed_json_is_a_400_parse_error(client_for, data_steward):
    res = client_for(data_steward).post(URL, data='{"namespace": ', content_type="application/json")
    assert res.status_code == 400
    assert res.json()["code"] == "parse_error"
    assert res.json()["errors"][0]["field"] == "body"


def test_duplicate_create_is_409(client_for, data_steward, make_dataset):
    make_dataset("dup")
    res = client_for(data_steward).post(URL, _body("dup"), format="json")
    assert res.status_code == 409
    assert res.json()["errors"][0]["field"] == "name"


def test_bulk_upsert_creates_then_updates(client_for, data_steward, tags):
    client = client_for(data_steward)
    items = [_body(f"bulk.t{i}", fields=[{"name": "id", "type": "int"}, {"name": f"c{i}"}]) for i in range(50)]
    first = client.post(f"{URL}/bulk", {"datasets": items}, format="json")
    assert first.status_code == 200, first.content
    assert first.json()["created"] == 50
    items[0]["description"] = "changed"
    second = client.post(f"{URL}/bulk", {"datasets": items}, format="json").json()
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 1, 49)
    assert Dataset.objects.filter(name__startswith="bulk.").count() == 50


def test_bulk_with_one_bad_item_rejects_the_batch_and_names_it(client_for, data_steward, tags):
    items = [_body(f"bb{i}") for i in range(10)]
    items[7]["namespace"] = "bad namespace"
    res = client_for(data_steward).post(f"{URL}/bulk", {"datasets": items}, format="json")
    assert res.status_code == 400
    assert res.json()["errors"][0]["field"] == "datasets[7].namespace"
    assert "datasets[7]" in res.json()["detail"]
    assert not Dataset.objects.exists()


def test_bulk_over_the_limit_is_rejected(client_for, data_steward):
    items = [_body(f"x{i}") for i in range(10_001)]
    res = client_for(data_steward).post(f"{URL}/bulk", {"datasets": items}, format="json")
    assert res.status_code == 400
    assert res.json()["errors"][0]["field"] == "datasets"


def test_bulk_body_must_hold_a_list(client_for, data_steward):
    res = client_for(data_steward).post(f"{URL}/bulk", {"items": []}, format="json")
    assert res.status_code == 400
    assert {e["field"] for e in res.json()["errors"]} == {"items", "datasets"}


def test_unknown_and_malformed_ids_are_404(client_for, data_steward):
    client = client_for(data_steward)
    assert client.get(f"{URL}/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get(f"{URL}/not-a-uuid").status_code == 404


def test_trailing_slash_is_accepted(client_for, data_steward):
    assert client_for(data_steward).get(f"{URL}/").status_code == 200
