"""The evidence package on the recording's admin page: the 「証拠パッケージをダウンロード」
button (``evidence_package`` template tag) opens its page, whose form (POST) downloads it.

``EvidencePackageMixin`` is a base of ``recordings.admin.RecordingAdmin``, so the pages that
extend the recording's admin (training, backoffice) keep it.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _

from contactcenter.roles import NotAllowed

from . import evidence
from .models import Recording


class EvidencePackageMixin:
    def get_urls(self):
        return [
            path(
                "<int:pk>/evidence/",
                self.admin_site.admin_view(self.evidence_view),
                name="recordings_recording_evidence",
            ),
            *super().get_urls(),
        ]

    def evidence_view(self, request, pk):
        """The page of the package (GET), and its download (POST: audited, streamed)."""
        if not evidence.may_package(request.user):
            raise PermissionDenied
        recording = get_object_or_404(Recording.objects.select_related("call"), pk=pk)
        if request.method != "POST":
            refusal = evidence.check(recording)
            return TemplateResponse(
                request,
                "admin/recordings/recording/evidence.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.opts,
                    "title": _("Evidence package"),
                    "recording": recording,
                    "refusal": None if refusal else refusal.message,
                },
            )
        try:
            body = evidence.package(recording, by=request.user, http_request=request)
        except NotAllowed as refusal:
            self.message_user(request, str(refusal.message), messages.ERROR)
            return redirect("admin:recordings_recording_change", recording.pk)
        response = StreamingHttpResponse(body, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{evidence.filename(recording)}"'
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "no-store"
        return response
