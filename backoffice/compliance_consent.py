"""The compliance report's sections R1–R4: the notice, the announcement, consent before
recording (with the set-based check of every recording against the ledger), live control."""

from collections import defaultdict
from datetime import timedelta

from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDate
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _

from consent.models import ConsentRecord
from consent.services import NOT_GIVEN, RecordingPermission
from contactcenter.models import Call, CallEvent
from privacy.models import Notice
from recordings.models import ReconciliationRun

from . import charts
from .compliance_base import (
    EXCEPTIONS_LISTED,
    WITHOUT_AUDIO,
    Decision,
    Status,
    absolute,
    change_page,
    changelist,
    figure,
    local,
    section,
)

# --- R1: the notice --------------------------------------------------------------------------


def notices(period):
    published = list(
        Notice.objects.published()
        .filter(effective_from__isnull=False)
        .order_by("effective_from", "version")
    )
    # A version is in force from its effective date until the next one's (notices are few).
    in_force = []
    for index, notice in enumerate(published):
        until = published[index + 1].effective_from if index + 1 < len(published) else None
        if notice.effective_from < period.end and (until is None or until > period.start):
            in_force.append((notice, until))
    at_start = Notice.objects.in_force(period.start)
    by_version = dict(
        period.ledger.filter(customer__isnull=False, notice__isnull=False)
        .values_list("notice__version")
        .annotate(n=Count("pk"))
    )
    published_in_period = sum(
        1
        for notice in published
        if notice.published_at and period.start <= notice.published_at < period.end
    )
    figures = [
        figure(
            _("A published notice was in force when the period began"),
            _("yes") if at_start else _("no"),
            ok=at_start is not None,
        ),
        figure(_("Notice versions in force during the period"), len(in_force)),
        figure(_("Notice versions published during the period"), published_in_period),
    ]
    for notice, _until in in_force:
        figures.append(
            figure(
                _("Consent answers given under version %(version)s") % {"version": notice.version},
                by_version.get(notice.version, 0),
            )
        )
    evidence = [
        {
            "label": _("Version %(version)s: in force from %(start)s to %(end)s")
            % {
                "version": notice.version,
                "start": local(notice.effective_from),
                "end": local(until) if until else _("the present day"),
            },
            "url": absolute(reverse("privacy:notice-detail", args=[notice.version])),
        }
        for notice, until in in_force
    ]
    evidence.append(
        {"label": _("Every published version"), "url": absolute(reverse("privacy:notice-list"))}
    )
    return section(
        "R1",
        _("Advance publication of the notice"),
        _(
            "Each notice is published with a version number on the website before it takes "
            "effect; every earlier version stays readable at its own address, and every "
            "consent answer names the version announced to the caller."
        ),
        figures=figures,
        evidence=evidence,
    )


# --- R2: the announcement at the start of the call ------------------------------------------


def announcement(period):
    keypress = period.ledger.filter(
        customer__isnull=False, method=ConsentRecord.Method.IVR_KEYPRESS
    ).aggregate(
        total=Count("pk"),
        kept=Count("pk", filter=~Q(announcement_sha256="")),
    )
    missing = keypress["total"] - keypress["kept"]
    without_provider = (
        Notice.objects.published()
        .filter(effective_from__lt=period.end, provider_statement_ja="")
        .count()
    )
    return section(
        "R2",
        _("Announcement at the start of every call"),
        _(
            "Before the call is connected the caller hears the announcement of the notice in "
            "force: that the call is recorded, for which purposes, and that Twilio carries and "
            "stores it. The text heard is kept with its SHA-256 on the caller's answer."
        ),
        figures=[
            figure(_("Keypress answers after the announcement"), keypress["total"]),
            figure(
                _("Of which with the announcement's text and SHA-256 kept"),
                keypress["kept"],
                ok=missing == 0,
                note=_("%(count)s without") % {"count": missing} if missing else "",
            ),
            figure(
                _("Published notices without the statement on Twilio"),
                without_provider,
                ok=without_provider == 0,
            ),
        ],
        evidence=[
            {
                "label": _("Keypress answers of the period"),
                "url": changelist(
                    "consent_consentrecord", method="ivr_keypress", **period.range("recorded_at")
                ),
            }
        ],
    )


# --- R3: consent before recording -------------------------------------------------------------


def _latest_decision(**filters):
    """The newest ledger decision matching ``filters`` made at or before the outer ``at``."""
    return Subquery(
        ConsentRecord.objects.filter(**filters, recorded_at__lte=OuterRef("at"))
        .order_by("-recorded_at", "-pk")
        .values("decision")[:1]
    )


def recordings_without_consent(recordings):
    """``recordings`` (those that held audio) whose call had no granted consent of every party
    when the recording started, each annotated with ``reason`` (``RecordingPermission``'s).

    The rule of ``consent.services.may_record``, asked at the moment the recording started and
    in one statement: the caller's newest answer for the call at that moment is a grant, the
    caller's newest standing answer then is not a refusal or withdrawal, and the operator's
    newest standing answer then is a grant. Three correlated look-ups per recording, each on
    an index of the ledger (call, customer, operator with ``recorded_at``).
    """
    annotated = recordings.exclude(status__in=WITHOUT_AUDIO).annotate(
        at=Coalesce("started_at", "call__answered_at", "call__started_at"),
        for_call=_latest_decision(
            customer_id=OuterRef("call__customer_id"), call_id=OuterRef("call_id")
        ),
        standing=_latest_decision(customer_id=OuterRef("call__customer_id"), call__isnull=True),
        operator_standing=_latest_decision(
            operator_id=OuterRef("call__operator_id"), call__isnull=True
        ),
    )
    return annotated.annotate(
        reason=Case(
            When(call__customer__isnull=True, then=Value("no_customer")),
            When(for_call__isnull=True, then=Value("no_consent")),
            When(for_call=Decision.REFUSED, then=Value("refused")),
            When(for_call=Decision.WITHDRAWN, then=Value("withdrawn")),
            When(standing__in=NOT_GIVEN, then=Value("opted_out")),
            When(
                Q(call__operator__isnull=False)
                & (Q(operator_standing__isnull=True) | ~Q(operator_standing=Decision.GRANTED)),
                then=Value("operator_without_consent"),
            ),
            default=Value("granted"),
            output_field=CharField(),
        )
    ).exclude(reason="granted")


def consent(period):
    calls = period.calls.aggregate(
        total=Count("pk"),
        answered=Count("pk", filter=Q(answered_at__isnull=False)),
        recording_started=Count("pk", filter=~Q(recording_state=Call.RecordingState.NOT_RECORDED)),
    )
    decisions = dict(
        period.ledger.filter(customer__isnull=False).values_list("decision").annotate(n=Count("pk"))
    )
    recordings = period.recordings.aggregate(
        total=Count("pk"),
        with_audio=Count("pk", filter=~Q(status__in=WITHOUT_AUDIO)),
        refused_at_ingest=Count("pk", filter=Q(status=Status.REFUSED)),
        # Twilio recorded a call we never asked to record (its callback or the reconciliation
        # reported it): the call's own state disagrees with Twilio.
        unrequested=Count(
            "pk",
            filter=Q(call__recording_state=Call.RecordingState.NOT_RECORDED)
            & ~Q(status__in=WITHOUT_AUDIO),
        ),
    )
    without = recordings_without_consent(period.recordings)
    without_total = without.count()
    without_refused = without.filter(status=Status.REFUSED).count()
    listed = list(
        without.order_by("call__started_at", "pk").values(
            "pk", "sid", "status", "reason", "call__sid", "call_id", "at"
        )[:EXCEPTIONS_LISTED]
    )
    # Calls whose recording was started (by TwiML or the API) with no grant of the caller for
    # that call anywhere in the ledger: a cross-check from the call's side, recordings or not.
    started_without_grant = (
        period.calls.exclude(recording_state=Call.RecordingState.NOT_RECORDED)
        .exclude(
            Exists(
                ConsentRecord.objects.filter(
                    call_id=OuterRef("pk"),
                    customer_id=OuterRef("customer_id"),
                    decision=Decision.GRANTED,
                )
            )
        )
        .count()
    )
    webhook_failed = CallEvent.objects.filter(
        call__started_at__gte=period.start,
        call__started_at__lt=period.end,
        kind=CallEvent.Kind.WEBHOOK_FAILED,
    ).count()
    runs = ReconciliationRun.objects.filter(
        started_at__gte=period.start, started_at__lt=period.end
    ).aggregate(
        total=Count("pk"),
        failed=Count("pk", filter=Q(status=ReconciliationRun.Status.FAILED)),
        found=Coalesce(Sum("created"), 0),
    )
    granted = decisions.get(Decision.GRANTED, 0)
    refused = decisions.get(Decision.REFUSED, 0)
    answers = granted + refused
    reasons = RecordingPermission.REASONS
    exceptions = [
        {
            "text": _("%(sid)s (call %(call)s, %(at)s, %(status)s): %(reason)s")
            % {
                "sid": row["sid"],
                "call": row["call__sid"],
                "at": local(row["at"]),
                "status": Status(row["status"]).label,
                "reason": reasons[row["reason"]],
            },
            "url": change_page("recordings_recording", row["pk"]),
        }
        for row in listed
    ]
    return section(
        "R3",
        _("Consent of every party before recording"),
        _(
            "Recording starts only after the caller pressed the consent key and while the "
            "operator's standing consent is in effect; a refusal connects the call unrecorded. "
            "The ledger keeps every answer (method, time, notice, evidence). The consent is "
            "checked again when Twilio's recording is ingested: one without consent is not "
            "fetched and is deleted at Twilio. This section checks every recording of the "
            "period against the ledger as it stood when the recording started."
        ),
        figures=[
            figure(_("Calls"), calls["total"]),
            figure(_("Answered"), calls["answered"]),
            figure(_("Consent granted"), granted),
            figure(_("Consent refused"), refused),
            figure(_("Consent withdrawn"), decisions.get(Decision.WITHDRAWN, 0)),
            figure(
                _("Consent rate"),
                f"{round(100 * granted / answers)}%" if answers else _("no answers"),
            ),
            figure(_("Recordings of the period's calls"), recordings["total"]),
            figure(
                _("Recordings made without a granted consent"),
                without_total,
                ok=without_total == 0,
                note=_("%(refused)s of them refused at ingest (not fetched, deleted at Twilio)")
                % {"refused": without_refused}
                if without_total
                else "",
            ),
            figure(
                _("Calls whose recording was started with no grant for the call in the ledger"),
                started_without_grant,
                ok=started_without_grant == 0,
            ),
            figure(
                _("Recordings Twilio reported for calls we did not ask to record"),
                recordings["unrequested"],
                ok=recordings["unrequested"] == 0,
            ),
            figure(
                _("Calls connected unrecorded after a webhook failure"),
                webhook_failed,
            ),
            figure(
                _("Reconciliation runs against Twilio's lists (failed)"),
                f"{runs['total']:,} ({runs['failed']:,})",
                ok=runs["failed"] == 0 if runs["total"] else None,
                note=_("%(found)s recordings found only by the reconciliation")
                % {"found": runs["found"]},
            ),
        ],
        exceptions=exceptions,
        evidence=[
            {
                "label": _("Consent answers of the period"),
                "url": changelist("consent_consentrecord", **period.range("recorded_at")),
            },
            {
                "label": _("Recordings refused at ingest"),
                "url": changelist(
                    "recordings_recording", status="refused", **period.range("call__started_at")
                ),
            },
        ],
        chart=_consent_chart(period),
    )


def _consent_chart(period):
    """Consent granted per day, as a share of the callers' answers (days in Asia/Tokyo)."""
    per_day = defaultdict(lambda: {"granted": 0, "refused": 0})
    rows = (
        period.ledger.filter(
            customer__isnull=False, decision__in=[Decision.GRANTED, Decision.REFUSED]
        )
        .annotate(day=TruncDate("recorded_at"))
        .values_list("day", "decision")
        .annotate(n=Count("pk"))
    )
    for day, decision, count in rows:
        per_day[day][decision] += count
    first = timezone.localtime(period.start).date()
    last = timezone.localtime(period.end - timedelta(microseconds=1)).date()
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    rates = []
    for day in days:
        answers = per_day[day]["granted"] + per_day[day]["refused"]
        rates.append(round(100 * per_day[day]["granted"] / answers) if answers else None)
    if not any(rate is not None for rate in rates):
        return ""
    return format_html(
        '<svg class="chart" viewBox="0 -16 {w} {full}" width="{w}" height="{full}" role="img" '
        'aria-label="{label}"><title>{label}</title>'
        '<text x="0" y="-5" font-size="8" fill="#333">{label}</text>'
        '<line class="axis" x1="0" y1="{h}" x2="{w}" y2="{h}" stroke="#555"></line>'
        '<line x1="0" y1="0" x2="{w}" y2="0" stroke="#ccc" stroke-dasharray="2"></line>'
        '<polyline points="{points}" fill="none" stroke="#1f5fa8" stroke-width="2"></polyline>'
        "</svg>",
        full=charts.HEIGHT + 16,
        w=charts.WIDTH,
        h=charts.HEIGHT,
        label=_("Consent granted per day (%% of callers' answers), %(first)s – %(last)s")
        % {"first": first.isoformat(), "last": last.isoformat()},
        points=charts.line(rates),
    )


# --- R4: live control -----------------------------------------------------------------------


def live_control(period):
    kinds = dict(
        CallEvent.objects.filter(
            call__started_at__gte=period.start, call__started_at__lt=period.end
        )
        .values_list("kind")
        .annotate(n=Count("pk"))
    )
    failed = kinds.get(CallEvent.Kind.RECORDING_CONTROL_FAILED, 0)
    Kind = CallEvent.Kind
    return section(
        "R4",
        _("Pausing and stopping the recording of a live call"),
        _(
            "The operator's call page and the REST API pause, resume and stop the live "
            "recording through Twilio (e.g. while a card number is spoken); each move is kept "
            "as an event of the call, and a move Twilio refused is kept too."
        ),
        figures=[
            figure(Kind.RECORDING_PAUSED.label, kinds.get(Kind.RECORDING_PAUSED, 0)),
            figure(Kind.RECORDING_RESUMED.label, kinds.get(Kind.RECORDING_RESUMED, 0)),
            figure(Kind.RECORDING_STOPPED.label, kinds.get(Kind.RECORDING_STOPPED, 0)),
            figure(Kind.RECORDING_CONTROL_FAILED.label, failed, ok=failed == 0),
        ],
        evidence=[
            {
                "label": _("Calls of the period"),
                "url": changelist("contactcenter_call", **period.range("started_at")),
            }
        ],
    )
