"""A view's SQL as the OpenLineage event a producer would send (``connectors.sources.postgres.view_event``)."""

from __future__ import annotations

from connectors.sources.postgres import view_event

NS = "postgres://db:5432"


def test_a_views_sql_gives_table_and_column_lineage():
    sql = (
        "SELECT c.id AS customer_id, c.region, sum(o.amount) AS total FROM sales.customers c "
        "JOIN sales.orders o ON o.customer_id = c.id GROUP BY c.id, c.region"
    )
    event, warning = view_event(NS, "shop", "analytics", "order_totals", sql, "2026-01-01T00:00:00Z")
    assert warning == "" and event is not None
    assert event["eventType"] == "COMPLETE"
    assert event["job"] == {**event["job"], "namespace": NS, "name": "shop.analytics.order_totals"}
    assert [i["name"] for i in event["inputs"]] == ["shop.sales.customers", "shop.sales.orders"]
    [output] = event["outputs"]
    assert output["name"] == "shop.analytics.order_totals"
    fields = output["facets"]["columnLineage"]["fields"]
    assert fields["total"]["inputFields"] == [{"namespace": NS, "name": "shop.sales.orders", "field": "amount"}]
    assert fields["customer_id"]["inputFields"] == [{"namespace": NS, "name": "shop.sales.customers", "field": "id"}]


def test_unqualified_names_are_in_the_views_schema():
    event, _ = view_event(NS, "shop", "marts", "v", "SELECT a FROM base", "2026-01-01T00:00:00Z")
    assert event is not None and [i["name"] for i in event["inputs"]] == ["shop.marts.base"]


def test_sql_the_parser_cannot_read_is_a_warning_not_a_failure():
    event, warning = view_event(NS, "shop", "marts", "broken", "SELECT FROM WHERE (", "2026-01-01T00:00:00Z")
    assert "shop.marts.broken" in warning
    assert event is None or event["inputs"] == []


def test_a_column_qualified_by_its_table_comes_from_the_input_table_not_from_the_views_schema():
    """``orders.id`` with ``FROM shop.orders``: openlineage-sql names the origin ``analytics_staging.orders``
    (the view's schema), a relation that does not exist; the reader resolves it to the input it reads."""
    sql = (
        "SELECT orders.id AS order_id, orders.status, o2.note FROM shop.orders JOIN shop.notes o2 ON o2.id = orders.id"
    )
    event, _ = view_event(NS, "db", "analytics_staging", "stg_orders", sql, "2026-01-01T00:00:00Z")
    assert event is not None
    assert [i["name"] for i in event["inputs"]] == ["db.shop.notes", "db.shop.orders"]
    fields = event["outputs"][0]["facets"]["columnLineage"]["fields"]
    named = {f["name"] for spec in fields.values() for f in spec["inputFields"]}
    assert named <= {"db.shop.notes", "db.shop.orders"}  # never a dataset the view does not read
    assert fields["order_id"]["inputFields"] == [{"namespace": NS, "name": "db.shop.orders", "field": "id"}]
    assert fields["status"]["inputFields"] == [{"namespace": NS, "name": "db.shop.orders", "field": "status"}]


def test_an_origin_matching_two_inputs_is_dropped_rather_than_guessed():
    sql = "SELECT orders.id FROM shop.orders, archive.orders"
    event, _ = view_event(NS, "db", "marts", "v", sql, "2026-01-01T00:00:00Z")
    assert event is not None
    fields = event["outputs"][0]["facets"].get("columnLineage", {}).get("fields", {})
    named = {f["name"] for spec in fields.values() for f in spec["inputFields"]}
    assert named <= {"db.shop.orders", "db.archive.orders"}
