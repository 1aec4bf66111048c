"""Small database helpers for the webhooks, whose every round trip and every millisecond count.

Twilio waits on each webhook, and at the start of a call so does the caller. The ORM spends
about half a millisecond of Python building each statement; the two statements every call
runs (store the call, apply a status) are written here once, for PostgreSQL and SQLite
alike, and tested on both.
"""

import functools
from contextlib import contextmanager

from django.db import connections, router, transaction


@contextmanager
def savepoint_if_in_transaction():
    """Contain a failing statement so the connection stays usable, at no cost in autocommit.

    In autocommit (how requests run) each statement commits on its own and a failed one
    leaves nothing behind, so no BEGIN/COMMIT is spent. Inside a transaction (tests, or
    ATOMIC_REQUESTS) a savepoint keeps the transaction usable after an error.
    """
    if transaction.get_connection().in_atomic_block:
        with transaction.atomic():
            yield
    else:
        yield


def insert_unless_exists(instance, *, unique_field):
    """INSERT ``instance`` unless a row with the same ``unique_field`` exists; return whether
    it was written. One statement, no exception and no savepoint when it was not.

    Field defaults, ``auto_now`` and the database conversions apply as in ``save()``; the
    instance does not learn its primary key. Signals are not sent.
    """
    model = type(instance)
    connection = connections[router.db_for_write(model)]
    sql, fields = _insert_statement(model, unique_field, connection.alias)
    values = [
        field.get_db_prep_save(field.pre_save(instance, add=True), connection) for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return cursor.rowcount == 1


@functools.cache
def _insert_statement(model, unique_field, alias):
    meta = model._meta
    quote = connections[alias].ops.quote_name
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    # Only quoted identifiers and placeholders are formatted in; every value is a parameter.
    template = "INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT ({key}) DO NOTHING"
    sql = template.format(
        table=quote(meta.db_table),
        columns=", ".join(quote(field.column) for field in fields),
        values=", ".join(["%s"] * len(fields)),
        key=quote(meta.get_field(unique_field).column),
    )
    return sql, fields
