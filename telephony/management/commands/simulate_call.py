"""Run one whole call against a running app, the way Twilio would, and print what happens."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from twilio_emulator import CallDriver, Emulator


class Command(BaseCommand):
    help = (
        "Simulate a caller: signed webhooks to the running app (announcement, keypresses, "
        "routing, status and recording callbacks), with a local Twilio emulator."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--digits",
            default="1",
            help="Keys pressed at each question: 1 (agree), 2 (refuse), none, "
            "or 91 (English, then 1).",
        )
        parser.add_argument(
            "--from",
            dest="from_number",
            default="+81312345678",
            help="The caller's number (or 'anonymous').",
        )
        parser.add_argument(
            "--app-url",
            default=settings.PUBLIC_BASE_URL,
            help="Where the app listens (default: PUBLIC_BASE_URL).",
        )
        parser.add_argument(
            "--emulator-url",
            default="",
            help="A running emulator (python -m twilio_emulator); default: "
            "start one for this call.",
        )
        parser.add_argument(
            "--seconds",
            type=float,
            default=3.0,
            help="How long the caller talks after being connected.",
        )

    def handle(self, *args, digits, from_number, app_url, emulator_url, seconds, **options):
        digits = "" if digits == "none" else digits
        if emulator_url:
            return self.simulate(digits, from_number, app_url, emulator_url, seconds)
        with Emulator(
            account_sid=settings.TWILIO_ACCOUNT_SID, auth_token=settings.TWILIO_AUTH_TOKEN
        ) as emulator:
            return self.simulate(digits, from_number, app_url, emulator.url, seconds)

    def simulate(self, digits, from_number, app_url, emulator_url, seconds):
        driver = CallDriver(
            app_url=app_url,
            public_base_url=settings.PUBLIC_BASE_URL,
            account_sid=settings.TWILIO_ACCOUNT_SID,
            auth_token=settings.TWILIO_AUTH_TOKEN,
            emulator_url=emulator_url,
        )
        try:
            result = driver.run(digits=digits, from_number=from_number, talk_seconds=seconds)
        except (OSError, RuntimeError) as error:
            raise CommandError(
                f"The call could not be made against {app_url}: {error}. Is the app running "
                "(make run), and is PUBLIC_BASE_URL the address it listens on?"
            ) from error
        self.stdout.write(f"Call {result.call_sid} from {from_number}, keys {digits or 'none'}")
        for language, text in result.transcript:
            self.stdout.write(f"  caller hears ({language}): {text}")
        for url, status in result.exchanges:
            self.stdout.write(f"  webhook {url} → {status}")
        if result.answered_by:
            self.stdout.write(f"  answered by {result.answered_by}")
        recorded = "recording requested" if result.record_requested else "not recorded"
        self.stdout.write(
            self.style.SUCCESS(
                f"Done: {recorded}" + (f" ({result.recording_sid})" if result.recording_sid else "")
            )
        )
