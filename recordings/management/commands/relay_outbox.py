"""Publish the tasks waiting in the outbox (beat also does this every minute)."""

from django.core.management.base import BaseCommand, CommandError

from recordings.outbox import publish_pending


class Command(BaseCommand):
    help = "Hand the tasks waiting in the outbox to Celery."

    def handle(self, *args, **options):
        try:
            count = publish_pending(limit=10**9)
        except Exception as error:
            raise CommandError(f"Could not publish to the broker: {error}") from error
        self.stdout.write(self.style.SUCCESS(f"{count} task(s) published."))
