"""The search backend contract: ranking, typos, facets, filters, suggest, visibility, rebuild.

One suite, run against every search backend on its real engine: ``database`` on the test PostgreSQL and
``elasticsearch`` on the Elasticsearch test server (``scripts/services/elasticsearch.sh``), each test with an
index of its own that is dropped afterwards.
"""

import os
import uuid

import pytest
from django.core.management import call_command
from django.test import Client

from catalog import services
from catalog.search import get_backend
from catalog.search.backends.base import SearchQuery
from steward.identity import viewer_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True, params=["database", "elasticsearch"])
def search_backend(request, settings):
    """Every test here runs once per backend; the configured backend is the one under test."""
    if request.param == "database":
        yield "database"
        return
    url = request.getfixturevalue("elasticsearch_url")
    index = f"steward-test{os.environ.get('STEWARD_TEST_DB_SUFFIX', '')}-{uuid.uuid4().hex[:8]}"
    settings.STEWARD_SEARCH_BACKEND = "elasticsearch"
    settings.STEWARD_SEARCH_OPTIONS = {"url": url, "index": index, "refresh": True}
    backend = get_backend()
    backend.setup()
    try:
        yield "elasticsearch"
    finally:
        get_backend().drop()


@pytest.fixture
def corpus(make_dataset, data_steward):
    make_dataset(
        "sales.public.customers",
        description="Every customer we have",
        owners=["stella"],
        fields=[{"name": "customer_id"}, {"name": "email", "tags": ["pii.email"]}],
    )
    make_dataset(
        "sales.public.orders",
        description="Orders placed by customers",
        owners=["group:data-steward"],
        fields=[{"name": "order_id"}, {"name": "customer_id"}],
    )
    make_dataset(
        "events.clicks",
        namespace="kafka://broker:9092",
        description="Click stream",
        owners=["group:admin"],
        fields=[{"name": "url"}],
        tags=["finance"],
    )
    make_dataset(
        "hr.payroll", namespace="s3://hr-bucket", description="Salaries", tags=["secret.source"], owners=["group:admin"]
    )


def _search(user, **kwargs):
    return get_backend().search(SearchQuery(**kwargs), viewer_for(user))


def test_name_match_ranks_above_column_and_description_matches(corpus, data_steward):
    hits = _search(data_steward, q="customers").hits
    assert hits[0].qualified_name == "sales.public.customers"
    assert {h.qualified_name for h in hits} == {"sales.public.customers", "sales.public.orders"}


def test_column_names_are_searchable(corpus, data_steward):
    assert [h.qualified_name for h in _search(data_steward, q="order_id").hits] == ["sales.public.orders"]


def test_prefix_words_match(corpus, data_steward):
    assert [h.qualified_name for h in _search(data_steward, q="payr").hits] == ["hr.payroll"]


def settings_backend() -> str:
    from django.conf import settings

    return settings.STEWARD_SEARCH_BACKEND


def test_a_typo_still_finds_the_dataset(corpus, data_steward):
    found = _search(data_steward, q="custmers")
    assert "sales.public.customers" in [h.qualified_name for h in found.hits]
    assert found.fuzzy, "the results say they are for close words, not the words typed"
    assert found.corrected.startswith("customer")
    assert not _search(data_steward, q="customers").fuzzy


def test_facet_counts_follow_the_query(corpus, data_steward):
    facets = _search(data_steward, q="customer").facets
    assert dict(facets["platform"]) == {"postgres": 2}
    assert dict(facets["classification"]) == {"C1": 1, "C3": 1}
    assert dict(facets["tag"]) == {"pii.email": 1}
    everything = _search(data_steward).facets
    assert dict(everything["platform"]) == {"postgres": 2, "kafka": 1, "s3": 1}


def test_filters_combine(corpus, data_steward):
    assert [h.qualified_name for h in _search(data_steward, platforms=["kafka"]).hits] == ["events.clicks"]
    assert [h.qualified_name for h in _search(data_steward, tags=["pii.email"]).hits] == ["sales.public.customers"]
    assert _search(data_steward, q="customer", platforms=["kafka"]).total == 0
    assert [h.qualified_name for h in _search(data_steward, owners=["user:stella"]).hits] == ["sales.public.customers"]
    assert [h.qualified_name for h in _search(data_steward, classifications=["C4"]).hits] == ["hr.payroll"]


def test_hidden_assets_never_reach_non_holders(corpus, data_scientist, data_steward):
    assert "hr.payroll" not in [h.qualified_name for h in _search(data_scientist, q="payroll").hits]
    assert _search(data_scientist, classifications=["C4"]).total == 0
    assert "C4" not in dict(_search(data_scientist).facets["classification"])
    assert _search(data_steward, q="payroll").total == 1


def test_suggest_completes_name_words(corpus, data_scientist):
    names = [s.qualified_name for s in get_backend().suggest("ord", viewer_for(data_scientist))]
    assert names == ["sales.public.orders"]
    assert get_backend().suggest("pay", viewer_for(data_scientist)) == []


def test_changes_reach_the_index_after_commit(corpus, data_steward, django_capture_on_commit_callbacks):
    from catalog.models import Dataset

    ds = Dataset.objects.get(name="events.clicks")
    with django_capture_on_commit_callbacks(execute=True):
        services.dataset_tag_add(actor=data_steward, dataset=ds, key="pii.email")
    hit = _search(data_steward, q="clicks").hits[0]
    assert hit.tags == ["finance", "pii.email"] and hit.classification == "C3"
    with django_capture_on_commit_callbacks(execute=True):
        services.dataset_delete(actor=data_steward, dataset=ds)
    assert _search(data_steward, q="clicks").total == 0


def test_reindex_rebuilds_from_the_database(corpus, data_steward, capsys):
    get_backend().clear()
    assert _search(data_steward).total == 0
    call_command("search_reindex")
    assert _search(data_steward).total == 4
    assert "4 dataset" in capsys.readouterr().out


def test_search_api_shapes_results_and_facets(corpus, client_for, data_steward):
    res = client_for(data_steward).get("/api/v1/search", {"q": "customer", "kind": "dataset"})
    assert res.status_code == 200
    body = res.json()
    assert body["total"] == 2
    assert body["results"][0]["qualified_name"] == "sales.public.customers"
    assert {"value": "postgres", "count": 2} in body["facets"]["platform"]


def test_search_api_rejects_bad_parameters(client_for, data_steward):
    client = client_for(data_steward)
    res = client.get("/api/v1/search", {"limit": 1000})
    assert res.status_code == 400 and res.json()["errors"][0]["field"] == "limit"
    res = client.get("/api/v1/search", {"kind": "spaceship"})
    assert res.status_code == 400 and res.json()["errors"][0]["field"].startswith("kind")
    res = client.get("/api/v1/search", {"q": "x" * 201})
    assert res.status_code == 400 and res.json()["errors"][0]["field"] == "q"


def test_exact_name_comes_first_then_names_then_other_fields(make_dataset, data_steward):
    make_dataset("warehouse.orders_archive_long_name")
    make_dataset("orders")
    make_dataset("finance.refunds", fields=[{"name": "orders_ref"}])
    make_dataset("sales.orders")
    hits = _search(data_steward, q="orders").hits
    assert [h.qualified_name for h in hits] == [
        "orders",
        "sales.orders",
        "warehouse.orders_archive_long_name",
        "finance.refunds",
    ]
    assert [h.score for h in hits] == [3.0, 3.0, 2.0, 1.0]  # "sales.orders" is named "orders" too


def test_pages_continue_across_tiers(make_dataset, data_steward):
    for i in range(3):
        make_dataset(f"lake.shipments_{i}")
        make_dataset(f"lake.other_{i}", description="Shipments by carrier")
    names = []
    for offset in range(0, 6, 2):
        names += [h.qualified_name for h in _search(data_steward, q="shipments", limit=2, offset=offset).hits]
    assert names == [f"lake.shipments_{i}" for i in range(3)] + [f"lake.other_{i}" for i in range(3)]


def test_counts_beyond_the_exact_limit_are_marked_as_lower_bounds(make_dataset, data_steward, settings):
    for i in range(6):
        make_dataset(f"bulk.t{i}", tags=["finance"] if i % 2 else [])
    options = settings.STEWARD_SEARCH_OPTIONS
    settings.STEWARD_SEARCH_OPTIONS = {**options, "exact_limit": 4}
    capped = _search(data_steward, q="bulk")
    assert (capped.total, capped.exact) == (4, False)
    # Facets count at least the first exact_limit + 1 matches (the database counts exactly those).
    assert sum(n for _, n in capped.facets["kind"]) >= 5
    settings.STEWARD_SEARCH_OPTIONS = {**options, "exact_limit": 100}
    full = _search(data_steward, q="bulk")
    assert (full.total, full.exact) == (6, True)
    assert dict(full.facets["tag"]) == {"finance": 3}


def test_more_used_assets_rank_higher_within_a_tier(make_dataset, data_steward, django_capture_on_commit_callbacks):
    from catalog.services.popularity import popularity_flush, popularity_record

    make_dataset("orders")
    quiet = make_dataset("lake.orders_2019")
    used = make_dataset("lake.orders_archive_of_all_years")
    assert [h.qualified_name for h in _search(data_steward, q="orders").hits] == [
        "orders",
        "lake.orders_2019",
        "lake.orders_archive_of_all_years",
    ]
    popularity_record(kind="dataset", ids=[used.pk, used.pk], signal="open")
    popularity_record(kind="dataset", ids=[quiet.pk], signal="open")
    with django_capture_on_commit_callbacks(execute=True):
        assert popularity_flush() == 2
    # The exact name still comes first; among names containing the word, the more used one leads.
    assert [h.qualified_name for h in _search(data_steward, q="orders").hits] == [
        "orders",
        "lake.orders_archive_of_all_years",
        "lake.orders_2019",
    ]
    suggested = [s.qualified_name for s in get_backend().suggest("ord", viewer_for(data_steward))]
    assert suggested[0] == "lake.orders_archive_of_all_years"


def test_camel_case_and_dotted_names_split_into_words(make_dataset, data_steward):
    make_dataset("crm.customerEmailHistory", fields=[{"name": "lastLoginAt"}])
    assert [h.qualified_name for h in _search(data_steward, q="email history").hits] == ["crm.customerEmailHistory"]
    assert [h.qualified_name for h in _search(data_steward, q="login").hits] == ["crm.customerEmailHistory"]
    names = [s.qualified_name for s in get_backend().suggest("hist", viewer_for(data_steward))]
    assert names == ["crm.customerEmailHistory"]


def test_removed_datasets_are_left_out_unless_asked_for_and_then_flagged(
    corpus, client_for, data_steward, django_capture_on_commit_callbacks
):
    """As DataHub hides soft-deleted entities: a dataset gone from its source (``removed_at``) is not found, nor
    counted in facets, until the search asks for removed ones; then the hit says it is removed."""
    from django.utils import timezone

    from catalog.models import Dataset
    from catalog.services.datasets import datasets_changed

    ds = Dataset.objects.get(name="sales.public.orders")
    with django_capture_on_commit_callbacks(execute=True):
        Dataset.objects.filter(pk=ds.pk).update(removed_at=timezone.now())
        datasets_changed([ds.pk], recompute=())
    found = _search(data_steward, q="orders")
    assert [h.qualified_name for h in found.hits] == [] and found.total == 0
    assert ("postgres", 1) in _search(data_steward).facets["platform"]  # only the customers left to count
    found = _search(data_steward, q="orders", include_removed=True)
    assert [(h.qualified_name, h.removed) for h in found.hits] == [("sales.public.orders", True)]
    assert get_backend().suggest("ord", viewer_for(data_steward)) == []
    kept = _search(data_steward, q="customers", include_removed=True).hits[0]
    assert (kept.qualified_name, kept.removed) == ("sales.public.customers", False)

    steward = client_for(data_steward)
    assert steward.get("/api/v1/search", {"q": "orders"}).json()["total"] == 0
    body = steward.get("/api/v1/search", {"q": "orders", "include_removed": "true"}).json()
    assert [(r["qualified_name"], r["removed"]) for r in body["results"]] == [("sales.public.orders", True)]
    assert steward.get("/api/v1/search", {"include_removed": "maybe"}).status_code == 400

    client = Client()
    client.force_login(data_steward)
    page = client.get("/", {"q": "orders"}).content.decode()
    assert "sales.public.orders" not in page and "Include removed datasets" in page
    page = client.get("/", {"q": "orders", "include_removed": "1"}).content.decode()
    assert "sales.public.orders" in page and 'class="badge removed"' in page
    with django_capture_on_commit_callbacks(execute=True):  # back in its source: found again
        Dataset.objects.filter(pk=ds.pk).update(removed_at=None)
        datasets_changed([ds.pk], recompute=())
    assert [h.removed for h in _search(data_steward, q="orders").hits] == [False]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_hidden_assets_stay_hidden_and_settings_do_not_leak(search_backend, request):
    """Outside a transaction (as the web server runs) the database backend sends its planner settings with each
    statement (``SET LOCAL …; SELECT …``): same visibility, and the settings end with the statement."""
    from django.db import connection

    if search_backend != "database":
        pytest.skip("the database backend's own statement path")
    from django.contrib.auth.models import Group

    for name in ("data-scientist", "data-owner", "data-steward", "privacy-officer", "compliance-officer", "admin"):
        Group.objects.get_or_create(name=name)  # from a migration; an earlier transactional test's flush removed them
    request.getfixturevalue("corpus")
    data_scientist = request.getfixturevalue("data_scientist")
    data_steward = request.getfixturevalue("data_steward")
    assert not connection.in_atomic_block
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_parallel_workers_per_gather")
        before = cursor.fetchone()[0]
    for q in ("payroll", "salaries", "hr", ""):
        assert "hr.payroll" not in [h.qualified_name for h in _search(data_scientist, q=q, limit=50).hits]
    assert _search(data_scientist, classifications=["C4"]).total == 0
    assert [h.qualified_name for h in _search(data_steward, q="payroll").hits] == ["hr.payroll"]
    assert [h.qualified_name for h in _search(data_scientist, q="custmer").hits][0] == "sales.public.customers"
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_parallel_workers_per_gather")
        assert cursor.fetchone()[0] == before
