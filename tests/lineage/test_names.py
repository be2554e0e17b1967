"""Names in lineage events (issue 17): every namespace form real producers send is accepted; control
characters are refused as the catalog API refuses them, naming the field; nothing is stored then."""

from __future__ import annotations

import pytest

from catalog.models import Dataset
from lineage.models import Job, LineageEvent
from steward.errors import ValidationFailed
from tests.lineage.events import NS, at, dataset, run_event

pytestmark = pytest.mark.django_db

# (namespace, platform Steward derives from it)
FORMS = [
    ("arn:aws:glue:us-east-1:123456789012", "glue"),
    ("azurecosmos://acct.documents.azure.com/dbs/db", "azurecosmos"),
    ("duckdb:///abs/path.duckdb", "duckdb"),
    ("sqlite:///data/app.db", "sqlite"),
    ("file:/data/iceberg", "file"),
    ("SnowflakeOpenLineage", "snowflakeopenlineage"),
]


@pytest.mark.parametrize(("namespace", "platform"), FORMS, ids=[f[0] for f in FORMS])
def test_every_namespace_form_of_the_naming_spec_is_accepted(emit, api_lookup, namespace, platform):
    emit(run_event("copy", "COMPLETE", inputs=[dataset("src", namespace=namespace)], outputs=[dataset("dst")]))
    found = Dataset.objects.get(namespace=namespace, name="src")
    assert found.platform == platform
    assert api_lookup(namespace, "src") == 200


@pytest.fixture
def api_lookup(client_for, data_steward):
    client = client_for(data_steward)
    return lambda ns, name: client.get("/api/v1/datasets/lookup", {"namespace": ns, "name": name}).status_code


def refused(emit, event) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as exc:
        emit(event)
    assert not LineageEvent.objects.exists() and not Job.objects.exists()
    return {p.field: p.code for p in exc.value.problems}


@pytest.mark.parametrize(
    ("namespace", "code"),
    [("", "required"), ("   ", "required"), ("s3://a\nb", "invalid"), ("x\x00", "invalid"), ("n" * 256, "max_length")],
    ids=["empty", "blank", "newline", "nul", "over-long"],
)
def test_unusable_namespaces_are_refused_naming_the_field(emit, namespace, code):
    event = run_event("copy", "COMPLETE", inputs=[dataset("src", namespace=namespace)], outputs=[dataset("dst")])
    assert refused(emit, event) == {"events[0].inputs[0].namespace": code}


def test_control_characters_in_names_are_refused_as_in_the_catalog(emit, client_for, data_steward):
    event = run_event("lo\x00ad", "COMPLETE", inputs=[dataset("ra\x07w")], outputs=[dataset("out", fields=["a\x01"])])
    assert refused(emit, event) == {
        "events[0].job.name": "invalid",
        "events[0].inputs[0].name": "invalid",
        "events[0].outputs[0].facets.schema.fields[0].name": "invalid",
    }
    # The catalog API says the same about the same name.
    response = client_for(data_steward).post("/api/v1/datasets", {"namespace": NS, "name": "ra\x07w"}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == "invalid"
    # Tabs are not control characters there, nor here.
    emit(run_event("load", "COMPLETE", inputs=[dataset("with\ttab")], outputs=[dataset("out")], when=at(1)))
    assert Dataset.objects.filter(name="with\ttab").exists()


def test_a_job_is_found_by_namespace_and_name(emit, tag, tags, client_for, data_steward, data_scientist):
    emit(run_event("load", "COMPLETE", inputs=[dataset("raw")], outputs=[dataset("clean")]))
    steward, dana = client_for(data_steward), client_for(data_scientist)
    found = steward.get("/api/v1/lineage/jobs/lookup", {"namespace": "etl", "name": "load"})
    assert found.status_code == 200, found.content
    assert found.json()["id"] == str(Job.objects.get(name="load").pk) and len(found.json()["runs"]) == 1
    assert dana.get("/api/v1/lineage/jobs/lookup", {"namespace": "etl", "name": "load"}).status_code == 200
    assert steward.get("/api/v1/lineage/jobs/lookup", {"namespace": "etl", "name": "nope"}).status_code == 404
    missing = steward.get("/api/v1/lineage/jobs/lookup", {"name": "load"})
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "namespace"
    tag("raw", "secret")  # now the job touches a C4 dataset: hidden from dana, as the job by id is
    assert dana.get("/api/v1/lineage/jobs/lookup", {"namespace": "etl", "name": "load"}).status_code == 404


def test_nested_schema_fields_become_dotted_names(emit):
    out = dataset("customers")
    out["facets"]["schema"] = {
        "_producer": "spark",
        "fields": [
            {"name": "id", "type": "long"},
            {
                "name": "address",
                "type": "struct",
                "fields": [
                    {"name": "city", "type": "string"},
                    {"name": "geo", "type": "struct", "fields": [{"name": "lat", "type": "double"}]},
                ],
            },
        ],
    }
    emit(run_event("load", "COMPLETE", inputs=[dataset("raw")], outputs=[out]))
    fields = Dataset.objects.get(name="customers").fields.order_by("ordinal").values_list("name", "type")
    assert list(fields) == [
        ("id", "long"),
        ("address", "struct"),
        ("address.city", "string"),
        ("address.geo", "struct"),
        ("address.geo.lat", "double"),
    ]


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ([{"name": "a"}, {"name": "a"}], ("fields[1].name", "duplicate")),
        ([{"name": "a"}, {"name": "  "}], ("fields[1].name", "required")),
        ([{"name": "a"}, "b"], ("fields[1]", "invalid_type")),
        ([{"name": "a"}, {"name": "n" * 256}], ("fields[1].name", "max_length")),
        ([{"name": "a"}, {"name": 3}], ("fields[1].name", "required")),
    ],
    ids=["duplicate", "blank", "not-an-object", "over-long", "not-a-string"],
)
def test_each_bad_schema_field_is_refused_naming_it(emit, fields, problem):
    out = dataset("out")
    out["facets"]["schema"] = {"fields": fields}
    field, code = problem
    assert refused(emit, run_event("copy", "COMPLETE", outputs=[out])) == {
        f"events[0].outputs[0].facets.schema.{field}": code
    }


def test_schema_fields_keep_their_order_type_and_description(emit):
    out = dataset("described")
    out["facets"]["schema"] = {
        "fields": [
            {"name": "id", "type": "BIGINT", "description": "Key."},
            {"name": "note", "type": None},
            {"name": "t" * 5, "type": "x" * 150},
        ]
    }
    emit(run_event("copy", "COMPLETE", outputs=[out]))
    fields = Dataset.objects.get(name="described").fields.order_by("ordinal")
    assert [(f.name, f.type, f.description) for f in fields] == [
        ("id", "BIGINT", "Key."),
        ("note", "", ""),
        ("ttttt", "x" * 100, ""),
    ]
