"""Crawl a real PostgreSQL database into the catalog and lineage, change it, crawl again, and look through the API."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from catalog.models import Dataset
from ledger.history import as_of
from ledger.models import AuditEvent, HistoryRecord
from sources.models import Source, SourceRun
from sources.services import sources_due

pytestmark = pytest.mark.django_db


def _create(client: Any, db: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {"name": "warehouse", "kind": "postgres", "config": db["config"], "credentials": db["credentials"], **extra}
    response = client.post("/api/v1/sources", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _crawl(client: Any, source_id: str, capture: Any) -> dict[str, Any]:
    with capture(execute=True):
        response = client.post(f"/api/v1/sources/{source_id}/crawl")
    assert response.status_code == 202, response.content
    runs = client.get(f"/api/v1/sources/{source_id}/runs")
    assert runs.status_code == 200, runs.content
    return runs.json()["results"][0]


def _dataset(client: Any, ns: str, name: str) -> dict[str, Any]:
    response = client.get("/api/v1/datasets/lookup", {"namespace": ns, "name": name})
    assert response.status_code == 200, response.content
    return response.json()


def _said(dataset: dict[str, Any]) -> dict[str, Any]:
    """What the one source that crawled the dataset said (``producer.sources``, by source id)."""
    [said] = dataset["producer"]["sources"].values()
    return said


def _graph(client: Any, ns: str, name: str, direction: str) -> dict[str, Any]:
    response = client.get(
        "/api/v1/lineage/graph", {"namespace": ns, "name": name, "direction": direction, "columns": "true", "depth": 5}
    )
    assert response.status_code == 200, response.content
    return response.json()


def _upstream_names(graph: dict[str, Any]) -> set[str]:
    return {n["name"] for n in graph["nodes"] if n.get("kind") == "dataset"}


def _column_edges(graph: dict[str, Any], ids: dict[str, str]) -> set[tuple[str, str]]:
    """Column edges as ``(table.column, table.column)`` with the tables' short names."""
    by_id = {v: k for k, v in ids.items()}

    def short(node: str) -> str:
        _, ds, column = node.split(":", 2)
        return f"{by_id.get(ds, ds)}.{column}"

    return {
        (short(e["source"]), short(e["target"]))
        for e in graph["edges"]
        if e["kind"] == "column" and e["target"].startswith("column:")
    }


def test_crawl_change_and_crawl_again(crawled_db, client, client_for, data_steward, django_capture_on_commit_callbacks):
    db = crawled_db["database"]
    ns = f"postgres://{crawled_db['config']['host']}:{crawled_db['config']['port']}"
    steward = client_for(data_steward)
    source = _create(steward, crawled_db, schedule="3600")
    assert source["has_credentials"] is True and "credentials" not in source

    run = _crawl(steward, source["id"], django_capture_on_commit_callbacks)
    assert run["state"] == "succeeded", run["error"]
    assert (run["created"], run["updated"], run["removed"], run["edges"]) == (7, 0, 0, 3)

    customers = _dataset(steward, ns, f"{db}.sales.customers")
    assert customers["description"] == "People who bought something"
    assert customers["platform"] == "postgres"
    assert [f["name"] for f in customers["fields"]] == ["id", "email", "name", "region"]
    email = next(f for f in customers["fields"] if f["name"] == "email")
    assert (email["type"], email["description"]) == ("text", "Contact e-mail")
    said = _said(customers)
    assert said["kind"] == "table" and said["name"] == "warehouse"
    assert said["properties"]["primary_key"] == ["id"]
    assert said["properties"]["row_estimate"] == 50
    assert said["columns"]["email"]["nullable"] is False and said["columns"]["name"]["nullable"] is True
    orders = _dataset(steward, ns, f"{db}.sales.orders")
    [fk] = _said(orders)["properties"]["foreign_keys"]
    assert fk["columns"] == ["customer_id"]
    assert fk["references"] == {"namespace": ns, "name": f"{db}.sales.customers", "columns": ["id"]}
    assert _said(_dataset(steward, ns, f"{db}.analytics.big_customers"))["kind"] == "materialized_view"
    view = _dataset(steward, ns, f"{db}.analytics.order_totals")
    assert view["description"] == "Spend per customer"
    assert "sales.orders" in _said(view)["properties"]["view_definition"]

    # Lineage from the views' SQL, table and column level; a foreign key is no lineage.
    ids = {n.split(".", 1)[1]: str(Dataset.objects.get(namespace=ns, name=n).pk) for n in _names(ns)}
    up = _graph(steward, ns, f"{db}.analytics.region_totals", "upstream")
    assert {n.split(".", 1)[1] for n in _upstream_names(up)} == {
        "analytics.region_totals",
        "analytics.order_totals",
        "sales.customers",
        "sales.orders",
    }
    assert ("sales.orders.amount", "analytics.order_totals.total") in _column_edges(up, ids)
    assert ("analytics.order_totals.total", "analytics.region_totals.total") in _column_edges(up, ids)
    down = _graph(steward, ns, f"{db}.sales.customers", "downstream")
    assert f"{db}.sales.orders" not in _upstream_names(down)
    assert f"{db}.analytics.big_customers" in _upstream_names(down)

    # A person describes the orders; a crawl of the unchanged source changes nothing and writes no history.
    response = steward.patch(
        f"/api/v1/datasets/{ids['sales.orders']}", {"description": "Orders, curated"}, format="json"
    )
    assert response.status_code == 200, response.content
    events, history = AuditEvent.objects.count(), HistoryRecord.objects.count()
    run = _crawl(steward, source["id"], django_capture_on_commit_callbacks)
    assert run["state"] == "succeeded", run["error"]
    assert (run["created"], run["updated"], run["unchanged"], run["removed"], run["edges"]) == (0, 0, 7, 0, 0)
    assert (AuditEvent.objects.count(), HistoryRecord.objects.count()) == (events + 1, history)  # the crawl request
    before_change = timezone.now()

    sql = crawled_db["sql"]
    sql("DROP TABLE sales.legacy_orders")
    sql("ALTER TABLE sales.customers ADD COLUMN phone text")
    sql("COMMENT ON TABLE sales.customers IS 'Customers'")
    sql("COMMENT ON TABLE sales.orders IS 'Orders (new comment)'")
    sql(
        "DROP VIEW analytics.region_totals; CREATE VIEW analytics.region_totals AS "
        "SELECT c.region, sum(o.amount) AS total FROM sales.orders o JOIN sales.customers c ON c.id = o.customer_id "
        "GROUP BY c.region"
    )
    run = _crawl(steward, source["id"], django_capture_on_commit_callbacks)
    assert run["state"] == "succeeded", run["error"]
    assert (run["created"], run["removed"], run["edges"]) == (0, 1, 1)
    assert run["updated"] >= 3  # customers, orders, region_totals

    legacy = _dataset(steward, ns, f"{db}.sales.legacy_orders")
    assert legacy["removed_at"] is not None  # marked, not deleted
    client.force_login(data_steward)
    page = client.get(f"/datasets/{legacy['id']}/").content.decode()
    assert "Removed from its source" in page
    assert as_of("catalog.dataset", legacy["id"], before_change)["fields"][1]["name"] == "note"  # history kept
    customers = _dataset(steward, ns, f"{db}.sales.customers")
    assert customers["description"] == "Customers"  # nobody had changed it: the source's new comment
    assert [f["name"] for f in customers["fields"]][-1] == "phone"
    assert customers["removed_at"] is None
    orders = _dataset(steward, ns, f"{db}.sales.orders")
    assert orders["description"] == "Orders, curated"  # the person's value wins
    assert _said(orders)["description"] == "Orders (new comment)"  # the source's, beside it
    up = _graph(steward, ns, f"{db}.analytics.region_totals", "upstream")
    assert {n.split(".", 1)[1] for n in _upstream_names(up)} == {
        "analytics.region_totals",
        "sales.customers",
        "sales.orders",
    }
    assert ("sales.orders.amount", "analytics.region_totals.total") in _column_edges(up, ids)
    assert ("analytics.order_totals.total", "analytics.region_totals.total") not in _column_edges(up, ids)

    # Dropping a view ends its job's lineage.
    sql("DROP MATERIALIZED VIEW analytics.big_customers")
    run = _crawl(steward, source["id"], django_capture_on_commit_callbacks)
    assert (run["state"], run["removed"], run["edges"]) == ("succeeded", 1, 1)
    down = _graph(steward, ns, f"{db}.analytics.order_totals", "downstream")
    assert f"{db}.analytics.big_customers" not in _upstream_names(down)
    assert _dataset(steward, ns, f"{db}.analytics.big_customers")["removed_at"] is not None


def _names(ns: str) -> list[str]:
    return list(Dataset.objects.filter(namespace=ns).values_list("name", flat=True))


def test_failed_crawl_changes_nothing_and_says_why(
    crawled_db, client_for, data_steward, django_capture_on_commit_callbacks
):
    steward = client_for(data_steward)
    wrong = {**crawled_db["credentials"], "password": "not-the-password-123"}
    source = _create(steward, {**crawled_db, "credentials": wrong})
    datasets, history = Dataset.objects.count(), HistoryRecord.objects.count()

    run = _crawl(steward, source["id"], django_capture_on_commit_callbacks)

    assert run["state"] == "failed"
    assert "password" in run["error"] and "Check the source's host" in run["error"]
    assert "not-the-password-123" not in run["error"]
    assert (Dataset.objects.count(), HistoryRecord.objects.count()) == (datasets, history)
    shown = steward.get(f"/api/v1/sources/{source['id']}").json()
    assert shown["last_run"]["state"] == "failed" and shown["last_run"]["error"] == run["error"]


def test_a_failure_while_applying_rolls_everything_back(
    crawled_db, client_for, data_steward, django_capture_on_commit_callbacks, monkeypatch
):
    from sources.services import apply

    steward = client_for(data_steward)
    source = _create(steward, crawled_db)

    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("lineage store exploded")

    monkeypatch.setattr(apply, "_apply_lineage", broken)
    run = _crawl(steward, source["id"], django_capture_on_commit_callbacks)
    assert run["state"] == "failed" and "lineage store exploded" in run["error"]
    assert not Dataset.objects.filter(name__startswith=crawled_db["database"] + ".").exists()


def test_only_stewards_and_admins_manage_sources_and_credentials_never_show(
    crawled_db, client_for, data_steward, data_scientist, admin_user
):
    password = crawled_db["credentials"]["password"]
    scientist = client_for(data_scientist)
    assert scientist.get("/api/v1/sources").status_code == 403
    body = {"name": "x", "kind": "postgres", "config": crawled_db["config"]}
    assert scientist.post("/api/v1/sources", body, format="json").status_code == 403

    steward = client_for(data_steward)
    source = _create(steward, crawled_db)
    assert scientist.post(f"/api/v1/sources/{source['id']}/crawl").status_code == 403
    assert scientist.get(f"/api/v1/sources/{source['id']}/runs").status_code == 403
    for client in (steward, client_for(admin_user)):
        for url in ("/api/v1/sources", f"/api/v1/sources/{source['id']}"):
            response = client.get(url)
            assert response.status_code == 200
            assert password not in response.content.decode() and '"credentials"' not in response.content.decode()
    changed = steward.patch(
        f"/api/v1/sources/{source['id']}", {"credentials": {"user": "u", "password": "s3cret-new"}}, format="json"
    )
    assert changed.status_code == 200 and "s3cret-new" not in changed.content.decode()
    stored = Source.objects.get(pk=source["id"])
    assert password not in stored.credentials_encrypted and "s3cret-new" not in stored.credentials_encrypted
    audit = " ".join(str([e.before, e.after]) for e in AuditEvent.objects.filter(action__startswith="sources."))
    assert "sources.source" not in audit and password not in audit and "s3cret-new" not in audit
    actions = list(AuditEvent.objects.filter(action__startswith="sources.").values_list("action", flat=True))
    assert actions == ["sources.source.create", "sources.source.update"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Bad Name!", "kind": "postgres"}, "name"),
        ({"name": "ok", "kind": "oracle"}, "kind"),
        ({"name": "ok", "kind": "postgres", "schedule": "every day"}, "schedule"),
        ({"name": "ok", "kind": "postgres", "schedule": "5"}, "schedule"),
        ({"name": "ok", "kind": "postgres", "config": {"host": "h", "password": "p"}}, "config.password"),
        ({"name": "ok", "kind": "postgres", "owner": "nobody-here"}, "owner"),
        ({"name": "ok", "kind": "postgres", "unknown": 1}, "unknown"),
    ],
)
def test_bad_input_names_the_field(client_for, data_steward, body, field):
    response = client_for(data_steward).post("/api/v1/sources", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.content.decode()


def test_duplicate_name_is_a_conflict(crawled_db, client_for, data_steward):
    steward = client_for(data_steward)
    _create(steward, crawled_db)
    again = steward.post("/api/v1/sources", {"name": "warehouse", "kind": "postgres"}, format="json")
    assert again.status_code == 409 and "name" in again.content.decode()


def test_beat_checks_for_due_sources():
    from django.conf import settings

    assert settings.CELERY_BEAT_SCHEDULE["sources-crawl-due"]["task"] == "sources.crawl_due"


def test_due_sources_are_queued_and_crawled(crawled_db, client_for, data_steward, django_capture_on_commit_callbacks):
    steward = client_for(data_steward)
    source = _create(steward, crawled_db, schedule="0 3 * * *")
    assert source["next_run_at"] is not None
    Source.objects.filter(pk=source["id"]).update(next_run_at=timezone.now() - timezone.timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        queued = sources_due()
    assert len(queued) == 1
    run = SourceRun.objects.get(pk=queued[0].pk)
    assert (run.trigger, run.state) == ("schedule", "succeeded")
    assert Source.objects.get(pk=source["id"]).next_run_at > timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        assert sources_due() == []  # not due again until 03:00


def test_crawl_command(crawled_db, client_for, data_steward, capsys):
    _create(client_for(data_steward), crawled_db)
    call_command("crawl", "warehouse", verbosity=0)
    out = capsys.readouterr().out
    assert "Crawled warehouse" in out and "7 created" in out
    call_command("crawl", "warehouse", verbosity=0)
    assert "0 created, 0 updated, 7 unchanged, 0 removed" in capsys.readouterr().out

    # Gone, then back: marked removed, then restored (the same dataset, its history one story).
    name = f"{crawled_db['database']}.hr.employees"
    crawled_db["sql"]("ALTER TABLE hr.employees RENAME TO employees_old")
    call_command("crawl", "warehouse", verbosity=0)
    assert "1 created" in capsys.readouterr().out
    assert Dataset.objects.get(name=name).removed_at is not None
    crawled_db["sql"]("ALTER TABLE hr.employees_old RENAME TO employees")
    call_command("crawl", "warehouse", verbosity=0)
    assert "1 removed" in capsys.readouterr().out  # employees_old
    assert Dataset.objects.get(name=name).removed_at is None
    with pytest.raises(CommandError, match="No source named 'nope'"):
        call_command("crawl", "nope")
