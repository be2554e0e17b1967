"""Audit actions written by lineage, registered with ``ledger.actions``."""

from __future__ import annotations

from ledger.actions import register

__all__ = ["DECLASSIFICATION", "INGEST_REFUSED", "JOB_END_EDGES", "NAMESPACE"]

JOB_END_EDGES = register("lineage.job.end_edges", "{actor} ended the lineage edges of job {target}")

# A declassification request and each state it can move to (``lineage.declassification.<state>``).
DECLASSIFICATION = {
    "request": register("lineage.declassification.request", "{actor} asked to stop propagating a tag: {target}"),
    "approve": register("lineage.declassification.approve", "{actor} approved declassification {target}"),
    "reject": register("lineage.declassification.reject", "{actor} rejected declassification {target}"),
    "withdrawn": register("lineage.declassification.withdrawn", "{actor} withdrew declassification {target}"),
    "revoked": register("lineage.declassification.revoked", "{actor} revoked declassification {target}"),
}

INGEST_REFUSED = register("lineage.ingest.refused", "{actor} was refused sending lineage")
# Namespace ownership: a first producer's claim, an admin's assignment or withdrawal.
NAMESPACE = {
    "claim": register("lineage.namespace.claim", "{actor} claimed namespace {target} as its first producer"),
    "assign": register("lineage.namespace.assign", "{actor} allowed a producer on namespace {target}"),
    "remove": register("lineage.namespace.remove", "{actor} withdrew a producer from namespace {target}"),
}
