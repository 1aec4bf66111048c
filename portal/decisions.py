"""Written decisions on customers' requests (APPI art. 36: the business explains its reasons).

Every decision — granted, refused, closed — writes one ``DecisionNotice`` in the transaction
of the decision: the decision, its legal ground, the reasons in full, the answer or what was
done, and how to ask again or complain (the organisation's complaint contact, the accredited
body when there is one, the courts under art. 39). The person reads it at a signed link that
needs no login and does not expire (``notice_url``: the signature is the authority, as for a
letter; it names one notice and nothing else), sent by SMS to a mobile; a landline is called,
hears the decision and may press 1 to hear the whole notice read out (``voice_url``).
"""

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from privacy import organisation

from .models import CustomerRequest, DecisionNotice

Kind = CustomerRequest.Kind
Ground = CustomerRequest.RefusalGround
Decision = DecisionNotice.Decision
NOTICE_SALT = "portal.decision-notice"
VOICE_SALT = "portal.decision-notice.voice"

# The article of the Act each kind of request is made under.
KIND_ARTICLE = {
    Kind.HEAR: gettext_lazy("APPI art. 33(1) (disclosure of retained personal data)"),
    Kind.COPY: gettext_lazy("APPI art. 33(1) (disclosure of retained personal data)"),
    Kind.DELETE: gettext_lazy("APPI art. 35(1) (deletion)"),
    Kind.SUSPEND: gettext_lazy("APPI art. 35(1) (suspension of use)"),
    Kind.SEAL: gettext_lazy("APPI art. 35(1) (suspension of use)"),
    Kind.WITHDRAW: gettext_lazy(
        "Withdrawal of consent to recording (our notice on call recording; APPI art. 35(5))"
    ),
    Kind.PURPOSE_NOTICE: gettext_lazy("APPI art. 32(2) (notification of the purposes of use)"),
    Kind.CORRECT: gettext_lazy("APPI art. 34 (correction of retained personal data)"),
    Kind.STOP_PROVISION: gettext_lazy(
        "APPI art. 35(3) and (5) (stopping provision to third parties)"
    ),
    Kind.CROSS_BORDER: gettext_lazy(
        "APPI art. 28(3) (information on the measures of recipients in a foreign country)"
    ),
    Kind.PROVISION_RECORDS: gettext_lazy(
        "APPI art. 33(5) (disclosure of the records of provision to third parties)"
    ),
}
# The provision a refusal rests on.
GROUND_ARTICLE = {
    Ground.HARM: gettext_lazy("APPI art. 33(2)(i)"),
    Ground.BUSINESS: gettext_lazy("APPI art. 33(2)(ii)"),
    Ground.LAW: gettext_lazy("APPI art. 33(2)(iii)"),
    Ground.IDENTITY: gettext_lazy("APPI art. 37(2) (identification of the requester)"),
    Ground.NOT_HELD: gettext_lazy("no retained personal data of the kind asked for"),
    Ground.ACCURATE: gettext_lazy("APPI art. 34(2) (the data is not untrue)"),
}


def legal_ground(customer_request, decision, refusal_ground=""):
    """The legal ground of ``decision`` on ``customer_request``, in the active language."""
    article = str(KIND_ARTICLE[customer_request.kind])
    if decision == Decision.GRANTED:
        return _("Granted under %(article)s.") % {"article": article}
    if decision == Decision.REFUSED:
        return _("Refused: %(ground)s (%(provision)s). The request was made under %(article)s.") % {
            "ground": Ground(refusal_ground).label,
            "provision": GROUND_ARTICLE[refusal_ground],
            "article": article,
        }
    return _("Closed without a decision on the merits. The request was made under %(article)s.") % {
        "article": article
    }


def recourse():
    """How to ask again or complain, from the organisation settings, in the active language."""
    org = organisation.current()
    lines = [
        _("You may make the request again at any time at %(url)s.")
        % {"url": settings.PUBLIC_BASE_URL + reverse("portal:start")}
    ]
    contact = [
        part
        for part in (
            org.complaint_department_ja,
            org.complaint_phone,
            org.complaint_email,
            org.complaint_hours_ja,
        )
        if part and part.strip()
    ]
    if contact:
        lines.append(
            _("Questions and complaints about this decision: %(contact)s.")
            % {"contact": " / ".join(contact)}
        )
    else:
        lines.append(_("Questions and complaints about this decision: reply to this message."))
    if org.accredited_body_name_ja.strip():
        lines.append(
            _(
                "You may also complain to %(body)s, the accredited personal information "
                "protection organisation we belong to%(contact)s."
            )
            % {
                "body": org.accredited_body_name_ja.strip(),
                "contact": (
                    f" ({org.accredited_body_contact_ja.strip()})"
                    if org.accredited_body_contact_ja.strip()
                    else ""
                ),
            }
        )
    lines.append(
        _(
            "You may also consult the Personal Information Protection Commission. If a request "
            "is refused, or not answered within two weeks of reaching us, you may bring a claim "
            "to court (APPI art. 39)."
        )
    )
    return "\n".join(lines)


def _sections(notice):
    return [
        (_("Request number"), f"{notice.request.reference} · {notice.request.get_kind_display()}"),
        (_("Received on"), timezone.localtime(notice.request.created_at).strftime("%Y-%m-%d")),
        (_("Decision"), f"{notice.get_decision_display()} ({_decided_on(notice)})"),
        (_("Legal ground"), notice.legal_ground),
        (_("Reasons"), notice.reasons),
        (_("Our answer and what was done"), notice.answer),
        (_("How to ask again or complain"), notice.recourse),
    ]


def _decided_on(notice):
    return timezone.localtime(notice.issued_at).strftime("%Y-%m-%d")


def sections(notice):
    """The notice's headed sections, in the active language where they are labels."""
    return [(heading, text) for heading, text in _sections(notice) if text]


def issue(customer_request, *, decision, by, reasons, answer="", refusal_ground=""):
    """Write the decision notice of ``customer_request`` (inside the decision's transaction);
    one per request: a second decision cannot happen, the state machine refuses it."""

    def fields():
        return {
            "legal_ground": legal_ground(customer_request, decision, refusal_ground),
            "recourse": recourse(),
        }

    with translation.override(customer_request.language):
        notice = DecisionNotice(
            request=customer_request,
            decision=decision,
            reasons=reasons.strip(),
            answer=answer.strip(),
            language=customer_request.language,
            issued_by=by,
            **fields(),
        )
    with translation.override("ja"):
        # The same notice in Japanese, for the voice: staff's reasons and the answer as
        # written; the labels and the fixed texts in Japanese.
        japanese = DecisionNotice(
            request=customer_request,
            decision=decision,
            reasons=notice.reasons,
            answer=notice.answer,
            issued_at=notice.issued_at,
            **fields(),
        )
        notice.text_ja = "\n".join(f"{heading}: {text}" for heading, text in sections(japanese))
    notice.save()
    return notice


def notice_url(notice):
    signed = signing.dumps(notice.pk, salt=NOTICE_SALT)
    return settings.PUBLIC_BASE_URL + reverse("portal:decision", args=[signed])


def voice_url(notice):
    signed = signing.dumps(notice.pk, salt=VOICE_SALT)
    return settings.PUBLIC_BASE_URL + reverse("portal:decision-voice", args=[signed])


def _from_signed(signed, salt):
    try:
        pk = signing.loads(signed, salt=salt)
    except signing.BadSignature:
        return None
    return DecisionNotice.objects.select_related("request").filter(pk=pk).first()


def notice_for_link(signed):
    """The notice a signed link names, or None (a bad or altered signature, or no notice)."""
    return _from_signed(signed, NOTICE_SALT)


def notice_for_voice(signed):
    return _from_signed(signed, VOICE_SALT)


def sms_line(notice):
    with translation.override(notice.language):
        return _("The written decision: %(url)s") % {"url": notice_url(notice)}


def offer_reading(response, notice):
    """Append to a voice answer the offer to hear the whole notice (press 1)."""
    gather = response.gather(num_digits=1, action=voice_url(notice), method="POST", timeout=8)
    gather.say("書面の通知の全文をお聞きになる場合は、1を押してください。", language="ja-JP")


def reading_twiml(notice, digits):
    """The TwiML answering the caller's key: 1 reads the notice's text in Japanese (and offers
    it again); anything else ends the call."""
    from twilio.twiml.voice_response import VoiceResponse

    response = VoiceResponse()
    if notice is None or digits != "1":
        response.say("ご利用ありがとうございました。", language="ja-JP")
        response.hangup()
        return str(response)
    response.say("書面の通知を読み上げます。", language="ja-JP")
    for line in notice.text_ja.splitlines():
        if line.strip():
            response.say(line, language="ja-JP")
    gather = response.gather(num_digits=1, action=voice_url(notice), method="POST", timeout=8)
    gather.say("もう一度お聞きになる場合は、1を押してください。", language="ja-JP")
    response.say("以上です。ご利用ありがとうございました。", language="ja-JP")
    return str(response)
