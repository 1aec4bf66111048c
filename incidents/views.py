"""The public notice of an incident (PPC rule 10's substitute for telling each person):
nothing personal on it, Japanese first with English available."""

from django.http import Http404
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from privacy import organisation

from .models import Incident


@require_GET
def notice(request, reference):
    incident = (
        Incident.objects.filter(reference=reference, public_notice_published_at__isnull=False)
        .only(
            "reference",
            "title",
            "became_known_at",
            "data_items",
            "public_notice_text",
            "public_notice_text_en",
            "public_notice_published_at",
        )
        .first()
    )
    if incident is None:
        raise Http404(_("There is no published notice with this reference."))
    english = translation.get_language() == "en" and incident.public_notice_text_en.strip()
    return render(
        request,
        "incidents/notice.html",
        {
            "incident": incident,
            "text": incident.public_notice_text_en if english else incident.public_notice_text,
            "organisation": organisation.current(),
        },
    )
