"""Check an evidence package of a recording, without trusting whoever made it.

Standard library and ``cryptography`` only; nothing of the product is imported, so anyone
can run it::

    python -m evidence_verify package.zip --public-key key.txt

The key is the organisation's Ed25519 public key, as a PEM file or as the URL-safe base64
text of its 32 raw bytes (what ``manage.py verify_audit --public-key`` prints), in a file or
given directly. The check: ``manifest.sig`` is a valid signature of the exact bytes of
``manifest.json`` under that key; every member the manifest lists is in the ZIP with that
SHA-256 and size; and the ZIP holds no member the manifest does not list.
"""

import base64
import hashlib
import json
import zipfile
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
CHUNK = 1024 * 1024


class VerificationFailed(Exception):
    """The package does not verify; the message names the first failure."""


def load_public_key(value):
    """An Ed25519 public key from a PEM file, a file holding the base64 text, or the text."""
    path = Path(value)
    try:
        data = path.read_bytes() if path.is_file() else value.encode()
    except OSError:
        data = value.encode()
    if b"-----BEGIN" in data:
        try:
            key = load_pem_public_key(data)
        except ValueError as error:
            raise VerificationFailed(f"the public key cannot be read: {error}") from error
        if not isinstance(key, Ed25519PublicKey):
            raise VerificationFailed("the public key is not an Ed25519 key")
        return key
    text = data.decode("ascii", "replace").strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as error:
        raise VerificationFailed("the public key is neither PEM nor base64") from error
    if len(raw) != 32:
        raise VerificationFailed(f"the public key must be 32 bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def _digest(archive, name):
    digest, size = hashlib.sha256(), 0
    with archive.open(name) as member:
        while chunk := member.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def verify(package, public_key):
    """Check ``package`` (a path or file) with ``public_key``; return the manifest, or raise
    ``VerificationFailed`` naming the first failure."""
    try:
        archive = zipfile.ZipFile(package)
    except (OSError, zipfile.BadZipFile) as error:
        raise VerificationFailed(f"not a readable ZIP file: {error}") from error
    with archive:
        names = archive.namelist()
        if len(names) != len(set(names)):
            raise VerificationFailed("the ZIP holds two members with the same name")
        for required in (MANIFEST, SIGNATURE):
            if required not in names:
                raise VerificationFailed(f"missing: {required}")
        manifest_bytes = archive.read(MANIFEST)
        try:
            public_key.verify(archive.read(SIGNATURE), manifest_bytes)
        except InvalidSignature:
            raise VerificationFailed(
                "the signature of manifest.json is not valid for this public key"
            ) from None
        try:
            manifest = json.loads(manifest_bytes)
            members = manifest["members"]
            listed = {entry["name"]: entry for entry in members}
        except (ValueError, KeyError, TypeError) as error:
            raise VerificationFailed(f"manifest.json cannot be read: {error}") from error
        for entry in members:
            name = entry["name"]
            if name not in names:
                raise VerificationFailed(f"missing: {name}")
            try:
                sha256, size = _digest(archive, name)
            except (zipfile.BadZipFile, OSError) as error:
                raise VerificationFailed(f"{name}: cannot be read ({error})") from error
            if size != entry["size"]:
                raise VerificationFailed(f"{name}: size {size}, the manifest says {entry['size']}")
            if sha256 != entry["sha256"]:
                raise VerificationFailed(f"{name}: SHA-256 differs from the manifest")
        for name in names:
            if name not in listed and name not in (MANIFEST, SIGNATURE):
                raise VerificationFailed(f"not in the manifest: {name}")
    return manifest
