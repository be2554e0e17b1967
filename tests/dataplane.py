"""A managed PostgreSQL for data-plane tests: the test server reached as its admin, and cleanup of roles."""

from __future__ import annotations

import psycopg
from psycopg import sql


def server() -> dict[str, str]:
    """Connection keywords of the real PostgreSQL test server (the one Django's tests use)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    assert db["ENGINE"].endswith("postgresql"), "data-plane tests need the real PostgreSQL test server"
    return {"host": db["HOST"], "port": str(db["PORT"]), "user": db["USER"], "password": db["PASSWORD"]}


def dsn(dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(dbname=dbname, **server())


def admin(dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(dsn(dbname), autocommit=True)


def drop_roles(roles: list[str], database: str) -> None:
    """Drop these roles and what they own or were granted in ``database`` (when it still exists)."""
    if not roles:
        return
    with admin() as conn:
        has_db = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone() is not None
    if has_db:
        with admin(database) as conn:
            for role in roles:
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
    with admin() as conn:
        for role in roles:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
