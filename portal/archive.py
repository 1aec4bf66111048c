"""A customer's copy of a recording as a ZIP archive, made while it is sent.

The archive holds the audio (WAV, both sides) and a text file with the call's and the
consent's details. It is written to the response as it is built: the audio is decrypted a
segment at a time and never stored in the clear, in memory or on disk, as a whole.
"""

from django.utils import timezone, translation
from django.utils.translation import gettext as _

from recordings.playback import zip_with_audio


def details_text(link):
    call = link.recording.call
    with translation.override(link.request.language):
        lines = [
            _("Request %(reference)s") % {"reference": link.request.reference},
            _("Call: %(started)s, %(seconds)s seconds")
            % {
                "started": timezone.localtime(call.started_at).strftime("%Y-%m-%d %H:%M"),
                "seconds": call.duration or "—",
            },
            _("Recording: %(sid)s, SHA-256 of the audio %(sha)s")
            % {"sid": link.recording.sid, "sha": link.recording.plaintext_sha256},
            "",
            _("Consent given on this call and since:"),
        ]
        for record in call.consent_records.select_related("notice").order_by("recorded_at"):
            lines.append(record.summary_line())
            if record.announcement_text:
                lines.append(f"  {record.announcement_text}")
    return "\n".join(lines) + "\n"


def copy_archive(link):
    return zip_with_audio(f"{link.request.reference}.txt", details_text(link), link.recording)
