"""The decision generation counter and the PostgreSQL triggers that move it (``governance.models.generation``)."""

from django.conf import settings
from django.db import migrations, models

# Each watched table: the columns whose change (on UPDATE) moves the generation. INSERT moves it only for
# grants and group memberships (a new user, dataset or token is not in any process's memory yet: a lookup that
# misses goes to the database); DELETE and TRUNCATE always move it.
WATCHED = {
    "governance.Grant": (
        [
            "user_id",
            "workspace_id",
            "dataset_id",
            "privilege",
            "valid_from",
            "valid_until",
            "revoked_at",
            "suspended_at",
        ],
        True,
    ),
    settings.AUTH_USER_MODEL: (["username", "is_active", "is_superuser"], False),
    "catalog.Dataset": (["namespace", "name"], False),
    "accounts.ApiToken": (["user_id", "digest", "expires_at", "revoked_at", "scopes"], False),
    "auth.Group": (["name"], False),
}

FUNCTION = """
CREATE OR REPLACE FUNCTION steward_decision_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- One step per transaction (the row lock is held to commit, so steps commit in order).
    UPDATE governance_decisiongeneration SET value = value + 1, bumped_by = txid_current()
     WHERE id = 1 AND bumped_by IS DISTINCT FROM txid_current();
    RETURN NULL;
END $$;
"""


def _triggers(table: str, columns: list[str], on_insert: bool) -> list[str]:
    old = ", ".join(f"OLD.{c}" for c in columns)
    new = ", ".join(f"NEW.{c}" for c in columns)
    events = "INSERT OR DELETE" if on_insert else "DELETE"
    return [
        f"CREATE TRIGGER steward_decision_bump_u AFTER UPDATE ON {table} FOR EACH ROW "
        f"WHEN (ROW({old}) IS DISTINCT FROM ROW({new})) EXECUTE FUNCTION steward_decision_bump()",
        f"CREATE TRIGGER steward_decision_bump_d AFTER {events} ON {table} FOR EACH STATEMENT "
        "EXECUTE FUNCTION steward_decision_bump()",
        f"CREATE TRIGGER steward_decision_bump_t AFTER TRUNCATE ON {table} FOR EACH STATEMENT "
        "EXECUTE FUNCTION steward_decision_bump()",
    ]


def create(apps, schema_editor):
    apps.get_model("governance", "DecisionGeneration").objects.get_or_create(id=1)
    if schema_editor.connection.vendor != "postgresql":
        return  # elsewhere nothing is kept in memory (governance.decision_index)
    quote = schema_editor.connection.ops.quote_name
    schema_editor.execute(FUNCTION)
    for label, (columns, on_insert) in WATCHED.items():
        table = quote(apps.get_model(label)._meta.db_table)
        for sql in _triggers(table, [quote(c) for c in columns], on_insert):
            schema_editor.execute(sql)
    memberships = quote(
        apps.get_model(settings.AUTH_USER_MODEL)._meta.get_field("groups").remote_field.through._meta.db_table
    )
    schema_editor.execute(
        f"CREATE TRIGGER steward_decision_bump_m AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {memberships} "
        "FOR EACH STATEMENT EXECUTE FUNCTION steward_decision_bump()"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.connection.ops.quote_name
    for label in WATCHED:
        table = quote(apps.get_model(label)._meta.db_table)
        for suffix in "udt":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS steward_decision_bump_{suffix} ON {table}")
    memberships = quote(
        apps.get_model(settings.AUTH_USER_MODEL)._meta.get_field("groups").remote_field.through._meta.db_table
    )
    schema_editor.execute(f"DROP TRIGGER IF EXISTS steward_decision_bump_m ON {memberships}")
    schema_editor.execute("DROP FUNCTION IF EXISTS steward_decision_bump()")


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0008_moved_to_ledger_accounts_compliance"),
        ("accounts", "0002_token_scopes"),
        ("catalog", "0007_dataset_producer_facts_aliases"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.CreateModel(
            name="DecisionGeneration",
            fields=[
                ("id", models.SmallIntegerField(default=1, primary_key=True, serialize=False)),
                ("value", models.BigIntegerField(default=0)),
                (
                    "bumped_by",
                    models.BigIntegerField(blank=True, help_text="Transaction id of the last step.", null=True),
                ),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("id", 1)), name="decision_generation_one_row")
                ],
            },
        ),
        migrations.RunPython(create, drop),
    ]
