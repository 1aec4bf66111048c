"""Public pages: the notice in force, every published version, and how to make a request.

No login. Drafts are never shown here: every lookup goes through ``Notice.objects.published()``.
"""

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from . import crossborder, measures
from . import organisation as organisation_settings
from .models import Notice


def public_matters_context(notice):
    """The items APPI art. 32 asks be public, read live: the business, its complaint contact,
    each kind of request with its fee, the safety measures and the foreign recipients."""
    summary = crossborder.public_summary()
    organisation = organisation_settings.current()
    return {
        "organisation": organisation,
        "fees": organisation_settings.fees(organisation),
        "any_fee": any(row["amount"] for row in organisation_settings.fees(organisation)),
        "cross_border": summary,
        "measures": measures.sections(notice, summary=summary),
    }


def notice_context(notice):
    """What the public templates need to show one published notice."""
    following = (
        Notice.objects.published().filter(version__gt=notice.version).order_by("version").first()
    )
    now = timezone.now()
    return {
        "notice": notice,
        "purposes": notice.notice_purposes.select_related("purpose"),
        "in_force_until": following.effective_from if following else None,
        "is_current": notice.effective_from <= now
        and (following is None or following.effective_from > now),
        "is_scheduled": notice.effective_from > now,
        **public_matters_context(notice),
    }


@require_GET
def current_notice(request):
    notice = Notice.objects.in_force()
    context = notice_context(notice) if notice else {"notice": None}
    return render(request, "privacy/notice_detail.html", {**context, "current_page": True})


@require_GET
def notice_list(request):
    notices = list(Notice.objects.published().order_by("-version"))
    current = Notice.objects.in_force()
    now = timezone.now()
    rows = []
    following = None
    for notice in notices:  # newest first, so the previous row is the one that follows
        rows.append(
            {
                "notice": notice,
                "until": following.effective_from if following else None,
                "is_current": current is not None and notice.pk == current.pk,
                "is_scheduled": notice.effective_from > now,
            }
        )
        following = notice
    return render(request, "privacy/notice_list.html", {"rows": rows})


@require_GET
def notice_detail(request, version):
    notice = get_object_or_404(Notice.objects.published(), version=version)
    return render(request, "privacy/notice_detail.html", notice_context(notice))


@require_GET
def notice_json(request, version):
    """The notice as data, for auditors and integrations; both languages at once."""
    notice = get_object_or_404(Notice.objects.published(), version=version)
    context = notice_context(notice)
    until = context["in_force_until"]
    return JsonResponse(
        {
            "version": notice.version,
            "url": settings.PUBLIC_BASE_URL
            + reverse("privacy:notice-detail", args=[notice.version]),
            "effective_from": notice.effective_from.isoformat(),
            "in_force_until": until.isoformat() if until else None,
            "published_at": notice.published_at.isoformat(),
            "title": {"ja": notice.title_ja, "en": notice.title_en},
            "body": {"ja": notice.body_ja, "en": notice.body_en},
            "provider": {"ja": notice.provider_statement_ja, "en": notice.provider_statement_en},
            "contact": {"ja": notice.contact_ja, "en": notice.contact_en},
            "announcement": {"ja": notice.announcement_ja, "en": notice.announcement_en},
            "purposes": [
                {
                    "code": announced.purpose.code,
                    "name": {"ja": announced.purpose.name_ja, "en": announced.purpose.name_en},
                    "description": {
                        "ja": announced.purpose.description_ja,
                        "en": announced.purpose.description_en,
                    },
                    "usable_days": announced.days,
                    "training_review": announced.training,
                }
                for announced in context["purposes"]
            ],
            **public_matters_json(notice, context),
        },
        json_dumps_params={"ensure_ascii": False, "indent": 2},
    )


def _date(value):
    return value.isoformat() if value else None


def public_matters_json(notice, context):
    """The art. 32 items as data: the same as the page shows, both languages where they exist."""
    organisation = context["organisation"]
    return {
        "organisation": {
            "legal_name": {"ja": organisation.legal_name_ja, "en": organisation.legal_name_en},
            "address": {"ja": organisation.address_ja, "en": organisation.address_en},
            "representative": {
                "title": organisation.representative_title_ja,
                "name": organisation.representative_name_ja,
            },
        },
        "complaints": {
            "department": organisation.complaint_department_ja,
            "phone": organisation.complaint_phone,
            "email": organisation.complaint_email,
            "hours": organisation.complaint_hours_ja,
            "accredited_body": (
                {
                    "name": organisation.accredited_body_name_ja,
                    "contact": organisation.accredited_body_contact_ja,
                }
                if organisation.accredited_body_name_ja
                else None
            ),
        },
        "requests": {
            "portal": settings.PUBLIC_BASE_URL + reverse("portal:start"),
            "identity_check": "phone_number_possession",
            "kinds": [
                {
                    "code": row["kind"].code,
                    "article": row["kind"].article,
                    "fee_yen": row["amount"],
                    "chargeable": row["chargeable"],
                }
                for row in context["fees"]
            ],
            "fee_payment": organisation.fee_payment_ja,
        },
        "safety_measures": {
            "ja": measures.sections_in("ja", notice, summary=context["cross_border"]),
            "en": measures.sections_in("en", notice, summary=context["cross_border"]),
            "configuration": measures.facts(notice),
        },
        "cross_border": [
            {
                **row,
                "last_checked": _date(row["last_checked"]),
                "next_check": _date(row["next_check"]),
            }
            for row in context["cross_border"]
        ],
    }
