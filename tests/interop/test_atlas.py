"""Apache Atlas interop: export to Atlas type definitions and entities (pyapacheatlas), import back, round trip,
and the push to a live Atlas (against a local HTTP server that records what it is sent: no Atlas server can run
here, see docs/atlas.md)."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from pyapacheatlas.core.entity import AtlasEntity, AtlasProcess
from pyapacheatlas.core.typedef import ClassificationTypeDef, EntityTypeDef

from catalog import services as catalog
from catalog.models import Dataset, Tag
from interop.atlas import build_export, import_document, validate_document
from lineage.models import ColumnEdge, Edge, Job, LineageEvent, NamespaceProducer
from lineage.propagation import drain
from lineage.services.ingest import ingest
from steward.errors import ValidationFailed
from steward.identity import Role
from tests.conftest import spec
from tests.lineage.events import NS, complete, dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def estate(data_steward, django_capture_on_commit_callbacks):
    """Two source tables, a job joining them into a report with column lineage, levels and tags."""
    data_steward.groups.add(Group.objects.get_or_create(name=Role.LINEAGE_PRODUCER)[0])  # imports send lineage
    for ns in (NS, "etl", "atlas://prod"):  # a producer on the namespaces its lineage touches
        NamespaceProducer.objects.create(namespace=ns, producer=data_steward)
    catalog.tag_create(actor=data_steward, key="pii.email", implied_level="C3", description="An e-mail address")
    catalog.tag_create(actor=data_steward, key="finance", propagates=False)
    with django_capture_on_commit_callbacks(execute=True):
        catalog.dataset_create(
            actor=data_steward,
            spec=spec(
                {
                    "namespace": NS,
                    "name": "crm.customers",
                    "description": "Customers",
                    "classification": "C2",
                    "properties": {"retention": "7y"},
                    "fields": [
                        {"name": "id", "type": "bigint"},
                        {"name": "email", "type": "varchar", "tags": ["pii.email"], "description": "Contact"},
                    ],
                }
            ),
        )
        catalog.dataset_create(
            actor=data_steward,
            spec=spec(
                {
                    "namespace": NS,
                    "name": "sales.orders",
                    "tags": ["finance"],
                    "fields": [{"name": "customer_id", "type": "bigint"}, {"name": "amount", "type": "numeric"}],
                }
            ),
        )
    ingest(
        actor=data_steward,
        events=[
            complete(
                "build_report",
                ["crm.customers", "sales.orders"],
                [],
                run_id="00000000-0000-4000-8000-000000000001",
            )
            | {
                "outputs": [
                    dataset(
                        "marts.report",
                        fields=["email", "total"],
                        columns={"email": [("crm.customers", "email")], "total": [("sales.orders", "amount")]},
                    )
                ]
            }
        ],
        batch=True,
    )
    drain()
    return data_steward


def _by_type(doc: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {e["attributes"]["qualifiedName"]: e for e in doc["entities"] if e["typeName"] == type_name}


def _snapshot() -> dict[str, Any]:
    """What a round trip must keep: names, schemas, direct levels and tags, dataset and column lineage."""
    out: dict[str, Any] = {"datasets": {}, "lineage": set(), "columns": set(), "tags": {}}
    for ds in Dataset.objects.prefetch_related("fields__tag_assignments__tag", "tag_assignments__tag"):
        out["datasets"][(ds.namespace, ds.name)] = {
            "description": ds.description,
            "classification": ds.classification,
            "properties": ds.properties,
            "tags": sorted(a.tag.key for a in ds.tag_assignments.all() if a.field_id is None),
            "fields": [
                (f.name, f.type, f.description, f.classification, sorted(a.tag.key for a in f.tag_assignments.all()))
                for f in ds.fields.order_by("ordinal")
            ],
        }
    for e in Edge.objects.filter(valid_to__isnull=True).select_related("job", "source", "target"):
        out["lineage"].add((e.job.namespace, e.job.name, e.source.name, e.target.name))
    for c in ColumnEdge.objects.filter(valid_to__isnull=True).select_related("source_dataset", "target_dataset"):
        out["columns"].add((c.source_dataset.name, c.source_field, c.target_dataset.name, c.target_field))
    out["tags"] = {t.key: (t.implied_level, t.propagates) for t in Tag.objects.all()}
    return out


def test_export_is_atlas_typedefs_and_entities(estate):
    doc = build_export()
    validate_document(doc)
    types = doc["typeDefs"]
    classes = {c["name"]: c for c in types["classificationDefs"]}
    assert {"C1", "C2", "C3", "C4", "tag_pii_email", "tag_finance"} <= set(classes)
    assert classes["tag_pii_email"]["options"] == {
        "steward.tag": "pii.email",
        "steward.impliedLevel": "C3",
        "steward.propagates": "true",
    }
    # pyapacheatlas reads every type and entity back.
    for d in types["entityDefs"]:
        assert EntityTypeDef(**{k: v for k, v in d.items() if k != "category"}).to_json()["name"] == d["name"]
    for d in types["classificationDefs"]:
        ClassificationTypeDef(**{k: v for k, v in d.items() if k != "category"})
    parsed = [AtlasEntity.from_json(e) for e in doc["entities"]]
    assert len(parsed) == len(doc["entities"])

    datasets = _by_type(doc, "steward_dataset")
    customers = datasets[f"crm.customers@{NS}"]
    assert customers["attributes"]["namespace"] == NS
    assert [(c["typeName"], c["propagate"]) for c in customers["classifications"]] == [("C2", False)]
    columns = _by_type(doc, "steward_column")
    email = columns[f"crm.customers#email@{NS}"]
    assert email["attributes"]["type"] == "varchar" and email["attributes"]["description"] == "Contact"
    assert email["relationshipAttributes"]["table"]["guid"] == customers["guid"]
    assert [c["typeName"] for c in email["classifications"]] == ["tag_pii_email"]
    assert all(not c["propagate"] for e in doc["entities"] for c in e.get("classifications", []))

    (proc,) = _by_type(doc, "steward_process").values()
    assert isinstance(AtlasEntity.from_json(proc), AtlasEntity)
    assert proc["attributes"]["name"] == "build_report"
    assert {r["uniqueAttributes"]["qualifiedName"] for r in proc["attributes"]["inputs"]} == {
        f"crm.customers@{NS}",
        f"sales.orders@{NS}",
    }
    assert [r["uniqueAttributes"]["qualifiedName"] for r in proc["attributes"]["outputs"]] == [f"marts.report@{NS}"]
    lineage = _by_type(doc, "steward_column_lineage")
    total = next(
        e
        for e in lineage.values()
        if e["attributes"]["outputs"][0]["guid"] == columns[f"marts.report#total@{NS}"]["guid"]
    )
    assert [r["guid"] for r in total["attributes"]["inputs"]] == [columns[f"sales.orders#amount@{NS}"]["guid"]]
    assert total["relationshipAttributes"]["query"]["guid"] == proc["guid"]
    assert isinstance(AtlasProcess.from_json(total), AtlasEntity)


def test_round_trip_keeps_names_schemas_lineage_and_classifications(estate, tmp_path):
    before = _snapshot()
    out = tmp_path / "atlas.json"
    call_command("atlas_export", output=str(out), verbosity=0)
    # A fresh Steward: nothing of the estate left.
    Edge.objects.all().delete()
    ColumnEdge.objects.all().delete()
    LineageEvent.objects.all().delete()
    Job.objects.all().delete()
    Dataset.objects.all().delete()
    Tag.objects.all().delete()
    assert _snapshot()["datasets"] == {}

    call_command("atlas_import", str(out), actor=estate.username, verbosity=0)
    drain()
    after = _snapshot()
    assert after == before
    assert Dataset.objects.get(name="marts.report").effective_classification == "C3"  # recomputed by Steward


def test_import_is_idempotent(estate, tmp_path):
    doc = build_export()
    first = import_document(doc, actor=estate)
    assert first.datasets_unchanged == 3 and first.lineage_events_new == 1  # one new run: the import's own
    events = LineageEvent.objects.count()
    again = import_document(doc, actor=estate)
    assert (again.datasets_created, again.datasets_updated, again.datasets_unchanged) == (0, 0, 3)
    assert again.lineage_events_new == 0 and again.tags_created == []
    assert LineageEvent.objects.count() == events


def test_import_of_an_atlas_native_document(estate):
    """Entities as Atlas's own hook would write them (hive types, no Steward options): cluster → namespace."""
    data_steward = estate
    table = AtlasEntity("orders", "hive_table", "sales.orders@prod", guid="-1")
    table.classifications = [{"typeName": "PII", "propagate": True}, {"typeName": "C4"}]
    col = AtlasEntity("card_no", "hive_column", "sales.orders.card_no@prod", guid="-2", attributes={"type": "string"})
    col.relationshipAttributes = {"table": table.to_json(minimum=True)}
    out = AtlasEntity("orders_clean", "hive_table", "sales.orders_clean@prod", guid="-3")
    proc = AtlasProcess("clean", "hive_process", "clean@prod", inputs=[table], outputs=[out], guid="-4")
    doc = {"entities": [e.to_json() for e in (table, col, out, proc)]}
    result = import_document(doc, actor=data_steward)
    assert result.tags_created == ["pii"] and result.datasets_created == 2
    orders = Dataset.objects.get(namespace="atlas://prod", name="sales.orders")
    assert orders.classification == "C4"
    assert list(orders.fields.values_list("name", "type")) == [("card_no", "string")]
    assert list(orders.tag_assignments.values_list("tag__key", flat=True)) == ["pii"]
    assert Edge.objects.filter(source=orders, target__name="sales.orders_clean", job__name="clean").exists()


def test_a_bad_document_is_refused_naming_the_problem(estate):
    doc = build_export()
    doc["entities"][0]["classifications"].append({"typeName": "NoSuchLevel"})
    doc["entities"][1]["attributes"]["colour"] = "blue"
    with pytest.raises(ValidationFailed) as exc:
        import_document(doc, actor=estate)
    messages = {p.field: p.message for p in exc.value.problems}
    assert messages["entities[0].classifications[1]"] == "Unknown classification 'NoSuchLevel'."
    assert "Not an attribute of" in messages["entities[1].attributes.colour"]


def test_import_by_someone_who_may_not_create_tags_is_refused(estate, data_scientist, tmp_path):
    path = tmp_path / "doc.json"
    call_command("atlas_export", output=str(path), verbosity=0)
    Dataset.objects.filter(name="crm.customers").delete()
    Tag.objects.filter(key="finance").update(key="finance-old")
    with pytest.raises(CommandError, match="tag vocabulary"):
        call_command("atlas_import", str(path), actor=data_scientist.username, verbosity=0)
    assert not Tag.objects.filter(key="finance").exists()
    assert not Dataset.objects.filter(name="crm.customers").exists()  # all or nothing


def test_import_needs_a_known_actor(tmp_path, db):
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"entities": []}))
    with pytest.raises(CommandError, match="no user 'nobody'"):
        call_command("atlas_import", str(path), actor="nobody", verbosity=0)


# --- Push (the one outside service: a local HTTP server records the calls) -------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    calls: list[tuple[str, str, dict[str, str], Any]] = []

    def _reply(self, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.calls.append((self.command, self.path, dict(self.headers), body))
        return body

    def do_GET(self) -> None:
        self._record()
        # One of our types exists already (a second push): it is updated (PUT), the rest created (POST).
        self._reply([{"category": "CLASSIFICATION", "name": "C1", "guid": "g-c1"}])

    def do_POST(self) -> None:
        body = self._record()
        self._reply({"mutatedEntities": {"CREATE": body.get("entities", [])}} if "entities" in (body or {}) else body)

    def do_PUT(self) -> None:
        self._reply(self._record())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def atlas_recorder():
    _Recorder.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", _Recorder.calls
    server.shutdown()
    server.server_close()


def test_push_sends_typedefs_then_entities_to_atlas(estate, atlas_recorder, settings):
    url, calls = atlas_recorder
    settings.STEWARD_ATLAS_URL = url
    settings.STEWARD_ATLAS_USERNAME, settings.STEWARD_ATLAS_PASSWORD = "steward", "s3cret"
    call_command("atlas_export", push=True, verbosity=0)
    assert [(m, p) for m, p, _, _ in calls] == [
        ("GET", "/api/atlas/v2/types/typedefs/headers"),
        ("POST", "/api/atlas/v2/types/typedefs"),
        ("PUT", "/api/atlas/v2/types/typedefs"),
        ("POST", "/api/atlas/v2/entity/bulk"),
    ]
    auth = calls[0][2]["Authorization"]
    assert base64.b64decode(auth.split()[1]).decode() == "steward:s3cret"
    created = calls[1][3]
    assert {d["name"] for d in created["entityDefs"]} == {
        "steward_dataset",
        "steward_column",
        "steward_process",
        "steward_column_lineage",
    }
    assert [c["name"] for c in calls[2][3]["classificationDefs"]] == ["C1"]
    entities = calls[3][3]["entities"]
    assert {e["typeName"] for e in entities} == {
        "steward_dataset",
        "steward_column",
        "steward_process",
        "steward_column_lineage",
    }
    assert len(entities) == len(build_export()["entities"])


def test_incremental_export_has_only_what_changed(estate, data_steward):
    from django.utils import timezone

    mark = timezone.now()
    catalog.dataset_create(actor=data_steward, spec=spec({"namespace": NS, "name": "late.table"}))
    doc = build_export(since=mark)
    assert set(_by_type(doc, "steward_dataset")) == {f"late.table@{NS}"}
    assert _by_type(doc, "steward_process") == {}


def test_push_without_an_endpoint_is_refused(estate, settings):
    settings.STEWARD_ATLAS_URL = ""
    with pytest.raises(ValidationFailed, match="STEWARD_ATLAS_URL"):
        call_command("atlas_export", push=True, verbosity=0)


def test_scheduled_push_sends_only_what_changed_since_the_last_push(estate, atlas_recorder, settings, tmp_path):
    from interop.tasks import atlas_push_task

    url, calls = atlas_recorder
    settings.STEWARD_ATLAS_URL, settings.STATE_DIR = url, tmp_path
    assert atlas_push_task() == len(build_export()["entities"])  # the first push: everything
    calls.clear()
    assert atlas_push_task() == 0  # nothing changed: Atlas is not called
    assert calls == []
    catalog.dataset_create(actor=estate, spec=spec({"namespace": NS, "name": "late.table"}))
    assert atlas_push_task() == 1
    (bulk,) = [body for method, path, _, body in calls if path.endswith("/entity/bulk")]
    assert [e["attributes"]["qualifiedName"] for e in bulk["entities"]] == [f"late.table@{NS}"]
