"""Re-wrap every recording's key under the newest master key, without touching the audio."""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from audit import services as audit
from audit.models import AccessEvent
from recordings import crypto
from recordings.models import Recording


class Command(BaseCommand):
    help = (
        "Re-wrap each stored recording's key under the newest key in RECORDINGS_MASTER_KEYS. "
        "The audio files are not read or rewritten. Keep an old master key in the list "
        "until this has run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size, **options):
        newest = settings.RECORDINGS_MASTER_KEYS[0][0]
        rewrapped = 0
        last_pk = 0
        while True:
            with transaction.atomic():
                batch = list(
                    Recording.objects.select_for_update()
                    .filter(pk__gt=last_pk, wrapped_key__isnull=False)
                    .exclude(key_id=newest)
                    .order_by("pk")
                    .only("pk", "key_id", "wrapped_key")[:batch_size]
                )
                if not batch:
                    break
                for recording in batch:
                    key_id, wrapped = crypto.rewrap_key(
                        recording.key_id, bytes(recording.wrapped_key)
                    )
                    Recording.objects.filter(pk=recording.pk).update(
                        key_id=key_id, wrapped_key=wrapped
                    )
                last_pk = batch[-1].pk
                rewrapped += len(batch)
        audit.record(
            AccessEvent.Action.KEY_ROTATION,
            actor_label="key rotation",
            detail={"key_id": newest, "rewrapped": rewrapped},
        )
        self.stdout.write(
            self.style.SUCCESS(f"{rewrapped} recording key(s) re-wrapped under {newest}.")
        )
