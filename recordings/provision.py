"""The third-party provision ledger (第三者提供記録, APPI arts. 29 and 30).

Every hand-over of a recording or of call data to someone outside the company goes through
``provide``: it refuses a hand-over without a basis, writes the record and its audit event
in one transaction, and only then may the staff member who wrote it download the export
(the decrypted audio and a summary), once and within ``EXPORT_WINDOW``. Records are kept
for the period ``retention_years`` says, then deleted by ``delete_expired`` (daily, beat).

``records_about`` and ``ProvisionRecord.summary_ja`` are what a person is shown when they
ask for the records about them (art. 33(5)).
"""

import datetime
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from audit import services as audit
from audit.models import AccessEvent
from contactcenter.phones import format_phone_number
from contactcenter.roles import NotAllowed, require

from . import evidence
from .access import PROVIDE
from .models import ProvisionRecord, Recording
from .playback import zip_with_audio

Action = AccessEvent.Action
Basis = ProvisionRecord.Basis
# The export is downloaded right after the record is written, by the person who wrote it;
# a record whose download was not fetched by then needs a new record (and a new reason).
EXPORT_WINDOW = timedelta(minutes=15)
EXPORT_CHANNEL = "third_party_export"


# --- how long a record is kept --------------------------------------------------------------


def retention_years(*, basis, in_contract_document=False):
    """How many years a provision record is kept (APPI art. 29(2), rule 21).

    * 1 year: the provision was part of a service to the person and the contract or other
      documents of that service carry what the record must say (rule 19(3), rule 21(i));
    * 3 years: every other record (rule 21(iii)). Each hand-over is recorded on its own as it
      happens, never in bulk, so rule 21(ii) (3 years from the last of several provisions)
      comes to the same period.

    Hand-overs on a legal ground (art. 27(1)) or to the client that entrusted the work
    (art. 27(5)(i)) need no record in law; they are kept the 3 years of a record that does,
    so that every hand-over stays accountable as long as any other.
    """
    if basis == Basis.CONSENT and in_contract_document:
        return 1
    return 3


def retain_until(provided_at, *, years):
    """The end of the retention: the period starts the day after the provision (民法 art.
    140, the first day is not counted) and ends at the end of the same day ``years`` later
    (or of the month's last day when that day does not exist: 29 February, art. 143)."""
    day = timezone.localtime(provided_at).date()
    try:
        last = day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year that has none
        last = day.replace(year=day.year + years, day=28)
    after = last + timedelta(days=1)
    return timezone.make_aware(datetime.datetime.combine(after, datetime.time.min))


# --- providing -------------------------------------------------------------------------------


def may_provide(user):
    """Whether ``user``'s role may hand recordings to a third party (supervisors and
    compliance officers)."""
    return user is not None and user.has_perm(PROVIDE)


def refusal_for(recording):
    """Why ``recording`` cannot be provided now (a message), or None if it can."""
    try:
        _check_recording(recording)
    except NotAllowed as refusal:
        return refusal.message
    return None


def call_summary(recording):
    """``(label, value)`` rows naming the call a provision is about, for the staff's pages."""
    call = recording.call
    customer = call.customer
    number = customer.phone_number if customer and customer.phone_number else call.from_number
    started = timezone.localtime(call.started_at) if call.started_at else None
    return [
        (_("call date"), f"{started:%Y-%m-%d %H:%M}" if started else "—"),
        (_("caller"), format_phone_number(number) if number else "—"),
        (_("recording"), recording.sid),
    ]


def provide(
    recording,
    *,
    by,
    recipient,
    recipient_kind,
    recipient_address,
    items,
    basis,
    ground_text="",
    consent_method="",
    consent_obtained_at=None,
    consent_statement="",
    in_contract_document=False,
    note="",
    http_request=None,
):
    """Record that ``by`` hands ``items`` of ``recording`` to ``recipient``, and return the
    record; the export may then be downloaded once (``open_export``).

    Refused, with nothing written: a role without ``recordings.provide_to_third_party``
    (``NotAllowed``), a recording that is not stored or whose use was stopped, a customer who
    asked that their data no longer be provided (``NotAllowed``), and a hand-over without
    recipient, items or basis, a legal ground without its text, or consent without how it
    was given and confirmed (``ValidationError``, by field). On success the record and its
    THIRD_PARTY_PROVISION audit event (purpose: the basis) are written in one transaction.
    """
    require(by, PROVIDE, _("Your role does not allow providing recordings to a third party."))
    _check_recording(recording)
    values = clean_provision(
        recipient=recipient,
        recipient_kind=recipient_kind,
        recipient_address=recipient_address,
        items=items,
        basis=basis,
        ground_text=ground_text,
        consent_method=consent_method,
        consent_obtained_at=consent_obtained_at,
        consent_statement=consent_statement,
    )
    if ProvisionRecord.Item.EVIDENCE_PACKAGE in values["items"]:
        access = evidence.check(recording)
        if not access:
            raise ValidationError({"items": access.message})
    call = recording.call
    customer = call.customer
    now = timezone.now()
    with transaction.atomic():
        # Locked, so that a seal or a purge decided at the same moment is seen.
        recording = Recording.objects.select_for_update().get(pk=recording.pk)
        _check_recording(recording)
        record = ProvisionRecord.objects.create(
            provided_at=now,
            customer=customer,
            phone_number=(customer.phone_number or "") if customer else "",
            call=call,
            recording=recording,
            provided_by=by,
            in_contract_document=bool(in_contract_document and basis == Basis.CONSENT),
            retain_until=retain_until(
                now,
                years=retention_years(basis=basis, in_contract_document=in_contract_document),
            ),
            note=note.strip(),
            **values,
        )
        audit.record(
            Action.THIRD_PARTY_PROVISION,
            actor=by,
            recording=recording,
            purpose=record.basis,
            detail={
                "provision": record.pk,
                "recipient_kind": record.recipient_kind,
                "items": record.items,
            },
            request=http_request,
        )
    return record


def _check_recording(recording):
    if recording.status != Recording.Status.STORED:
        raise NotAllowed(
            _("This recording cannot be provided: it has been purged or was never stored."),
            reason="not_stored",
        )
    if recording.sealed_at is not None:
        raise NotAllowed(
            _("The use of this recording was stopped at the customer's request."),
            reason="sealed",
        )
    customer = recording.call.customer
    # Set by the portal when a caller's request to stop third-party provision (art. 35(3))
    # is granted; read with getattr so that this works before the column exists.
    if customer is not None and getattr(customer, "provision_stopped_at", None):
        raise NotAllowed(
            _("The customer asked that their data no longer be provided to third parties."),
            reason="provision_stopped",
        )


def clean_provision(
    *,
    recipient,
    recipient_kind,
    recipient_address,
    items,
    basis,
    ground_text,
    consent_method,
    consent_obtained_at,
    consent_statement,
):
    """The hand-over's details, checked and normalised as ``provide`` writes them; raises
    ``ValidationError`` by field name (the form asks this before its confirmation step)."""
    errors = {}
    recipient = (recipient or "").strip()
    recipient_address = (recipient_address or "").strip()
    ground_text = (ground_text or "").strip()
    consent_statement = (consent_statement or "").strip()
    items = list(dict.fromkeys(items or []))
    if not recipient:
        errors["recipient_name"] = _("Give the recipient's name.")
    if recipient_kind not in ProvisionRecord.RecipientKind.values:
        errors["recipient_kind"] = _("Choose the kind of recipient.")
    if not recipient_address:
        errors["recipient_address"] = _("Give the recipient's address or contact.")
    if not items or any(item not in ProvisionRecord.Item.values for item in items):
        errors["items"] = _("Choose what is provided.")
    if basis not in Basis.values:
        errors["basis"] = _(
            "A recording may be provided to a third party only on a basis: the person's "
            "consent, a legal ground or entrustment."
        )
    elif basis == Basis.LEGAL_GROUND and not ground_text:
        errors["ground_text"] = _(
            "Name the legal ground: the law or order and its reference (for example, an "
            "inquiry under art. 197(2) of the Code of Criminal Procedure, with its number)."
        )
    elif basis == Basis.CONSENT:
        if consent_method not in ProvisionRecord.ConsentMethod.values:
            errors["consent_method"] = _("Say how the customer consented to this provision.")
        if consent_obtained_at is None:
            errors["consent_obtained_at"] = _("Give the date the customer consented.")
        if not consent_statement:
            errors["consent_statement"] = _(
                "Say who confirmed the customer's consent to this provision and where the "
                "evidence is kept."
            )
    if errors:
        raise ValidationError(errors)
    consent_given = basis == Basis.CONSENT
    return {
        "recipient_name": recipient,
        "recipient_kind": recipient_kind,
        "recipient_address": recipient_address,
        "items": items,
        "basis": basis,
        "ground_text": ground_text if basis == Basis.LEGAL_GROUND else "",
        "consent_method": consent_method if consent_given else "",
        "consent_obtained_at": consent_obtained_at if consent_given else None,
        "consent_statement": consent_statement if consent_given else "",
    }


# --- the export, downloaded once ------------------------------------------------------------


class ExportRefused(Exception):
    """The export of a provision record may not be downloaded (``message`` says why)."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


def open_export(record, *, by, http_request=None, at=None):
    """Claim the one download of ``record``'s export for ``by`` and audit it; return the
    streamed ZIP (an iterator of bytes) to send.

    Refused (``ExportRefused``) for anyone but the person who wrote the record, after
    ``EXPORT_WINDOW``, a second time, or when the recording is no longer stored or its use
    was stopped in the meantime. The audio is decrypted while it is sent, never stored.
    """
    at = at or timezone.now()
    recording = Recording.objects.select_related("call__customer").get(pk=record.recording_id)
    refusal = export_refusal(record, by=by, at=at, recording=recording)
    if refusal is not None:
        raise ExportRefused(refusal)
    with transaction.atomic():
        if not ProvisionRecord.objects.claim_export(record.pk, at=at):
            raise ExportRefused(_("This provision has already been downloaded."))
        package = ProvisionRecord.Item.EVIDENCE_PACKAGE in record.items
        audit.record(
            Action.DOWNLOAD,
            actor=by,
            recording=recording,
            purpose=record.basis,
            detail={
                "channel": evidence.CHANNEL if package else EXPORT_CHANNEL,
                "provision": record.pk,
            },
            request=http_request,
        )
    if package:
        return evidence.stream(recording, by=by, provision=record)
    return export_archive(record, recording)


def export_refusal(record, *, by, at=None, recording=None):
    """Why ``by`` may not download ``record``'s export now (a message), or None if they may."""
    at = at or timezone.now()
    if record.provided_by_id != getattr(by, "pk", None):
        return _("Only the person who recorded this provision may download it.")
    if record.exported_at is not None:
        return _("This provision has already been downloaded.")
    if at - record.provided_at > EXPORT_WINDOW:
        return _(
            "The download of this provision expired %(minutes)d minutes after it was "
            "recorded. Record the provision again."
        ) % {"minutes": EXPORT_WINDOW // timedelta(minutes=1)}
    return refusal_for(recording or record.recording)


def export_filename(record):
    if ProvisionRecord.Item.EVIDENCE_PACKAGE in record.items:
        return f"provision-{record.pk}-{evidence.filename(record.recording)}"
    return f"provision-{record.pk}-{record.recording.sid}.zip"


def summary_text(record, recording):
    """The text that goes with the audio: the call, and what the record says (in Japanese,
    the language of the record)."""
    call = recording.call
    with translation.override("ja"):
        lines = [
            gettext("Third-party provision record %(number)d") % {"number": record.pk},
            gettext("Provided on: %(date)s")
            % {"date": f"{timezone.localtime(record.provided_at):%Y-%m-%d %H:%M}"},
            gettext("Recipient: %(name)s (%(kind)s)")
            % {"name": record.recipient_name, "kind": record.get_recipient_kind_display()},
            gettext("Recipient's address or contact: %(address)s")
            % {"address": record.recipient_address},
            gettext("Items: %(items)s") % {"items": "、".join(record.item_labels())},
            gettext("Basis: %(basis)s") % {"basis": record.get_basis_display()},
        ]
        if record.ground_text:
            lines.append(gettext("Law or order: %(ground)s") % {"ground": record.ground_text})
        if record.basis == Basis.CONSENT:
            lines.append(
                gettext("Consent: %(method)s, %(date)s; %(statement)s")
                % {
                    "method": record.get_consent_method_display(),
                    "date": record.consent_obtained_at,
                    "statement": record.consent_statement,
                }
            )
        lines += [
            gettext("Provided by: %(user)s") % {"user": record.provided_by.get_username()},
            "",
            gettext("Call: %(started)s, %(seconds)s seconds, from %(number)s")
            % {
                "started": f"{timezone.localtime(call.started_at):%Y-%m-%d %H:%M}"
                if call.started_at
                else "—",
                "seconds": call.duration if call.duration is not None else "—",
                "number": record.phone_number or call.from_number or "—",
            },
            gettext("Recording: %(sid)s, SHA-256 of the audio %(sha)s")
            % {"sid": recording.sid, "sha": recording.plaintext_sha256},
        ]
        if ProvisionRecord.Item.CONSENT in record.items:
            lines += ["", gettext("Consent to recording on this call and since:")]
            for consent in call.consent_records.select_related("notice").order_by("recorded_at"):
                lines.append(consent.summary_line())
    return "\n".join(lines) + "\n"


def export_archive(record, recording):
    """The export as a ZIP, made while it is sent: the summary, then the audio (both sides)
    when the record lists it, decrypted a segment at a time."""
    with_audio = recording if ProvisionRecord.Item.AUDIO in record.items else None
    return zip_with_audio(f"provision-{record.pk}.txt", summary_text(record, recording), with_audio)


# --- what the person may see, and expiry -----------------------------------------------------


def records_about(phone_number, *, at=None, include_legal_grounds=False):
    """The unexpired provision records about the holder of ``phone_number`` (E.164), newest
    first: what a person who asks for the records about them (art. 33(5)) is shown, each as
    ``record.summary_ja()``.

    Hand-overs on a legal ground are left out unless asked for: they are not records the Act
    requires (art. 27(1)), and telling the subject of an investigation of the police's
    inquiry may obstruct it (施行令 art. 11 leaves such records out of disclosure).
    """
    if not phone_number:
        return ProvisionRecord.objects.none()
    records = ProvisionRecord.objects.unexpired(at).filter(phone_number=phone_number)
    if not include_legal_grounds:
        records = records.exclude(basis=Basis.LEGAL_GROUND)
    return records.order_by("-provided_at", "-pk")


def delete_expired(*, now=None):
    """Delete every provision record whose retention ended, with one PROVISION_RECORD_EXPIRED
    audit event naming how many and which (their ids, not their content); return how many."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            ProvisionRecord.objects.expired(now)
            .select_for_update()
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not ids:
            return 0
        ProvisionRecord.objects.filter(pk__in=ids).delete_expired(now)
        audit.record(
            Action.PROVISION_RECORD_EXPIRED,
            actor_label="provision-expiry",
            detail={"count": len(ids), "ids": ids},
        )
    return len(ids)
