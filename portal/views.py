"""The customer portal (/requests/): prove the number, then see your calls and ask."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db.models import F
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from audit.services import client_ip
from contactcenter.phones import format_phone_number
from privacy.models import Notice
from recordings import access
from recordings.views import stream_recording

from . import decisions, ownership, requests, services
from .archive import copy_archive
from .forms import CallLookupForm, CodeForm, NumberForm, RequestForm
from .models import CustomerRequest, PhoneVerification

PENDING = "portal_pending_number"
PROVEN = "portal_proven"
PROOF_LIFETIME = timedelta(minutes=30)


def proven_by(request):
    """How the number was proven (``sms`` or ``call``)."""
    return (request.session.get(PROVEN) or {}).get("by", "")


def proven_number(request):
    """The number this browser proved in the last 30 minutes, or None."""
    proof = request.session.get(PROVEN) or {}
    at = parse_datetime(proof.get("at", "")) if proof else None
    if not at or timezone.now() - at > PROOF_LIFETIME:
        return None
    return proof.get("number")


@never_cache
@require_http_methods(["GET", "POST"])
def start(request):
    """How to make a request, and the first step: the number, and how to get the code."""
    form = NumberForm(request.POST or None)
    error, status = None, 200
    if request.method == "POST" and not form.is_valid():
        status = 400
    elif request.method == "POST":
        number = form.cleaned_data["phone_number"]
        try:
            services.send_code(
                phone_number=number,
                channel=form.cleaned_data["channel"],
                ip=client_ip(request),
            )
        except services.ProofError as failure:
            error, status = failure.message, failure.status
        else:
            request.session[PENDING] = {
                "number": number,
                "channel": form.cleaned_data["channel"],
            }
            return redirect("portal:verify")
    return render(
        request,
        "portal/start.html",
        {
            "notice": Notice.objects.in_force(),
            "form": form,
            "error": error,
            "proven": proven_number(request),
        },
        status=status,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def verify(request):
    pending = request.session.get(PENDING)
    if not pending:
        return redirect("portal:start")
    form = CodeForm(request.POST or None)
    error = None
    if request.method == "POST" and form.is_valid():
        outcome = services.check_code(
            phone_number=pending["number"], code=form.cleaned_data["code"], ip=client_ip(request)
        )
        if outcome.verified:
            request.session.cycle_key()  # a new session once the number is proven
            request.session.pop(PENDING, None)
            request.session[PROVEN] = {
                "number": pending["number"],
                "at": timezone.now().isoformat(),
                "by": pending["channel"],
            }
            return redirect("portal:mine")
        error = outcome.message
    return render(
        request,
        "portal/verify.html",
        {
            "form": form,
            "error": error,
            "number": format_phone_number(pending["number"]),
            "channel": pending["channel"],
        },
        status=400 if error else 200,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def mine(request):
    """The proven number's calls (date, time, length, whether recorded), the recordings its
    granted requests let it hear or download, and the request."""
    number = proven_number(request)
    if number is None:
        return redirect("portal:start")
    # Only the calls this session found by their day and time (portal/ownership.py): the
    # number may have been someone else's when an older call was made.
    finding = request.method == "POST" and "find" in request.POST
    lookup = CallLookupForm(request.POST if finding else None)
    lookup_message = None
    if finding and lookup.is_valid():
        found = ownership.find(
            request.session,
            number,
            day=lookup.cleaned_data["day"],
            at=lookup.cleaned_data["time"],
        )
        if not found.message:
            return redirect(f"{reverse('portal:mine')}#calls")
        lookup_message = found.message
    calls = ownership.claimed_calls(request.session, number)
    form = RequestForm(None if finding else (request.POST or None), calls=calls)
    error = None
    if request.method == "POST" and not finding and form.is_valid():
        try:
            made = requests.submit(
                phone_number=number,
                kind=form.cleaned_data["kind"],
                call_ids=[int(pk) for pk in form.cleaned_data["calls"]],
                copy_format=form.cleaned_data["copy_format"],
                message=form.cleaned_data["message"],
                on_behalf=form.cleaned_data["on_behalf"],
                representative=form.cleaned_data["representative"],
                **form.correction(),
                answer_by=services.answer_channel(number, proven_by(request)),
                http_request=request,
            )
        except requests.RequestError as failure:
            error = failure.message
        else:
            request.session["portal_last_request"] = made.reference
            return redirect("portal:sent")
    # Requests of the number's earlier holder are not shown either.
    made_before = CustomerRequest.objects.filter(
        phone_number=number, created_at__gte=ownership.oldest_without_check()
    ).order_by("-created_at")[:20]
    return render(
        request,
        "portal/mine.html",
        {
            "calls": calls,
            "to_check": {call.pk for call in calls if ownership.needs_holder_check(call)},
            "lookup": lookup,
            "lookup_message": lookup_message,
            "lookups_left": ownership.lookups_left(request.session, number),
            "window_minutes": settings.PORTAL_CALL_TIME_WINDOW_MINUTES,
            "max_age_days": settings.PORTAL_CALL_MAX_AGE_DAYS,
            "number": format_phone_number(number),
            "form": form,
            "error": error,
            "made_before": made_before,
            "granted": requests.links_of_number(number)
            .annotate(left=F("max_plays") - F("plays"))
            .order_by("-request__created_at", "request_id", "recording__call__started_at"),
        },
        status=400 if request.method == "POST" else 200,
    )


@never_cache
def sent(request):
    number = proven_number(request)
    reference = request.session.get("portal_last_request")
    made = CustomerRequest.objects.filter(phone_number=number, reference=reference).first()
    if number is None or made is None:
        return redirect("portal:start")
    return render(request, "portal/sent.html", {"made": made, "how_to_pay": requests.how_to_pay()})


LISTENING = "portal_listening"
LISTENING_LIFETIME = timedelta(hours=2)


def _play_refused(request, reason):
    return render(
        request,
        "portal/listen.html",
        {"reason": reason or _("This link has been used as many times as it allows.")},
        status=403,
    )


def _opened_link(request, token):
    """The link for ``token`` if this browser opened its page in the last two hours."""
    link = requests.link_for(token)
    until = (
        parse_datetime(request.session.get(LISTENING, {}).get(str(link.pk), "")) if link else None
    )
    return link if until and until > timezone.now() else None


def _refused_text(message):
    return HttpResponse(message, status=403, content_type="text/plain; charset=utf-8")


def _grant(link, **detail):
    """What ``recordings.access`` checks a listening link's disclosure against."""
    return {
        "phone_number": link.request.phone_number,
        "until": link.expires_at,
        "detail": {"request": link.request.reference, "link": link.pk, **detail},
    }


def _token_urls(token):
    """Where a listening page opened by its token sends its audio, call and download."""
    return {
        "audio_url": reverse("portal:listen-audio", args=[token]),
        "call_url": reverse("portal:listen-by-phone", args=[token]),
        "copy_url": reverse("portal:copy-download", args=[token]),
    }


def _own_urls(link):
    """The same for a link opened from "your calls" (the proven number authorises it)."""
    return {
        "audio_url": reverse("portal:own-link-audio", args=[link.pk]),
        "call_url": reverse("portal:own-link-call", args=[link.pk]),
        "copy_url": reverse("portal:own-link-copy", args=[link.pk]),
        "back_to_mine": True,
    }


def _listening_page(request, link, urls):
    """A customer's listening page. Opening it (or reloading it) uses none of the link's
    plays: a play is counted when its audio starts (``_audio``). Each load names a new
    play, so the audio of the page as loaded counts once however many Range requests it
    makes."""
    checked = access.continue_disclosure(link.recording, **_grant(link), request=request)
    if not checked:
        return _play_refused(request, checked.message)
    play = secrets.token_urlsafe(12)
    allowed = request.session.get(LISTENING, {})
    allowed[str(link.pk)] = (timezone.now() + LISTENING_LIFETIME).isoformat()
    request.session[LISTENING] = allowed
    plays = request.session.get(PLAYS, {})
    plays[str(link.pk)] = play
    request.session[PLAYS] = plays
    return render(
        request,
        "portal/listen.html",
        {
            "link": link,
            "left": link.max_plays - link.plays,
            "by_phone_first": link.request.answer_by == PhoneVerification.Channel.CALL,
            **urls,
        },
    )


@never_cache
def listen(request, token):
    """The listening page of the link an SMS brought."""
    link, reason = requests.open_link(token)
    if link is None:
        return _play_refused(request, reason)
    return _listening_page(request, link, _token_urls(token))


PLAYS = "portal_listening_plays"
PHONE_SALT = requests.PHONE_SALT  # the phone play's signed URL (made in requests)


def _start_play(request, link, play, **detail):
    """Count ``play`` of ``link`` once, when its audio is first asked for; None when it may go
    on (counted now or before), else the refusal to answer."""
    # cache.add is atomic (SET NX in Redis): of two first requests at once, one counts.
    started = f"portal:play-started:{link.pk}:{play}"
    if not cache.add(started, True, int(LISTENING_LIFETIME.total_seconds())):
        return None
    if not requests.count_play(link):
        return _refused_text(_("This link has been used as many times as it allows."))
    heard = access.start_disclosure(link.recording, **_grant(link, **detail), request=request)
    if not heard:
        return _refused_text(heard.message)
    return None


def _play_by_phone(request, link, reason=""):
    """電話で聞く: we call the proven number and play the recording (one of the link's plays)."""
    if not requests.count_play(link):
        return _play_refused(request, reason)
    heard = access.start_disclosure(link.recording, **_grant(link, by_phone=True), request=request)
    if not heard:
        return _play_refused(request, heard.message)
    audio_url = requests.phone_audio_url(link)
    try:
        requests.call_to_play(link, audio_url)
    except requests.RequestError as failure:
        return render(request, "portal/listen.html", {"reason": failure.message}, status=503)
    return render(request, "portal/listen.html", {"calling": link})


@require_http_methods(["POST"])
def listen_by_phone(request, token):
    link, reason = requests.open_link(token)
    if link is None:
        return _play_refused(request, reason)
    return _play_by_phone(request, link, reason)


@require_http_methods(["GET", "HEAD"])
def phone_audio(request, signed):
    """The audio Twilio fetches to play in the call (a signed URL valid 15 minutes), for that
    one playback only (``requests.claim_phone_fetch``); a fetch after it is refused, audited."""
    try:
        grant = signing.loads(signed, salt=requests.PHONE_SALT, max_age=requests.PHONE_URL_LIFETIME)
    except signing.BadSignature:
        return HttpResponse(status=403)
    link = requests.link_for(pk=grant["l"])
    if link is None:
        return HttpResponse(status=403)
    disclosure = _grant(link, by_phone=True)
    heard = access.continue_disclosure(link.recording, **disclosure, request=request)
    if not heard:
        return _refused_text(heard.message)
    whole = request.method == "GET" and "Range" not in request.headers
    ip = client_ip(request)
    if not requests.claim_phone_fetch(link=link, play_id=grant.get("p"), ip=ip, whole=whole):
        refusal = access.refuse_disclosure(
            link.recording,
            "already_played",
            phone_number=disclosure["phone_number"],
            detail=disclosure["detail"],
            request=request,
        )
        return HttpResponse(refusal.message, status=410, content_type="text/plain; charset=utf-8")
    return stream_recording(request, link.recording, channel="both", download=False)


def _copy(request, link):
    """A copy as a file: a ZIP archive streamed as it is made (never written to disk) with
    the audio and the call's and consent's details. Each download is one of the link's
    plays (the page counts none)."""
    refused = _start_play(request, link, secrets.token_urlsafe(12), copy=True)
    if refused is not None:
        return refused
    response = StreamingHttpResponse(copy_archive(link), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{link.request.reference}.zip"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@never_cache
@require_http_methods(["GET"])
def copy_download(request, token):
    """The copy as a file, for the browser that opened the link's page."""
    link = _opened_link(request, token)
    if link is None or not link.request.wants_file:
        return _refused_text(_("Open the listening page again to download the copy."))
    return _copy(request, link)


def _audio(request, link):
    """The audio of the listening page this browser opened for ``link`` (HTTP Range)."""
    # The play the page named when it was (re)loaded: its first audio request counts it.
    play = (request.session.get(PLAYS) or {}).get(str(link.pk))
    if not play:
        return _refused_text(_("Open the listening page again to play the recording."))
    heard = access.continue_disclosure(link.recording, **_grant(link), request=request)
    if not heard:
        return _refused_text(heard.message)
    refused = _start_play(request, link, play, by_phone=False)
    if refused is not None:
        return refused
    return stream_recording(request, link.recording, channel="both", download=False)


@never_cache
@require_http_methods(["GET", "HEAD"])
def listen_audio(request, token):
    link = _opened_link(request, token)
    if link is None:
        return _refused_text(_("Open the listening page again to play the recording."))
    return _audio(request, link)


# The same pages and files from "your calls": the number this browser proved stands in for
# the token (a landline cannot receive one), and ``requests.links_of_number`` says which
# links it may use. Anything else is a 404, so that ids of other callers' links tell nothing.


def _own_link(request, pk, *, plays_left=True):
    link = requests.link_of_number(pk, phone_number=proven_number(request), plays_left=plays_left)
    if link is None:
        raise Http404
    return link


@never_cache
def own_link(request, pk):
    if proven_number(request) is None:
        return redirect("portal:start")
    link = _own_link(request, pk)
    return _listening_page(request, link, _own_urls(link))


@never_cache
@require_http_methods(["GET", "HEAD"])
def own_link_audio(request, pk):
    # Plays aside: the page's play may have been the last, and its Range requests follow.
    return _audio(request, _own_link(request, pk, plays_left=False))


@require_http_methods(["POST"])
def own_link_call(request, pk):
    if proven_number(request) is None:
        return redirect("portal:start")
    return _play_by_phone(request, _own_link(request, pk))


@never_cache
@require_http_methods(["GET"])
def own_link_copy(request, pk):
    link = _own_link(request, pk)
    if not link.request.wants_file:
        raise Http404
    return _copy(request, link)


@require_http_methods(["POST"])
def leave(request):
    """終了: this browser forgets the proven number and the listening pages it opened, so
    their audio is refused from here on (a page opened again uses another play)."""
    request.session.pop(PROVEN, None)
    request.session.pop(PENDING, None)
    request.session.pop(LISTENING, None)
    request.session.pop(PLAYS, None)
    return redirect("portal:start")


# The written decision on a request (portal/decisions.py): a signed link, no login. A bad or
# altered signature is told apart from nothing: the same "page not found" as any other.


@never_cache
@require_http_methods(["GET"])
def decision(request, signed):
    notice = decisions.notice_for_link(signed)
    if notice is None:
        raise Http404
    return render(
        request, "portal/decision.html", {"notice": notice, "sections": decisions.sections(notice)}
    )


@csrf_exempt
@require_http_methods(["POST"])
def decision_voice(request, signed):
    """Twilio's request after the answer call asked whether to read the notice (press 1).
    The signed URL names the one notice it may read, as the page's link does."""
    notice = decisions.notice_for_voice(signed)
    if notice is None:
        return HttpResponse(status=403)
    return HttpResponse(
        decisions.reading_twiml(notice, request.POST.get("Digits", "")),
        content_type="application/xml",
    )
