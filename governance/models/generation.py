"""The decision generation: a counter that every change a cached decision could depend on moves.

One row. PostgreSQL triggers (migration ``0009_decision_generation``) add one to ``value`` in the same transaction
as any change to what a decision or the decision API's token check reads: a grant's subject, dataset, window,
revocation or suspension (and any grant inserted or deleted); a user's name, activity or superuser flag (or a
user deleted); a dataset's namespace or name (or a dataset deleted); an API token's user, digest, expiry,
revocation or scopes (or a token deleted); group memberships and group names. ``bumped_by`` (the transaction id)
keeps it to one step per transaction. ``governance.decision_index`` reads it before trusting anything it keeps
in memory: a process never answers from a copy older than the last committed change.
"""

from __future__ import annotations

from django.db import models


class DecisionGeneration(models.Model):
    id = models.SmallIntegerField(primary_key=True, default=1)
    value = models.BigIntegerField(default=0)
    bumped_by = models.BigIntegerField(null=True, blank=True, help_text="Transaction id of the last step.")

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="decision_generation_one_row")]

    def __str__(self) -> str:
        return f"decision generation {self.value}"
