"""PostgreSQL enforcement: one LOGIN role per grant, ``VALID UNTIL`` the grant's end, SELECT on one table.

Datasets follow OpenLineage naming: the namespace (``postgres://host:port``) names a server this connector
manages (``STEWARD_DATAPLANE_POSTGRES`` maps it to an admin DSN), and the name is ``database.schema.table``
or ``schema.table`` (in the DSN's database). See docs/enforcement.md.

Managed roles are recognised by both a name prefix (``stw_g_<grant id hex>``) and a ``COMMENT ON ROLE`` that
starts with ``steward-managed `` followed by JSON naming the grant, namespace and table. A role that lacks
either, or whose comment names another namespace, is never changed. Passwords are random, sent to the server
only as a SCRAM-SHA-256 verifier (so they are not in its statement log), returned once and never logged.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
from django.core.exceptions import ImproperlyConfigured
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from connectors.dataplane.base import (
    Credentials,
    DataGrant,
    DataPlaneError,
    DatasetNotManaged,
    GrantExpired,
    Progress,
    ReconcileReport,
)
from steward.errors import BackendUnavailable, DomainError

__all__ = ["DEFAULT_ROLE_PREFIX", "MARKER", "ManagedRole", "PostgresDataPlaneConnector", "TableRef"]

logger = logging.getLogger(__name__)

MARKER = "steward-managed "
DEFAULT_ROLE_PREFIX = "stw_g_"
# Role names are at most 63 bytes; the grant id takes 32 hex digits.
_MAX_PREFIX = 63 - 32
_PREFIX_RE = re.compile(rf"[a-z_][a-z0-9_]{{0,{_MAX_PREFIX - 1}}}")
_ROLE_OPTIONS = sql.SQL("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS")
_REVOKE_MISSING = (pg_errors.UndefinedTable, pg_errors.InvalidSchemaName, pg_errors.UndefinedObject)


@dataclass(frozen=True)
class TableRef:
    """Where a dataset lives: ``database`` is ``None`` for a ``schema.table`` name (the DSN's database)."""

    namespace: str
    database: str | None
    schema: str
    table: str


@dataclass(frozen=True)
class ManagedRole:
    """A login role this connector created, as read back from the server's catalog."""

    name: str
    oid: int
    valid_until: datetime | None
    grant_id: str
    namespace: str
    database: str
    schema: str
    table: str


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime")
    return value


def _short(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@dataclass
class _Tally:
    seen: set[str] = field(default_factory=set)
    kept: int = 0
    dropped: dict[str, str] = field(default_factory=dict)
    updated: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


class _Pool:
    """One admin connection per database during a reconcile pass, closed with the pass."""

    def __init__(self, connector: PostgresDataPlaneConnector, namespace: str, stack: ExitStack) -> None:
        self.connector, self.namespace, self.stack = connector, namespace, stack
        self.connections: dict[str | None, psycopg.Connection] = {}

    def get(self, database: str | None) -> psycopg.Connection:
        if database not in self.connections:
            conn = self.connector._connect(self.namespace, database)
            self.connections[database] = self.stack.enter_context(conn)
        return self.connections[database]


class PostgresDataPlaneConnector:
    """Enforces grants on tables of managed PostgreSQL servers with per-grant login roles.

    ``databases`` maps a dataset namespace to the DSN of an admin connection on that server. The admin role
    needs CREATEROLE, membership of ``pg_signal_backend`` (to end sessions) and the right to grant SELECT on
    the tables (owner, ``WITH GRANT OPTION``, or superuser). Each grant is changed in its own transaction.
    """

    def __init__(
        self,
        databases: Mapping[str, str] | None = None,
        role_prefix: str = DEFAULT_ROLE_PREFIX,
        connect_timeout: int = 5,
        terminate_timeout_ms: int = 5000,
    ) -> None:
        if not _PREFIX_RE.fullmatch(role_prefix):
            raise ImproperlyConfigured(f"role_prefix must be 1-{_MAX_PREFIX} lower-case letters, digits or underscores")
        self.databases = dict(databases or {})
        for namespace, dsn in self.databases.items():
            try:
                conninfo_to_dict(dsn)
            except psycopg.ProgrammingError:
                # The DSN holds a password: name the namespace, never echo the value.
                raise ImproperlyConfigured(f"STEWARD_DATAPLANE_POSTGRES[{namespace!r}] is not a valid DSN") from None
        self.role_prefix = role_prefix
        self.connect_timeout = connect_timeout
        self.terminate_timeout_ms = terminate_timeout_ms

    # --- naming ----------------------------------------------------------------------------------------

    def manages(self, namespace: str) -> bool:
        return namespace in self.databases

    def role_name(self, grant_id: UUID) -> str:
        """The login role of a grant: the prefix and the grant id's 32 hex digits."""
        return f"{self.role_prefix}{grant_id.hex}"

    def table_for(self, namespace: str, name: str) -> TableRef:
        """Map a dataset to its table: ``database.schema.table`` or ``schema.table``; identifiers are taken as
        written (case and punctuation kept, quoted in SQL), so names whose parts contain dots cannot be mapped."""
        if not self.manages(namespace):
            raise DatasetNotManaged(f"{namespace!r} is not a PostgreSQL server Steward enforces grants on")
        parts = name.split(".")
        if len(parts) not in (2, 3) or not all(parts):
            raise DatasetNotManaged(f"{name!r} is not database.schema.table or schema.table")
        if len(parts) == 2:
            return TableRef(namespace, None, parts[0], parts[1])
        return TableRef(namespace, parts[0], parts[1], parts[2])

    # --- operations ------------------------------------------------------------------------------------

    def apply(
        self, grant: DataGrant, *, reset_password: bool = False, now: datetime | None = None
    ) -> Credentials | None:
        """Create the grant's role (returns its credentials, once) or bring an existing one up to date.

        Re-applying sets ``VALID UNTIL`` to the grant's ``valid_until`` (also when that is now in the past,
        which refuses new logins at once) and re-grants; it returns ``None`` unless ``reset_password``.
        """
        now = _aware(now, "now") if now else datetime.now(UTC)
        ref = self.table_for(grant.namespace, grant.name)
        role = self.role_name(grant.grant_id)
        with self._connect(ref.namespace, ref.database) as conn:
            database = conn.info.dbname
            try:
                with conn.transaction():
                    self._lock(conn, role)
                    existing = self._read_role(conn, role)
                    if existing is not None:
                        self._check_same_table(existing, ref, database)
                    elif grant.valid_until <= now:
                        raise GrantExpired(f"grant {grant.grant_id} ended at {grant.valid_until.isoformat()}")
                    password = secrets.token_urlsafe(32) if existing is None or reset_password else None
                    options: list[sql.Composable] = [_ROLE_OPTIONS]
                    if password is not None:
                        verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
                        options.append(sql.SQL("PASSWORD {}").format(sql.Literal(verifier.decode())))
                    options.append(sql.SQL("VALID UNTIL {}").format(sql.Literal(grant.valid_until.isoformat())))
                    conn.execute(
                        sql.SQL("{verb} {role} {options}").format(
                            verb=sql.SQL("CREATE ROLE" if existing is None else "ALTER ROLE"),
                            role=sql.Identifier(role),
                            options=sql.SQL(" ").join(options),
                        )
                    )
                    marker = {
                        "grant": str(grant.grant_id),
                        "namespace": ref.namespace,
                        "database": database,
                        "schema": ref.schema,
                        "table": ref.table,
                    }
                    conn.execute(
                        sql.SQL("COMMENT ON ROLE {} IS {}").format(
                            sql.Identifier(role), sql.Literal(MARKER + json.dumps(marker, sort_keys=True))
                        )
                    )
                    for statement in self._grants(role, database, ref.schema, ref.table):
                        conn.execute(statement)
            except (pg_errors.UndefinedTable, pg_errors.InvalidSchemaName) as exc:
                raise DataPlaneError(f"{grant.name} is not a table on {grant.namespace}: {_short(exc)}") from None
            except psycopg.OperationalError as exc:
                raise BackendUnavailable(f"managed PostgreSQL {grant.namespace!r}: {_short(exc)}") from None
            host, port = conn.info.host, conn.info.port
        logger.info(
            "dataplane: %s role %s for grant %s on %s.%s.%s until %s",
            "created" if existing is None else "updated",
            role,
            grant.grant_id,
            database,
            ref.schema,
            ref.table,
            grant.valid_until.isoformat(),
            extra={"grant_id": str(grant.grant_id), "dataplane_role": role},
        )
        if password is None:
            return None
        return Credentials(
            grant_id=grant.grant_id,
            user=role,
            password=password,
            host=host,
            port=int(port),
            database=database,
            valid_until=grant.valid_until,
        )

    def remove(self, grant_id: UUID) -> bool:
        """Refuse new logins, end the role's sessions, revoke its privileges and drop it. Idempotent."""
        role = self.role_name(grant_id)
        removed = False
        for namespace in self.databases:
            with self._connect(namespace) as conn:
                found = self._read_role(conn, role)
                if found is None or found.namespace != namespace:
                    continue
                database = found.database if self._database_exists(conn, found.database) else None
            with self._connect(namespace, database) as conn:
                removed = self._drop(conn, found, reason="removed") or removed
        return removed

    def reconcile(
        self, desired: Iterable[DataGrant], *, now: datetime | None = None, progress: Progress | None = None
    ) -> ReconcileReport:
        """Drop every managed role that is not desired, has expired or grants another table; fix ``VALID UNTIL``
        drift. Desired grants without a role are reported as ``missing`` (never created here: credentials are
        handed out by ``apply`` only). Roles not managed by this connector and namespace are never touched."""
        now = _aware(now, "now") if now else datetime.now(UTC)
        wanted = {self.role_name(g.grant_id): g for g in desired if self.manages(g.namespace)}
        tally = _Tally()
        for namespace in self.databases:
            try:
                with self._connect(namespace) as admin:
                    default_db = admin.info.dbname
                    roles = self._managed_roles(admin, namespace)
                    live = {r.database for r in roles if self._database_exists(admin, r.database)}
            except (BackendUnavailable, psycopg.Error) as exc:
                tally.failed[namespace] = type(exc).__name__
                logger.warning("dataplane: reconcile skipped %s: %s", namespace, _short(exc))
                continue
            with ExitStack() as stack:
                pool = _Pool(self, namespace, stack)
                for role in roles:
                    tally.seen.add(role.name)
                    action = self._reconcile_role(role, wanted.get(role.name), now, default_db, live, pool, tally)
                    if progress is not None:
                        progress(role.name, action)
        missing = tuple(
            g.grant_id
            for name, g in wanted.items()
            if name not in tally.seen and g.valid_until > now and g.namespace not in tally.failed
        )
        report = ReconcileReport(
            checked=len(tally.seen),
            kept=tally.kept,
            dropped=tally.dropped,
            updated=tally.updated,
            missing=missing,
            failed=tally.failed,
        )
        logger.info("dataplane: reconcile %s", report.counts(), extra={"reconcile": report.counts()})
        return report

    def _reconcile_role(
        self,
        role: ManagedRole,
        grant: DataGrant | None,
        now: datetime,
        default_db: str,
        live: set[str],
        pool: _Pool,
        tally: _Tally,
    ) -> str:
        database = role.database if role.database in live else None
        try:
            reason = self._reason_to_drop(role, grant, now, default_db)
            if reason is not None:
                self._drop(pool.get(database), role, reason=reason)
                tally.dropped[role.name] = reason
                return "dropped"
            if grant is not None and role.valid_until != grant.valid_until:
                self._set_valid_until(pool.get(database), role, grant.valid_until)
                tally.updated[role.name] = grant.valid_until.isoformat()
                return "updated"
        except (BackendUnavailable, DomainError, psycopg.Error) as exc:
            # One broken role must not stop the pass; the next pass retries it.
            tally.failed[role.name] = type(exc).__name__
            logger.warning("dataplane: reconcile could not fix role %s: %s", role.name, _short(exc))
            return "failed"
        tally.kept += 1
        return "kept"

    def check(self) -> None:
        for namespace in self.databases:
            with self._connect(namespace) as conn:
                conn.execute("SELECT 1")

    # --- internals -------------------------------------------------------------------------------------

    def _connect(self, namespace: str, database: str | None = None) -> psycopg.Connection:
        extra: dict[str, Any] = {"connect_timeout": self.connect_timeout, "application_name": "steward-dataplane"}
        if database is not None:
            extra["dbname"] = database
        try:
            conn = psycopg.connect(make_conninfo(self.databases[namespace], **extra), autocommit=True)
        except psycopg.OperationalError as exc:
            if database is not None and f'database "{database}" does not exist' in str(exc):
                raise DataPlaneError(f"database {database!r} does not exist on {namespace}") from None
            raise BackendUnavailable(f"managed PostgreSQL {namespace!r}: {_short(exc)}") from None
        # Never wait long behind another session's lock on a role or table: fail and let the next pass retry.
        conn.execute("SET lock_timeout = '10s'")
        return conn

    @staticmethod
    def _lock(conn: psycopg.Connection, role: str) -> None:
        """Serialise changes to one role (apply, remove and reconcile may race) for this transaction."""
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [role])

    @staticmethod
    def _database_exists(conn: psycopg.Connection, database: str) -> bool:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone() is not None

    def _parse(self, oid: int, name: str, valid_until: datetime | None, comment: str | None) -> ManagedRole | None:
        if not comment or not comment.startswith(MARKER) or not name.startswith(self.role_prefix):
            return None
        try:
            marker = json.loads(comment[len(MARKER) :])
            role = ManagedRole(
                name=name,
                oid=oid,
                valid_until=valid_until,
                grant_id=str(marker["grant"]),
                namespace=str(marker["namespace"]),
                database=str(marker["database"]),
                schema=str(marker["schema"]),
                table=str(marker["table"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if self.role_prefix + UUID(role.grant_id).hex != name:
            return None
        return role

    def _read_role(self, conn: psycopg.Connection, role: str) -> ManagedRole | None:
        """The managed role of this name, ``None`` if absent; ``DataPlaneError`` if it exists unmanaged."""
        row = conn.execute(
            "SELECT oid, rolname, rolvaliduntil, shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s",
            [role],
        ).fetchone()
        if row is None:
            return None
        managed = self._parse(*row)
        if managed is None:
            raise DataPlaneError(f"role {role} exists but is not managed by Steward; leaving it alone")
        return managed

    def _managed_roles(self, conn: psycopg.Connection, namespace: str) -> list[ManagedRole]:
        rows = conn.execute(
            """
            SELECT r.oid, r.rolname, r.rolvaliduntil, d.description
            FROM pg_roles r
            JOIN pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass
            WHERE starts_with(r.rolname, %s) AND starts_with(d.description, %s)
            ORDER BY r.rolname
            """,
            [self.role_prefix, MARKER],
        ).fetchall()
        roles = [self._parse(*row) for row in rows]
        return [r for r in roles if r is not None and r.namespace == namespace]

    def _check_same_table(self, role: ManagedRole, ref: TableRef, database: str) -> None:
        if (role.database, role.schema, role.table) != (database, ref.schema, ref.table):
            raise DataPlaneError(
                f"role {role.name} was made for {role.database}.{role.schema}.{role.table}; remove it before "
                "applying the grant to another table"
            )

    def _reason_to_drop(self, role: ManagedRole, grant: DataGrant | None, now: datetime, default_db: str) -> str | None:
        if grant is None:
            return "not desired"
        if grant.valid_until <= now:
            return "expired"
        ref = self.table_for(grant.namespace, grant.name)
        if (role.database, role.schema, role.table) != (ref.database or default_db, ref.schema, ref.table):
            return "asset changed"
        return None

    @staticmethod
    def _grants(role: str, database: str, schema: str, table: str) -> list[sql.Composed]:
        r = sql.Identifier(role)
        return [
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), r),
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), r),
            sql.SQL("GRANT SELECT ON TABLE {} TO {}").format(sql.Identifier(schema, table), r),
        ]

    @staticmethod
    def _revokes(role: str, database: str, schema: str, table: str) -> list[sql.Composed]:
        r = sql.Identifier(role)
        return [
            sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(sql.Identifier(schema, table), r),
            sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(sql.Identifier(schema), r),
            sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(sql.Identifier(database), r),
        ]

    def _terminate(self, conn: psycopg.Connection, oid: int) -> int:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, %s)) FROM pg_stat_activity "
            "WHERE usesysid = %s AND pid <> pg_backend_pid()",
            [self.terminate_timeout_ms, oid],
        ).fetchone()
        return int(row[0]) if row else 0

    def _drop(self, conn: psycopg.Connection, role: ManagedRole, *, reason: str) -> bool:
        """One transaction: no more logins, end sessions, revoke, drop. Then end any session that logged in
        while it ran (the NOLOGIN only shows to new logins at commit; such a session has no privileges left)."""
        ident = sql.Identifier(role.name)
        with conn.transaction():
            self._lock(conn, role.name)
            row = conn.execute("SELECT oid FROM pg_roles WHERE rolname = %s", [role.name]).fetchone()
            if row is None:
                return False
            conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(ident))
            ended = self._terminate(conn, role.oid)
            for statement in self._revokes(role.name, role.database, role.schema, role.table):
                try:
                    with conn.transaction():
                        conn.execute(statement)
                except _REVOKE_MISSING:
                    pass  # the table, schema or database went away, and its privileges with it
            try:
                with conn.transaction():
                    conn.execute(sql.SQL("DROP ROLE {}").format(ident))
            except pg_errors.DependentObjectsStillExist:
                # Privileges we did not grant by name (a renamed table) or objects it created (temp tables).
                conn.execute(sql.SQL("DROP OWNED BY {}").format(ident))
                conn.execute(sql.SQL("DROP ROLE {}").format(ident))
        ended += self._terminate(conn, role.oid)
        logger.info(
            "dataplane: dropped role %s of grant %s (%s), ended %d session(s)",
            role.name,
            role.grant_id,
            reason,
            ended,
            extra={"grant_id": role.grant_id, "dataplane_role": role.name},
        )
        return True

    def _set_valid_until(self, conn: psycopg.Connection, role: ManagedRole, valid_until: datetime) -> None:
        with conn.transaction():
            self._lock(conn, role.name)
            conn.execute(
                sql.SQL("ALTER ROLE {} VALID UNTIL {}").format(
                    sql.Identifier(role.name), sql.Literal(valid_until.isoformat())
                )
            )
        logger.info(
            "dataplane: role %s of grant %s now valid until %s",
            role.name,
            role.grant_id,
            valid_until.isoformat(),
            extra={"grant_id": role.grant_id, "dataplane_role": role.name},
        )
