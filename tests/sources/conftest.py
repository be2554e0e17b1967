"""A real PostgreSQL database to crawl, made by the test on the test server: several schemas, tables with keys and
comments, views over views and a materialized view."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests import dataplane

SCHEMA = """
CREATE SCHEMA sales;
CREATE SCHEMA hr;
CREATE SCHEMA analytics;
CREATE TABLE sales.customers (
    id integer PRIMARY KEY,
    email text NOT NULL,
    name text,
    region text
);
COMMENT ON TABLE sales.customers IS 'People who bought something';
COMMENT ON COLUMN sales.customers.email IS 'Contact e-mail';
CREATE TABLE sales.orders (
    id integer PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES sales.customers (id),
    amount numeric(12, 2),
    ordered_at timestamptz
);
COMMENT ON TABLE sales.orders IS 'One row per order';
CREATE TABLE sales.legacy_orders (id integer, note text);
CREATE TABLE hr.employees (
    id integer PRIMARY KEY, name text, salary numeric, manager_id integer REFERENCES hr.employees (id)
);
CREATE VIEW analytics.order_totals AS
    SELECT c.id AS customer_id, c.region, sum(o.amount) AS total
    FROM sales.customers c JOIN sales.orders o ON o.customer_id = c.id
    GROUP BY c.id, c.region;
COMMENT ON VIEW analytics.order_totals IS 'Spend per customer';
CREATE VIEW analytics.region_totals AS
    SELECT region, sum(total) AS total FROM analytics.order_totals GROUP BY region;
CREATE MATERIALIZED VIEW analytics.big_customers AS
    SELECT customer_id, total FROM analytics.order_totals WHERE total > 100;
INSERT INTO sales.customers
    SELECT g, 'c' || g || '@example.org', 'C ' || g, 'r' || (g % 3) FROM generate_series(1, 50) g;
INSERT INTO sales.orders SELECT g, 1 + g % 50, g * 1.5, now() FROM generate_series(1, 500) g;
REFRESH MATERIALIZED VIEW analytics.big_customers;
ANALYZE;
"""


@pytest.fixture
def crawled_db() -> Iterator[dict[str, Any]]:
    """A fresh database named for this checkout; yields the source config and credentials to crawl it."""
    name = "crawl_src" + os.environ.get("STEWARD_TEST_DB_SUFFIX", "")
    with dataplane.admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    with dataplane.admin(name) as conn:
        conn.execute(SCHEMA)
    server = dataplane.server()
    yield {
        "database": name,
        "config": {"host": server["host"], "port": int(server["port"]), "database": name},
        "credentials": {"user": server["user"], "password": server["password"]},
        "sql": lambda statement: _run(name, statement),
    }
    with dataplane.admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(name: str, statement: str) -> None:
    with psycopg.connect(dataplane.dsn(name), autocommit=True) as conn:
        conn.execute(statement)
