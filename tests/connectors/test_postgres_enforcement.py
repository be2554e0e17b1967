"""The PostgreSQL enforcement connector against the real test server: log in as the granted role and read.

A dedicated database (``steward_dataplane_test<suffix>``) is created per session with two tables; every role
a test makes is dropped after it. Roles are cluster-wide, so this file's connector manages its own namespace
(``postgres://dataplane-test<suffix>:54320``) and reconcile in a parallel run never sees another run's roles.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from psycopg import errors as pg_errors
from psycopg import sql

from connectors.dataplane import (
    DataGrant,
    DataPlaneError,
    DatasetNotManaged,
    GrantExpired,
    get_connector,
)
from connectors.dataplane.postgres import MARKER, PostgresDataPlaneConnector
from connectors.tasks import dataplane_reconcile_task, dataplane_remove_task
from tests.dataplane import admin as _admin
from tests.dataplane import drop_roles
from tests.dataplane import dsn as _dsn
from tests.dataplane import server as _server

SUFFIX = os.environ.get("STEWARD_TEST_DB_SUFFIX", "")
DB = f"steward_dataplane_test{SUFFIX}"
NAMESPACE = f"postgres://dataplane-test{SUFFIX}:54320"
OTHER_NAMESPACE = f"postgres://dataplane-other{SUFFIX}:54320"
ORDERS = f"{DB}.public.orders"

DESIRED: list[DataGrant] = []


def desired_grants() -> list[DataGrant]:
    """The selector the task tests point STEWARD_DATAPLANE_GRANTS_SELECTOR at."""
    return list(DESIRED)


def _test_roles(conn: psycopg.Connection) -> list[str]:
    """Roles this file may have left: managed for its namespaces, or the decoys named after the suffix."""
    rows = conn.execute(
        "SELECT rolname FROM pg_roles WHERE shobj_description(oid, 'pg_authid') LIKE ANY(%s) OR rolname LIKE %s",
        [[f'%"{NAMESPACE}"%', f'%"{OTHER_NAMESPACE}"%'], f"dptest{SUFFIX}%"],
    ).fetchall()
    return [r[0] for r in rows]


def _drop_test_roles() -> None:
    with _admin() as conn:
        roles = _test_roles(conn)
    drop_roles(roles, DB)


@pytest.fixture(scope="session")
def dataplane_db() -> Iterator[str]:
    with _admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB)))
    _drop_test_roles()
    with _admin(DB) as conn:
        conn.execute("CREATE TABLE public.orders (id int PRIMARY KEY, amount numeric(10, 2))")
        conn.execute("INSERT INTO public.orders VALUES (1, 10.50), (2, 20.00), (3, 7.25)")
        conn.execute("CREATE TABLE public.salaries (id int, salary numeric)")
        conn.execute("INSERT INTO public.salaries VALUES (1, 100000)")
        conn.execute('CREATE SCHEMA "Sales Data"')
        conn.execute('CREATE TABLE "Sales Data"."Odd-Name" (x text)')
        conn.execute("""INSERT INTO "Sales Data"."Odd-Name" VALUES ('quoted')""")
    yield DB
    _drop_test_roles()
    with _admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))


@pytest.fixture
def connector(dataplane_db) -> Iterator[PostgresDataPlaneConnector]:
    yield PostgresDataPlaneConnector(databases={NAMESPACE: _dsn(DB)})
    _drop_test_roles()


def grant(valid_for: timedelta = timedelta(hours=1), name: str = ORDERS, **extra) -> DataGrant:
    values = {
        "grant_id": uuid.uuid4(),
        "subject": "dana",
        "namespace": NAMESPACE,
        "name": name,
        "valid_until": datetime.now(UTC) + valid_for,
    }
    return DataGrant(**{**values, **extra})


def login(creds, dbname: str = DB) -> psycopg.Connection:
    """Log in over TCP with the returned password (PostgreSQL checks VALID UNTIL at password login)."""
    server = _server()
    return psycopg.connect(
        host=server["host"],
        port=server["port"],
        dbname=dbname,
        user=creds.user,
        password=creds.password,
        connect_timeout=3,
        autocommit=True,
    )


def login_refused(creds) -> bool:
    try:
        login(creds).close()
    except psycopg.OperationalError as exc:
        assert "authentication failed" in str(exc), exc
        return True
    return False


def role_row(name: str) -> tuple | None:
    with _admin() as conn:
        return conn.execute(
            "SELECT rolname, rolvaliduntil, rolcanlogin FROM pg_roles WHERE rolname = %s", [name]
        ).fetchone()


# --- apply ----------------------------------------------------------------------------------------------


def test_granted_role_reads_its_table_and_is_refused_every_other(connector):
    g = grant()
    creds = connector.apply(g)

    assert creds.user == f"stw_g_{g.grant_id.hex}"
    assert (creds.host, creds.port, creds.database) == (_server()["host"], int(_server()["port"]), DB)
    with login(creds) as session:
        rows = session.execute("SELECT id, amount FROM public.orders ORDER BY id").fetchall()
        assert [r[0] for r in rows] == [1, 2, 3]
        with pytest.raises(pg_errors.InsufficientPrivilege):
            session.execute("SELECT * FROM public.salaries")
        with pytest.raises(pg_errors.InsufficientPrivilege):
            session.execute("INSERT INTO public.orders VALUES (4, 1)")
    with psycopg.connect(creds.conninfo(), connect_timeout=3) as session:
        assert session.execute("SELECT count(*) FROM public.orders").fetchone() == (3,)


def test_schema_table_names_use_the_dsn_database_and_identifiers_are_quoted(connector):
    creds = connector.apply(grant(name="Sales Data.Odd-Name"))

    with login(creds) as session:
        assert session.execute('SELECT x FROM "Sales Data"."Odd-Name"').fetchall() == [("quoted",)]
        with pytest.raises(pg_errors.InsufficientPrivilege):
            session.execute("SELECT * FROM public.orders")


def test_login_is_refused_once_valid_until_passes_and_reconcile_ends_the_open_session(connector):
    g = grant(valid_for=timedelta(seconds=1.5))
    creds = connector.apply(g)
    session = login(creds)
    assert session.execute("SELECT count(*) FROM public.orders").fetchone() == (3,)

    time.sleep(max(0.0, (g.valid_until - datetime.now(UTC)).total_seconds()) + 0.2)

    assert login_refused(creds)
    # VALID UNTIL only guards logins: the session opened before expiry lives until reconcile ends it.
    assert session.execute("SELECT 1").fetchone() == (1,)
    report = connector.reconcile([g])
    assert report.dropped == {creds.user: "expired"}
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")
    session.close()
    assert role_row(creds.user) is None


def test_reapply_updates_valid_until_and_hands_out_a_password_only_when_asked(connector):
    g = grant()
    first = connector.apply(g)
    later = DataGrant(g.grant_id, g.subject, g.namespace, g.name, g.valid_until + timedelta(hours=2))

    assert connector.apply(later) is None
    assert role_row(first.user)[1] == later.valid_until
    login(first).close()

    second = connector.apply(later, reset_password=True)
    assert second.password != first.password and second.user == first.user
    assert login_refused(first)
    login(second).close()


def test_reapply_with_a_past_valid_until_refuses_new_logins_at_once(connector):
    g = grant()
    creds = connector.apply(g)
    login(creds).close()

    ended = DataGrant(g.grant_id, g.subject, g.namespace, g.name, datetime.now(UTC) - timedelta(seconds=1))
    assert connector.apply(ended) is None

    assert login_refused(creds)


# --- remove ---------------------------------------------------------------------------------------------


def test_remove_ends_open_sessions_refuses_login_and_is_idempotent(connector):
    g = grant()
    creds = connector.apply(g)
    session = login(creds)
    assert session.execute("SELECT count(*) FROM public.orders").fetchone() == (3,)

    assert connector.remove(g.grant_id) is True

    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT count(*) FROM public.orders")
    session.close()
    assert login_refused(creds)
    assert role_row(creds.user) is None
    assert connector.remove(g.grant_id) is False
    with _admin(DB) as conn:
        acl = conn.execute("SELECT relacl::text FROM pg_class WHERE relname = 'orders'").fetchone()[0]
        assert creds.user not in (acl or "")


def test_remove_task_removes_through_the_configured_connector(connector, settings):
    settings.STEWARD_DATAPLANE_OPTIONS = {"databases": {NAMESPACE: _dsn(DB)}}
    g = grant()
    creds = get_connector().apply(g)

    assert dataplane_remove_task.delay(str(g.grant_id)).get() is True

    assert login_refused(creds)


# --- reconcile ------------------------------------------------------------------------------------------


def test_reconcile_drops_expired_and_unknown_roles_fixes_drift_and_leaves_other_roles_alone(connector):
    kept, expired, unknown, drifted, missing = (grant() for _ in range(5))
    creds = {g.grant_id: connector.apply(g) for g in (kept, expired, unknown, drifted)}
    other = PostgresDataPlaneConnector(databases={OTHER_NAMESPACE: _dsn(DB)})
    foreign = other.apply(DataGrant(uuid.uuid4(), "sam", OTHER_NAMESPACE, ORDERS, kept.valid_until))
    lookalike = f"stw_g_{uuid.uuid4().hex}"
    plain = f"dptest{SUFFIX}_analyst"
    with _admin() as conn:
        # Same prefix but no marker; and an ordinary role. Neither is Steward's to drop.
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(lookalike)))
        conn.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(sql.Identifier(lookalike), f"dptest{SUFFIX}"))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(plain)))
    now = datetime.now(UTC)
    desired = [
        kept,
        DataGrant(expired.grant_id, "dana", NAMESPACE, ORDERS, now - timedelta(seconds=1)),
        DataGrant(drifted.grant_id, "dana", NAMESPACE, ORDERS, drifted.valid_until + timedelta(minutes=30)),
        missing,
        grant(namespace="s3://datalake", name="curated/x"),  # not a managed namespace: ignored
    ]
    seen: list[tuple[str, str]] = []

    try:
        report = connector.reconcile(desired, now=now, progress=lambda role, action: seen.append((role, action)))

        role = connector.role_name
        assert report.dropped == {role(expired.grant_id): "expired", role(unknown.grant_id): "not desired"}
        assert report.updated == {role(drifted.grant_id): desired[2].valid_until.isoformat()}
        assert (report.checked, report.kept, report.missing, report.failed) == (4, 1, (missing.grant_id,), {})
        assert sorted(seen) == sorted(
            [
                (role(kept.grant_id), "kept"),
                (role(expired.grant_id), "dropped"),
                (role(unknown.grant_id), "dropped"),
                (role(drifted.grant_id), "updated"),
            ]
        )
        assert role_row(role(drifted.grant_id))[1] == desired[2].valid_until
        assert login_refused(creds[unknown.grant_id]) and login_refused(creds[expired.grant_id])
        login(creds[kept.grant_id]).close()
        login(foreign).close()
        assert role_row(lookalike) is not None and role_row(plain) is not None

        again = connector.reconcile(desired, now=now)
        assert (again.dropped, again.updated, again.kept) == ({}, {}, 2)
    finally:
        with _admin() as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(lookalike)))


def test_reconcile_task_needs_a_selector_and_then_uses_it(connector, settings):
    settings.STEWARD_DATAPLANE_OPTIONS = {"databases": {NAMESPACE: _dsn(DB)}}
    settings.STEWARD_DATAPLANE_GRANTS_SELECTOR = ""
    with pytest.raises(ImproperlyConfigured, match="STEWARD_DATAPLANE_GRANTS_SELECTOR"):
        dataplane_reconcile_task.delay()

    keep, drop = grant(), grant()
    connector.apply(keep)
    connector.apply(drop)
    settings.STEWARD_DATAPLANE_GRANTS_SELECTOR = f"{__name__}.desired_grants"
    DESIRED[:] = [keep]
    try:
        counts = dataplane_reconcile_task.delay().get()
    finally:
        DESIRED.clear()

    assert counts == {"checked": 2, "kept": 1, "dropped": 1, "updated": 0, "missing": 0, "failed": 0}
    assert role_row(connector.role_name(drop.grant_id)) is None


def test_beat_schedules_the_reconcile_whenever_a_managed_postgres_is_configured(settings, tmp_path):
    assert settings.STEWARD_DATAPLANE_GRANTS_SELECTOR == "governance.selectors.dataplane_grants"
    assert "connectors-dataplane-reconcile" not in settings.CELERY_BEAT_SCHEDULE, "no managed database here"
    code = (
        "from django.conf import settings; print(settings.CELERY_BEAT_SCHEDULE.get('connectors-dataplane-reconcile'))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "steward.settings.base",
        "STEWARD_STATE_DIR": str(tmp_path),
        "STEWARD_DATAPLANE_POSTGRES": json.dumps({NAMESPACE: "postgresql://admin@db.internal/warehouse"}),
        "STEWARD_DATAPLANE_RECONCILE_SECONDS": "30",
    }
    env.pop("DATABASE_URL", None)
    env.pop("STEWARD_DATAPLANE_GRANTS_SELECTOR", None)

    def scheduled(**extra: str) -> str:
        run = [sys.executable, "-c", "import django; django.setup(); " + code]
        out = subprocess.run(run, env={**env, **extra}, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert "'task': 'connectors.dataplane_reconcile', 'schedule': 30.0" in scheduled()
    assert scheduled(STEWARD_DATAPLANE_POSTGRES="{}") == "None"
    assert scheduled(STEWARD_DATAPLANE_GRANTS_SELECTOR="") == "None"


# --- secrets and bad input ------------------------------------------------------------------------------


def test_passwords_never_reach_logs_reports_reprs_or_the_server_catalog(connector, caplog):
    caplog.set_level(logging.DEBUG)
    g = grant()
    creds = connector.apply(g)
    reset = connector.apply(g, reset_password=True)
    report = connector.reconcile([DataGrant(g.grant_id, "dana", NAMESPACE, ORDERS, g.valid_until + timedelta(1))])
    connector.remove(grant().grant_id)
    expired = grant()
    connector.apply(expired)
    connector.reconcile([])

    assert caplog.records, "the connector logs what it does"
    for secret in (creds.password, reset.password):
        assert secret not in caplog.text
        assert secret not in repr(report) and secret not in str(report.counts())
    assert creds.password not in repr(creds) and "password" not in repr(creds)
    with _admin() as conn:
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [creds.user]).fetchone() is None
    stored = connector.apply(grant())
    with _admin() as conn:
        verifier = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [stored.user]).fetchone()[0]
        comment = conn.execute(
            "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s", [stored.user]
        ).fetchone()[0]
    assert verifier.startswith("SCRAM-SHA-256$") and stored.password not in verifier
    marker = json.loads(comment.removeprefix(MARKER))
    assert marker["namespace"] == NAMESPACE and marker["table"] == "orders" and "dana" not in comment


def test_bad_grants_are_refused_with_a_clear_error_and_change_nothing(connector):
    with pytest.raises(DatasetNotManaged, match="not a PostgreSQL server"):
        connector.apply(grant(namespace="s3://datalake"))
    for bad in ("orders", "a.b.c.d", f"{DB}..orders"):
        with pytest.raises(DatasetNotManaged, match="database.schema.table"):
            connector.apply(grant(name=bad))
    with pytest.raises(DataPlaneError, match="not a table"):
        connector.apply(grant(name=f"{DB}.public.nope"))
    with pytest.raises(DataPlaneError, match="does not exist"):
        connector.apply(grant(name="no_such_db.public.orders"))
    late = grant(valid_for=-timedelta(seconds=1))
    with pytest.raises(GrantExpired):
        connector.apply(late)
    with pytest.raises(ValueError, match="aware"):
        grant(valid_until=datetime(2030, 1, 1))
    with _admin() as conn:
        assert _test_roles(conn) == []


def test_bad_configuration_is_refused_without_echoing_the_dsn():
    with pytest.raises(ImproperlyConfigured, match="not a valid DSN") as exc:
        PostgresDataPlaneConnector(databases={NAMESPACE: "host=db password=s3cret-pw garbage"})
    assert "s3cret-pw" not in str(exc.value)
    for prefix in ("", "Stw_", "x" * 32, "stw-g"):
        with pytest.raises(ImproperlyConfigured, match="role_prefix"):
            PostgresDataPlaneConnector(role_prefix=prefix)


def test_a_role_with_a_managed_name_but_no_marker_is_never_taken_over(connector):
    g = grant()
    name = connector.role_name(g.grant_id)
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(name)))
    try:
        with pytest.raises(DataPlaneError, match="not managed by Steward"):
            connector.apply(g)
        with pytest.raises(DataPlaneError, match="not managed by Steward"):
            connector.remove(g.grant_id)
        assert connector.reconcile([]).checked == 0
        assert role_row(name) == (name, None, False)
    finally:
        with _admin() as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.mark.django_db
def test_readyz_checks_the_managed_postgres_when_one_is_configured(client, settings, dataplane_db):
    settings.STEWARD_DATAPLANE_OPTIONS = {"databases": {NAMESPACE: _dsn(DB)}}
    assert client.get("/readyz").json()["checks"]["dataplane"] == "ok"

    settings.STEWARD_DATAPLANE_OPTIONS = {
        "databases": {NAMESPACE: "postgresql://admin:s3cret-dsn@127.0.0.1:1/x?connect_timeout=2"}
    }
    res = client.get("/readyz")
    assert res.status_code == 503
    assert res.json()["checks"]["dataplane"] == "unavailable: BackendUnavailable"
    assert b"s3cret-dsn" not in res.content


def _route(app, routes: dict | None) -> None:
    """Set task routes on the shared Celery app; its router caches them, so rebuild it."""
    app.conf.task_routes = routes
    app.amqp.flush_routes()
    app.amqp.__dict__.pop("router", None)


@pytest.mark.django_db(transaction=True)
def test_remove_later_queues_a_removal_that_a_worker_on_redis_performs(connector, settings, redis_url):
    from celery.contrib.testing.worker import start_worker
    from django.db import transaction

    from connectors.dataplane import remove_later
    from steward.celery import app

    settings.STEWARD_DATAPLANE_OPTIONS = {"databases": {NAMESPACE: _dsn(DB)}}
    g = grant()
    creds = connector.apply(g)
    session = login(creds)
    # A queue of this run's own, so a worker of a parallel test run never takes the message.
    queue = f"dataplane-test{SUFFIX}-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    app.conf.broker_url = redis_url
    _route(app, {"connectors.dataplane_remove": {"queue": queue}})
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10, queues=[queue]):
            with transaction.atomic():
                remove_later(g.grant_id)
                assert role_row(creds.user) is not None  # nothing happens before commit
            for _ in range(100):
                if role_row(creds.user) is None:
                    break
                time.sleep(0.1)
        assert role_row(creds.user) is None
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
        assert login_refused(creds)
    finally:
        session.close()
        app.conf.task_always_eager = True
        _route(app, None)
        app.amqp.queues.select([app.conf.task_default_queue])  # undo the worker's narrowing of the app's queues
