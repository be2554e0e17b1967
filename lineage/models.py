"""Lineage: jobs, runs, received events, dataset and column edges, propagated tags, declassifications.

Time semantics (docs/architecture.md §4):
- an edge is active at ``t`` when ``valid_from <= t`` and (``valid_to`` is null or ``t < valid_to``); its
  times are OpenLineage event times (when the run completed);
- a propagated tag row is active over the same kind of interval, in Steward's time (when propagation
  established or withdrew it), so ``as of t`` answers "what did Steward hold at t".
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class Job(models.Model):
    """An OpenLineage job: ``(namespace, name)``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    namespace = models.CharField(max_length=255)
    name = models.CharField(max_length=512)
    facets = models.JSONField(default=dict, blank=True)
    # Not a column: set in memory when an ingest changed the job's facets or latest completion (to be saved).
    dirty = False
    # The completion time of the latest completed run; edges of a run completed earlier are history.
    latest_completed_at = models.DateTimeField(null=True, blank=True)
    # Set by "end this job's lineage" (DELETE /api/v1/lineage/jobs/{id}); a later completed run starts anew.
    edges_ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["namespace", "name"]
        constraints = [models.UniqueConstraint(fields=["namespace", "name"], name="job_identity")]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class RunState(models.TextChoices):
    START = "START"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    ABORT = "ABORT"
    FAIL = "FAIL"
    OTHER = "OTHER"


TERMINAL_STATES = {RunState.COMPLETE, RunState.ABORT, RunState.FAIL}


class Run(models.Model):
    """One run of a job (``runId`` from the events). Inputs and outputs are the union over its events."""

    id = models.UUIDField(primary_key=True)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="runs")
    state = models.CharField(max_length=16, choices=RunState.choices)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # The event time of the event that set ``state`` (a later-arriving earlier event does not override it).
    state_at = models.DateTimeField()
    facets = models.JSONField(default=dict, blank=True)
    inputs = models.JSONField(default=list, blank=True)  # [dataset id, ...]
    outputs = models.JSONField(default=list, blank=True)
    # [[input dataset id, input field, output dataset id, output field], ...] from columnLineage facets
    column_edges = models.JSONField(default=list, blank=True)
    # A streaming run's edges open while it runs: the time of its first RUNNING event (or of its START when
    # the job's ``jobType`` says STREAMING). Null for runs whose edges open only when they complete.
    edges_from = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-state_at"]

    def __str__(self) -> str:
        return f"{self.job}#{self.id}"


class LineageEvent(models.Model):
    """Every distinct event received, keyed by the SHA-256 of its canonical JSON (idempotency).

    ``payload`` is the event's canonical JSON text as received (``steward.canonical``), so that its SHA-256 is the
    ``digest``; or, for an event over ``STEWARD_LINEAGE_STORED_EVENT_BYTES``, the canonical text of what was kept
    (``facets.event_trim``). Stored as text, compressed with LZ4 (migration 0009): the archive is written once per
    event and read as a whole, and text costs PostgreSQL less than a tenth of jsonb to store. ``data`` is it parsed."""

    digest = models.CharField(max_length=64, unique=True)
    event_type = models.CharField(max_length=16, blank=True)
    kind = models.CharField(max_length=16)  # run | dataset | job
    event_time = models.DateTimeField()
    run = models.ForeignKey(Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="events")
    payload = models.TextField()
    received_at = models.DateTimeField(default=timezone.now)
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.event_type} {self.event_time.isoformat()}"

    @property
    def data(self) -> Any:
        """The stored event, parsed."""
        return json.loads(self.payload)


class Edge(models.Model):
    """input dataset → output dataset through a job, over ``[valid_from, valid_to)``."""

    # No single-column indexes: each foreign key leads an index below (or ``edge_open_once``), which serves its
    # lookups and the foreign-key checks of a dataset's or job's deletion (migration 0008).
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="edges", db_index=False)
    source = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="lineage_out", db_index=False)
    target = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="lineage_in", db_index=False)
    run = models.ForeignKey(Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # Covering (PostgreSQL): a graph hop and the propagation walk read (near, far, job) of the open edges
            # from the index alone, without visiting the heap (index-only scans).
            models.Index(fields=["source", "valid_to"], name="edge_source_open", include=["target", "job"]),
            models.Index(fields=["target", "valid_to"], name="edge_target_open", include=["source", "job"]),
            models.Index(fields=["job", "valid_to"], name="edge_job_open"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "source", "target"], condition=models.Q(valid_to__isnull=True), name="edge_open_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source_id} -[{self.job_id}]-> {self.target_id}"


class ColumnTransformation(models.TextChoices):
    """OpenLineage's transformation types: DIRECT (the output column's values come from the input column)
    and INDIRECT (the input column affects the output without flowing into it: a filter, join or group-by
    key; the ``dataset`` list of ``columnLineage`` names such inputs for the whole output dataset)."""

    DIRECT = "DIRECT"
    INDIRECT = "INDIRECT"


class ColumnEdge(models.Model):
    """input column → output column through a job (the ``columnLineage`` facet), over an interval.
    ``target_field`` is blank for a dataset-level (INDIRECT) input: it affects the whole output dataset."""

    # Indexed by the ``(…, valid_to)`` indexes below, which each foreign key leads (as for ``Edge``).
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="column_edges", db_index=False)
    source_dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="+", db_index=False)
    source_field = models.CharField(max_length=255)
    target_dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="+", db_index=False)
    target_field = models.CharField(max_length=255, blank=True)
    transformation = models.CharField(
        max_length=8, choices=ColumnTransformation.choices, default=ColumnTransformation.DIRECT
    )
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["source_dataset", "valid_to"], name="coledge_source_open"),
            models.Index(fields=["target_dataset", "valid_to"], name="coledge_target_open"),
            models.Index(fields=["job", "valid_to"], name="coledge_job_open"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "source_dataset", "source_field", "target_dataset", "target_field"],
                condition=models.Q(valid_to__isnull=True),
                name="coledge_open_once",
            )
        ]

    def __str__(self) -> str:
        source = f"{self.source_dataset_id}.{self.source_field}"
        target = f"{self.target_dataset_id}.{self.target_field}"
        return f"{source} -[{self.job_id}]-> {target}"


class DatasetVersion(models.Model):
    """A version of a dataset written by a run (``version`` facet, or the run id when absent)."""

    # ``dataset_version_identity`` (dataset, version) serves the lookups by dataset.
    dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="versions", db_index=False)
    version = models.CharField(max_length=255)
    run = models.ForeignKey(Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="dataset_versions")
    schema = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["dataset", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["dataset", "version"], name="dataset_version_identity")]

    def __str__(self) -> str:
        return f"{self.dataset_id}@{self.version}"


class PropagatedTag(models.Model):
    """A tag that reached ``dataset`` (at ``field``, or dataset level when blank) along lineage.

    ``origin_*`` is the direct assignment it comes from; ``via_*`` the previous hop (a direct assignment
    or another propagated tag), through ``job``. Following ``via`` always reaches the origin.
    """

    # Rows are derived (the engine writes them from the edges and tags it has just read, under its lock), and a
    # big propagation writes or ends 100k of them at once, so every per-row cost counts: ``dataset`` and ``tag``
    # lead the composite indexes below and need no single-column index of their own, and the provenance pointers
    # (origin, via, job) are not checked by the database at commit (three row locks per inserted row); deleting
    # a dataset or job still deletes the rows naming it (Django's cascade), and re-propagates downstream of it.
    dataset = models.ForeignKey(
        "catalog.Dataset", on_delete=models.CASCADE, related_name="propagated_tags", db_index=False
    )
    field = models.CharField(max_length=255, blank=True)
    tag = models.ForeignKey("catalog.Tag", on_delete=models.CASCADE, related_name="+", db_index=False)
    origin_dataset = models.ForeignKey(
        "catalog.Dataset", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    origin_field = models.CharField(max_length=255, blank=True)
    via_dataset = models.ForeignKey("catalog.Dataset", on_delete=models.CASCADE, related_name="+", db_constraint=False)
    via_field = models.CharField(max_length=255, blank=True)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["dataset", "valid_to"], name="proptag_dataset_open"),
            models.Index(fields=["tag", "valid_to"], name="proptag_tag_open"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "field", "tag"], condition=models.Q(valid_to__isnull=True), name="proptag_open_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tag_id}@{self.dataset_id}/{self.field}"


class DeclassificationState(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    REVOKED = "revoked"


class Declassification(models.Model):
    """A request to block named tags across one job's edges (e.g. an anonymising aggregation)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="declassifications")
    tags = models.ManyToManyField("catalog.Tag", related_name="declassifications")
    justification = models.TextField()
    state = models.CharField(max_length=16, choices=DeclassificationState.choices, default="pending")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    # While approved: the interval over which the block holds (revocation ends it).
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_to = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"declassification {self.pk} ({self.state})"


class PropagationChange(models.Model):
    """A durable to-do for the propagation engine, written in the transaction that changed its inputs.

    ``datasets`` are the roots whose downstream region must be recomputed; ``tags`` limits the recompute to
    those tag ids (empty: all tags). Processed changes are deleted in the transaction that applied them.
    """

    datasets = models.JSONField()
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"change {self.pk}: {len(self.datasets)} root(s)"


class NamespaceProducer(models.Model):
    """A producer allowed on a namespace: it may run the namespace's jobs, and change the schema of (or open
    new edges into) the namespace's datasets. The first producer of an unowned namespace claims it
    (``assigned_by`` empty); admins assign more (docs/lineage.md "Setting up producers")."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    namespace = models.CharField(max_length=255, db_index=True)
    producer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lineage_namespaces")
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["namespace", "producer_id"]
        constraints = [models.UniqueConstraint(fields=["namespace", "producer"], name="namespace_producer_once")]

    def __str__(self) -> str:
        return f"{self.namespace} ← {self.producer}"

    def snapshot(self) -> dict[str, str]:
        return {"namespace": self.namespace, "producer": self.producer.get_username()}


class InboxState(models.TextChoices):
    PENDING = "pending"
    FAILED = "failed"


class InboxEvent(models.Model):
    """An event accepted by queued ingestion (``STEWARD_LINEAGE_INGEST=queued`` or ``Prefer: respond-async``):
    validated and authorised on receipt, then applied in batches by ``lineage.inbox_drain``, which deletes the row
    in the transaction that applies it. A row that cannot be applied (the producer lost its rights or namespace
    meanwhile) stays as ``failed`` with the reason, for an admin to retry or discard."""

    id = models.BigAutoField(primary_key=True)
    # The key of the event as sent (``steward.canonical``): a resend while it waits is one row.
    digest = models.CharField(max_length=64, unique=True)
    payload = models.TextField()  # the event's canonical JSON, as its key was computed from
    received_at = models.DateTimeField(default=timezone.now)
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    # The scopes of the token it came with (null: a session or unscoped call); applied with the same rights.
    token_scopes = models.JSONField(null=True, blank=True)
    state = models.CharField(max_length=8, choices=InboxState.choices, default=InboxState.PENDING)
    error = models.TextField(blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "id"], name="lineage_inbox_state_id")]

    def __str__(self) -> str:
        return f"inbox {self.pk} {self.state}"
