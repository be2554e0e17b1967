"""One canonical JSON form for every digest: recomputable from docs/compliance.md alone, and rows stored in the
older form (non-ASCII escaped) still verify."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from django.db import transaction

from compliance.services import bundle_digest
from ledger import audit, history
from ledger.actions import register
from ledger.models import AuditEvent, AuditHead, HistoryRecord
from lineage.models import LineageEvent
from lineage.services.ingest import ingest
from steward.canonical import canonical_bytes, digest, legacy_digest
from tests.conftest import make_producer
from tests.lineage.events import NS, complete

register("test.legacy", "{actor} tested the legacy form on {target}")
register("test.after", "{actor} tested the chain after it on {target}")

SAMPLE = {
    "report": {"requested_by": "zoë", "query": {"at": "2026-01-10T09:00:00+00:00"}},
    "reconstruction": {"inputs": [{"name": "crm.kunden/Zürich", "level": 3, "allowed": True, "note": None}]},
    "format": "steward.compliance-bundle/1",
    'quotes "and" \\ back': "tab\there\nnew line \x01 ✓ 日本",
    "B": [],
    "a": {},
}


# --- an outsider's encoder, written from the rules in docs/compliance.md "Canonical JSON" (no json module) ------

_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _encode(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_string(k)}:{_encode(value[k])}" for k in sorted(value)) + "}"
    raise TypeError(type(value))


def outsider_digest(value: Any) -> str:
    return hashlib.sha256(_encode(value).encode("utf-8")).hexdigest()


def test_a_compliance_digest_is_recomputed_from_the_documented_byte_form():
    assert canonical_bytes(SAMPLE) == _encode(SAMPLE).encode("utf-8")
    assert bundle_digest(SAMPLE) == digest(SAMPLE) == outsider_digest(SAMPLE)
    assert "Zürich".encode() in canonical_bytes(SAMPLE)  # non-ASCII as itself, not \\u00fc
    changed = {**SAMPLE, "a": {"x": 1}}
    assert bundle_digest(changed) != outsider_digest(SAMPLE)


def test_the_byte_form_is_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "compliance.md").read_text()
    section = doc.split("### Canonical JSON", 1)[1].split("\n## ", 1)[0]
    for rule in ("sorted by key", "No whitespace", "UTF-8", "SHA-256", "lowercase hex", "\\u00XX", "as itself"):
        assert rule in section, rule


# --- rows written in the older form (non-ASCII as \\uXXXX) keep verifying ----------------------------------------


def _legacy(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


@pytest.mark.django_db
def test_an_audit_event_hashed_in_the_older_form_still_verifies_and_tampering_still_shows(data_steward):
    with transaction.atomic():
        audit.record(actor=data_steward, action="test.legacy", reason="für Zürich ✓", after={"n": "é"})
    assert audit.verify() is None
    # As an event written before steward.canonical: its hash over the \\u-escaped text, chained from the same prev.
    event = AuditEvent.objects.get(action="test.legacy")
    document = {
        "action": event.action,
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "after": event.after,
        "at": event.at.isoformat(),
        "before": event.before,
        "prev": event.prev_hash,
        "reason": event.reason,
        "request_id": event.request_id,
        "target_id": event.target_id,
        "target_repr": event.target_repr,
        "target_type": event.target_type,
    }
    old_hash = _legacy(document)
    assert old_hash != event.hash  # the two forms differ on this event
    AuditEvent.objects.filter(pk=event.pk).update(hash=old_hash)
    AuditHead.objects.filter(id=1).update(last_hash=old_hash)

    assert audit.verify() is None
    with transaction.atomic():
        audit.record(actor=data_steward, action="test.after", reason="next")
    assert audit.verify() is None  # the chain continues from the stored (older-form) hash

    AuditEvent.objects.filter(pk=event.pk).update(reason="für Zürich ✗")
    assert audit.verify().pk == event.pk


@pytest.mark.django_db
def test_a_history_row_digested_in_the_older_form_is_not_rewritten_for_an_unchanged_state():
    state = {"name": "Zürich", "level": 2}
    with transaction.atomic():
        assert history.write("test.legacy", {"k1": state}) == 1
    old = _legacy(state)
    assert legacy_digest(state) == old != digest(state)
    HistoryRecord.objects.filter(kind="test.legacy", key="k1").update(digest=old)

    with transaction.atomic():
        assert history.write("test.legacy", {"k1": dict(state)}) == 0  # same state: no new row
        assert history.write("test.legacy", {"k1": {**state, "level": 3}}) == 1  # a change still is one
    assert HistoryRecord.objects.filter(kind="test.legacy", key="k1").count() == 2


@pytest.mark.django_db
def test_a_lineage_event_keyed_in_the_older_form_is_still_a_duplicate(data_steward):
    make_producer(data_steward, "etl", NS)
    event = complete("laden-für-Zürich", ["raw"], ["sauber"])
    assert [r.status for r in ingest(actor=data_steward, events=[event], batch=True)] == ["applied"]
    LineageEvent.objects.filter(digest=digest(event)).update(digest=_legacy(event))

    assert [r.status for r in ingest(actor=data_steward, events=[event], batch=True)] == ["duplicate"]
    assert LineageEvent.objects.count() == 1
