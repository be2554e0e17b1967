"""The one history mechanism: rows tile an entity's lifetime and read back exactly as of any instant."""

from __future__ import annotations

import uuid
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


def _timelines() -> None:
    """a: v1 from T0, v2 from T0+10 s, deleted at T0+20 s; b: only from T0+5 s; the same key a of another kind."""
    with transaction.atomic():
        history.write_many({"test.thing": {"a": {"v": 1}}, "test.other": {"a": {"o": 1}}}, at=T0)
        history.write("test.thing", {"b": {"b": 1}}, at=T0 + timedelta(seconds=5))
        history.write("test.thing", {"a": {"v": 2}}, at=T0 + timedelta(seconds=10))
        history.write("test.other", {"a": {"o": 2}}, at=T0 + timedelta(seconds=15))
        history.write("test.thing", {"a": None}, at=T0 + timedelta(seconds=20))


@pytest.fixture(params=["postgresql", "other"])
def vendor_path(request, monkeypatch):
    """Read through the PostgreSQL statement and through the ORM path the embedded SQLite default takes (forced
    here by the vendor name ``ledger.history`` tests; the ORM's SQL itself runs on the test database)."""
    from django.db import connection

    if request.param != "postgresql":
        monkeypatch.setattr(connection, "vendor", "sqlite")
    return request.param


@pytest.mark.django_db
def test_as_of_each_answers_every_kind_key_and_instant_of_one_call_with_that_instants_state(vendor_path):
    _timelines()
    s = timedelta(seconds=1)
    us = timedelta(microseconds=1)
    lookups = [
        ("test.thing", "a", T0 - us),  # before anything
        ("test.thing", "a", T0),  # the instant of the first state
        ("test.thing", "a", T0 + 10 * s - us),  # the last microsecond of v1
        ("test.thing", "a", T0 + 10 * s),  # the change itself: v2, not v1
        ("test.thing", "a", T0 + 10 * s),  # asked twice
        ("test.thing", "a", T0 + 20 * s),  # deleted
        ("test.thing", "b", T0),  # b has no state before T0+5 s
        ("test.thing", "b", T0 + 10 * s),  # same instant as a's change, another key
        ("test.other", "a", T0 + 10 * s),  # same key and instant, another kind
        ("test.other", "a", T0 + 20 * s),
        ("test.thing", "never", T0 + 10 * s),
    ]
    assert history.as_of_each(lookups) == {
        ("test.thing", "a", T0): {"v": 1},
        ("test.thing", "a", T0 + 10 * s - us): {"v": 1},
        ("test.thing", "a", T0 + 10 * s): {"v": 2},
        ("test.thing", "b", T0 + 10 * s): {"b": 1},
        ("test.other", "a", T0 + 10 * s): {"o": 1},
        ("test.other", "a", T0 + 20 * s): {"o": 2},
    }
    # Whatever the mix, each answer is what as_of gives for that one lookup (every instant around every change).
    instants = [T0 + k * s + d for k in (0, 5, 10, 15, 20) for d in (-us, timedelta(0), us)]
    grid = [(kind, key, at) for kind in ("test.thing", "test.other") for key in ("a", "b") for at in instants]
    answers = history.as_of_each(reversed(grid))
    assert answers == {
        (kind, key, at): state for kind, key, at in grid if (state := history.as_of(kind, key, at)) is not None
    }
    assert history.as_of_each([]) == {}


@pytest.mark.django_db
def test_as_of_each_keys_answers_by_the_keys_text(vendor_path):
    key = uuid.uuid4()
    with transaction.atomic():
        history.write("test.thing", {key: {"v": 1}}, at=T0)
    assert history.as_of_each([("test.thing", key, T0)]) == {("test.thing", str(key), T0): {"v": 1}}


@pytest.mark.django_db
def test_changes_since_each_lists_only_what_started_after_the_instant_per_kind_and_key(vendor_path):
    _timelines()
    s = timedelta(seconds=1)
    since = history.changes_since_each({"test.thing": ["a", "b", "never"], "test.other": ["a"]}, T0 + 5 * s)
    assert since == {
        "test.thing": {"a": [(T0 + 10 * s, {"v": 2}), (T0 + 20 * s, None)]},  # b started at T0+5 s: not after it
        "test.other": {"a": [(T0 + 15 * s, {"o": 2})]},
    }
    # The same rows as changes_since, one kind at a time.
    for kind, keys in (("test.thing", ["a", "b"]), ("test.other", ["a"])):
        for at in (T0 - s, T0, T0 + 5 * s, T0 + 10 * s, T0 + 20 * s):
            each = history.changes_since_each({kind: keys}, at)[kind]
            one = {
                k: [(r.valid_from, r.state) for r in rows] for k, rows in history.changes_since(kind, keys, at).items()
            }
            assert each == one, (kind, at)
    assert history.changes_since_each({"test.thing": []}, T0) == {"test.thing": {}}


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
