"""What only the Elasticsearch backend has: an alias swapped by a rebuild, readiness, and an engine that can be
down while the catalog keeps working. The shared contract is in test_search.py."""

import os
import uuid

import pytest
from django.core.management import call_command

from catalog.models import Dataset
from catalog.search import get_backend
from catalog.search.backends.base import SearchQuery
from catalog.search.documents import build_documents
from catalog.services.search import search_index
from steward.errors import BackendUnavailable
from steward.identity import viewer_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def es(settings, elasticsearch_url):
    index = f"steward-test{os.environ.get('STEWARD_TEST_DB_SUFFIX', '')}-{uuid.uuid4().hex[:8]}"
    settings.STEWARD_SEARCH_BACKEND = "elasticsearch"
    settings.STEWARD_SEARCH_OPTIONS = {"url": elasticsearch_url, "index": index, "refresh": True}
    backend = get_backend()
    backend.setup()
    yield backend
    backend.drop()


def _names(user) -> list[str]:
    return [h.qualified_name for h in get_backend().search(SearchQuery(limit=50), viewer_for(user)).hits]


def test_a_rebuild_fills_a_new_index_and_swaps_the_alias(es, make_dataset, data_steward):
    for name in ("sales.orders", "sales.customers"):
        make_dataset(name)
    before = es._alias_targets()
    seen_during: list[list[str]] = []

    def batches():
        docs = build_documents("dataset", Dataset.objects.values_list("pk", flat=True))
        yield docs[:1]
        seen_during.append(_names(data_steward))  # mid-rebuild, searches still answer from the old index
        Dataset.objects.filter(name="sales.customers").delete()  # gone from the catalog meanwhile
        yield docs[1:]

    es.rebuild(batches())
    assert seen_during == [["sales.orders", "sales.customers"]]
    after = es._alias_targets()
    assert len(after) == 1 and after != before
    assert not es.client.indices.exists(index=before[0])  # the old index is deleted
    assert sorted(_names(data_steward)) == ["sales.customers", "sales.orders"]


def test_search_reindex_swaps_in_a_complete_index(es, make_dataset, data_steward):
    make_dataset("sales.orders")
    es.clear()
    assert _names(data_steward) == []
    call_command("search_reindex", verbosity=0)
    assert _names(data_steward) == ["sales.orders"]


def test_readyz_reports_elasticsearch(es, client, settings):
    res = client.get("/readyz")
    assert res.json()["checks"]["search"] == "ok"
    es.drop()
    res = client.get("/readyz")
    assert res.status_code == 503 and res.json()["checks"]["search"] == "unavailable: BackendUnavailable"
    settings.STEWARD_SEARCH_OPTIONS = {"url": "http://127.0.0.1:1", "index": "x", "max_retries": 0, "timeout": 2}
    res = client.get("/readyz")
    assert res.status_code == 503 and res.json()["checks"]["search"] == "unavailable: BackendUnavailable"


def test_an_engine_that_is_down_never_fails_the_users_write(settings, make_dataset, data_steward):
    settings.STEWARD_SEARCH_BACKEND = "elasticsearch"
    settings.STEWARD_SEARCH_OPTIONS = {"url": "http://127.0.0.1:1", "index": "x", "max_retries": 0, "timeout": 2}
    ds = make_dataset("sales.orders")  # runs the after-commit indexing, which cannot reach the engine
    assert Dataset.objects.filter(pk=ds.pk).exists()
    with pytest.raises(BackendUnavailable):  # so the indexing task's retry policy applies
        search_index(kind="dataset", ids=[str(ds.pk)])


def test_hidden_assets_leave_no_trace_in_counts_or_suggestions(es, make_dataset, data_scientist, data_steward):
    make_dataset("hr.payroll_secret", tags=["secret.source"], owners=["group:admin"])
    make_dataset("hr.payments")
    results = get_backend().search(SearchQuery(q="hr"), viewer_for(data_scientist))
    assert results.total == 1
    assert all(n == 1 for facet in results.facets.values() for _, n in facet)
    assert [s.qualified_name for s in get_backend().suggest("pay", viewer_for(data_scientist))] == ["hr.payments"]
    assert len(get_backend().suggest("pay", viewer_for(data_steward))) == 2


def test_a_correction_never_names_a_word_only_hidden_assets_have(es, make_dataset, data_scientist, data_steward):
    """The term suggester reads every document's words; a correction is shown only with hits the viewer may see."""
    make_dataset("hr.payroll_confidential", tags=["secret.source"], owners=["group:admin"])
    make_dataset("sales.orders")
    hidden_typo = get_backend().search(SearchQuery(q="confidentail"), viewer_for(data_scientist))
    assert (hidden_typo.total, hidden_typo.fuzzy, hidden_typo.corrected) == (0, False, "")
    seen = get_backend().search(SearchQuery(q="confidentail"), viewer_for(data_steward))
    assert (seen.total, seen.corrected) == (1, "confidential")
    # Only the unknown word is replaced; a known word prefix is kept as typed.
    both = get_backend().search(SearchQuery(q="ordrs sal"), viewer_for(data_scientist))
    assert ([h.qualified_name for h in both.hits], both.corrected) == (["sales.orders"], "orders sal")


def test_facets_beyond_the_exact_limit_count_a_sample_of_the_best_ranked(es, settings, make_dataset, data_steward):
    for i in range(6):
        make_dataset(f"bulk.t{i}")
    make_dataset("bulk")
    settings.STEWARD_SEARCH_OPTIONS = {**settings.STEWARD_SEARCH_OPTIONS, "exact_limit": 2}
    capped = get_backend().search(SearchQuery(q="bulk"), viewer_for(data_steward))
    assert (capped.total, capped.exact, capped.hits[0].qualified_name) == (2, False, "bulk")
    assert dict(capped.facets["kind"]) == {"dataset": 3}  # exact_limit + 1 counted, flagged by exact=False


def test_an_index_made_before_the_removed_field_learns_it_on_setup(es, settings, make_dataset, data_steward, caplog):
    """An upgrade: the alias points at an index whose strict mapping has no ``removed`` field (and no index sort).
    The backend's setup adds the field, so indexing a removed dataset does not fail and search leaves it out,
    without a rebuild; the missing sort is logged with what to run."""
    from django.utils import timezone

    from catalog.search.backends.elasticsearch import MAPPING, ElasticsearchSearchBackend

    es.drop()
    old = f"{es.alias}-old"
    mapping = {**MAPPING, "properties": {k: v for k, v in MAPPING["properties"].items() if k != "removed"}}
    es.client.indices.create(index=old, mappings=mapping)
    es.client.indices.put_alias(index=old, name=es.alias)
    upgraded = ElasticsearchSearchBackend(**settings.STEWARD_SEARCH_OPTIONS)
    upgraded.setup()
    assert "has no index sort" in caplog.text and "search_reindex" in caplog.text
    ds = make_dataset("sales.orders")
    Dataset.objects.filter(pk=ds.pk).update(removed_at=timezone.now())
    upgraded.index(build_documents("dataset", [ds.pk]))
    assert upgraded.search(SearchQuery(q="orders"), viewer_for(data_steward)).total == 0
    [hit] = upgraded.search(SearchQuery(q="orders", include_removed=True), viewer_for(data_steward)).hits
    assert hit.removed is True


def test_a_sorted_index_sets_up_without_a_warning(es, settings, caplog):
    from catalog.search.backends.elasticsearch import ElasticsearchSearchBackend

    ElasticsearchSearchBackend(**settings.STEWARD_SEARCH_OPTIONS).setup()  # the fixture's index: made sorted
    assert "index sort" not in caplog.text


def test_counts_are_fresh_after_a_write_though_counting_is_cached(es, make_dataset, data_steward):
    """Totals and facet counts may be answered from the shard request cache; a write that reaches the index empties
    it, so they never lag behind the hits."""
    viewer = viewer_for(data_steward)
    make_dataset("sales.orders")
    for _ in range(2):  # the second time, the counting request is answered from the cache
        first = get_backend().search(SearchQuery(q="orders"), viewer)
    stats = es.client.indices.stats(index=es.alias, metric="request_cache")["_all"]["total"]["request_cache"]
    assert stats["hit_count"] >= 1
    assert (first.total, dict(first.facets["tag"])) == (1, {})
    make_dataset("lake.orders_2019", tags=["finance"])
    again = get_backend().search(SearchQuery(q="orders"), viewer)
    assert (again.total, dict(again.facets["tag"])) == (2, {"finance": 1})
    second_page = get_backend().search(SearchQuery(q="orders", offset=1, limit=1), viewer)
    assert [h.qualified_name for h in second_page.hits] == ["lake.orders_2019"]


def test_a_search_before_any_index_exists_says_the_backend_is_unavailable(es, client_for, data_steward):
    es.drop()  # as after switching backends, before `manage.py search_reindex`
    res = client_for(data_steward).get("/api/v1/search", {"q": "orders"})
    assert res.status_code == 503 and res.json()["code"] == "backend_unavailable"
    assert "search_reindex" in res.json()["detail"]
