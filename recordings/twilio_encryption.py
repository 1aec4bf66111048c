"""Twilio's Voice Recording Encryption, undone while the audio streams in.

With the feature on, Twilio encrypts each recording as soon as the call ends, so that nobody
at Twilio can read it until we fetch it (DESIGN.md R5):

* a random 256-bit content key (CEK) per recording;
* the audio encrypted with AES-256-GCM under the CEK and a 96-bit IV; the media Twilio
  serves is the ciphertext followed by the 16-byte GCM tag;
* the CEK encrypted with our RSA public key, RSAES-OAEP with SHA-256 and MGF1-SHA-256;
* the recording's ``encryption_details``: ``type`` (``rsa-aes``), ``public_key_sid``
  (``CR…``), ``encrypted_cek`` and ``iv`` (base64).

``decrypting`` yields the plaintext of the media as it arrives, holding back the last 16
bytes (the tag), and raises ``TwilioEncryptionError`` at the end of the stream unless the tag
verifies. The fetch encrypts what it yields straight into our own segment format, so nothing
readable touches the disk, and it stores nothing (and keeps Twilio's copy) when this raises:
the stored copy is committed only after the last chunk, that is after the tag has verified.
"""

import base64
import binascii

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.conf import settings
from django.utils.translation import gettext_lazy as _

TAG_SIZE = 16
SCHEME = "rsa-aes"
# Twilio's errors about Voice Recording Encryption on a recording's callback.
TWILIO_ERRORS = {
    "16105": _(
        "Twilio did not keep this recording: no valid public key was on the account for Voice "
        "Recording Encryption. Register one (manage.py twilio_recording_key create) and choose "
        "it in Twilio's console."
    ),
    "16107": _(
        "Twilio encrypted this recording with another public key than the one chosen, which "
        "was invalid or deleted. It is fetched if that key's private key is configured; choose "
        "a valid key in Twilio's console."
    ),
}


class TwilioEncryptionError(Exception):
    """Twilio's encrypted copy cannot be opened, or does not verify; ``reason`` says which
    (``unknown_key``, ``wrong_key``, ``tag``, ``details``) and ``message`` what to do."""

    def __init__(self, reason, message):
        super().__init__(str(message))
        self.reason = reason
        self.message = message


def _b64(details, field):
    try:
        return base64.b64decode(details[field], validate=True)
    except (KeyError, TypeError, binascii.Error):
        raise TwilioEncryptionError(
            "details",
            _("Twilio's encryption details of this recording are incomplete (%(field)s).")
            % {"field": field},
        ) from None


def unwrap(details):
    """``(content key, iv)`` of a recording from its ``encryption_details``: the key
    unwrapped with our private key for its public key SID."""
    iv = _b64(details, "iv")
    if len(iv) < 12:
        raise TwilioEncryptionError(
            "details",
            _("Twilio's encryption details of this recording are incomplete (%(field)s).")
            % {"field": "iv"},
        )
    return _content_key(details), iv


def _content_key(details):
    if details.get("type") != SCHEME:
        raise TwilioEncryptionError(
            "details",
            _("Twilio encrypted this recording with a scheme we do not know (%(type)s).")
            % {"type": details.get("type")},
        )
    sid = details.get("public_key_sid", "")
    private_key = settings.TWILIO_RECORDING_PRIVATE_KEYS.get(sid)
    if private_key is None:
        raise TwilioEncryptionError(
            "unknown_key",
            _(
                "Twilio encrypted this recording with the public key %(sid)s, whose private key "
                "is not in TWILIO_RECORDING_PRIVATE_KEYS. Add it (keep old keys until their "
                "recordings are fetched), then retry the fetch; Twilio's copy is kept."
            )
            % {"sid": sid or "—"},
        )
    try:
        key = private_key.decrypt(
            _b64(details, "encrypted_cek"),
            padding.OAEP(
                mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
            ),
        )
    except ValueError:
        key = None
    if key is None or len(key) != 32:
        raise TwilioEncryptionError(
            "wrong_key",
            _(
                "The private key configured for %(sid)s does not open this recording's content "
                "key: it is not the key Twilio used. Twilio's copy is kept."
            )
            % {"sid": sid},
        )
    return key


def decrypting(chunks, key, iv):
    """The plaintext of Twilio's encrypted media ``chunks`` (see ``unwrap``), as it arrives;
    raises ``TwilioEncryptionError`` after the last chunk unless the GCM tag verifies."""
    decryptor = Cipher(algorithms.AES(key), modes.GCM(iv)).decryptor()
    held = b""
    for chunk in chunks:
        held += chunk
        if len(held) > TAG_SIZE:
            ready, held = held[:-TAG_SIZE], held[-TAG_SIZE:]
            yield decryptor.update(ready)
    if len(held) < TAG_SIZE:
        raise TwilioEncryptionError(
            "tag", _("Twilio's encrypted copy ended before its authentication tag.")
        )
    try:
        rest = decryptor.finalize_with_tag(held)
    except InvalidTag:
        raise TwilioEncryptionError(
            "tag",
            _(
                "Twilio's encrypted copy does not verify (its GCM tag is wrong): it was changed "
                "or cut. Nothing was stored and Twilio's copy is kept."
            ),
        ) from None
    if rest:
        yield rest
