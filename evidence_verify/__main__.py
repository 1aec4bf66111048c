"""``python -m evidence_verify package.zip --public-key KEY``: exit 0 and 「検証成功」 when the
package verifies, exit 1 and the first failure when it does not."""

import argparse
import sys

from . import VerificationFailed, load_public_key, verify


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m evidence_verify",
        description="Check an evidence package: the manifest's Ed25519 signature, then the "
        "SHA-256 and size of every member, with none missing or added.",
    )
    parser.add_argument("package", help="the evidence package (ZIP)")
    parser.add_argument(
        "--public-key",
        required=True,
        help="the organisation's public key: a PEM file, or a file with (or the text of) the "
        "URL-safe base64 key that manage.py verify_audit --public-key prints",
    )
    args = parser.parse_args(argv)
    try:
        manifest = verify(args.package, load_public_key(args.public_key))
    except VerificationFailed as failure:
        print(f"検証失敗 / FAILED: {failure}")
        return 1
    count = len(manifest["members"])
    print(f"検証成功 / OK: {count} files, signature valid ({manifest.get('recording_sid', '')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
