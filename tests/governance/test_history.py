"""The one history mechanism: rows tile an entity's lifetime and read back exactly as of any instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from catalog import services
from catalog.history import DATASET, DATASET_LEVEL, capture_datasets
from ledger import history
from ledger.models import HistoryRecord
from steward.canonical import legacy_digest
from tests.conftest import spec

T0 = datetime(2024, 1, 1, 9, 0, 0, tzinfo=UTC)


def _write(states, at):
    with transaction.atomic():
        return history.write("test.thing", states, at=at)


@pytest.mark.django_db
def test_rows_tile_the_lifetime_and_read_back_as_of_any_instant():
    assert _write({"a": {"v": 1}}, T0) == 1
    assert _write({"a": {"v": 1}}, T0 + timedelta(seconds=5)) == 0  # unchanged: no row
    assert _write({"a": {"v": 2}}, T0 + timedelta(seconds=10)) == 1
    assert _write({"a": None}, T0 + timedelta(seconds=20)) == 1  # deleted

    assert history.as_of("test.thing", "a", T0 - timedelta(microseconds=1)) is None
    assert history.as_of("test.thing", "a", T0) == {"v": 1}
    assert history.as_of("test.thing", "a", T0 + timedelta(seconds=9, microseconds=999_999)) == {"v": 1}
    assert history.as_of("test.thing", "a", T0 + timedelta(seconds=10)) == {"v": 2}
    assert history.as_of("test.thing", "a", T0 + timedelta(seconds=20)) is None
    rows = history.timeline("test.thing", "a")
    assert [(r.valid_from, r.valid_to) for r in rows] == [
        (T0, T0 + timedelta(seconds=10)),
        (T0 + timedelta(seconds=10), T0 + timedelta(seconds=20)),
        (T0 + timedelta(seconds=20), None),
    ]
    assert history.as_of_many("test.thing", ["a", "b"], T0 + timedelta(seconds=11)) == {"a": {"v": 2}}
    since = history.changes_since("test.thing", ["a"], T0 + timedelta(seconds=5))
    assert [r.state for r in since["a"]] == [{"v": 2}, None]


@pytest.mark.django_db
def test_two_changes_at_one_instant_leave_one_row_not_an_empty_interval():
    _write({"a": {"v": 1}}, T0)
    _write({"a": {"v": 2}}, T0)
    assert [(r.state, r.valid_to) for r in history.timeline("test.thing", "a")] == [({"v": 2}, None)]


def _write_shared(groups, at):
    with transaction.atomic():
        return history.write_shared("test.thing", groups, at=at)


@pytest.mark.django_db
def test_shared_states_write_the_same_rows_as_one_write_per_key():
    """``write_shared`` (set-based on PostgreSQL) follows ``write``'s rules: unchanged keys write nothing, a changed
    key closes its open row, a second change at the same instant replaces the row, a legacy digest counts."""
    assert _write_shared([({"v": 1}, ["a", "b"]), ({"v": 2}, ["c"])], T0) == 3
    assert _write_shared([({"v": 1}, ["a", "b", "c"])], T0 + timedelta(seconds=5)) == 1  # only c changed
    assert _write_shared([({"v": 1}, ["a"])], T0 + timedelta(seconds=6)) == 0
    assert _write_shared([({"v": 3}, ["b"])], T0 + timedelta(seconds=10)) == 1
    assert _write_shared([({"v": 4}, ["b"])], T0 + timedelta(seconds=10)) == 1  # same instant: replaced
    assert [(r.state, r.valid_from, r.valid_to) for r in history.timeline("test.thing", "b")] == [
        ({"v": 1}, T0, T0 + timedelta(seconds=10)),
        ({"v": 4}, T0 + timedelta(seconds=10), None),
    ]
    assert [(r.state, r.valid_from, r.valid_to) for r in history.timeline("test.thing", "c")] == [
        ({"v": 2}, T0, T0 + timedelta(seconds=5)),
        ({"v": 1}, T0 + timedelta(seconds=5), None),
    ]
    assert history.as_of_many("test.thing", ["a", "b", "c"], T0 + timedelta(seconds=7)) == {
        "a": {"v": 1},
        "b": {"v": 1},
        "c": {"v": 1},
    }
    # An open row carrying the legacy (ASCII-escaped) digest of an equal non-ASCII state is not rewritten.
    _write({"d": {"v": "é"}}, T0)
    HistoryRecord.objects.filter(kind="test.thing", key="d").update(digest=legacy_digest({"v": "é"}))
    assert _write_shared([({"v": "é"}, ["d"])], T0 + timedelta(seconds=1)) == 0
    assert HistoryRecord.objects.filter(kind="test.thing", key="d").count() == 1


@pytest.mark.django_db(transaction=True)
def test_write_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="transaction"):
        history.write("test.thing", {"a": {"v": 1}}, at=T0)


@pytest.mark.django_db
def test_catalog_writes_keep_dataset_history_and_drift_finds_a_write_that_skipped_it(data_owner):
    ds = services.dataset_create(
        actor=data_owner,
        spec=spec(
            {
                "namespace": "pg://wh",
                "name": "s.crm.people",
                "fields": [{"name": "email", "type": "text"}, {"name": "age", "type": "int"}],
            }
        ),
    )
    created = history.as_of(DATASET, ds.pk, datetime.now(UTC))
    assert [f["name"] for f in created["fields"]] == ["email", "age"]
    assert created["tags"] == [] and created["owners"] == ["olive"]
    assert history.drift(DATASET) == [] and history.drift(DATASET_LEVEL) == []

    from catalog.models import Dataset

    Dataset.objects.filter(pk=ds.pk).update(description="changed behind history's back")
    assert history.drift(DATASET) == [str(ds.pk)]
    with transaction.atomic():
        capture_datasets([ds.pk])
    assert history.drift(DATASET) == []
    assert HistoryRecord.objects.filter(kind=DATASET, key=str(ds.pk)).count() == 2
