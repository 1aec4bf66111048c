"""Purge recordings past retention and not on hold (beat also runs this every hour)."""

from django.core.management.base import BaseCommand

from recordings.retention import purge_due


class Command(BaseCommand):
    help = (
        "Destroy the key, the encrypted file and Twilio's copy of every recording whose "
        "purposes have all expired and that no legal hold keeps; leave a tombstone for each."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Only count what would be purged."
        )
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, dry_run, batch_size, **options):
        count = purge_due(dry_run=dry_run, batch_size=batch_size)
        if dry_run:
            self.stdout.write(f"{count} recording(s) would be purged.")
        else:
            self.stdout.write(self.style.SUCCESS(f"{count} recording(s) purged."))
