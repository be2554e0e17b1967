from __future__ import annotations

from typing import Any

import pytest

from catalog import services as catalog
from catalog.models import Dataset
from lineage.propagation import drain
from lineage.services.ingest import ingest
from tests.conftest import make_producer
from tests.lineage.events import NS


@pytest.fixture
def producer(data_steward):
    """Who sends lineage in these tests (a steward who is also a lineage producer allowed on the test
    namespaces: may also tag, and end a job's lineage)."""
    return make_producer(data_steward, NS, "etl")


@pytest.fixture
def emit(producer):
    def send(*events: dict[str, Any]) -> list:
        results = ingest(actor=producer, events=list(events), batch=True)
        drain()
        return results

    return send


@pytest.fixture
def tags(admin_user):
    catalog.tag_create(actor=admin_user, key="email", implied_level="C3")
    catalog.tag_create(actor=admin_user, key="secret", implied_level="C4")
    catalog.tag_create(actor=admin_user, key="internal-note", implied_level="C2", propagates=False)


def ds(name: str) -> Dataset:
    return Dataset.objects.get(namespace=NS, name=name)


@pytest.fixture
def tag(producer):
    def add(name: str, key: str, field: str | None = None) -> None:
        catalog.dataset_tag_add(actor=producer, dataset=ds(name), key=key, field_name=field)
        drain()

    return add


@pytest.fixture
def untag(producer):
    def remove(name: str, key: str, field: str | None = None) -> None:
        catalog.dataset_tag_remove(actor=producer, dataset=ds(name), key=key, field_name=field)
        drain()

    return remove


@pytest.fixture(scope="session")
def neo4j_url() -> str:
    """The Neo4j test server (scripts/services/neo4j.sh; `make test` starts it): loopback only, fails if down."""
    import os
    from urllib.parse import urlparse

    from tests.servers import _reachable

    url = os.environ.get("STEWARD_TEST_NEO4J_URL", "bolt://127.0.0.1:57687")
    if urlparse(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        pytest.fail(f"STEWARD_TEST_NEO4J_URL={url!r}: the tests only talk to a Neo4j on loopback.")
    if not _reachable(url, 7687):
        pytest.fail(f"Neo4j is not running at {url}; start it with `scripts/services/neo4j.sh start` (make test does).")
    return url
