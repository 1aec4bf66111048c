"""Check the access audit trail's hash chain from the first event to the last, and against
every signed checkpoint of its head."""

from django.core.management.base import BaseCommand, CommandError

from audit import anchors
from audit.services import verify_chain


class Command(BaseCommand):
    help = (
        "Recompute the hash of every access event and check that each links to the one "
        "before it, that no event's time is earlier than the one before it, and that the "
        "chain agrees with every signed checkpoint (audit-anchors/): a rewritten chain or "
        "deleted newest events are named with the first checkpoint they contradict. Exits "
        "with an error on any problem. --anchor writes a checkpoint of the head first; "
        "--public-key alone prints the key auditors keep; --anchors-only DIR --public-key KEY "
        "checks the checkpoints' signatures without the database."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--anchor",
            action="store_true",
            help="sign the chain head and write it as a checkpoint, then verify",
        )
        parser.add_argument(
            "--public-key",
            nargs="?",
            const="",
            default=None,
            help="alone: print the public key; with a value: check signatures with that key",
        )
        parser.add_argument(
            "--anchors-only",
            metavar="DIR",
            help="check the signatures of the checkpoints in DIR, without the database",
        )

    def handle(self, *args, anchor, public_key, anchors_only, **options):
        if public_key == "" and not anchors_only:
            self.stdout.write(anchors.public_key_text())
            return
        try:
            key = anchors.parse_public_key(public_key) if public_key else None
            if anchors_only:
                return self._check_offline(anchors_only, key)
            if anchor:
                checkpoint = anchors.anchor()
                if checkpoint:
                    self.stdout.write(f"Anchored event {checkpoint.seq} in {checkpoint.name}.")
            checkpoints = anchors.read_checkpoints(public_key=key)
        except anchors.AnchorError as error:
            raise CommandError(str(error)) from error
        result = verify_chain()
        problems = anchors.check_chain_against_checkpoints(checkpoints)
        if not result.ok:
            problems.insert(0, f"broken after {result.checked:,} intact events: {result.problem}")
        if problems:
            raise CommandError("Audit trail not intact:\n" + "\n".join(problems))
        against = f", agrees with {len(checkpoints):,} signed checkpoints"
        if result.checked == 0:
            self.stdout.write(self.style.SUCCESS("Audit trail intact: no events yet."))
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit trail intact: {result.checked:,} events, last hash {result.last_hash}"
                f"{against}"
            )
        )

    def _check_offline(self, directory, key):
        if key is None:
            raise CommandError("--anchors-only needs --public-key KEY (the key auditors keep)")
        checkpoints = anchors.read_checkpoints(public_key=key, directory=directory)
        bad = [checkpoint.problem for checkpoint in checkpoints if not checkpoint.signature_ok]
        if bad:
            raise CommandError("Checkpoints not intact:\n" + "\n".join(bad))
        for checkpoint in checkpoints:
            self.stdout.write(
                f"{checkpoint.seq}\t{checkpoint.hash}\t{checkpoint.anchored_at}\tsignature ok"
            )
        self.stdout.write(
            self.style.SUCCESS(f"{len(checkpoints):,} checkpoints, every signature verifies.")
        )
