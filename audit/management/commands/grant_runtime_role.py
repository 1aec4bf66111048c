"""Grant the application's database role what it needs, the audit trail append-only."""

from django.core.management.base import BaseCommand, CommandError

from audit.database_roles import RuntimeRoleError, grant_runtime_role


class Command(BaseCommand):
    help = (
        "Run as the tables' owner: grant ROLE read and write on every table, and only SELECT "
        "and INSERT on the access audit trail. manage.py migrate does it for DATABASE_URL's "
        "role when DATABASE_MIGRATE_URL names another."
    )

    def add_arguments(self, parser):
        parser.add_argument("role", help="the PostgreSQL role the application connects as")
        parser.add_argument("--database", default="default")

    def handle(self, *args, role, database, **options):
        try:
            tables = grant_runtime_role(role=role, using=database)
        except RuntimeRoleError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"{role}: read and write on {tables} tables; the audit trail append-only"
            )
        )
