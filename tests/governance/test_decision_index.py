"""Decisions from each process's memory (``governance.decision_index``) answer exactly as the database does.

These tests commit (``transactional_db``): the index is used only outside a transaction, against the committed
decision generation that PostgreSQL triggers move with every change a decision depends on.
"""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import psycopg
import pytest
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from accounts.services import token_create, token_revoke
from catalog.models import Dataset
from governance import decision_index
from governance.api import fastpath
from governance.authorization import DecisionQuery, decide_from_database, decide_many
from governance.models import DecisionGeneration, Grant
from governance.services.grants import grant_revoke
from tests.conftest import make_user

NS = "postgres://warehouse:5432"


@pytest.fixture
def index(transactional_db, settings):
    """The index rebuilt inline by the caller; the generation row (a flush by another test may have removed it)."""
    settings.STEWARD_DECISION_INDEX = "inline"
    DecisionGeneration.objects.get_or_create(id=1)
    decision_index.forget()
    fastpath._AUTH_CACHE.clear()
    yield
    decision_index.forget()
    fastpath._AUTH_CACHE.clear()


def _dsn() -> str:
    params = connection.get_connection_params()
    return psycopg.conninfo.make_conninfo(
        **{k: v for k, v in params.items() if k in ("host", "port", "user", "password", "dbname")}
    )


def _seed(rng: random.Random, now: datetime) -> tuple[list[User], list[Dataset], list[Grant]]:
    users = [User.objects.create(username=f"u{i}", is_active=i % 7 != 0) for i in range(12)]
    datasets = Dataset.objects.bulk_create(
        [Dataset(namespace=NS, name=f"sales.public.t{i}", platform="postgres") for i in range(8)]
    )
    workspaces = [uuid4() for _ in range(3)]
    grants = []
    for _ in range(120):
        start = now + timedelta(hours=rng.randint(-72, 24))
        end = start + timedelta(hours=rng.randint(1, 96))
        roll = rng.random()
        revoked = start + timedelta(minutes=rng.randint(-60, 3000)) if roll < 0.2 else None
        suspended = now - timedelta(hours=1) if 0.2 <= roll < 0.3 else None
        user = rng.choice(users) if rng.random() < 0.8 else None
        grants.append(
            Grant(
                user=user,
                workspace_id=None if user else rng.choice(workspaces),
                dataset=rng.choice(datasets[:7]),  # the last dataset has no grant
                valid_from=start,
                valid_until=end,
                revoked_at=revoked,
                suspended_at=suspended,
                approved_level="C2",
            )
        )
    Grant.objects.bulk_create(grants)
    return users, datasets, grants


def _questions(rng: random.Random, users: list[User], datasets: list[Dataset], grants: list[Grant]) -> list:
    workspaces = sorted({g.workspace_id for g in grants if g.workspace_id}, key=str) + [uuid4()]
    out = []
    for _ in range(500):
        d = rng.choice(datasets)
        asset = rng.choice(
            [
                {"dataset_id": d.pk},
                {"namespace": d.namespace, "name": d.name},
                {"namespace": NS, "name": "no.such.table"},
                {"dataset_id": uuid4()},
            ]
        )
        u = rng.choice(users)
        subject = rng.choice(
            [
                {"username": u.username},
                {"user_id": u.pk},
                {"username": "nobody"},
                {"user_id": 10**9},
                {"workspace_id": rng.choice(workspaces)},
            ]
        )
        out.append(DecisionQuery(action="read", **subject, **asset))
    return out


def test_answers_from_memory_equal_the_databases_on_random_grants_and_times(index):
    rng = random.Random(18)
    now = timezone.now().replace(microsecond=0)
    users, datasets, grants = _seed(rng, now)
    questions = _questions(rng, users, datasets, grants)
    # Random times, and every window edge (a microsecond either side of each start, end and revocation).
    times = [now + timedelta(minutes=rng.randint(-5000, 3000)) for _ in range(20)]
    edges = [t for g in grants for t in (g.valid_from, g.valid_until, g.revoked_at) if t is not None]
    times += [t + timedelta(microseconds=d) for t in rng.sample(edges, 30) for d in (-1, 0, 1)]
    memory_answered = 0
    for at in times:
        assert decision_index.current() is not None, "the index is current and used"
        cached = decide_many(questions, now=at)
        direct = decide_from_database(questions, now=at)
        assert cached == direct, at
        memory_answered += sum(1 for q in questions if decision_index.current() and q.at is None)
    assert memory_answered
    # Past times (``at``) read suspension history from the database, batched beside answers from memory.
    mixed = [DecisionQuery(**{**_fields(q), "at": now - timedelta(hours=2)}) for q in questions[:50]] + questions
    assert decide_many(mixed, now=now) == decide_from_database(mixed, now=now)


def _fields(q: DecisionQuery) -> dict:
    return {name: getattr(q, name) for name in DecisionQuery.__slots__}


def test_a_window_ends_on_time_with_nothing_invalidated(index):
    user = User.objects.create(username="wendy")
    ds = Dataset.objects.create(namespace=NS, name="sales.public.w", platform="postgres")
    now = timezone.now()
    grant = Grant.objects.create(
        user=user, dataset=ds, valid_from=now - timedelta(hours=1), valid_until=now + timedelta(hours=1),
        approved_level="C2",
    )  # fmt: skip
    q = [DecisionQuery(username="wendy", dataset_id=ds.pk)]
    built = decision_index.current()
    assert built is not None
    assert decide_many(q, now=grant.valid_until - timedelta(microseconds=1))[0].reason == "granted"
    assert decide_many(q, now=grant.valid_until)[0].reason == "expired"
    assert decide_many(q, now=grant.valid_from - timedelta(microseconds=1))[0].reason == "not_yet_valid"
    assert decision_index.current() is built, "the same index answered all three"


def test_a_revoked_grant_is_denied_by_the_very_next_decision_from_any_connection(index):
    owner = make_user("rita", "admin")
    user = User.objects.create(username="victor")
    ds = Dataset.objects.create(namespace=NS, name="sales.public.v", platform="postgres")
    now = timezone.now()
    window = {"valid_from": now - timedelta(hours=1), "valid_until": now + timedelta(days=1), "approved_level": "C2"}
    first = Grant.objects.create(user=user, dataset=ds, **window)
    second = Grant.objects.create(user=user, dataset=ds, **window)
    q = [DecisionQuery(username="victor", namespace=NS, name="sales.public.v")]
    assert decide_many(q, now=timezone.now())[0].reason == "granted"

    # Through the service, in this process.
    grant_revoke(actor=owner, grant=first, reason="left the team")
    answer = decide_many(q, now=timezone.now())[0]
    assert answer.reason == "granted" and answer.grant_id == second.pk

    # By another connection (another process's), straight in SQL: this process's index is stale at once.
    with psycopg.connect(_dsn(), autocommit=True) as other:
        other.execute("UPDATE governance_grant SET revoked_at = now() WHERE id = %s", [second.pk])
    answer = decide_many(q, now=timezone.now())[0]
    assert (answer.decision, answer.reason) == ("deny", "revoked")
    assert decision_index.current() is not None, "rebuilt, and it agrees"
    assert decide_many(q, now=timezone.now()) == decide_from_database(q, now=timezone.now())

    # A user deactivated, a dataset renamed, a grant deleted: each is seen by the next decision too.
    with psycopg.connect(_dsn(), autocommit=True) as other:
        other.execute("UPDATE governance_grant SET revoked_at = NULL WHERE id = %s", [second.pk])
        assert decide_many(q, now=timezone.now())[0].reason == "granted"
        other.execute("UPDATE auth_user SET is_active = false WHERE id = %s", [user.pk])
        assert decide_many(q, now=timezone.now())[0].reason == "inactive_subject"
        other.execute("UPDATE auth_user SET is_active = true WHERE id = %s", [user.pk])
        other.execute("UPDATE catalog_dataset SET name = 'sales.public.v2' WHERE id = %s", [ds.pk])
        assert decide_many(q, now=timezone.now())[0].reason == "unknown_asset"
        other.execute("UPDATE catalog_dataset SET name = 'sales.public.v' WHERE id = %s", [ds.pk])
        other.execute("DELETE FROM governance_grant WHERE dataset_id = %s", [ds.pk])
        assert decide_many(q, now=timezone.now())[0].reason == "no_grant"


def test_changes_nothing_decides_on_leave_the_index_current(index):
    user = User.objects.create(username="nora")
    ds = Dataset.objects.create(namespace=NS, name="sales.public.n", platform="postgres")
    now = timezone.now()
    grant = Grant.objects.create(
        user=user, dataset=ds, valid_from=now, valid_until=now + timedelta(days=1), approved_level="C2"
    )
    built = decision_index.current()
    User.objects.filter(pk=user.pk).update(last_login=now, first_name="Nora")
    Dataset.objects.filter(pk=ds.pk).update(description="orders", updated_at=now)
    Grant.objects.filter(pk=grant.pk).update(state="expired")  # the sweep's label; decisions compare times
    assert decision_index.current() is built


def test_inside_a_transaction_decisions_read_the_database(index):
    user = User.objects.create(username="tess")
    ds = Dataset.objects.create(namespace=NS, name="sales.public.t", platform="postgres")
    assert decision_index.current() is not None
    q = [DecisionQuery(username="tess", dataset_id=ds.pk)]
    with transaction.atomic():
        now = timezone.now()
        Grant.objects.create(
            user=user, dataset=ds, valid_from=now, valid_until=now + timedelta(days=1), approved_level="C2"
        )
        assert decision_index.current() is None
        assert decide_many(q, now=timezone.now())[0].reason == "granted", "its own uncommitted grant"
        transaction.set_rollback(True)
    assert decide_many(q, now=timezone.now())[0].reason == "no_grant"


def _call(body: dict, token: str) -> tuple[int, dict]:
    from steward.wsgi import application

    data = json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/authorize",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
    }
    seen: dict = {}
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        content = b"".join(application(environ, lambda status, headers: seen.update(status=int(status[:3]))))
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return seen["status"], json.loads(content)


def test_a_remembered_api_token_is_refused_by_the_next_call_once_revoked_or_its_role_removed(index, settings):
    settings.STEWARD_DECISION_AUTH_CACHE_SECONDS = 300
    proxy = make_user("gate", "service")
    user = User.objects.create(username="ursula")
    ds = Dataset.objects.create(namespace=NS, name="sales.public.u", platform="postgres")
    now = datetime.now(UTC)
    window = {"valid_from": now, "valid_until": now + timedelta(days=1), "approved_level": "C2"}
    Grant.objects.create(user=user, dataset=ds, **window)
    body = {"subject": "ursula", "action": "read", "asset": str(ds.pk)}
    secret = token_create(actor=proxy, user=proxy, name="gate")[1]
    assert _call(body, secret) == (200, _call(body, secret)[1])
    assert fastpath._AUTH_CACHE, "remembered"
    # The service role removed (another connection): the next call may only ask about itself.
    with psycopg.connect(_dsn(), autocommit=True) as other:
        other.execute(
            "DELETE FROM auth_user_groups WHERE user_id = %s AND group_id = (SELECT id FROM auth_group "
            "WHERE name = 'service')",
            [proxy.pk],
        )
    status, answer = _call(body, secret)
    assert status == 403 and answer["errors"][0]["code"] == "not_yourself"
    proxy.groups.add(*proxy.groups.model.objects.filter(name="service"))
    assert _call(body, secret)[0] == 200
    token_revoke(actor=proxy, token=proxy.api_tokens.get())
    assert _call(body, secret)[0] == 401


def test_answers_from_memory_check_the_generation_once_and_honour_a_revocation_committed_before_them(index, settings):
    """The fast path answers from memory at the index's generation and reads it back at the end, with the audit
    append of a denial in the same statement: a revocation committed elsewhere before the call is honoured, and a
    denial is audited once, however many times the call had to be answered."""
    from ledger.models import AuditEvent

    settings.STEWARD_DECISION_AUTH_CACHE_SECONDS = 300
    proxy = make_user("gate2", "service")
    User.objects.create(username="vera")
    ds = Dataset.objects.create(namespace=NS, name="sales.public.v", platform="postgres")
    now = datetime.now(UTC)
    grant = Grant.objects.create(
        user=User.objects.get(username="vera"),
        dataset=ds,
        valid_from=now - timedelta(hours=1),
        valid_until=now + timedelta(days=1),
        approved_level="C2",
    )
    allowed = {"subject": "vera", "action": "read", "asset": {"namespace": NS, "name": ds.name}}
    unknown = {"subject": "vera", "action": "read", "asset": {"namespace": NS, "name": "sales.public.none"}}
    secret = token_create(actor=proxy, user=proxy, name="gate2")[1]
    assert _call(allowed, secret)[1]["decision"] == "allow"  # builds the index, remembers the token
    assert _call(allowed, secret)[1]["decision"] == "allow"  # from memory
    assert _call(unknown, secret)[1]["reason"] == "unknown_asset"
    assert AuditEvent.objects.filter(action="governance.decision.deny").count() == 1
    with psycopg.connect(_dsn(), autocommit=True) as other:
        other.execute("UPDATE governance_grant SET revoked_at = now() WHERE id = %s", [grant.pk])
    status, answer = _call(allowed, secret)  # the index is stale: answered again from the database
    assert (status, answer["decision"], answer["reason"]) == (200, "deny", "revoked")
    assert AuditEvent.objects.filter(action="governance.decision.deny").count() == 2
    assert _call(allowed, secret)[1]["reason"] == "revoked"  # from the rebuilt index
    assert AuditEvent.objects.filter(action="governance.decision.deny").count() == 3
