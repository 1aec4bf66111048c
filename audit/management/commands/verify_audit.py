"""Check the access audit trail's hash chain from the first event to the last."""

from django.core.management.base import BaseCommand, CommandError

from audit.services import verify_chain


class Command(BaseCommand):
    help = (
        "Recompute the hash of every access event and check that each links to the one "
        "before it, and that no event's time is earlier than the one before it. Exits with an "
        "error naming the first broken link. Note the last hash it "
        "prints: a later run that ends earlier, or elsewhere, means recent events were removed."
    )

    def handle(self, *args, **options):
        result = verify_chain()
        if not result.ok:
            raise CommandError(
                f"Audit trail broken after {result.checked:,} intact events: {result.problem}"
            )
        if result.checked == 0:
            self.stdout.write(self.style.SUCCESS("Audit trail intact: no events yet."))
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit trail intact: {result.checked:,} events, last hash {result.last_hash}"
            )
        )
