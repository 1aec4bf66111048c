"""The key pairs of Twilio's Voice Recording Encryption: make one, register it, list them.

``create`` makes an RSA-3072 key pair, registers the public key with Twilio (Credentials
PublicKey API) and prints the private key once, for the operator to store where the app
reads it (``TWILIO_RECORDING_PRIVATE_KEYS``); nothing of it is kept here. ``upload``
registers the public key of a key pair made elsewhere. ``list`` shows the account's public
keys and whether this deployment holds each one's private key.
"""

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

import twilio_client

KEY_SIZE = 3072


def _public_pem(key):
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


class Command(BaseCommand):
    help = (
        "Voice Recording Encryption keys: 'create' makes an RSA-3072 key pair, registers its "
        "public key with Twilio and prints the private key once; 'upload PEM' registers an "
        "existing public key; 'list' shows the account's public keys."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="make a key pair and register it")
        create.add_argument("--friendly-name", default="call recordings")
        create.add_argument(
            "--private-key-file",
            help="write the private key to this new file (mode 0600) instead of printing it",
        )
        upload = actions.add_parser("upload", help="register an existing public key")
        upload.add_argument("pem", help="a PEM public key, or the private key to take it from")
        upload.add_argument("--friendly-name", default="call recordings")
        actions.add_parser("list", help="the account's public keys")

    def handle(self, *args, action, **options):
        try:
            if action == "create":
                self.create(options["friendly_name"], options["private_key_file"])
            elif action == "upload":
                self.upload(options["pem"], options["friendly_name"])
            else:
                self.list()
        except twilio_client.TwilioError as error:
            raise CommandError(str(error.message)) from error

    def create(self, friendly_name, private_key_file):
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        target = Path(private_key_file) if private_key_file else None
        if target is not None and target.exists():
            raise CommandError(f"{target} exists already; choose a new file for the key")
        registered = twilio_client.create_public_key(
            public_key_pem=_public_pem(key), friendly_name=friendly_name
        )
        sid = registered["sid"]
        if target is not None:
            target.touch(mode=0o600)
            target.write_bytes(private_pem)
            where = str(target.resolve())
        else:
            where = "/path/to/private-key.pem"
            self.stdout.write(
                "Private key (store it now, safely: it is shown once and kept nowhere else; "
                "without it the recordings encrypted with its public key cannot be read):"
            )
            self.stdout.write(private_pem.decode())
        self.stdout.write(f"Public key registered with Twilio as {sid}.")
        self.stdout.write(
            "Add it to the app's environment (keep the pairs of older keys until their "
            f"recordings are fetched):\n  TWILIO_RECORDING_PRIVATE_KEYS={sid}:{where}\n"
            "then choose it for Voice Recording Encryption in Twilio's console "
            "(Voice > Settings > General)."
        )

    def upload(self, pem, friendly_name):
        try:
            data = Path(pem).read_bytes()
        except OSError as error:
            raise CommandError(f"cannot read {pem}: {error.strerror}") from error
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError:
            try:
                key = serialization.load_pem_private_key(data, password=None).public_key()
            except (TypeError, ValueError):
                raise CommandError(f"{pem} is not a PEM public or private key") from None
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
            raise CommandError("Twilio needs an RSA key of at least 2048 bits")
        registered = twilio_client.create_public_key(
            public_key_pem=_public_pem(key), friendly_name=friendly_name
        )
        self.stdout.write(f"Public key registered with Twilio as {registered['sid']}.")

    def list(self):
        held = settings.TWILIO_RECORDING_PRIVATE_KEYS
        keys = twilio_client.list_public_keys()
        if not keys:
            self.stdout.write("No public keys are registered on the Twilio account.")
        for key in keys:
            mark = "private key configured" if key["sid"] in held else "no private key here"
            created = key["date_created"]
            self.stdout.write(
                f"{key['sid']}  {created:%Y-%m-%d}  {key['friendly_name']}  ({mark})"
                if created
                else f"{key['sid']}  {key['friendly_name']}  ({mark})"
            )
        for sid in sorted(set(held) - {key["sid"] for key in keys}):
            self.stdout.write(f"{sid}  (configured here, not on the Twilio account)")
