"""``steward_audit_append``: append events that record no change of their own in one statement (PostgreSQL).

Used by ``ledger.audit.record_alone`` (the decision API's denials): the chain's head is locked, each event's hash
is the SHA-256 of its canonical text with the previous hash put in its place (the text around it is built in
Python, so the form is ``steward.canonical``'s), the events are inserted and the head moved.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION steward_audit_append(
    p_at timestamptz, p_actor_id bigint, p_actor_name text, p_request_id text, p_action text[],
    p_target_type text[], p_target_id text[], p_target_repr text[], p_before text[], p_after text[],
    p_reason text[], p_head text[], p_tail text[]
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    prev text;
    h text;
BEGIN
    SELECT last_hash INTO prev FROM governance_audithead WHERE id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO governance_audithead (id, last_hash) VALUES (1, repeat('0', 64)) ON CONFLICT (id) DO NOTHING;
        SELECT last_hash INTO prev FROM governance_audithead WHERE id = 1 FOR UPDATE;
    END IF;
    FOR i IN 1 .. cardinality(p_action) LOOP
        h := encode(sha256(convert_to(p_head[i] || prev || p_tail[i], 'UTF8')), 'hex');
        INSERT INTO governance_auditevent (at, actor_id, actor_name, action, target_type, target_id, target_repr,
                                           request_id, before, after, reason, prev_hash, hash)
        VALUES (p_at, p_actor_id, p_actor_name, p_action[i], p_target_type[i], p_target_id[i], p_target_repr[i],
                p_request_id, p_before[i]::jsonb, p_after[i]::jsonb, p_reason[i], prev, h);
        prev := h;
    END LOOP;
    UPDATE governance_audithead SET last_hash = prev WHERE id = 1;
    RETURN prev;
END $$;
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS steward_audit_append")


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_audit_checkpoints")]

    operations = [migrations.RunPython(create, drop)]
