"""Customer requests: received from the portal, decided by staff, fulfilled, audited.

* hear → a listening link per recording (48 hours, 3 plays), sent by SMS to the proven number;
* copy → the same links (the customer listens, or downloads the audio with the call and
  consent details, as they chose); a caller answered by a voice call gets the file from the
  "your calls" page, where the proven number stands in for the token (``links_of_number``);
* delete, suspend → the recordings' purpose windows close and they are purged (a legal hold
  keeps one, unusable, and the customer is told);
* seal (利用停止, the recording kept) → the recordings are sealed: no staff use, no training,
  no provision, kept until their retention ends or the customer asks for deletion;
* withdraw → the consent ledger records the withdrawal, and the pipeline purges what it covered;
* purpose_notice, cross_border, provision_records → the answer, written from the notice in
  force, the cross-border register and the provision ledger (``answers``);
* correct → the customer record's name is corrected, or the correction of a call's details is
  added to the call's record (the request, kept with it);
* stop_provision → the customer is flagged; ``recordings.provision`` refuses from then on.

A kind the organisation charges a fee for waits (手数料の確認待ち) until staff confirm the
payment (``confirm_fee``). Every decision — granted, refused, closed — writes a decision notice
(``decisions``). Every step goes to the access audit trail; the customer is told when the
request closes: by SMS on a mobile proven by SMS, with the link to the written decision,
otherwise by a voice call in Japanese (``answer_by``, decided when the number was proven),
which for a granted hearing plays the recordings and offers to read the notice.
"""

import hashlib
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

import twilio_client
from audit import services as audit
from audit.models import AccessEvent
from consent.models import ConsentRecord
from contactcenter.models import Call, Customer
from contactcenter.roles import require, staff_emails
from privacy import organisation
from recordings import access, retention
from recordings.models import Recording

from . import answers, decisions
from .models import CustomerRequest, DecisionNotice, ListeningLink, PhonePlay, PhoneVerification

logger = logging.getLogger(__name__)

Kind = CustomerRequest.Kind
Status = CustomerRequest.Status
Decision = DecisionNotice.Decision
Target = CustomerRequest.CorrectionTarget
Action = AccessEvent.Action
Channel = PhoneVerification.Channel
LINK_LIFETIME = timedelta(hours=48)
LINK_PLAYS = 3
# How long after the first fetch of a phone play's audio its follow-up requests (a HEAD, the
# Range requests of the same playback) are still part of it.
PHONE_PLAY_WINDOW = timedelta(minutes=2)
DECIDE = "portal.change_customerrequest"
# The signed URL of a phone play's audio (Twilio fetches it during the call).
PHONE_SALT = "portal.phone-play"
PHONE_URL_LIFETIME = 15 * 60


class RequestError(Exception):
    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


def _customer_label(phone_number):
    return f"customer {phone_number}"


def submit(
    *,
    phone_number,
    kind,
    call_ids=(),
    copy_format="",
    message="",
    on_behalf=False,
    representative="",
    correction_target="",
    correction_wrong="",
    correction_right="",
    answer_by=Channel.SMS,
    http_request=None,
):
    """Record a request from the holder of ``phone_number``; staff are told by email.
    ``answer_by`` (SMS or a voice call) was decided when the number was proven.

    Only calls from that number can be named (any other id is ignored, not revealed), and
    to hear or copy, only calls with a stored recording. A kind the organisation charges a
    fee for (``privacy.organisation.fee_for``) waits for staff to confirm the payment.
    """
    if kind not in Kind.values:
        raise RequestError(_("Choose what you would like us to do."))
    calls = list(Call.objects.filter(pk__in=call_ids, customer__phone_number=phone_number))
    if kind in CustomerRequest.ABOUT_CALLS and not calls:
        raise RequestError(_("Choose the call or calls your request is about."))
    if kind == Kind.CORRECT:
        if correction_target not in Target.values or not correction_right.strip():
            raise RequestError(_("Say what should be corrected and what is right."))
        if correction_target == Target.CALL and not calls:
            raise RequestError(_("Choose the call whose details should be corrected."))
    if kind in (Kind.HEAR, Kind.COPY):
        recorded = set(
            Recording.objects.filter(call__in=calls, status=Recording.Status.STORED).values_list(
                "call_id", flat=True
            )
        )
        if any(call.pk not in recorded for call in calls):
            raise RequestError(_("Only calls with a stored recording can be heard or copied."))
    if kind == Kind.COPY and copy_format not in CustomerRequest.CopyFormat.values:
        raise RequestError(_("Choose the form of the copy."))
    now = timezone.now()
    correcting = kind == Kind.CORRECT
    fee = organisation.fee_for(str(CustomerRequest.FEE_KINDS.get(kind, kind)))
    with transaction.atomic():
        customer_request = CustomerRequest.objects.create(
            phone_number=phone_number,
            customer=Customer.objects.filter(phone_number=phone_number).first(),
            kind=kind,
            status=Status.AWAITING_FEE if fee else Status.RECEIVED,
            fee_yen=fee,
            copy_format=copy_format if kind == Kind.COPY else "",
            correction_target=correction_target if correcting else "",
            correction_wrong=correction_wrong.strip() if correcting else "",
            correction_right=correction_right.strip() if correcting else "",
            message=message.strip(),
            on_behalf=on_behalf,
            representative=representative.strip(),
            language=translation.get_language() or "ja",
            answer_by=answer_by,
            created_at=now,
            due_at=now + timedelta(days=settings.PORTAL_REQUEST_DUE_DAYS),
        )
        customer_request.calls.set(calls)
        audit.record(
            Action.REQUEST_RECEIVED,
            actor_label=_customer_label(phone_number),
            detail={
                "request": customer_request.reference,
                "kind": kind,
                "calls": [call.sid for call in calls],
                "on_behalf": on_behalf,
                "fee_yen": fee,
            },
            request=http_request,
        )
        transaction.on_commit(lambda: _notify_staff(customer_request))
    return customer_request


def how_to_pay():
    """How to pay a request's fee, as the organisation settings say, in the person's words."""
    text = organisation.current().fee_payment_ja.strip()
    return text or _("We will contact you about how to pay.")


def confirm_fee(customer_request, *, by, http_request=None):
    """Staff confirm that the fee of a request awaiting it was paid: the request is received
    and proceeds as any other. Audited as a step of the decision (``fee_confirmed``)."""
    require(by, DECIDE, _("Your role does not allow deciding customers' requests."))
    with transaction.atomic():
        moved = CustomerRequest.objects.transition(
            customer_request.pk,
            to=Status.RECEIVED,
            only_from=[Status.AWAITING_FEE],
            fee_confirmed_at=timezone.now(),
            fee_confirmed_by=by,
        )
        if not moved:
            raise RequestError(_("This request is not waiting for a fee."))
        confirmed = CustomerRequest.objects.get(pk=customer_request.pk)
        audit.record(
            Action.REQUEST_DECIDED,
            actor=by,
            detail={
                "request": confirmed.reference,
                "decision": "fee_confirmed",
                "fee_yen": confirmed.fee_yen,
            },
            request=http_request,
        )
    return confirmed


def _notify_staff(customer_request):
    recipients = staff_emails()
    if not recipients:
        return
    with translation.override("ja"):
        subject = _("New customer request %(reference)s: %(kind)s") % {
            "reference": customer_request.reference,
            "kind": customer_request.get_kind_display(),
        }
        body = _(
            "A customer made a request through the portal.\n\n"
            "Reference: %(reference)s\nRequest: %(kind)s\nOn someone's behalf: %(behalf)s\n"
            "Answer due: %(due)s\n\nOpen it in the admin: %(url)s"
        ) % {
            "reference": customer_request.reference,
            "kind": customer_request.get_kind_display(),
            "behalf": _("yes — check the authority") if customer_request.on_behalf else _("no"),
            "due": timezone.localtime(customer_request.due_at).strftime("%Y-%m-%d %H:%M"),
            "url": settings.PUBLIC_BASE_URL
            + reverse("admin:portal_customerrequest_change", args=[customer_request.pk]),
        }
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    except OSError:
        logger.exception("Could not email staff about request %s", customer_request.reference)


def _stored_recordings(customer_request):
    return list(
        Recording.objects.filter(
            call__in=customer_request.calls.all(), status=Recording.Status.STORED
        ).select_related("call")
    )


def _new_link(customer_request, recording):
    token = secrets.token_urlsafe(24)
    customer_request.new_links.append(
        ListeningLink.objects.create(
            request=customer_request,
            recording=recording,
            token_hash=token_hash(token),
            expires_at=timezone.now() + LINK_LIFETIME,
            max_plays=LINK_PLAYS,
        )
    )
    return settings.PUBLIC_BASE_URL + reverse("portal:listen", args=[token])


def token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def approve(customer_request, *, by, reason="", http_request=None):
    """Fulfil an open request as its kind says; tell the customer by SMS; return what was done.
    Only staff whose role works the queue decide (``NotAllowed`` otherwise, nothing changes).

    The decision, what it changes (listening links, closed purpose windows, the consent
    ledger) and its audit event commit together; only then are the recordings purged (their
    files and Twilio's copies deleted) and the customer told, so that a decision rolled back
    has sent and deleted nothing. Never inside another transaction (durable): that one would
    hold its locks, the audit chain's among them, while Twilio answers the deletions.
    """
    require(by, DECIDE, _("Your role does not allow deciding customers' requests."))
    with transaction.atomic(durable=True):
        locked = CustomerRequest.objects.select_for_update().get(pk=customer_request.pk)
        locked.new_links = []
        if not locked.is_open:
            raise RequestError(_("This request is already closed."))
        if locked.awaits_fee:
            raise RequestError(_("The fee has not been confirmed yet: confirm the payment first."))
        outcome = _fulfil(locked, by=by)
        closed = CustomerRequest.objects.transition(
            locked.pk,
            to=Status.DONE,
            decided_by=by,
            decision_reason=(reason.strip() + "\n" + outcome["summary"]).strip(),
            closed_at=timezone.now(),
        )
        if not closed:
            raise RequestError(_("This request is already closed."))
        links, locked.new_links = locked.new_links, []
        locked.refresh_from_db()
        with translation.override(locked.language):
            reasons = reason.strip() or _(
                "We confirmed that you hold the phone number the calls were made from, and "
                "your request meets what the law provides."
            )
        notice = decisions.issue(
            locked, decision=Decision.GRANTED, by=by, reasons=reasons, answer=outcome["answer"]
        )
        audit.record(
            Action.REQUEST_DECIDED,
            actor=by,
            detail={
                "request": locked.reference,
                "decision": "done",
                "notice": notice.pk,
                **outcome["audit"],
            },
            request=http_request,
        )
    if outcome.get("purge"):
        retention.purge_due(recording_ids=outcome["purge"], by=by)
    _answer(
        locked,
        notice,
        sms=outcome["sms"],
        voice=outcome["voice"],
        links=links,
        http_request=http_request,
    )
    return outcome


def _answer(customer_request, notice, *, sms, voice, links=(), http_request=None):
    """Tell the customer the decision, after it committed: by SMS with the link to the written
    decision, or by a call that says it and offers to read the notice."""
    if customer_request.answer_by == Channel.CALL:
        _call_customer(
            customer_request, voice, links=links, notice=notice, http_request=http_request
        )
    else:
        _tell_customer(customer_request, f"{sms} {decisions.sms_line(notice)}")


def _fulfil(customer_request, *, by):
    kind = customer_request.kind
    with translation.override(customer_request.language):
        if kind in (Kind.HEAR, Kind.COPY):
            recordings_ = _stored_recordings(customer_request)
            if not recordings_:
                raise RequestError(_("None of the calls has a stored recording to share."))
            links = [_new_link(customer_request, recording) for recording in recordings_]
            sms = _(
                "Your request %(reference)s: you can listen to your recording here for 48 "
                "hours, up to 3 times: %(links)s"
            ) % {"reference": customer_request.reference, "links": " ".join(links)}
            summary = _("%(count)d listening link(s) sent.") % {"count": len(links)}
            voice = f"ご請求{_spoken(customer_request)}を承認しました。"
            if file_on_the_portal(customer_request):
                # A call can play the recording but not hand over the file: the caller
                # fetches it from "your calls" once they have proven the number again.
                summary = _(
                    "%(count)d listening link(s) made. The answer call plays the recordings; "
                    "the file can be downloaded for %(hours)d hours from the “Your calls” page "
                    "of the portal, once the caller has proven the number again."
                ) % {"count": len(links), "hours": _link_hours()}
                voice += (
                    "録音のファイルは、ホームページの『録音に関するご請求』から、お電話番号を"
                    f"確認したあと、『お客様の通話』のページで、{_link_hours()}時間"
                    "ダウンロードできます。"
                )
            answer = _(
                "%(count)d recording(s) may be heard for %(hours)d hours, up to %(plays)d "
                "times each, from the links we sent or from the “Your calls” page of the portal."
            ) % {"count": len(links), "hours": _link_hours(), "plays": LINK_PLAYS}
            return {
                "summary": summary,
                "audit": {"links": [r.sid for r in recordings_]},
                "sms": sms,
                "voice": voice + "これから、通話の録音をお聞かせします。",
                "answer": answer,
            }
        if kind in (Kind.DELETE, Kind.SUSPEND):
            due, kept = retention.stop_using_on_request(_stored_recordings(customer_request))
            purged, held = [r.sid for r in due], [r.sid for r in kept]
            sms = _("Your request %(reference)s: the recordings were deleted.") % {
                "reference": customer_request.reference
            }
            if held:
                sms = _(
                    "Your request %(reference)s: we stopped using the recordings. %(count)d must "
                    "be kept for a legal reason for now and will be deleted as soon as it ends."
                ) % {"reference": customer_request.reference, "count": len(held)}
            return {
                "summary": _("Purged: %(purged)s. Kept under a legal hold: %(held)s.")
                % {"purged": ", ".join(purged) or "—", "held": ", ".join(held) or "—"},
                "audit": {"purged": purged, "held": held},
                "sms": sms,
                "answer": sms,
                "voice": f"ご請求{_spoken(customer_request)}について、"
                + (
                    f"録音の利用を停止しました。{len(held)}件は法律上の理由で当面保管し、"
                    "その理由がなくなり次第削除します。"
                    if held
                    else "録音を削除しました。"
                ),
                "purge": [recording.pk for recording in due],  # once the decision commits
            }
        if kind in _ANSWERS:
            return _ANSWERS[kind](customer_request, by=by)
        customer = _customer_of(customer_request)
        retention.withdraw_consent(
            customer=customer,
            by=by,
            method=ConsentRecord.Method.STAFF_ENTRY,
            note=_("Request %(reference)s made through the portal")
            % {"reference": customer_request.reference},
        )
        sms = _(
            "Your request %(reference)s: we will no longer record your calls, and the "
            "recordings we had are being deleted."
        ) % {"reference": customer_request.reference}
        return {
            "summary": _("Withdrawal recorded in the consent ledger."),
            "audit": {"withdrawn": True},
            "sms": sms,
            "answer": sms,
            "voice": f"ご請求{_spoken(customer_request)}について、録音への同意の撤回を"
            "承りました。今後の通話は録音せず、これまでの録音は削除しています。",
        }


def _customer_of(customer_request):
    return (
        customer_request.customer
        or Customer.objects.get_or_create(phone_number=customer_request.phone_number)[0]
    )


def _written(customer_request, *, summary, audit_detail, answer, gist_ja, sms=None):
    """The outcome of a kind whose answer is in the written decision: the SMS and the call say
    the gist, the notice has it in full."""
    return {
        "summary": summary,
        "audit": audit_detail,
        "answer": answer,
        "sms": sms
        or _("Your request %(reference)s was granted.") % {"reference": customer_request.reference},
        "voice": f"ご請求{_spoken(customer_request)}について、{gist_ja}",
    }


def _seal(customer_request, *, by):
    recordings_ = _stored_recordings(customer_request)
    if not recordings_:
        raise RequestError(_("None of the calls has a stored recording to share."))
    sealed = retention.seal(
        recordings_,
        by=by,
        reason=_("Request %(reference)s made through the portal")
        % {"reference": customer_request.reference},
    )
    sms = _(
        "Your request %(reference)s: we stopped all use of the recordings. They are kept, "
        "sealed, until their retention period ends or you ask us to delete them."
    ) % {"reference": customer_request.reference}
    return _written(
        customer_request,
        summary=_("Sealed: %(count)d recording(s).") % {"count": sealed},
        audit_detail={"sealed": [r.sid for r in recordings_]},
        answer=sms
        + " "
        + _("You can still ask to hear them or for a copy; nobody else may use them."),
        gist_ja="録音の利用をすべて停止しました。録音は封印して保管し、保存期間が終わるか、"
        "削除のご請求があるまで、どなたも利用しません。",
        sms=sms,
    )


def _purposes(customer_request, *, by):
    return _written(
        customer_request,
        summary=_("The purposes of use were notified."),
        audit_detail={"notified": "purposes"},
        answer=answers.purposes(),
        gist_ja="利用目的をお知らせします。",
    )


def _cross_border(customer_request, *, by):
    return _written(
        customer_request,
        summary=_("The information on recipients in a foreign country was given."),
        audit_detail={"notified": "cross_border"},
        answer=answers.cross_border(),
        gist_ja="外国にある第三者と、その措置についての情報をお知らせします。",
    )


def _provision_records(customer_request, *, by):
    text, count = answers.provision_records(customer_request.phone_number)
    return _written(
        customer_request,
        summary=_("%(count)d record(s) of provision disclosed.") % {"count": count},
        audit_detail={"provision_records": count},
        answer=text,
        gist_ja=f"第三者提供の記録を開示します。記録は{count}件です。",
    )


def _stop_provision(customer_request, *, by):
    customer = _customer_of(customer_request)
    Customer.objects.filter(pk=customer.pk, provision_stopped_at__isnull=True).update(
        provision_stopped_at=timezone.now()
    )
    answer = _(
        "From now on we provide no data about you to a third party. Records of earlier "
        "provision can be disclosed to you on request."
    )
    return _written(
        customer_request,
        summary=_("Provision to third parties stopped for this customer."),
        audit_detail={"provision_stopped": True},
        answer=answer,
        gist_ja="今後、お客様に関するデータを第三者に提供することを停止しました。",
    )


def _correct(customer_request, *, by):
    right = customer_request.correction_right
    if customer_request.correction_target == Target.NAME:
        customer = _customer_of(customer_request)
        customer.name = right[: Customer._meta.get_field("name").max_length]
        customer.save(update_fields=["name"])
        answer = _("We corrected the name in your customer record to “%(name)s”.") % {
            "name": customer.name
        }
        corrected = "customer_name"
    else:
        # A call's details are what Twilio and the system recorded when it happened; they
        # stay as recorded, and the correction is added beside them (APPI art. 34 allows
        # correction by addition): the call's admin page shows it (portal.admin).
        answer = _(
            "We added your correction to the record of the call: “%(right)s”. It is shown "
            "with the call's details to the staff who handle requests."
        ) % {"right": right}
        corrected = "call_details"
    return _written(
        customer_request,
        summary=_("Corrected: %(what)s.") % {"what": corrected},
        audit_detail={"corrected": corrected},
        answer=answer,
        gist_ja="ご指摘の内容を訂正しました。",
    )


_ANSWERS = {
    Kind.SEAL: _seal,
    Kind.PURPOSE_NOTICE: _purposes,
    Kind.CROSS_BORDER: _cross_border,
    Kind.PROVISION_RECORDS: _provision_records,
    Kind.STOP_PROVISION: _stop_provision,
    Kind.CORRECT: _correct,
}


def refuse(customer_request, *, by, ground, reason, http_request=None):
    """Refuse an open request on a lawful ground; tell the customer by SMS. Only staff whose
    role works the queue decide (``NotAllowed`` otherwise, nothing changes)."""
    require(by, DECIDE, _("Your role does not allow deciding customers' requests."))
    if ground not in CustomerRequest.RefusalGround.values or not reason.strip():
        raise RequestError(_("Give the ground for the refusal and explain it."))
    with transaction.atomic(durable=True):  # the SMS follows the commit
        closed = CustomerRequest.objects.transition(
            customer_request.pk,
            to=Status.REFUSED,
            refusal_ground=ground,
            decision_reason=reason.strip(),
            decided_by=by,
            closed_at=timezone.now(),
        )
        if not closed:
            raise RequestError(_("This request is already closed."))
        locked = CustomerRequest.objects.get(pk=customer_request.pk)
        notice = decisions.issue(
            locked, decision=Decision.REFUSED, by=by, reasons=reason, refusal_ground=ground
        )
        audit.record(
            Action.REQUEST_DECIDED,
            actor=by,
            detail={
                "request": locked.reference,
                "decision": "refused",
                "ground": ground,
                "notice": notice.pk,
            },
            request=http_request,
        )
    with translation.override("ja"):
        ground_ja = str(locked.get_refusal_ground_display())
    with translation.override(locked.language):
        sms = _(
            "Your request %(reference)s could not be granted: %(ground)s. Contact us for details."
        ) % {"reference": locked.reference, "ground": locked.get_refusal_ground_display()}
    _answer(
        locked,
        notice,
        sms=sms,
        voice=f"ご請求{_spoken(locked)}には、お応えできませんでした。理由は、{ground_ja}、"
        "というものです。詳しくは、お問い合わせください。",
    )
    return locked


def close(customer_request, *, by, reason, http_request=None):
    """Close an open request without a decision on its merits (the fee was never paid, the
    requester took it back, it repeats another one), with the reason; the customer gets the
    written decision like any other."""
    require(by, DECIDE, _("Your role does not allow deciding customers' requests."))
    if not reason.strip():
        raise RequestError(_("Explain why the request is closed."))
    with transaction.atomic(durable=True):  # the SMS follows the commit
        closed = CustomerRequest.objects.transition(
            customer_request.pk,
            to=Status.CLOSED,
            decision_reason=reason.strip(),
            decided_by=by,
            closed_at=timezone.now(),
        )
        if not closed:
            raise RequestError(_("This request is already closed."))
        locked = CustomerRequest.objects.get(pk=customer_request.pk)
        notice = decisions.issue(locked, decision=Decision.CLOSED, by=by, reasons=reason)
        audit.record(
            Action.REQUEST_DECIDED,
            actor=by,
            detail={"request": locked.reference, "decision": "closed", "notice": notice.pk},
            request=http_request,
        )
    with translation.override(locked.language):
        sms = _("Your request %(reference)s was closed.") % {"reference": locked.reference}
    _answer(
        locked,
        notice,
        sms=sms,
        voice=f"ご請求{_spoken(locked)}は、手続きを終了しました。",
    )
    return locked


def file_on_the_portal(customer_request):
    """Whether the copy is a file that only the portal can hand over: the caller is answered
    by a voice call (a landline), which can play the recording but not give the file."""
    return customer_request.wants_file and customer_request.answer_by == Channel.CALL


def _link_hours():
    return int(LINK_LIFETIME.total_seconds() // 3600)


def _spoken(customer_request):
    """The reference as a voice reads it out, character by character (RQ-AB23: R、Q、A、B、2、3)."""
    return "、" + "、".join(customer_request.reference.replace("-", "")) + "、"


def phone_audio_url(link):
    """A new phone play of ``link`` and the signed URL of its audio, for one call's TwiML."""
    play = new_phone_play(link)
    signed = signing.dumps({"l": link.pk, "p": play.pk}, salt=PHONE_SALT)
    return settings.PUBLIC_BASE_URL + reverse("portal:phone-audio", args=[signed])


def _call_customer(customer_request, text, *, links=(), notice=None, http_request=None):
    """Answer a caller proven by a voice call with a voice call in Japanese: the decision read
    out twice, then, for a granted hearing, each recording played (one of its link's plays,
    written to the trail as a disclosure by phone), then the offer to read the written
    decision (press 1)."""
    from twilio.twiml.voice_response import VoiceResponse

    response = VoiceResponse()
    opening = "こちらは、通話録音に関するご請求の窓口です。"
    response.say(opening + text, language="ja-JP")
    response.pause(length=1)
    response.say("繰り返します。" + text, language="ja-JP")
    for link in links:
        if not count_play(link):
            continue
        heard = access.start_disclosure(
            link.recording,
            phone_number=customer_request.phone_number,
            until=link.expires_at,
            detail={"request": customer_request.reference, "link": link.pk, "by_phone": True},
            request=http_request,
        )
        if not heard:
            continue
        started = timezone.localtime(link.recording.call.started_at)
        response.say(
            f"{started.month}月{started.day}日{started.hour}時{started.minute}分の通話です。",
            language="ja-JP",
        )
        response.play(phone_audio_url(link))
    if notice is not None:
        decisions.offer_reading(response, notice)
    response.say("以上です。ご利用ありがとうございました。", language="ja-JP")
    try:
        twilio_client.place_call(to=customer_request.phone_number, twiml=str(response))
    except twilio_client.TwilioError as error:
        logger.warning(
            "Answer call for request %s not placed: %s", customer_request.reference, error
        )


def _tell_customer(customer_request, text):
    try:
        twilio_client.send_sms(to=customer_request.phone_number, body=str(text))
    except twilio_client.TwilioError as error:
        logger.warning("SMS for request %s not sent: %s", customer_request.reference, error)


def open_link(token):
    """The listening link for ``token`` if it may still be used, else ``(None, reason)``."""
    link = (
        ListeningLink.objects.select_related("recording", "request")
        .filter(token_hash=token_hash(token))
        .first()
    )
    if link is None:
        return None, _("This link is not valid. Check that you copied all of it.")
    if link.expires_at <= timezone.now():
        return None, _("This link has expired. Make a new request to hear the recording again.")
    if link.plays >= link.max_plays:
        return None, _("This link has been used as many times as it allows.")
    if link.recording.status != Recording.Status.STORED:
        return None, _("This recording is no longer available.")
    return link, ""


def link_for(token=None, *, pk=None):
    """The link (by ``token``, or by ``pk`` for Twilio's signed URL) while it is valid in time
    and its recording exists, plays aside (the page already counted its play; the audio's
    Range requests are part of it)."""
    found = {"pk": pk} if token is None else {"token_hash": token_hash(token)}
    link = (
        ListeningLink.objects.select_related("recording", "request")
        .filter(expires_at__gt=timezone.now(), **found)
        .first()
    )
    if link is None or link.recording.status != Recording.Status.STORED:
        return None
    return link


def links_of_number(phone_number, *, plays_left=True):
    """The listening links that the holder of ``phone_number``, proven again on the portal,
    may use from the "your calls" page, whatever the answer went by: those of requests made
    for that number, valid in time, whose recording is still stored and, with
    ``plays_left``, that have a play left. Without it, a link whose last play was counted
    still serves that play's audio (the Range requests that follow its start), as
    ``link_for`` does for a token."""
    if not phone_number:
        return ListeningLink.objects.none()
    links = ListeningLink.objects.select_related("request", "recording__call").filter(
        request__phone_number=phone_number,
        expires_at__gt=timezone.now(),
        recording__status=Recording.Status.STORED,
    )
    if plays_left:
        links = links.filter(plays__lt=F("max_plays"))
    return links


def link_of_number(pk, *, phone_number, plays_left=True):
    """Link ``pk`` if the proven ``phone_number`` may use it (``links_of_number``), else None:
    another number's link, an expired or a used-up one are not told apart."""
    return links_of_number(phone_number, plays_left=plays_left).filter(pk=pk).first()


def call_to_play(link, audio_url):
    """Call the proven number: a short Japanese introduction, then the recording."""
    from twilio.twiml.voice_response import VoiceResponse

    started = timezone.localtime(link.recording.call.started_at)
    response = VoiceResponse()
    response.say(
        f"お電話ありがとうございます。ご請求{link.request.reference}について、"
        f"{started.month}月{started.day}日{started.hour}時{started.minute}分の通話の録音を"
        "お聞かせします。",
        language="ja-JP",
    )
    response.play(audio_url)
    response.say("以上です。ご利用ありがとうございました。", language="ja-JP")
    try:
        return twilio_client.place_call(to=link.request.phone_number, twiml=str(response))
    except twilio_client.TwilioError as error:
        logger.warning("Listening call for %s not placed: %s", link.request.reference, error)
        raise RequestError(
            _("We could not call you just now. Try again in a few minutes.")
        ) from error


def count_play(link):
    """One more play of ``link``; False when none is left (two tabs racing for the last).
    The playback itself is checked and audited by ``recordings.access.start_disclosure``."""
    counted = ListeningLink.objects.filter(pk=link.pk, plays__lt=F("max_plays")).update(
        plays=F("plays") + 1
    )
    return bool(counted)


def new_phone_play(link):
    """The one playback of ``link`` by phone that the call about to be placed will make."""
    return PhonePlay.objects.create(link=link)


def claim_phone_fetch(*, link, play_id, ip, whole, at=None):
    """Whether this request for a phone play's audio is part of its one playback.

    The first request claims the play with a conditional UPDATE (of two at once, one does)
    and notes the address it came from. Later requests belong to that playback only from the
    same address within PHONE_PLAY_WINDOW of the first (Twilio may send a HEAD first, or
    fetch the rest with Range requests), and the whole audio (a GET without Range) is served
    once. Everything else — the same URL replayed by whoever saw it — is refused.
    """
    now = at or timezone.now()
    plays = PhonePlay.objects.filter(pk=play_id, link=link) if play_id else PhonePlay.objects.none()
    claimed = plays.filter(first_fetch_at__isnull=True).update(first_fetch_at=now, fetched_from=ip)
    if not claimed:
        same_playback = plays.filter(
            fetched_from__isnull=False,
            fetched_from=ip,
            first_fetch_at__gt=now - PHONE_PLAY_WINDOW,
        )
        if ip is None or not same_playback.exists():
            return False
    if whole:
        return plays.filter(whole_fetched=False).update(whole_fetched=True) == 1
    return True
