"""The runtime role: what the application may do in PostgreSQL, granted by the tables' owner.

The application connects as a role that owns nothing (``DATABASE_URL``); migrations run as
the owner (``DATABASE_MIGRATE_URL``). The runtime role may read and write every table except
the access audit trail, which it may only read and append to: it cannot ``UPDATE``,
``DELETE`` or ``TRUNCATE`` it, and, not being its owner, cannot disable its trigger or alter
it. A superuser or the owner could, which is what the signed checkpoints (``anchors``) are for.
"""

from django.db import DEFAULT_DB_ALIAS, connections

from .models import AccessEvent


class RuntimeRoleError(Exception):
    """The role cannot be the runtime role (the message says why)."""


def grant_runtime_role(*, role, using=DEFAULT_DB_ALIAS):
    """Grant ``role`` what the application needs on the current tables, and no more on the
    audit trail. Run by the owner after every migration (``manage.py migrate`` does it).

    Guarantees: idempotent; refuses a superuser or the owner of the audit table, which could
    rewrite the trail whatever is granted; returns the number of tables granted.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        raise RuntimeRoleError("database roles exist on PostgreSQL only")
    audit_table = AccessEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper, pg_has_role(%s, (SELECT tableowner FROM pg_tables"
            " WHERE schemaname = current_schema() AND tablename = %s), 'MEMBER')"
            " FROM pg_roles WHERE rolname = %s",
            [role, audit_table, role],
        )
        row = cursor.fetchone()
        if row is None:
            raise RuntimeRoleError(f"no such role: {role}")
        if row[0]:
            raise RuntimeRoleError(f"{role} is a superuser; the runtime role must not be one")
        if row[1]:
            raise RuntimeRoleError(
                f"{role} owns (or is a member of the owner of) {audit_table}; the runtime role "
                "must not own the audit trail"
            )
        quoted = connection.ops.quote_name(role)
        table = connection.ops.quote_name(audit_table)
        cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")
        tables = cursor.fetchone()[0]
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {quoted}")
        cursor.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}"
        )
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}")
        cursor.execute(
            f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {table} FROM {quoted}"
        )
    return tables
