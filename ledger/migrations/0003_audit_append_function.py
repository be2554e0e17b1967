"""``steward_audit_append``: append events that record no change of their own in one statement (PostgreSQL).

Used by ``ledger.audit.record_alone`` (the decision API's denials): the chain's head is locked, each event's hash
is the SHA-256 of its canonical text with the previous hash put in its place (the text around it is built in
Python, so the form is ``steward.canonical``'s), the events are inserted and the head moved.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION steward_audit_append(
    p_at timestamptz, p_actor_id bigint, p_actor_name text, p_request_id text, p_rows jsonb
) RETURNS text LANGUAGE plpgsql AS $$
-- p_rows: [[action, target_type, target_id, target_repr, before (JSON text or null), after (same), reason,
--           the canonical text before the previous hash, the canonical text after it], ...]
DECLARE
    prev text;
    h text;
    r jsonb;
BEGIN
    SELECT last_hash INTO prev FROM governance_audithead WHERE id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO governance_audithead (id, last_hash) VALUES (1, repeat('0', 64)) ON CONFLICT (id) DO NOTHING;
        SELECT last_hash INTO prev FROM governance_audithead WHERE id = 1 FOR UPDATE;
    END IF;
    FOR r IN SELECT value FROM jsonb_array_elements(p_rows) LOOP
        h := encode(sha256(convert_to((r->>7) || prev || (r->>8), 'UTF8')), 'hex');
        INSERT INTO governance_auditevent (at, actor_id, actor_name, action, target_type, target_id, target_repr,
                                           request_id, before, after, reason, prev_hash, hash)
        VALUES (p_at, p_actor_id, p_actor_name, r->>0, r->>1, r->>2, r->>3, p_request_id, (r->>4)::jsonb,
                (r->>5)::jsonb, r->>6, prev, h);
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
