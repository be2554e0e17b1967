"""The data-plane enforcement protocol and the plain types every connector takes and returns.

A connector turns a grant on a dataset into something the data plane itself enforces (a database login
role, a bucket policy, ...). It knows nothing about Steward's Grant model: the governance side describes
each grant as a :class:`DataGrant` and calls :meth:`DataPlaneConnector.apply`, ``remove`` and ``reconcile``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import UUID

from psycopg.conninfo import make_conninfo

from steward.errors import Conflict, DomainError

__all__ = [
    "Credentials",
    "DataGrant",
    "DataPlaneConnector",
    "DataPlaneError",
    "DatasetNotManaged",
    "GrantExpired",
    "ReconcileReport",
]


class DataPlaneError(DomainError):
    """The data plane refused a change (missing table, a clashing role not managed by Steward, ...)."""

    status = 409
    code = "dataplane_error"


class DatasetNotManaged(DomainError):
    """The dataset's namespace is not a data plane this connector manages, or its name does not map to a table."""

    status = 400
    code = "dataset_not_managed"


class GrantExpired(Conflict):
    """The grant's ``valid_until`` has passed: no credentials are created for it."""

    code = "grant_expired"


@dataclass(frozen=True)
class DataGrant:
    """One grant of read access to one dataset, as the data plane needs to know it.

    ``subject`` is who holds it (a username or a workspace id; recorded for operators, never used for
    access); ``namespace`` and ``name`` identify the dataset the OpenLineage way; ``valid_until`` is an
    aware datetime after which the data plane must refuse access.
    """

    grant_id: UUID
    subject: str
    namespace: str
    name: str
    valid_until: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.grant_id, UUID):
            raise TypeError(f"grant_id must be a UUID, got {type(self.grant_id).__name__}")
        if self.valid_until.tzinfo is None or self.valid_until.utcoffset() is None:
            raise ValueError("valid_until must be an aware datetime")


@dataclass(frozen=True)
class Credentials:
    """A login for one grant, returned once by ``apply``. The password is never logged, stored or shown in repr."""

    grant_id: UUID
    user: str
    password: str = field(repr=False)
    host: str
    port: int
    database: str
    valid_until: datetime

    def conninfo(self) -> str:
        """A libpq connection string (``host=... port=... dbname=... user=... password=...``)."""
        return make_conninfo(
            host=self.host, port=self.port, dbname=self.database, user=self.user, password=self.password
        )


@dataclass(frozen=True)
class ReconcileReport:
    """What one reconciliation pass did. Holds role names and grant ids only, never secrets.

    ``dropped`` and ``updated`` map a role to the reason (``expired``, ``not desired``, ``asset changed``)
    or the corrected ``valid_until``; ``missing`` lists desired, unexpired grants on managed datasets that
    have no role yet (credentials only come from ``apply``, so reconcile never creates roles);
    ``failed`` maps a role or namespace to the error class that stopped it (the next pass retries).
    """

    checked: int = 0
    kept: int = 0
    dropped: dict[str, str] = field(default_factory=dict)
    updated: dict[str, str] = field(default_factory=dict)
    missing: tuple[UUID, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {
            "checked": self.checked,
            "kept": self.kept,
            "dropped": len(self.dropped),
            "updated": len(self.updated),
            "missing": len(self.missing),
            "failed": len(self.failed),
        }


# Called once per role a reconcile pass looks at, with the role and what happened to it.
Progress = Callable[[str, str], None]


class DataPlaneConnector(Protocol):
    """Enforces grants in a data plane. Every call is idempotent; engine types never leave the connector."""

    def manages(self, namespace: str) -> bool:
        """Whether datasets in ``namespace`` live in a data plane this connector enforces."""
        ...

    def apply(
        self, grant: DataGrant, *, reset_password: bool = False, now: datetime | None = None
    ) -> Credentials | None:
        """Create or update the grant's access. Returns credentials when a password was set (first apply,
        or ``reset_password``), else ``None``. Raises ``DatasetNotManaged``, ``GrantExpired`` (only for a new
        grant already past ``valid_until``), ``DataPlaneError`` or ``BackendUnavailable``."""
        ...

    def remove(self, grant_id: UUID) -> bool:
        """Revoke the grant's access, end its open sessions and delete its login. ``False`` if nothing was there."""
        ...

    def reconcile(
        self, desired: Iterable[DataGrant], *, now: datetime | None = None, progress: Progress | None = None
    ) -> ReconcileReport:
        """Make the data plane match ``desired``: remove access that is not desired or has expired, fix drift."""
        ...

    def check(self) -> None:
        """Raise ``BackendUnavailable`` unless every managed data plane answers (``/readyz``)."""
        ...
