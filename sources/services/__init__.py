"""Source services: sources (CRUD, audited), runs (queue, execute, schedule), apply (snapshot → catalog, lineage)."""

from sources.services.apply import ApplyResult, snapshot_apply
from sources.services.runs import run_execute, run_queue, sources_due
from sources.services.sources import (
    can_manage_sources,
    crawler_user,
    next_run,
    source_create,
    source_delete,
    source_update,
    sources_check,
)

__all__ = [
    "ApplyResult",
    "can_manage_sources",
    "crawler_user",
    "next_run",
    "run_execute",
    "run_queue",
    "snapshot_apply",
    "source_create",
    "source_delete",
    "source_update",
    "sources_check",
    "sources_due",
]
