"""Valid-time history of every governed entity: one row per state, over ``[valid_from, valid_to)``."""

from __future__ import annotations

from django.db import models


class HistoryRecord(models.Model):
    """The state of entity ``(kind, key)`` from ``valid_from`` until ``valid_to`` (open: still current).

    Written only by ``ledger.history`` in the transaction of the change; a change closes the open row
    at the change's time and opens the next one, so the rows of one entity tile its lifetime without gaps
    or overlaps. ``state`` is null on the row that records the entity's deletion.
    """

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=40)
    key = models.CharField(max_length=64)
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True)
    state = models.JSONField(null=True, blank=True)
    digest = models.CharField(max_length=64)

    class Meta:
        db_table = "governance_historyrecord"  # created by governance before the move
        ordering = ["kind", "key", "valid_from"]
        indexes = [models.Index(fields=["kind", "key", "valid_from"], name="history_as_of")]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "key"], condition=models.Q(valid_to__isnull=True), name="history_open_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}@{self.valid_from.isoformat()}"
