"""The supervisor's dashboard (監督者のホーム), linked first from the admin's index."""

from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import formats, translation
from django.utils.translation import gettext as _

from contactcenter.admin import OTHER_OPERATORS_PERMISSION

from . import charts, report_pdf
from .dashboard import WINDOWS, figures

COMPLIANCE_REPORT_PERMISSION = "backoffice.view_compliance_report"


def _changelist(name, **params):
    return f"{reverse(f'admin:{name}_changelist')}?{urlencode(params)}"


def _links(windows, end):
    """Each figure's filtered admin list: the same rows the figure counted."""
    until = end.isoformat()
    for window in windows.values():
        since = window["start"].isoformat()
        calls = {"started_at__gte": since, "started_at__lt": until}
        consent = {"recorded_at__gte": since, "recorded_at__lt": until, "customer__isnull": "0"}
        recordings = {"call__started_at__gte": since, "call__started_at__lt": until}
        window["links"] = {
            "calls": _changelist("contactcenter_call", **calls),
            "answered": _changelist("contactcenter_call", **calls, answered_at__isnull="0"),
            "missed": _changelist("contactcenter_call", **calls, missed__exact="1"),
            "granted": _changelist("consent_consentrecord", **consent, decision="granted"),
            "refused": _changelist("consent_consentrecord", **consent, decision="refused"),
            "stored": _changelist("recordings_recording", **recordings, status="stored"),
            "waiting": _changelist("recordings_recording", **recordings, status="completed"),
            "fetch_failed": _changelist(
                "recordings_recording", **recordings, status="fetch_failed"
            ),
        }


def _table(windows):
    """Rows of (label, cells): a cell is the figure, its link, and a percentage if any."""
    order = [windows[name] for name, _days in WINDOWS]
    rows = [
        (_("Calls"), "calls", None),
        (_("Answered"), "answered", None),
        (_("Missed"), "missed", None),
        (_("Consent granted"), "granted", "granted_rate"),
        (_("Consent refused"), "refused", "refused_rate"),
        (_("Recordings stored"), "stored", None),
        (_("Recordings waiting to be fetched"), "waiting", None),
        (_("Recordings 取得失敗 (fetch failed)"), "fetch_failed", None),
    ]
    return [
        {
            "label": label,
            "key": key,
            "cells": [
                {
                    "value": window[key],
                    "url": window["links"][key],
                    "rate": window[rate] if rate else None,
                }
                for window in order
            ],
        }
        for label, key, rate in rows
    ]


def dashboard(request):
    if not request.user.has_perm(OTHER_OPERATORS_PERMISSION):
        raise PermissionDenied(_("Only supervisors and compliance officers see the dashboard."))
    data = figures()
    _links(data["windows"], data["end"])
    calls = data["calls_per_day"]
    consent = data["consent_per_day"]
    rates = [
        round(100 * day["granted"] / (day["granted"] + day["refused"]))
        if day["granted"] + day["refused"]
        else None
        for day in consent
    ]
    context = {
        **admin.site.each_context(request),
        "title": _("Dashboard"),
        **data,
        "table": _table(data["windows"]),
        "window_names": [
            ("today", _("Today")),
            ("week", _("Last 7 days")),
            ("month", _("Last 30 days")),
        ],
        "links": {
            "due_this_week": _changelist("recordings_recording", due="week"),
            "on_hold": _changelist("recordings_recording", held="yes"),
            "requests_open": _changelist("portal_customerrequest", due="open"),
            "requests_overdue": _changelist("portal_customerrequest", due="overdue"),
            "audit": reverse("admin:audit_accessevent_changelist"),
            "awaiting_feedback": reverse("training:awaiting-feedback"),
        },
        "calls_chart": charts.bars(
            [day["calls"] for day in calls],
            [
                _("%(day)s: %(count)s calls")
                % {
                    "day": formats.date_format(day["day"], "SHORT_DATE_FORMAT"),
                    "count": day["calls"],
                }
                for day in calls
            ],
        ),
        "consent_chart": charts.line(rates),
        "chart_width": charts.WIDTH,
        "chart_height": charts.HEIGHT,
        "first_day": calls[0]["day"],
        "last_day": calls[-1]["day"],
    }
    return render(request, "backoffice/dashboard.html", context)


def compliance_report(request):
    """The compliance report for a period (default: the last full month), as a page or as a
    PDF download (``format=pdf``); in the user's language or ``language=ja|en``."""
    if not request.user.has_perm(COMPLIANCE_REPORT_PERMISSION):
        # Answered here rather than by the project's 403 page, which says nothing of why.
        refusal = {
            **admin.site.each_context(request),
            "title": _("Compliance report"),
            "base_template": "admin/base_site.html",
            "refused": True,
            "error": _(
                "Only compliance officers (コンプライアンス担当) and supervisors may produce "
                "the compliance report."
            ),
        }
        return render(request, "backoffice/compliance_report.html", refusal, status=403)
    language = request.GET.get("language") or translation.get_language()
    language = "en" if language.startswith("en") else language
    output = request.GET.get("format") or "page"
    default = report_pdf.last_full_month()
    first = request.GET.get("from", default.first_day.isoformat())
    last = request.GET.get("to", default.last_day.isoformat())
    page = {
        **admin.site.each_context(request),
        "title": _("Compliance report"),
        "base_template": "admin/base_site.html",
        "form_from": first,
        "form_to": last,
        "report_language": language,
        "language_choices": [("ja", _("Japanese")), ("en", _("English"))],
    }
    try:
        if language not in report_pdf.LANGUAGES:
            raise report_pdf.BadPeriod(_("The report is made in Japanese (ja) or English (en)."))
        if output not in ("page", "pdf"):
            raise report_pdf.BadPeriod(_("Choose the page or the PDF."))
        period = report_pdf.parse_period(first, last)
    except report_pdf.BadPeriod as error:
        page["report_language"] = translation.get_language()
        page["error"] = error.message
        return render(request, "backoffice/compliance_report.html", page, status=400)
    try:
        report, document = report_pdf.produce(
            period=period, language=language, output=output, request=request
        )
    except report_pdf.PdfUnavailable as error:
        page["report_language"] = translation.get_language()
        page["error"] = error.message
        return render(request, "backoffice/compliance_report.html", page, status=503)
    if output == "pdf":
        response = HttpResponse(document, content_type="application/pdf")
        name = f"compliance-report-{period.first_day}-{period.last_day}.pdf"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    with translation.override(language):
        page["title"] = _("Compliance report")
        return render(request, "backoffice/compliance_report.html", {**page, **report})
