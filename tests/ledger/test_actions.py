"""The audit action registry: every action the code records is declared once, with its sentence."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.db import transaction

from ledger import actions, audit
from ledger.models import AuditEvent

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "catalog", "compliance", "governance", "ledger", "lineage", "workspaces")


def _recorded_literals() -> list[tuple[str, str]]:
    """Action names written as string literals at ``record(action=...)`` and ``AuditEntry(...)`` call sites."""
    found = []
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "/migrations/" in path.as_posix():
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                values = [kw.value for kw in node.keywords if kw.arg == "action" and name in ("record", "AuditEntry")]
                if name == "AuditEntry" and node.args:
                    values.append(node.args[0])
                found += [
                    (f"{path.relative_to(ROOT)}:{node.lineno}", v.value)
                    for v in values
                    if isinstance(v, ast.Constant) and isinstance(v.value, str)
                ]
    return found


def test_every_action_recorded_by_a_literal_is_registered():
    literals = _recorded_literals()
    assert literals, "the scan found no call sites; it no longer matches the code"
    missing = [f"{where} {name}" for where, name in literals if name not in actions.registered()]
    assert missing == []


def test_every_app_registers_its_actions_at_start_up():
    names = set(actions.registered())
    prefixes = {name.split(".", 1)[0] for name in names}
    assert {"catalog", "lineage", "governance", "workspaces"} <= prefixes
    # Names of moved apps keep their original prefix: the log's vocabulary outlives the code layout.
    assert {"governance.token.create", "governance.compliance.report", "lineage.declassification.revoked"} <= names
    assert all(spec.template for spec in actions.registered().values())


@pytest.mark.django_db
def test_an_unregistered_action_is_refused_and_nothing_is_written():
    before = AuditEvent.objects.count()
    with pytest.raises(actions.UnknownAction, match="catalog.dataset.explode"), transaction.atomic():
        audit.record(actor=None, action="catalog.dataset.explode", target_type="catalog.dataset")
    assert AuditEvent.objects.count() == before


def test_registering_a_name_twice_with_another_sentence_is_an_error():
    assert actions.register("catalog.dataset.create", actions.registered()["catalog.dataset.create"].template)
    with pytest.raises(ValueError, match="already registered"):
        actions.register("catalog.dataset.create", "{actor} did something else to {target}")


def test_sentences_name_the_actor_and_the_target():
    assert actions.describe("catalog.dataset.delete", actor="alice", target="pg/sales") == (
        "alice deleted dataset pg/sales"
    )
    assert actions.describe("governance.grant.expire", actor="", target="g1") == "Grant g1 expired"
    # A name no app registers any more still reads.
    assert actions.describe("old.thing.done", actor="bob", target="x") == "bob: old.thing.done x"
