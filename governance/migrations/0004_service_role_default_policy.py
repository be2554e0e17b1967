"""The ``service`` role's group, and policy version 1: the demo defaults.

A frozen copy of ``governance.services.policy.default_policy_document`` as of this migration, so history does
not change when the code's defaults do. Levels come from ``STEWARD_CLASSIFICATION_LEVELS``, by rank.
"""

from django.conf import settings
from django.db import migrations

PURPOSES = {
    "analytics": "Exploratory analysis and ad-hoc questions.",
    "reporting": "Recurring reports and dashboards.",
    "model-training": "Training or evaluating machine-learning models.",
    "data-quality": "Checking and fixing the data's quality.",
    "incident-response": "Investigating a security or production incident.",
    "regulatory-reporting": "Reports owed to a regulator or an auditor.",
}
EVERYTHING = sorted(PURPOSES)
TIERS = [
    ([], "P90D", EVERYTHING),
    (["owner"], "P30D", EVERYTHING),
    (["owner", "privacy-officer"], "P7D", [p for p in EVERYTHING if p != "data-quality"]),
    (["owner", "privacy-officer", "data-steward"], "PT8H", ["incident-response", "regulatory-reporting"]),
]
TOXIC = [
    {
        "name": "customer-with-raw-transactions",
        "tags": ["customer", "transactions.raw"],
        "description": "Customer records together with unaggregated payment transactions allow profiling "
        "individuals' spending; hold one or the other.",
    }
]


def forwards(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name="service")
    PolicyVersion = apps.get_model("governance", "PolicyVersion")
    if PolicyVersion.objects.exists():
        return
    levels = {}
    for rank, item in enumerate(settings.STEWARD_CLASSIFICATION_LEVELS):
        approvers, max_duration, purposes = TIERS[min(rank, len(TIERS) - 1)]
        levels[item["code"]] = {"approvers": approvers, "max_duration": max_duration, "purposes": purposes}
    PolicyVersion.objects.create(
        version=1,
        created_by_name="system",
        note="Defaults: lowest level auto-approved; then owner; owner and privacy officer; "
        "owner, privacy officer and steward for at most 8 hours.",
        purposes=PURPOSES,
        levels=levels,
        toxic_combinations=TOXIC,
    )


class Migration(migrations.Migration):
    dependencies = [("governance", "0003_access_governance")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
