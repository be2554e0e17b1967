"""The indexing task on a real worker and the real Redis broker (production wiring)."""

import pytest
from celery.contrib.testing.worker import start_worker

from catalog.search import get_backend
from catalog.search.backends.base import SearchQuery
from steward.celery import app
from steward.identity import viewer_for
from tests.conftest import spec


@pytest.mark.django_db(transaction=True)
def test_commit_queues_indexing_that_a_worker_on_redis_performs(settings, redis_url, data_steward, tags):
    from catalog import services

    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    app.conf.broker_url = redis_url
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            services.dataset_create(actor=data_steward, spec=spec({"namespace": "s3://lake", "name": "walrus/colony"}))
            for _ in range(100):
                if get_backend().search(SearchQuery(q="walrus"), viewer_for(data_steward)).total:
                    break
                import time

                time.sleep(0.1)
        assert get_backend().search(SearchQuery(q="walrus"), viewer_for(data_steward)).total == 1
    finally:
        app.conf.task_always_eager = True
