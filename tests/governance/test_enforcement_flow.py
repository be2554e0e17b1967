"""End to end: request, approve, fetch a login, read the table as that role; revoke, expire, suspend; tokens.

A real database (``steward_flow_test<suffix>``) on the test PostgreSQL plays the managed warehouse. Its
namespace (``postgres://enforcement-flow<suffix>.test:54320``) is this run's own, because roles are
cluster-wide and a reconcile only touches roles marked with its namespaces: a parallel run never sees ours.
Celery is eager; after-commit work (the ``grant_changed`` hook, the removal task) runs through
``django_capture_on_commit_callbacks``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import jwt
import psycopg
import pytest
from django.utils import timezone
from psycopg import sql

from catalog import services as catalog
from connectors.tasks import dataplane_reconcile_task
from governance.models import Grant
from governance.selectors import dataplane_grants
from governance.services.grants import grants_expire
from governance.services.signing import MAX_TOKEN_LIFETIME
from ledger.models import AuditEvent
from steward.identity import Role
from tests.conftest import make_user
from tests.dataplane import admin as _admin
from tests.dataplane import drop_roles, dsn
from tests.dataplane import server as _server
from tests.governance.conftest import errors

pytestmark = pytest.mark.django_db

SUFFIX = os.environ.get("STEWARD_TEST_DB_SUFFIX", "")
DB = f"steward_flow_test{SUFFIX}"
NS = f"postgres://enforcement-flow{SUFFIX}.test:54320"
TABLE = f"{DB}.public.orders"


def _drop_our_roles() -> None:
    with _admin() as conn:
        roles = [
            r[0]
            for r in conn.execute(
                "SELECT rolname FROM pg_roles WHERE shobj_description(oid, 'pg_authid') LIKE %s", [f'%"{NS}"%']
            ).fetchall()
        ]
    drop_roles(roles, DB)


@pytest.fixture(scope="session")
def warehouse() -> Iterator[str]:
    """The managed database, with ``public.orders`` (3 rows) and ``public.salaries`` (not granted)."""
    with _admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB)))
    _drop_our_roles()
    with _admin(DB) as conn:
        conn.execute("CREATE TABLE public.orders (id int PRIMARY KEY, amount numeric(10, 2))")
        conn.execute("INSERT INTO public.orders VALUES (1, 10.50), (2, 20.00), (3, 7.25)")
        conn.execute("CREATE TABLE public.salaries (id int, salary numeric)")
    yield DB
    _drop_our_roles()
    with _admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))


@pytest.fixture
def managed(warehouse, settings) -> Iterator[None]:
    """Steward enforces grants on ``NS``: the namespace maps to an admin DSN of the warehouse database."""
    admin_dsn = dsn(DB)
    settings.STEWARD_DATAPLANE_POSTGRES = {NS: admin_dsn}
    settings.STEWARD_DATAPLANE_OPTIONS = {"databases": {NS: admin_dsn}}
    yield
    _drop_our_roles()


@pytest.fixture
def orders(managed, make_dataset, data_owner):
    """The warehouse table in the catalog: C2, owned by sales-eng (olive)."""
    return make_dataset(TABLE, namespace=NS, owners=["group:sales-eng"], classification="C2")


@pytest.fixture
def approve(ask, act, data_owner):
    """dana asks to read ``dataset`` for ``duration``; olive (an owner) approves. Returns the grant."""

    def run(user, dataset, duration: str = "P7D") -> Grant:
        res = ask(user, [dataset], purpose="analytics", duration=duration)
        assert res.status_code == 201, res.json()
        assert act(data_owner, res.json()["id"], "approve").json()["state"] == "approved"
        return Grant.objects.get(request_id=res.json()["id"])

    return run


@pytest.fixture
def fetch(client_for, django_capture_on_commit_callbacks):
    def post(user, grant, what: str = "credentials", body: dict | None = None):
        with django_capture_on_commit_callbacks(execute=True):
            return client_for(user).post(f"/api/v1/grants/{grant.pk}/{what}", body or {}, format="json")

    return post


def login(creds: dict) -> psycopg.Connection:
    """Log in over TCP with the returned password, as a data scientist's client would."""
    return psycopg.connect(
        host=creds["host"],
        port=creds["port"],
        dbname=creds["database"],
        user=creds["user"],
        password=creds["password"],
        connect_timeout=3,
        autocommit=True,
    )


def login_refused(creds: dict) -> bool:
    try:
        login(creds).close()
    except psycopg.OperationalError as exc:
        assert "authentication failed" in str(exc), exc
        return True
    return False


def role_exists(name: str) -> bool:
    with _admin() as conn:
        return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name]).fetchone() is not None


def ended(session: psycopg.Connection) -> bool:
    try:
        session.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    finally:
        session.close()
    return False


# --- credentials ---------------------------------------------------------------------------------------------------


def test_an_approved_user_reads_the_table_as_the_granted_role_and_revocation_ends_it(
    orders, approve, fetch, act, data_scientist, data_owner, other_scientist
):
    grant = approve(data_scientist, orders)
    assert grant.valid_until - grant.valid_from == timedelta(days=7)
    assert not role_exists(f"stw_g_{grant.pk.hex}"), "approval alone creates no login: it comes with credentials"

    res = fetch(data_scientist, grant)
    assert res.status_code == 200, res.json()
    creds = res.json()
    assert res["Cache-Control"] == "no-store"
    assert creds["user"] == f"stw_g_{grant.pk.hex}" and creds["database"] == DB and creds["grant_id"] == str(grant.pk)
    assert (creds["host"], creds["port"]) == (_server()["host"], int(_server()["port"]))
    assert creds["valid_until"] == grant.valid_until.isoformat().replace("+00:00", "Z")
    session = login(creds)
    assert [r[0] for r in session.execute("SELECT id FROM public.orders ORDER BY id").fetchall()] == [1, 2, 3]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        session.execute("SELECT * FROM public.salaries")

    # Nobody else gets a login for it: not another scientist, not even the dataset's owner who sees the grant.
    assert fetch(other_scientist, grant).status_code == 404
    assert fetch(data_owner, grant).status_code == 404

    res = act(data_owner, grant.pk, "revoke", {"reason": "Project ended."}, kind="grants")
    assert res.status_code == 200, res.json()

    assert ended(session), "revocation ends the open session"
    assert login_refused(creds)
    assert not role_exists(creds["user"])
    again = fetch(data_scientist, grant)
    assert again.status_code == 409 and again.json()["code"] == "grant_revoked"


def test_asking_again_sets_a_new_password_and_the_old_one_stops_working(orders, approve, fetch, data_scientist):
    grant = approve(data_scientist, orders)
    first = fetch(data_scientist, grant).json()
    second = fetch(data_scientist, grant).json()

    assert second["user"] == first["user"] and second["password"] != first["password"]
    assert login_refused(first)
    login(second).close()
    events = AuditEvent.objects.filter(action="governance.grant.credentials", target_id=str(grant.pk))
    assert events.count() == 2 and events.first().actor_name == "dana"
    assert events.first().after["role"] == first["user"] and "password" not in events.first().after


def test_a_short_grant_refuses_login_once_it_ends_and_the_sweep_ends_open_sessions(
    orders, approve, fetch, data_scientist, django_capture_on_commit_callbacks
):
    grant = approve(data_scientist, orders, duration="PT3S")
    creds = fetch(data_scientist, grant).json()
    session = login(creds)
    assert session.execute("SELECT count(*) FROM public.orders").fetchone() == (3,)

    time.sleep(max(0.0, (grant.valid_until - timezone.now()).total_seconds()) + 0.3)

    assert login_refused(creds), "PostgreSQL itself refuses logins after VALID UNTIL, whatever Celery did"
    assert fetch(data_scientist, grant).json()["code"] == "grant_expired"
    with django_capture_on_commit_callbacks(execute=True):
        assert grants_expire() == 1
    assert ended(session) and not role_exists(creds["user"])


def test_a_classification_rise_suspends_the_grant_and_removes_its_role(
    orders, approve, fetch, data_scientist, data_steward, django_capture_on_commit_callbacks
):
    grant = approve(data_scientist, orders)
    creds = fetch(data_scientist, grant).json()
    session = login(creds)

    with django_capture_on_commit_callbacks(execute=True):
        catalog.dataset_tag_add(actor=data_steward, dataset=orders, key="pii.email")  # implies C3

    grant.refresh_from_db()
    assert grant.state == "suspended"
    assert ended(session) and login_refused(creds) and not role_exists(creds["user"])
    assert fetch(data_scientist, grant).json()["code"] == "grant_suspended"


def test_a_dataset_outside_the_managed_databases_gets_a_400_naming_it(
    managed, make_dataset, approve, fetch, data_scientist
):
    lake = make_dataset("curated.orders", namespace="s3://datalake", owners=["group:sales-eng"], classification="C2")
    bad_name = make_dataset("orders", namespace=NS, owners=["group:sales-eng"], classification="C2")

    res = fetch(data_scientist, approve(data_scientist, lake))
    assert res.status_code == 400 and errors(res) == {"dataset": "dataset_not_managed"}
    assert "s3://datalake/curated.orders" in res.json()["detail"]
    res = fetch(data_scientist, approve(data_scientist, bad_name))
    assert res.status_code == 400 and f"{NS}/orders" in res.json()["detail"]


def test_reconcile_drops_roles_of_ended_grants_and_keeps_valid_ones(
    orders, make_dataset, approve, fetch, data_scientist, other_scientist, settings
):
    kept = approve(data_scientist, orders)
    lost = approve(other_scientist, orders)
    kept_creds, lost_creds = fetch(data_scientist, kept).json(), fetch(other_scientist, lost).json()
    # A revocation whose removal message was lost (no hook ran): only reconcile can notice.
    Grant.objects.filter(pk=lost.pk).update(revoked_at=timezone.now(), state="revoked")

    assert [g.grant_id for g in dataplane_grants()] == [kept.pk]
    assert settings.STEWARD_DATAPLANE_GRANTS_SELECTOR == "governance.selectors.dataplane_grants"
    counts = dataplane_reconcile_task.delay().get()

    assert counts == {"checked": 2, "kept": 1, "dropped": 1, "updated": 0, "missing": 0, "failed": 0}
    assert login_refused(lost_creds)
    login(kept_creds).close()


def test_a_revocation_commits_and_answers_even_when_removal_cannot_be_queued(
    orders, approve, act, data_scientist, data_owner, settings, caplog
):
    grant = approve(data_scientist, orders)
    settings.STEWARD_DATAPLANE_CONNECTOR = "missing"  # loading the connector fails

    res = act(data_owner, grant.pk, "revoke", {"reason": "done"}, kind="grants")

    assert res.status_code == 200 and Grant.objects.get(pk=grant.pk).state == "revoked"
    assert "reconcile will remove them" in caplog.text


def test_dataplane_grants_lists_user_grants_in_force_on_managed_datasets_only(
    orders, make_dataset, approve, data_scientist, other_scientist
):
    lake = make_dataset("curated.orders", namespace="s3://datalake", owners=["group:sales-eng"], classification="C2")
    mine = approve(data_scientist, orders)
    approve(data_scientist, lake)
    suspended = approve(other_scientist, orders)
    Grant.objects.filter(pk=suspended.pk).update(suspended_at=timezone.now(), state="suspended")

    (only,) = dataplane_grants()
    assert (only.grant_id, only.subject, only.namespace, only.name) == (mine.pk, "dana", NS, TABLE)
    assert only.valid_until == mine.valid_until
    assert dataplane_grants(now=mine.valid_until) == []
    assert dataplane_grants(now=mine.valid_from - timedelta(seconds=1)) == []


def test_the_password_never_reaches_audit_logs_or_any_read(
    orders, approve, fetch, act, client_for, data_scientist, data_owner, compliance_officer, caplog
):
    caplog.set_level(logging.DEBUG)
    grant = approve(data_scientist, orders)
    creds = fetch(data_scientist, grant).json()
    act(data_owner, grant.pk, "revoke", {"reason": "done"}, kind="grants")
    password = creds["password"]

    assert "credentials issued" in caplog.text and creds["user"] in caplog.text
    assert password not in caplog.text
    for event in AuditEvent.objects.all():
        text = json.dumps([event.before, event.after, event.reason, event.target_repr], default=str)
        assert password not in text
    reads = [
        client_for(data_scientist).get(f"/api/v1/grants/{grant.pk}"),
        client_for(data_scientist).get("/api/v1/grants"),
        client_for(data_scientist).get(f"/api/v1/access-requests/{grant.request_id}"),
        client_for(compliance_officer).get("/api/v1/audit?object=" + str(grant.pk)),
        client_for(compliance_officer).get("/api/v1/audit"),
    ]
    assert all(r.status_code == 200 for r in reads)
    assert not any(password in r.content.decode() for r in reads)
    assert any(e["action"] == "governance.grant.credentials" for e in reads[3].json()["results"])


# --- tokens --------------------------------------------------------------------------------------------------------


def test_a_grant_token_verifies_offline_and_never_outlives_the_grant(
    orders, approve, fetch, client_for, data_scientist, other_scientist, data_owner, django_capture_on_commit_callbacks
):
    grant = approve(data_scientist, orders, duration="PT30M")
    res = fetch(data_scientist, grant, "token")
    assert res.status_code == 200, res.json()
    body = res.json()
    assert body["jwks_url"] == "http://testserver/.well-known/jwks.json" and res["Cache-Control"] == "no-store"

    keyset = jwt.PyJWKSet.from_json(client_for(None).get("/.well-known/jwks.json").content.decode())
    header = jwt.get_unverified_header(body["token"])
    claims = jwt.decode(
        body["token"], keyset[header["kid"]], algorithms=["EdDSA"], audience="steward-dataplane", issuer="steward"
    )
    assert claims["sub"] == "dana" and claims["grant_id"] == str(grant.pk)
    assert claims["asset"] == {"id": str(orders.pk), "namespace": NS, "name": TABLE}
    assert claims["exp"] == int(grant.valid_until.timestamp()), "a 30-minute grant caps the default one-hour token"
    assert claims["exp"] <= grant.valid_until.timestamp()
    assert body["expires_at"] == datetime.fromtimestamp(claims["exp"], tz=UTC).isoformat().replace("+00:00", "Z")
    event = AuditEvent.objects.get(action="governance.grant.token", target_id=str(grant.pk))
    assert event.after["jti"] == claims["jti"] and body["token"] not in json.dumps(event.after)

    short = fetch(data_scientist, grant, "token", {"lifetime_seconds": 60}).json()
    short_claims = jwt.decode(short["token"], options={"verify_signature": False})
    assert short_claims["exp"] - short_claims["iat"] == 60

    assert fetch(other_scientist, grant, "token").status_code == 404
    assert fetch(data_owner, grant, "token").status_code == 404
    proxy = make_user("proxy", Role.SERVICE)
    assert fetch(proxy, grant, "token").status_code == 200, "a data-plane proxy asks for the holder"

    with django_capture_on_commit_callbacks(execute=True):
        client_for(data_scientist).post(f"/api/v1/grants/{grant.pk}/revoke", {"reason": "done"}, format="json")
    res = fetch(data_scientist, grant, "token")
    assert res.status_code == 409 and res.json()["code"] == "grant_revoked"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"lifetime_seconds": 0}, "min_value"),
        ({"lifetime_seconds": MAX_TOKEN_LIFETIME.seconds + 1}, "max_value"),
        ({"lifetime_seconds": "soon"}, "invalid"),
        ({"lifetime": 60}, "unknown_field"),
    ],
)
def test_a_bad_token_lifetime_is_a_400_naming_the_field(orders, approve, fetch, data_scientist, body, code):
    grant = approve(data_scientist, orders)
    res = fetch(data_scientist, grant, "token", body)
    assert res.status_code == 400
    assert errors(res) == {next(iter(body)): code}
    assert not AuditEvent.objects.filter(action="governance.grant.token").exists()
