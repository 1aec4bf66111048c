"""Django's ``migrate``, connected as the tables' owner (``DATABASE_MIGRATE_URL``).

The application's own role (``DATABASE_URL``) must not own the access audit trail, or it
could disable the trail's trigger; so migrations, which create and alter tables, run as the
owner, and the runtime role is then granted what it needs on the tables as they now are.
"""

from django.conf import settings
from django.core.management.commands.migrate import Command as DjangoMigrateCommand
from django.db import DEFAULT_DB_ALIAS, connections

from audit.database_roles import grant_runtime_role


class Command(DjangoMigrateCommand):
    help = DjangoMigrateCommand.help + (
        " Connects as DATABASE_MIGRATE_URL's role when it is set, then grants DATABASE_URL's "
        "role what the application needs (the audit trail append-only)."
    )

    def handle(self, *args, **options):
        owner = settings.DATABASE_MIGRATE_CREDENTIALS
        alias = options["database"]
        connection = connections[alias]
        runtime_role = connection.settings_dict.get("USER")
        if alias != DEFAULT_DB_ALIAS or not owner or owner["USER"] == runtime_role:
            return super().handle(*args, **options)
        connection.close()
        runtime_credentials = {
            "USER": runtime_role,
            "PASSWORD": connection.settings_dict.get("PASSWORD"),
        }
        connection.settings_dict.update(owner)
        try:
            super().handle(*args, **options)
            tables = grant_runtime_role(role=runtime_role, using=alias)
            if options["verbosity"] >= 1:
                self.stdout.write(
                    f"Granted {runtime_role} read and write on {tables} tables, the audit "
                    "trail append-only."
                )
        finally:
            connection.close()
            connection.settings_dict.update(runtime_credentials)
