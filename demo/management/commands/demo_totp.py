"""Print the current TOTP code of a demo account (the README's first tour)."""

from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from .seed_demo import DEMO_TOTP_KEYS


class Command(BaseCommand):
    help = "Print the current 6-digit code of a demo account's authenticator (after seed_demo)."

    def add_arguments(self, parser):
        parser.add_argument("username", choices=sorted(DEMO_TOTP_KEYS))

    def handle(self, *args, username, **options):
        device = TOTPDevice.objects.filter(
            user__username=username, confirmed=True, key=DEMO_TOTP_KEYS[username]
        ).first()
        if device is None:
            raise CommandError(f"{username} has no demo authenticator: run seed_demo first.")
        code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
        self.stdout.write(f"{code:0{device.digits}d}")
