"""On PostgreSQL, refuse UPDATE, DELETE and TRUNCATE of the access audit trail to everyone.

The application already refuses them (``AccessEvent.save``/``delete`` and its queryset); the
trigger also stops a console, a script or a mistaken migration. SQLite, for development,
has no such guard. Whoever can disable triggers (the table's owner, a superuser) can still
rewrite rows, which is what the hash chain is for: ``manage.py verify_audit`` finds it.
"""

from django.db import migrations

TABLE = "audit_accessevent"

GUARD = f"""
CREATE FUNCTION audit_accessevent_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION
        'the access audit trail is append-only: UPDATE, DELETE and TRUNCATE are refused'
        USING HINT = 'Record a new event instead of changing or removing one.';
END;
$$;

CREATE TRIGGER audit_accessevent_no_update_or_delete
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION audit_accessevent_append_only();

CREATE TRIGGER audit_accessevent_no_truncate
    BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION audit_accessevent_append_only();
"""

REMOVE_GUARD = f"""
DROP TRIGGER IF EXISTS audit_accessevent_no_truncate ON {TABLE};
DROP TRIGGER IF EXISTS audit_accessevent_no_update_or_delete ON {TABLE};
DROP FUNCTION IF EXISTS audit_accessevent_append_only();
"""


def run_on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunPython(run_on_postgresql(GUARD), run_on_postgresql(REMOVE_GUARD)),
    ]
