"""The compliance report's sections R5–R11: protection, use, deletion, callers' hearing and
requests, evidence and training, public matters and provision records."""

from datetime import timedelta

from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    F,
    OuterRef,
    Q,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from portal.models import CustomerRequest
from privacy.models import CrossBorderCheck, CrossBorderRecipient
from recordings.access import DISCLOSURE
from recordings.evidence import PURPOSE as EVIDENCE_PURPOSE
from recordings.models import (
    LegalHold,
    ProvisionRecord,
    Recording,
    Tombstone,
)

from .compliance_base import (
    EXCEPTIONS_LISTED,
    PURGE_GRACE,
    TWILIO_LAG_BUCKETS,
    WITHOUT_AUDIO,
    Action,
    Decision,
    Status,
    absolute,
    bar_chart,
    change_page,
    changelist,
    figure,
    local,
    section,
)

# --- R5: protection -------------------------------------------------------------------------


def protection(period):
    stored = period.recordings.aggregate(
        stored=Count("pk", filter=Q(status=Status.STORED)),
        verified=Count("pk", filter=Q(status=Status.STORED) & ~Q(plaintext_sha256="")),
    )
    keys = list(
        period.recordings.filter(status=Status.STORED)
        .values_list("key_id")
        .annotate(n=Count("pk"))
        .order_by("key_id")
    )
    rotations = list(
        period.events.filter(action=Action.KEY_ROTATION)
        .order_by("seq")
        .values("occurred_at", "detail")[:EXCEPTIONS_LISTED]
    )
    figures = [
        figure(_("Recordings of the period stored encrypted"), stored["stored"]),
        figure(
            _("Of which with the audio's SHA-256 verified"),
            stored["verified"],
            ok=stored["verified"] == stored["stored"],
        ),
        figure(_("Master key rotations"), len(rotations)),
    ]
    for key_id, count in keys:
        figures.append(figure(_("Stored under master key %(key)s") % {"key": key_id or "—"}, count))
    evidence = [
        {
            "label": _("Key rotation on %(at)s: %(count)s keys re-wrapped under %(key)s")
            % {
                "at": local(row["occurred_at"]),
                "count": row["detail"].get("rewrapped", "?"),
                "key": row["detail"].get("key_id", "?"),
            },
            "url": changelist("audit_accessevent", action="key_rotation"),
        }
        for row in rotations
    ]
    return section(
        "R5",
        _("Protection of recordings"),
        _(
            "Audio is fetched from Twilio over authenticated HTTPS, encrypted while it streams "
            "in (a key per recording, AES-GCM segments), verified, and only then deleted at "
            "Twilio. Per-recording keys are wrapped by a master key that can be rotated without "
            "touching the audio. Audio is served only to signed-in staff with a purpose, and "
            "every access is written to the audit trail."
        ),
        figures=figures,
        evidence=evidence,
    )


# --- R6: use for the announced purposes ---------------------------------------------------


def _role_names():
    from contactcenter import roles

    return {
        roles.SUPERVISOR: _("Supervisor"),
        roles.OPERATOR: _("Operator"),
        roles.COMPLIANCE: _("Compliance officer"),
    }


def use(period):
    # A user in two role groups counts once per group: the figure says who could have heard.
    # An event without a user is a caller hearing their own recording (or a process).
    by_purpose_role = list(
        period.events.filter(action__in=[Action.PLAYBACK, Action.DOWNLOAD])
        .annotate(staff=Q(actor__isnull=False))
        .values_list("action", "purpose", "actor__groups__name", "staff")
        .annotate(n=Count("pk"))
        .order_by("action", "purpose", "actor__groups__name")
    )
    refusals = list(
        period.events.filter(action=Action.REFUSED)
        .values_list("detail__reason")
        .annotate(n=Count("pk"))
        .order_by("-n")
    )
    roles = _role_names()
    figures = []
    without_purpose = 0
    for action, purpose, group, staff, count in by_purpose_role:
        if not purpose:
            without_purpose += count
        if group:
            who = roles.get(group, group)
        elif staff:
            who = _("staff without a role")
        else:
            who = _("the caller (disclosure)") if purpose == DISCLOSURE else _("a process")
        figures.append(
            figure(
                _("%(action)s for “%(purpose)s” by %(role)s")
                % {"action": Action(action).label, "purpose": purpose or "—", "role": who},
                count,
            )
        )
    figures.append(
        figure(_("Accesses without a stated purpose"), without_purpose, ok=without_purpose == 0)
    )
    total_refused = sum(count for _reason, count in refusals)
    figures.append(figure(_("Accesses refused"), total_refused))
    for reason, count in refusals:
        figures.append(figure(_("Refused: %(reason)s") % {"reason": reason or "—"}, count))
    return section(
        "R6",
        _("Use only for the announced purposes"),
        _(
            "Every playback and download states one of the purposes announced to the caller, "
            "and is allowed only while that purpose's window is open and the role allows it; "
            "everything else is refused and the refusal is written to the audit trail."
        ),
        figures=figures,
        evidence=[
            {
                "label": _("Playbacks of the period"),
                "url": changelist(
                    "audit_accessevent", action="playback", **period.range("occurred_at")
                ),
            },
            {
                "label": _("Refused accesses of the period"),
                "url": changelist(
                    "audit_accessevent", action="refused", **period.range("occurred_at")
                ),
            },
        ],
    )


# --- R7: deletion -----------------------------------------------------------------------------


def retention(period):
    # Purges are read from their audit events (indexed by action and time); the recording's
    # retention end and holds are looked up per purged recording by primary key.
    purges = period.events.filter(action=Action.PURGE).annotate(
        retain_until=Subquery(
            Recording.objects.filter(pk=OuterRef("recording_id")).values("retain_until")[:1],
            output_field=DateTimeField(),
        ),
        held=Exists(
            LegalHold.objects.filter(
                recording_id=OuterRef("recording_id"), placed_at__lt=OuterRef("occurred_at")
            ).filter(Q(released_at__isnull=True) | Q(released_at__gt=OuterRef("retain_until")))
        ),
    )
    on_retention = purges.filter(detail__reason="retention")
    late = Q(occurred_at__gt=F("retain_until") + PURGE_GRACE)
    counts = on_retention.aggregate(
        total=Count("pk"),
        on_time=Count("pk", filter=~late),
        late_held=Count("pk", filter=late & Q(held=True)),
        late_unexplained=Count("pk", filter=late & Q(held=False)),
    )
    by_reason = dict(purges.values_list("detail__reason").annotate(n=Count("pk")))
    late_rows = list(
        on_retention.filter(late, held=False)
        .order_by("seq")
        .values("recording_id", "recording_sid", "occurred_at", "retain_until")[:EXCEPTIONS_LISTED]
    )
    overdue = Recording.objects.due_for_purge(period.end - PURGE_GRACE).count()
    call_end = Coalesce("call__ended_at", "call__started_at")
    lag = {
        f"within_{index}": Count("pk", filter=Q(twilio_deleted_at__lte=F("call_end") + bound))
        for index, bound in enumerate(TWILIO_LAG_BUCKETS)
    }
    twilio = (
        period.recordings.exclude(status__in=WITHOUT_AUDIO)
        .annotate(call_end=call_end)
        .aggregate(
            total=Count("pk"),
            deleted=Count("pk", filter=Q(twilio_deleted_at__isnull=False)),
            **lag,
        )
    )
    still_at_twilio = twilio["total"] - twilio["deleted"]
    buckets = [twilio["within_0"], twilio["within_1"] - twilio["within_0"]]
    buckets += [twilio["within_2"] - twilio["within_1"], twilio["deleted"] - twilio["within_2"]]
    bucket_labels = [_("within an hour"), _("1 to 24 hours"), _("1 to 7 days"), _("later")]
    holds = LegalHold.objects.aggregate(
        placed=Count("pk", filter=Q(placed_at__gte=period.start, placed_at__lt=period.end)),
        released=Count("pk", filter=Q(released_at__gte=period.start, released_at__lt=period.end)),
        active=Count(
            "pk",
            filter=Q(placed_at__lt=period.end)
            & (Q(released_at__isnull=True) | Q(released_at__gte=period.end)),
        ),
    )
    reason_labels = dict(Tombstone.Reason.choices)
    figures = [
        figure(_("Recordings purged"), sum(by_reason.values())),
        *(
            figure(
                _("Purged: %(reason)s") % {"reason": reason_labels.get(reason, reason or "—")},
                count,
            )
            for reason, count in sorted(by_reason.items(), key=lambda item: item[0] or "")
        ),
        figure(
            _("Purged at the end of retention on time (within a day)"),
            counts["on_time"],
        ),
        figure(_("Purged late because of a legal hold"), counts["late_held"]),
        figure(
            _("Purged late without a hold"),
            counts["late_unexplained"],
            ok=counts["late_unexplained"] == 0,
        ),
        figure(
            _("Past their retention and not purged at the end of the period (no hold)"),
            overdue,
            ok=overdue == 0,
        ),
        figure(_("Legal holds placed"), holds["placed"]),
        figure(_("Legal holds released"), holds["released"]),
        figure(_("Legal holds in force at the end of the period"), holds["active"]),
        figure(_("Recordings of the period's calls with audio at Twilio"), twilio["total"]),
        figure(_("Twilio's copy deleted"), twilio["deleted"]),
        *(
            figure(_("Deleted at Twilio %(when)s after the call") % {"when": label}, count)
            for label, count in zip(bucket_labels, buckets, strict=True)
        ),
        figure(
            _("Twilio's copy not deleted yet"),
            still_at_twilio,
            ok=still_at_twilio == 0,
            note=_("waiting to be fetched, or being recorded") if still_at_twilio else "",
        ),
    ]
    exceptions = [
        {
            "text": _("%(sid)s: retention ended %(until)s, purged %(at)s")
            % {
                "sid": row["recording_sid"],
                "until": local(row["retain_until"]),
                "at": local(row["occurred_at"]),
            },
            "url": change_page("recordings_recording", row["recording_id"]),
        }
        for row in late_rows
    ]
    charts = []
    if counts["total"]:
        purge_bars = [counts["on_time"], counts["late_held"], counts["late_unexplained"]]
        purge_labels = [_("on time"), _("late: legal hold"), _("late: no hold")]
        charts.append(
            bar_chart(
                purge_bars,
                [f"{label}: {n}" for label, n in zip(purge_labels, purge_bars, strict=True)],
                _("Purges at the end of retention: on time, late because of a hold, late"),
            )
        )
    if twilio["deleted"]:
        charts.append(
            bar_chart(
                buckets,
                [f"{label}: {n}" for label, n in zip(bucket_labels, buckets, strict=True)],
                _("Time from the end of the call to the deletion of Twilio's copy"),
            )
        )
    chart = mark_safe("".join(charts))  # noqa: S308 (each made by format_html)
    return section(
        "R7",
        _("Deletion of recordings no longer needed"),
        _(
            "Each recording is kept until the last of its purpose windows closes, then purged "
            "every hour: its key is destroyed (the audio cannot be recovered, backups included) "
            "and a tombstone says what was deleted, when and why. A legal hold keeps it past "
            "its retention. Twilio's copy is deleted as soon as ours is stored and verified."
        ),
        figures=figures,
        exceptions=exceptions,
        evidence=[
            {
                "label": _("Purges of the period"),
                "url": changelist(
                    "audit_accessevent", action="purge", **period.range("occurred_at")
                ),
            },
            {
                "label": _("Recordings on legal hold"),
                "url": changelist("recordings_recording", held="yes"),
            },
        ],
        chart=chart,
    )


# --- R8, R9: callers' requests ------------------------------------------------------------------


def _requests(period, **filters):
    # Customers' requests are a small table (a few a day); read by their reception date.
    return CustomerRequest.objects.filter(
        created_at__gte=period.start, created_at__lt=period.end, **filters
    )


def _request_figures(queryset, now):
    open_statuses = CustomerRequest.OPEN_STATUSES
    return queryset.aggregate(
        total=Count("pk"),
        on_time=Count("pk", filter=Q(closed_at__isnull=False, closed_at__lte=F("due_at"))),
        late=Count("pk", filter=Q(closed_at__isnull=False, closed_at__gt=F("due_at"))),
        overdue=Count("pk", filter=Q(status__in=open_statuses, due_at__lt=now)),
        pending=Count("pk", filter=Q(status__in=open_statuses, due_at__gte=now)),
        refused=Count("pk", filter=Q(status=CustomerRequest.Status.REFUSED)),
    )


def hearing(period):
    counts = _request_figures(_requests(period, kind=CustomerRequest.Kind.HEAR), timezone.now())
    plays = period.events.filter(action=Action.PLAYBACK, purpose=DISCLOSURE).count()
    return section(
        "R8",
        _("Letting callers hear their recording"),
        _(
            "A caller who proved their number asks on the portal to hear a recording; once "
            "granted they listen through a signed link or by phone, and each hearing is "
            "written to the audit trail with the purpose “disclosure”."
        ),
        figures=[
            figure(_("Requests to hear received"), counts["total"]),
            figure(_("Answered within the deadline"), counts["on_time"]),
            figure(_("Answered after the deadline"), counts["late"], ok=counts["late"] == 0),
            figure(_("Open and overdue"), counts["overdue"], ok=counts["overdue"] == 0),
            figure(_("Refused"), counts["refused"]),
            figure(_("Hearings by callers"), plays),
        ],
        evidence=[
            {
                "label": _("Requests to hear"),
                "url": changelist("portal_customerrequest", kind="hear"),
            }
        ],
    )


def rights(period):
    now = timezone.now()
    requests = _requests(period)
    counts = _request_figures(requests, now)
    by_kind = dict(requests.values_list("kind").annotate(n=Count("pk")))
    on_behalf = requests.filter(on_behalf=True).count()
    withdrawals = period.ledger.filter(
        customer__isnull=False, call__isnull=True, decision=Decision.WITHDRAWN
    ).count()
    late_or_overdue = requests.filter(
        Q(status__in=CustomerRequest.OPEN_STATUSES, due_at__lt=now)
        | Q(closed_at__isnull=False, closed_at__gt=F("due_at"))
    )
    listed = list(
        late_or_overdue.order_by("due_at").values("pk", "reference", "kind", "due_at", "status")[
            :EXCEPTIONS_LISTED
        ]
    )
    kinds = dict(CustomerRequest.Kind.choices)
    statuses = dict(CustomerRequest.Status.choices)
    return section(
        "R9",
        _("Withdrawal of consent and the person's requests"),
        _(
            "Callers prove their number (a code by SMS or voice call), then ask on the portal "
            "for access, a copy, correction, deletion, restriction of use or the withdrawal of "
            "their consent, themselves or through an agent. Each request has a deadline; staff "
            "decide it in the admin and the decision is sent as a written notice."
        ),
        figures=[
            figure(_("Requests received"), counts["total"]),
            *(figure(str(kinds.get(kind, kind)), count) for kind, count in sorted(by_kind.items())),
            figure(_("Made through an agent"), on_behalf),
            figure(_("Answered within the deadline"), counts["on_time"]),
            figure(_("Answered after the deadline"), counts["late"], ok=counts["late"] == 0),
            figure(_("Open and overdue"), counts["overdue"], ok=counts["overdue"] == 0),
            figure(_("Open, not yet due"), counts["pending"]),
            figure(_("Withdrawals of consent (every call)"), withdrawals),
        ],
        exceptions=[
            {
                "text": _("%(reference)s %(kind)s: due %(due)s (%(status)s)")
                % {
                    "reference": row["reference"],
                    "kind": kinds.get(row["kind"], row["kind"]),
                    "due": local(row["due_at"]),
                    "status": statuses.get(row["status"], row["status"]),
                },
                "url": change_page("portal_customerrequest", row["pk"]),
            }
            for row in listed
        ],
        evidence=[
            {
                "label": _("Overdue requests"),
                "url": changelist("portal_customerrequest", due="overdue"),
            }
        ],
    )


# --- R10: evidence, reference, training -----------------------------------------------------


def uses_made_easy(period):
    counts = period.events.aggregate(
        marked=Count("pk", filter=Q(action=Action.TRAINING_MARKED)),
        reviews=Count("pk", filter=Q(action=Action.TRAINING_REVIEW)),
        evidence=Count("pk", filter=Q(action=Action.DOWNLOAD, purpose=EVIDENCE_PURPOSE)),
    )
    return section(
        "R10",
        _("Evidence, reference and training"),
        _(
            "Supervisors mark recordings as training material and operators review them while "
            "the training window is open; a recording can be exported as a signed evidence "
            "package for a dispute; each use is written to the audit trail."
        ),
        figures=[
            figure(_("Training material markings"), counts["marked"]),
            figure(_("Training reviews and feedback written"), counts["reviews"]),
            figure(_("Evidence packages downloaded"), counts["evidence"]),
        ],
        evidence=[
            {
                "label": _("Training reviews of the period"),
                "url": changelist(
                    "audit_accessevent", action="training_review", **period.range("occurred_at")
                ),
            }
        ],
    )


# --- R11: art. 32 public matters, cross-border, provision records ----------------------------


def public_matters(period):
    provisions = ProvisionRecord.objects.filter(
        provided_at__gte=period.start, provided_at__lt=period.end
    )
    by_basis = dict(provisions.values_list("basis").annotate(n=Count("pk")))
    by_kind = dict(provisions.values_list("recipient_kind").annotate(n=Count("pk")))
    start_day = timezone.localtime(period.start).date()
    end_day = timezone.localtime(period.end - timedelta(microseconds=1)).date()
    checks = dict(
        CrossBorderCheck.objects.filter(checked_on__gte=start_day, checked_on__lte=end_day)
        .values_list("result")
        .annotate(n=Count("pk"))
    )
    overdue_checks = CrossBorderRecipient.objects.filter(
        Q(next_check_on__isnull=True) | Q(next_check_on__lt=end_day)
    ).count()
    bases = dict(ProvisionRecord.Basis.choices)
    kinds = dict(ProvisionRecord.RecipientKind.choices)
    results = dict(CrossBorderCheck.Result.choices)
    return section(
        "R11",
        _("Public matters, cross-border transfer and provision records"),
        _(
            "The art. 32 matters (who we are, purposes, how to make each request and its fee, "
            "the security measures, where to complain) are published from the organisation "
            "settings; Twilio (US) is in the cross-border register with periodic checks of its "
            "measures; every provision to a third party is refused without a basis and "
            "otherwise recorded (arts. 29/30)."
        ),
        figures=[
            figure(_("Provisions to third parties recorded"), sum(by_basis.values())),
            *(
                figure(_("Basis: %(basis)s") % {"basis": bases.get(basis, basis)}, count)
                for basis, count in sorted(by_basis.items())
            ),
            *(
                figure(_("Recipient: %(kind)s") % {"kind": kinds.get(kind, kind)}, count)
                for kind, count in sorted(by_kind.items())
            ),
            figure(_("Cross-border checks made"), sum(checks.values())),
            *(
                figure(
                    _("Check result: %(result)s") % {"result": results.get(result, result)},
                    count,
                    ok=False if result == CrossBorderCheck.Result.NOT_MET else None,
                )
                for result, count in sorted(checks.items())
            ),
            figure(
                _("Foreign recipients whose check was due by the end of the period"),
                overdue_checks,
                ok=overdue_checks == 0,
            ),
        ],
        evidence=[
            {
                "label": _("Third-party provision records"),
                "url": changelist("recordings_provisionrecord"),
            },
            {
                "label": _("Cross-border register"),
                "url": changelist("privacy_crossborderrecipient"),
            },
            {
                "label": _("Published matters about held personal data"),
                "url": absolute(reverse("privacy:notice-current")),
            },
        ],
    )
