"""Usage signals for search ranking: opening, requesting and building on a dataset count, cheaply."""

from datetime import timedelta

import pytest

from catalog.models import AssetPopularity, SearchEntry
from catalog.services.popularity import popularity_flush, popularity_scores
from governance.services.access_requests import access_request_create
from lineage.services.ingest import ingest
from tests.conftest import make_producer
from tests.lineage.events import NS, complete

pytestmark = pytest.mark.django_db


def _counters(ds) -> tuple[int, int, int]:
    row = AssetPopularity.objects.filter(kind="dataset", object_id=ds.pk).first()
    return (row.opens, row.requests, row.lineage_uses) if row else (0, 0, 0)


def test_opening_a_dataset_counts_only_for_those_who_may_see_it(make_dataset, client_for, data_steward, data_scientist):
    public = make_dataset("web.pages")
    hidden = make_dataset("hr.payroll", tags=["secret.source"], owners=["group:admin"])
    assert client_for(data_scientist).get(f"/api/v1/datasets/{public.pk}").status_code == 200
    assert client_for(data_steward).get(f"/api/v1/datasets/{public.pk}").status_code == 200
    assert client_for(data_scientist).get(f"/api/v1/datasets/{hidden.pk}").status_code == 404
    assert _counters(public) == (2, 0, 0)
    assert _counters(hidden) == (0, 0, 0)


def test_access_requests_and_lineage_reads_count(make_dataset, data_scientist, data_steward):
    raw = make_dataset("raw", namespace=NS)
    access_request_create(
        actor=data_scientist,
        datasets=[raw.pk],
        purpose="analytics",
        justification="a model",
        duration=timedelta(days=1),
    )
    make_producer(data_steward, "etl", NS)
    ingest(actor=data_steward, events=[complete("load", ["raw"], ["clean"]), complete("agg", ["raw"], ["sums"])])
    # Re-sending the same lineage is no new use.
    ingest(actor=data_steward, events=[complete("load", ["raw"], ["clean"])])
    assert _counters(raw) == (0, 1, 2)
    assert popularity_scores("dataset", [raw.pk]) == {raw.pk: 5 + 2 * 3}


def test_flush_pushes_changed_scores_to_the_index_once(
    make_dataset, data_scientist, client_for, settings, django_capture_on_commit_callbacks
):
    ds = make_dataset("web.pages")
    client_for(data_scientist).get(f"/api/v1/datasets/{ds.pk}")
    assert SearchEntry.objects.get(object_id=ds.pk).popularity == 0  # recording does not reindex
    with django_capture_on_commit_callbacks(execute=True):
        assert popularity_flush() == 1
    assert SearchEntry.objects.get(object_id=ds.pk).popularity == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert popularity_flush() == 0
