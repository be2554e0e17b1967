"""Hand audit, history, API tokens and compliance reports to ledger, accounts and compliance (state only)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0007_compliance_reports"),
        ("ledger", "0001_initial"),
        ("accounts", "0001_initial"),
        ("compliance", "0001_initial"),
    ]

    operations = [
        # State only: the tables exist already (created by governance); the database is not touched.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name="apitoken",
                    name="user",
                ),
                migrations.DeleteModel(
                    name="AuditEvent",
                ),
                migrations.DeleteModel(
                    name="AuditHead",
                ),
                migrations.RemoveField(
                    model_name="compliancereport",
                    name="requested_by",
                ),
                migrations.DeleteModel(
                    name="HistoryRecord",
                ),
                migrations.DeleteModel(
                    name="ApiToken",
                ),
                migrations.DeleteModel(
                    name="ComplianceReport",
                ),
            ],
            database_operations=[],
        ),
    ]
