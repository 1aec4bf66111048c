"""Run the emulator on its own: ``python -m twilio_emulator [--port 8010]``.

Point the app at it with ``TWILIO_API_BASE_URL=http://127.0.0.1:8010``. It uses the same
``TWILIO_ACCOUNT_SID`` and ``TWILIO_AUTH_TOKEN`` as the app (the development values by default).
"""

import argparse
import os
import time

from .server import Emulator


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8010)
    parser.add_argument(
        "--encrypt-recordings",
        action="store_true",
        help="Voice Recording Encryption: encrypt recordings with the public key registered "
        "last (manage.py twilio_recording_key create), as the console's setting does",
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contactcenter.settings")
    from django.conf import settings

    with Emulator(
        account_sid=settings.TWILIO_ACCOUNT_SID,
        auth_token=settings.TWILIO_AUTH_TOKEN,
        host=args.host,
        port=args.port,
    ) as emulator:
        emulator.state.announce = lambda text: print(text, flush=True)
        emulator.state.encrypt_with_newest_key = args.encrypt_recordings
        print(f"Twilio emulator listening on {emulator.url} (Ctrl-C to stop)", flush=True)
        print("Text messages, calls placed and Verify codes are shown here.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
