"""The dbt reader on a real dbt project built by dbt-core + dbt-postgres against the test PostgreSQL.

The module's fixture installs dbt through ``scripts/dbt.sh`` (a tool venv outside the clone), creates a database
(``steward_dbt_test<suffix>``) with the project's source table, copies ``tests/sources/dbt_project`` to a temporary
directory and runs ``dbt seed``, ``dbt-ol run`` (openlineage-dbt's wrapper around ``dbt run``, writing its events
to a file) and ``dbt docs generate``. The reader's snapshot is then compared with the manifest's DAG and with the
events openlineage-dbt itself emitted for the same run, so both paths meet on the same datasets and jobs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from connectors.sources.base import SourceError, SourceSnapshot
from connectors.sources.dbt import DbtReader
from lineage.openlineage import parse_event
from steward.errors import ProblemCollector
from tests.dataplane import admin, server

pytestmark = pytest.mark.slow  # runs dbt (and installs it on a fresh machine)

ROOT = Path(__file__).resolve().parents[2]
PROJECT = Path(__file__).resolve().parent / "dbt_project"
SUFFIX = os.environ.get("STEWARD_TEST_DB_SUFFIX", "")
DB = f"steward_dbt_test{SUFFIX}"


@dataclass
class Built:
    project_dir: Path
    manifest: dict[str, Any]
    catalog: dict[str, Any]
    namespace: str
    openlineage_dbt_events: list[dict[str, Any]]


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    dbt = subprocess.run(
        ["bash", str(ROOT / "scripts" / "dbt.sh")], capture_output=True, text=True, timeout=900, check=True
    ).stdout.strip()
    pg = server()
    with admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB)))
    with admin(DB) as conn:
        conn.execute("CREATE SCHEMA shop")
        conn.execute(
            "CREATE TABLE shop.orders (id int PRIMARY KEY, customer_id int NOT NULL, ordered_at timestamptz, "
            "status text)"
        )
        conn.execute(
            "INSERT INTO shop.orders VALUES (1, 1, '2026-01-02', 'shipped'), (2, 2, '2026-01-03', 'placed'), "
            "(3, 1, '2026-01-04', 'returned')"
        )

    project = tmp_path_factory.mktemp("dbt") / "jaffle_shop"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    profile = {
        "steward_dbt": {
            "target": "test",
            "outputs": {
                "test": {
                    "type": "postgres",
                    "host": pg["host"],
                    "port": int(pg["port"]),
                    "user": pg["user"],
                    "password": pg["password"],
                    "dbname": DB,
                    "schema": "analytics",
                    "threads": 2,
                }
            },
        }
    }
    (project / "profiles.yml").write_text(json.dumps(profile))  # JSON is YAML
    events_file = project / "openlineage.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENLINEAGE", "DBT_"))}
    env |= {
        "PATH": f"{Path(dbt).parent}{os.pathsep}{env.get('PATH', '')}",  # dbt-ol runs `dbt` from PATH
        "DBT_PROFILES_DIR": str(project),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_PARTIAL_PARSE": "false",
        "OPENLINEAGE__TRANSPORT__TYPE": "file",
        "OPENLINEAGE__TRANSPORT__LOG_FILE_PATH": str(events_file),
        "OPENLINEAGE__TRANSPORT__APPEND": "true",
    }
    _run([dbt, "seed", "--quiet"], project, env)
    _run([str(Path(dbt).parent / "dbt-ol"), "run", "--quiet"], project, env)
    _run([dbt, "docs", "generate", "--quiet"], project, env)
    with admin(DB) as conn:
        conn.execute("ANALYZE")  # row estimates final now, so a warehouse crawl sees no change unless a test makes one
    target = project / "target"
    yield Built(
        project_dir=project,
        manifest=json.loads((target / "manifest.json").read_text()),
        catalog=json.loads((target / "catalog.json").read_text()),
        namespace=f"postgres://{pg['host']}:{pg['port']}",
        openlineage_dbt_events=[json.loads(line) for line in events_file.read_text().splitlines() if line.strip()],
    )
    with admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))


@pytest.fixture(scope="module")
def snapshot(built: Built) -> SourceSnapshot:
    return DbtReader().read({"project_dir": str(built.project_dir)}, {})


def _name(schema: str, table: str) -> str:
    return f"{DB}.{schema}.{table}"


def _datasets(snapshot: SourceSnapshot) -> dict[str, Any]:
    return {d.name: d for d in snapshot.datasets}


def _events(snapshot: SourceSnapshot) -> dict[str, dict[str, Any]]:
    return {e["outputs"][0]["name"]: e for e in snapshot.lineage_events}


def _manifest_parents(manifest: dict[str, Any], unique_id: str) -> set[str]:
    """A node's parents in the manifest DAG, an ephemeral model replaced by its own parents (it is a CTE)."""
    out: set[str] = set()
    for parent in manifest["parent_map"][unique_id]:
        node = manifest["nodes"].get(parent) or manifest["sources"][parent]
        if node.get("config", {}).get("materialized") == "ephemeral":
            out |= _manifest_parents(manifest, parent)
        else:
            out.add(parent)
    return out


def _relation(manifest: dict[str, Any], unique_id: str) -> str:
    node = manifest["nodes"].get(unique_id) or manifest["sources"][unique_id]
    table = node["name"] if unique_id.startswith("source.") else node["alias"]
    return f"{node['database']}.{node['schema']}.{table}"


# ---------------------------------------------------------------------------------------------------------------
# Datasets


def test_models_seeds_and_sources_become_datasets_named_like_openlineage(built: Built, snapshot: SourceSnapshot):
    datasets = _datasets(snapshot)
    assert snapshot.complete and snapshot.warnings == []
    assert {d.namespace for d in snapshot.datasets} == {built.namespace}
    assert {name: d.kind for name, d in datasets.items()} == {
        _name("shop", "orders"): "source",
        _name("analytics_raw", "raw_customers"): "seed",
        _name("analytics_raw", "raw_payments"): "seed",
        _name("analytics_staging", "stg_customers"): "model",
        _name("analytics_staging", "stg_orders"): "model",
        _name("analytics_staging", "stg_payments"): "model",
        _name("analytics_marts", "fct_orders"): "model",  # the model `orders`, under its alias
        _name("analytics_marts", "customers"): "model",
    }  # the ephemeral order_payments is no relation, so no dataset

    customers = datasets[_name("analytics_marts", "customers")]
    assert customers.description == "One row per customer with their order history."
    assert customers.owners == ("analytics-team", "finance-team")
    assert customers.tags == ("customer", "finance")
    # Columns in the table's order with the warehouse's types (catalog.json), described from the manifest.
    assert [(c.name, c.type, c.ordinal) for c in customers.columns] == [
        ("customer_id", "integer", 1),
        ("full_name", "text", 2),
        ("email", "text", 3),
        ("number_of_orders", "bigint", 4),
        ("first_order_date", "date", 5),
        ("lifetime_value", "numeric", 6),
    ]
    by_name = {c.name: c for c in customers.columns}
    assert by_name["full_name"].description == "First and last name."
    assert by_name["full_name"].tags == ("pii",)
    assert by_name["email"].description == ""
    assert by_name["customer_id"].nullable is False  # its not_null test
    assert by_name["full_name"].nullable is None  # nothing says
    assert customers.properties["dbt_unique_id"] == "model.jaffle_shop.customers"
    assert customers.properties["dbt_materialized"] == "table"
    assert customers.properties["dbt_column_tests"] == {"customer_id": ["not_null", "unique"]}
    assert sorted((t["name"], t["column"], t["severity"]) for t in customers.properties["dbt_tests"]) == [
        ("not_null", "customer_id", "ERROR"),
        ("unique", "customer_id", "ERROR"),
    ]

    stg_orders = datasets[_name("analytics_staging", "stg_orders")]
    assert stg_orders.tags == ("staging",) and stg_orders.owners == ()
    assert stg_orders.properties["relation_type"] == "VIEW"
    assert stg_orders.properties["dbt_column_tests"] == {
        "order_id": ["not_null", "unique"],
        "status": ["accepted_values"],
    }

    source = datasets[_name("shop", "orders")]
    assert source.description == "One row per order placed in the shop."
    assert source.owners == ("shop-team",)
    assert [(c.name, c.type) for c in source.columns] == [
        ("id", "integer"),
        ("customer_id", "integer"),
        ("ordered_at", "timestamp with time zone"),
        ("status", "text"),
    ]
    described = {c.name: c.description for c in source.columns}
    assert described["status"] == "Where the order is (placed, shipped, returned)."
    assert source.properties["dbt_column_tests"] == {"id": ["not_null"]}  # a source test, attached by its parent

    seed = datasets[_name("analytics_raw", "raw_customers")]
    assert (seed.owners, seed.tags) == (("crm-team",), ("pii",))
    assert {c.name: c.tags for c in seed.columns}["email"] == ("pii",)


def test_every_dbt_test_is_recorded_on_the_dataset_it_tests(built: Built, snapshot: SourceSnapshot):
    recorded = {
        test["unique_id"]: d.properties["dbt_unique_id"]
        for d in snapshot.datasets
        for test in d.properties.get("dbt_tests", [])
    }
    expected = {
        uid: (node.get("attached_node") or built.manifest["parent_map"][uid][0])
        for uid, node in built.manifest["nodes"].items()
        if node["resource_type"] == "test"
    }
    assert len(expected) == 13 and recorded == expected


# ---------------------------------------------------------------------------------------------------------------
# Lineage


def test_one_complete_event_per_model_whose_inputs_are_its_parents_in_the_manifest(
    built: Built, snapshot: SourceSnapshot
):
    manifest = built.manifest
    models = {
        uid: node
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node["config"]["materialized"] != "ephemeral"
    }
    events = _events(snapshot)
    assert len(snapshot.lineage_events) == len(models) == 5
    for uid in models:
        event = events[_relation(manifest, uid)]
        assert event["eventType"] == "COMPLETE"
        assert {(i["namespace"], i["name"]) for i in event["inputs"]} == {
            (built.namespace, _relation(manifest, p)) for p in _manifest_parents(manifest, uid)
        }, uid
        problems = ProblemCollector()
        assert parse_event(event, problems) is not None, problems.problems  # Steward's own OpenLineage intake
    # The DAG by hand: seeds feed staging, the ephemeral model's parent feeds the orders mart.
    inputs = {out: sorted(i["name"] for i in e["inputs"]) for out, e in events.items()}
    assert inputs == {
        _name("analytics_staging", "stg_customers"): [_name("analytics_raw", "raw_customers")],
        _name("analytics_staging", "stg_orders"): [_name("shop", "orders")],
        _name("analytics_staging", "stg_payments"): [_name("analytics_raw", "raw_payments")],
        _name("analytics_marts", "fct_orders"): [
            _name("analytics_staging", "stg_orders"),
            _name("analytics_staging", "stg_payments"),
        ],
        _name("analytics_marts", "customers"): [
            _name("analytics_marts", "fct_orders"),
            _name("analytics_staging", "stg_customers"),
        ],
    }


def test_column_lineage_from_the_compiled_sql(snapshot: SourceSnapshot):
    def lineage(table: str) -> dict[str, list[tuple[str, str]]]:
        fields = _events(snapshot)[table]["outputs"][0]["facets"]["columnLineage"]["fields"]
        return {out: [(f["name"], f["field"]) for f in spec["inputFields"]] for out, spec in fields.items()}

    customers = lineage(_name("analytics_marts", "customers"))
    stg_customers, fct_orders = _name("analytics_staging", "stg_customers"), _name("analytics_marts", "fct_orders")
    assert customers == {
        "customer_id": [(stg_customers, "customer_id")],
        "email": [(stg_customers, "email")],
        "first_order_date": [(fct_orders, "order_date")],
        "full_name": [(stg_customers, "first_name"), (stg_customers, "last_name")],
        "lifetime_value": [(fct_orders, "amount")],
        # number_of_orders is count(*) in a CTE: no input column, so no entry
    }
    # Through the ephemeral model's CTE down to the staging view it reads.
    assert lineage(fct_orders)["amount"] == [(_name("analytics_staging", "stg_payments"), "amount")]
    assert lineage(_name("analytics_staging", "stg_orders"))["order_date"] == [(_name("shop", "orders"), "ordered_at")]


def test_jobs_and_datasets_are_named_as_openlineage_dbt_names_them(built: Built, snapshot: SourceSnapshot):
    """``dbt-ol run`` on the same project: every model job it reported is ours, on the same datasets."""
    theirs = [e for e in built.openlineage_dbt_events if e["eventType"] == "COMPLETE" and e.get("outputs")]
    assert len(theirs) == 5
    ours = {(e["job"]["namespace"], e["job"]["name"]): e for e in snapshot.lineage_events}
    assert set(ours) == {(e["job"]["namespace"], e["job"]["name"]) for e in theirs}
    assert ("dbt", f"{DB}.analytics_marts.jaffle_shop.customers") in ours
    ephemeral = _name("analytics_marts", "order_payments")
    seeds = {_name("analytics_raw", "raw_customers"), _name("analytics_raw", "raw_payments")}
    for event in theirs:
        mine = ours[(event["job"]["namespace"], event["job"]["name"])]
        assert [(o["namespace"], o["name"]) for o in mine["outputs"]] == [
            (o["namespace"], o["name"]) for o in event["outputs"]
        ]
        their_inputs = {i["name"] for i in event["inputs"]}
        my_inputs = {i["name"] for i in mine["inputs"]}
        # The two deliberate differences (connectors/sources/dbt.py): seeds are inputs here, and an ephemeral
        # model (which openlineage-dbt names as if it were a relation) is replaced by what it reads.
        assert their_inputs - {ephemeral} <= my_inputs
        read_by_ephemeral = {_name("analytics_staging", "stg_payments")}
        assert my_inputs - their_inputs <= seeds | read_by_ephemeral
        # Column lineage: the same parser, the same answer, less the entries whose origin is no table.
        their_fields = {
            out: sorted((f["namespace"], f["name"], f["field"]) for f in spec["inputFields"] if "." in f["name"])
            for out, spec in event["outputs"][0]["facets"].get("columnLineage", {}).get("fields", {}).items()
        }
        my_fields = {
            out: sorted((f["namespace"], f["name"], f["field"]) for f in spec["inputFields"])
            for out, spec in mine["outputs"][0]["facets"].get("columnLineage", {}).get("fields", {}).items()
        }
        assert my_fields == {k: v for k, v in their_fields.items() if v}, event["job"]["name"]


def test_column_origins_named_after_a_qualifier_resolve_to_the_input_table(built: Built, tmp_path: Path):
    """openlineage-sql names the origin of ``orders.id`` in ``FROM shop.orders`` after the model's own schema;
    the reader resolves it to the one input of that name instead of naming a dataset that does not exist."""
    manifest = json.loads((built.project_dir / "target" / "manifest.json").read_text())
    node = manifest["nodes"]["model.jaffle_shop.stg_orders"]
    node["compiled_code"] = "SELECT orders.id AS order_id, orders.status FROM shop.orders"
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    snap = DbtReader().read({"manifest_path": str(path), "namespace": built.namespace}, {})
    fields = _events(snap)[_name("analytics_staging", "stg_orders")]["outputs"][0]["facets"]["columnLineage"]["fields"]
    assert {out: [(f["name"], f["field"]) for f in spec["inputFields"]] for out, spec in fields.items()} == {
        "order_id": [(_name("shop", "orders"), "id")],
        "status": [(_name("shop", "orders"), "status")],
    }


def test_reading_twice_gives_the_same_snapshot(built: Built, snapshot: SourceSnapshot):
    seen: list[tuple[int, int | None, str]] = []
    again = DbtReader().read({"project_dir": str(built.project_dir)}, {}, lambda d, t, w: seen.append((d, t, w)))
    assert again == snapshot  # run ids derive from the invocation and the node
    assert seen[-1][:2] == (13, 13) and seen[0][2] == "model.jaffle_shop.customers"


# ---------------------------------------------------------------------------------------------------------------
# Configuration and errors


def test_explicit_artifact_paths_and_namespace(built: Built):
    target = built.project_dir / "target"
    snap = DbtReader().read(
        {
            "manifest_path": str(target / "manifest.json"),
            "catalog_path": str(target / "catalog.json"),
            "namespace": "postgres://warehouse.internal:5432/",
            "job_namespace": "analytics-dbt",
        },
        {},
    )
    assert {d.namespace for d in snap.datasets} == {"postgres://warehouse.internal:5432"}
    assert {e["job"]["namespace"] for e in snap.lineage_events} == {"analytics-dbt"}
    assert {i["namespace"] for e in snap.lineage_events for i in e["inputs"]} == {"postgres://warehouse.internal:5432"}


def test_namespace_from_a_profile_with_env_vars(built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "profiles.yml").write_text(
        "steward_dbt:\n  target: prod\n  outputs:\n    prod:\n      type: postgres\n"
        "      host: \"{{ env_var('STEWARD_TEST_DBT_HOST', 'db.internal') }}\"\n"
        "      port: \"{{ env_var('STEWARD_TEST_DBT_PORT') | as_number }}\"\n"
        "      user: u\n      password: \"{{ env_var('STEWARD_TEST_DBT_PASSWORD') }}\"\n"
    )
    config = {"project_dir": str(built.project_dir), "profiles_dir": str(tmp_path)}
    monkeypatch.setenv("STEWARD_TEST_DBT_PORT", "6543")
    snap = DbtReader().read(config, {})
    assert snap.datasets[0].namespace == "postgres://db.internal:6543"

    monkeypatch.delenv("STEWARD_TEST_DBT_PORT")
    with pytest.raises(SourceError, match="STEWARD_TEST_DBT_PORT.*set config.namespace"):
        DbtReader().read(config, {})
    with pytest.raises(SourceError, match="no target 'dev': set config.target"):
        DbtReader().read({**config, "target": "dev"}, {})


def test_missing_catalog_is_a_warning_and_columns_come_from_the_manifest(built: Built):
    snap = DbtReader().read(
        {"manifest_path": str(built.project_dir / "target" / "manifest.json"), "namespace": built.namespace}, {}
    )
    assert snap.warnings == ["No catalog.json given: column types come from the manifest's data_type only."]
    customers = _datasets(snap)[_name("analytics_marts", "customers")]
    assert [(c.name, c.type) for c in customers.columns] == [
        ("customer_id", ""),
        ("full_name", ""),
        ("lifetime_value", ""),
    ]  # the documented columns only, untyped
    assert len(snap.lineage_events) == 5


def test_errors_say_what_to_do(built: Built, tmp_path: Path):
    reader = DbtReader()
    with pytest.raises(SourceError, match="config.project_dir .* or config.manifest_path"):
        reader.read({}, {})
    with pytest.raises(SourceError, match="is not a directory"):
        reader.read({"project_dir": str(tmp_path / "nowhere")}, {})
    with pytest.raises(SourceError, match=r"No dbt manifest at .*run `dbt compile`"):
        reader.read({"project_dir": str(tmp_path)}, {})

    manifest = json.loads((built.project_dir / "target" / "manifest.json").read_text())
    manifest["metadata"]["dbt_schema_version"] = "https://schemas.getdbt.com/dbt/manifest/v4.json"
    old = tmp_path / "old.json"
    old.write_text(json.dumps(manifest))
    with pytest.raises(SourceError, match=r"schema v4 .* reads v7 to v12 .* regenerate it"):
        reader.read({"manifest_path": str(old), "namespace": built.namespace}, {})

    catalog = built.project_dir / "target" / "catalog.json"
    with pytest.raises(SourceError, match="is not a dbt manifest"):
        reader.read({"manifest_path": str(catalog), "namespace": built.namespace}, {})
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SourceError, match="not valid JSON"):
        reader.read({"manifest_path": str(broken), "namespace": built.namespace}, {})
    with pytest.raises(SourceError, match="set config.namespace"):
        reader.read({"manifest_path": str(built.project_dir / "target" / "manifest.json")}, {})
    with pytest.raises(SourceError, match="not a namespace URI"):
        reader.read({"project_dir": str(built.project_dir), "namespace": "warehouse"}, {})


# ---------------------------------------------------------------------------------------------------------------
# End to end: a dbt source crawled into the catalog and lineage, beside a PostgreSQL source of the same warehouse


def _create_source(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/sources", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _crawl(client: Any, source_id: str, capture: Any) -> dict[str, Any]:
    with capture(execute=True):
        response = client.post(f"/api/v1/sources/{source_id}/crawl")
    assert response.status_code == 202, response.content
    run = client.get(f"/api/v1/sources/{source_id}/runs").json()["results"][0]
    assert run["state"] == "succeeded", run["error"]
    return run


def _lookup(client: Any, namespace: str, name: str) -> dict[str, Any]:
    response = client.get("/api/v1/datasets/lookup", {"namespace": namespace, "name": name})
    assert response.status_code == 200, response.content
    return response.json()


def _upstream(client: Any, namespace: str, name: str, *, columns: bool = False) -> dict[str, Any]:
    response = client.get(
        "/api/v1/lineage/graph",
        {"namespace": namespace, "name": name, "direction": "upstream", "depth": 1, "columns": str(columns).lower()},
    )
    assert response.status_code == 200, response.content
    return response.json()


def _warehouse_and_project(built: Built, steward: Any, capture: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The dbt database crawled as a PostgreSQL source, then the dbt project as a dbt source."""
    from django.contrib.auth.models import Group

    from catalog.models import Tag

    for team in ("analytics-team", "finance-team", "shop-team"):
        Group.objects.create(name=team)  # meta.owner names resolve to these groups
    for key in ("finance", "pii"):
        Tag.objects.create(key=key)  # in Steward's vocabulary; "staging" and "customer" are not
    pg = server()

    # The warehouse crawled as PostgreSQL first: every relation dbt built, and the source table.
    warehouse = _create_source(
        steward,
        {
            "name": "warehouse",
            "kind": "postgres",
            "config": {"host": pg["host"], "port": int(pg["port"]), "database": DB},
            "credentials": {"user": pg["user"], "password": pg["password"]},
        },
    )
    run = _crawl(steward, warehouse["id"], capture)
    assert run["created"] == 8

    # Then the dbt project: the same eight datasets, described, owned and tagged, with the model DAG as lineage.
    project = _create_source(
        steward, {"name": "jaffle-shop", "kind": "dbt", "config": {"project_dir": str(built.project_dir)}}
    )
    run = _crawl(steward, project["id"], capture)
    assert (run["created"], run["updated"], run["removed"]) == (0, 8, 0)
    return warehouse, project


@pytest.mark.django_db
def test_dbt_source_crawled_into_catalog_and_lineage_meets_the_postgres_crawl(
    built: Built, client_for, data_steward, django_capture_on_commit_callbacks
):
    from sources.models import SourceDataset

    capture = django_capture_on_commit_callbacks
    steward = client_for(data_steward)
    ns = built.namespace
    warehouse, project = _warehouse_and_project(built, steward, capture)
    # They met: every dataset of the dbt source is one the warehouse crawl made.
    by_source = {
        name: set(SourceDataset.objects.filter(source__name=name).values_list("dataset_id", flat=True))
        for name in ("warehouse", "jaffle-shop")
    }
    assert len(by_source["jaffle-shop"]) == 8 and by_source["jaffle-shop"] == by_source["warehouse"]

    customers = _lookup(steward, ns, _name("analytics_marts", "customers"))
    assert customers["description"] == "One row per customer with their order history."
    assert sorted(o["name"] for o in customers["owners"]) == ["analytics-team", "finance-team"]
    assert [t["key"] if isinstance(t, dict) else t for t in customers["tags"]] == ["finance"]
    fields = {f["name"]: f for f in customers["fields"]}
    assert [f["name"] for f in customers["fields"]] == [
        "customer_id",
        "full_name",
        "email",
        "number_of_orders",
        "first_order_date",
        "lifetime_value",
    ]
    assert (fields["full_name"]["type"], fields["full_name"]["description"]) == ("text", "First and last name.")
    assert "pii" in str(fields["full_name"]["tags"])
    # Each source's say is kept beside the other's, by source id.
    said = customers["producer"]["sources"]
    assert said[project["id"]]["name"] == "jaffle-shop" and said[project["id"]]["kind"] == "model"
    assert said[warehouse["id"]]["name"] == "warehouse" and said[warehouse["id"]]["kind"] == "table"
    said = said[project["id"]]
    assert said["properties"]["dbt_column_tests"] == {"customer_id": ["not_null", "unique"]}
    assert "customer" in customers["producer"]["unknown_tags"]
    source_table = _lookup(steward, ns, _name("shop", "orders"))
    assert source_table["description"] == "One row per order placed in the shop."
    assert [o["name"] for o in source_table["owners"]] == ["shop-team"]

    # The lineage graph through the API is the manifest's DAG: each model's dbt job reads the model's parents.
    # (The warehouse crawl adds a job per view, from the view's SQL; only the dbt jobs are the manifest's.)
    manifest = built.manifest
    for uid, node in manifest["nodes"].items():
        if node["resource_type"] != "model" or node["config"]["materialized"] == "ephemeral":
            continue
        name = _relation(manifest, uid)
        graph = _upstream(steward, ns, name)
        names = {n["id"]: n.get("name") for n in graph["nodes"]}
        [job] = [n["id"] for n in graph["nodes"] if n.get("kind") == "job" and n.get("namespace") == "dbt"]
        assert names[job] == f"{node['database']}.{node['schema']}.{uid.removeprefix('model.')}"
        assert {names[e["target"]] for e in graph["edges"] if e["source"] == job} == {name}
        upstream = {names[e["source"]] for e in graph["edges"] if e["target"] == job}
        assert upstream == {_relation(manifest, p) for p in _manifest_parents(manifest, uid)}, uid
    graph = _upstream(steward, ns, _name("analytics_marts", "customers"), columns=True)
    ids = {n["id"].removeprefix("dataset:"): n["name"] for n in graph["nodes"] if n.get("kind") == "dataset"}

    def column(node_id: str) -> str:
        _, ds, field = node_id.split(":", 2)
        return f"{ids[ds].rsplit('.', 1)[1]}.{field}"

    column_edges = {
        (column(e["source"]), column(e["target"]))
        for e in graph["edges"]
        if e["kind"] == "column" and e["target"].startswith("column:")
    }
    assert {("stg_customers.first_name", "customers.full_name"), ("fct_orders.amount", "customers.lifetime_value")} <= (
        column_edges
    )

    # Crawling the unchanged project or warehouse again writes nothing.
    run = _crawl(steward, project["id"], capture)
    assert (run["created"], run["updated"], run["unchanged"], run["edges"]) == (0, 0, 8, 0)
    run = _crawl(steward, warehouse["id"], capture)
    assert (run["created"], run["updated"], run["unchanged"]) == (0, 0, 8)
    customers = _lookup(steward, ns, _name("analytics_marts", "customers"))
    assert customers["description"] == "One row per customer with their order history."


@pytest.mark.django_db
def test_a_changed_warehouse_crawled_again_keeps_what_dbt_said(
    built: Built, client_for, data_steward, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    steward = client_for(data_steward)
    ns = built.namespace
    warehouse, _project = _warehouse_and_project(built, steward, capture)
    # The warehouse changes (more orders, so a new row estimate) and is crawled again: what dbt said stays.
    with admin(DB) as conn:
        conn.execute(
            "INSERT INTO shop.orders SELECT m + g, 1, now(), 'placed' "
            "FROM (SELECT max(id) AS m FROM shop.orders) AS top, generate_series(1, 300) AS g"
        )
        conn.execute("ANALYZE shop.orders")
    run = _crawl(steward, warehouse["id"], capture)
    assert run["updated"] >= 1
    orders = _lookup(steward, ns, _name("shop", "orders"))
    assert orders["description"] == "One row per order placed in the shop."
    assert [o["name"] for o in orders["owners"]] == ["shop-team"]
    assert {f["name"]: f["description"] for f in orders["fields"]}["status"] == (
        "Where the order is (placed, shipped, returned)."
    )

    # Precedence: a person's value > dbt's documentation > the warehouse's comment.
    with admin(DB) as conn:
        conn.execute("COMMENT ON TABLE shop.orders IS 'orders table (loader)'")
        conn.execute("COMMENT ON COLUMN shop.orders.customer_id IS 'FK to customers'")
    _crawl(steward, warehouse["id"], capture)
    orders = _lookup(steward, ns, _name("shop", "orders"))
    assert orders["description"] == "One row per order placed in the shop."  # dbt's documentation over a comment
    fields = {f["name"]: f["description"] for f in orders["fields"]}
    assert fields["customer_id"] == "FK to customers"  # dbt says nothing of it: the comment fills it in
    assert fields["status"] == "Where the order is (placed, shipped, returned)."
    response = steward.patch(f"/api/v1/datasets/{orders['id']}", {"description": "Orders, curated"}, format="json")
    assert response.status_code == 200, response.content
    with admin(DB) as conn:
        conn.execute("COMMENT ON TABLE shop.orders IS 'orders table (loader, v2)'")
    _crawl(steward, warehouse["id"], capture)
    _crawl(steward, _project["id"], capture)
    assert _lookup(steward, ns, _name("shop", "orders"))["description"] == "Orders, curated"  # the person's wins


@pytest.mark.django_db
def test_the_warehouse_crawl_names_no_dataset_that_does_not_exist(
    built: Built, client_for, data_steward, django_capture_on_commit_callbacks
):
    from catalog.models import Dataset

    _warehouse_and_project(built, client_for(data_steward), django_capture_on_commit_callbacks)
    names = set(Dataset.objects.filter(name__startswith=f"{DB}.").values_list("name", flat=True))
    assert names == {d.name for d in DbtReader().read({"project_dir": str(built.project_dir)}, {}).datasets}
