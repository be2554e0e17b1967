"""Signals other apps listen to, sent inside the transaction of the catalog write that caused them."""

from django.dispatch import Signal

# Direct tags (or a tag's ``propagates`` flag) changed on these datasets.
# kwargs: ``datasets`` (list of dataset ids), ``tags`` (list of tag ids; empty means any tag).
tags_changed = Signal()

# Model versions whose training run changed; lineage recomputes the tags they inherit. kwargs: ``ids``.
model_versions_changed = Signal()

# The effective classification of these datasets changed (sent by ``dataset_recompute_effective`` inside the
# transaction that changed it; governance suspends grants approved for a lower level). kwargs: ``datasets``
# (ids) and ``levels`` ({id: new effective level}).
effective_classification_changed = Signal()
