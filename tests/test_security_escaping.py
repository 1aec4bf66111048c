"""Every user- or staff-supplied text our pages show is escaped (issue 14, row 4: a scorecard
criterion's description was rendered unescaped on /operator/training/<pk>/).

Each field that a person can write — notice texts, purpose names and descriptions, scorecard
criteria, review notes and self-evaluations, feedback, customer requests' messages and staff
notes, customer and operator names, a pipeline error, a search — holds the same payload, and
every page that shows it is rendered: the payload must never appear as written.
"""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from contactcenter.models import Call
from portal.models import CustomerRequest
from training.models import Feedback, ScorecardCriterion, TrainingReview

from . import factories
from .test_playback import stored_recording

pytestmark = pytest.mark.django_db

PAYLOAD = "<script>alert(1)</script>\"'><img src=x onerror=alert(1)>"
# What would run if the payload reached the page as markup.
DANGEROUS = ("<script>alert(1)", "<img src=x onerror", "onerror=alert(1)>")
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"

ROOT = Path(__file__).resolve().parent.parent


def assert_escaped(response, *, shown=True):
    assert response.status_code == 200, response.status_code
    text = response.content.decode()
    for piece in DANGEROUS:
        assert piece not in text, f"{piece!r} is on the page unescaped"
    if shown:
        assert ESCAPED in text, "the payload is not on the page at all: the test proves nothing"


@pytest.fixture
def payload_notice(db):
    """A published notice whose every text and purpose text is the payload."""
    purposes = [
        factories.PurposeFactory(
            code="quality",
            name_ja=PAYLOAD[:100],
            name_en=PAYLOAD[:100],
            description_ja=PAYLOAD,
            description_en=PAYLOAD,
            retention_days=30,
        ),
        factories.PurposeFactory(
            code="training",
            name_ja="研修" + PAYLOAD[:90],
            description_ja=PAYLOAD,
            retention_days=90,
            allows_training_review=True,
        ),
    ]
    notice = factories.NoticeFactory(
        purposes=purposes,
        title_ja=PAYLOAD,
        title_en=PAYLOAD,
        body_ja=PAYLOAD,
        body_en=PAYLOAD,
        contact_ja=PAYLOAD,
        provider_statement_ja=PAYLOAD,
    )
    from privacy.services import publish_notice

    return publish_notice(notice=notice, by=None, effective_from=None)


@pytest.fixture
def world(payload_notice, operator, supervisor):
    """A recording of the operator's call with a review, feedback, a criterion, a customer
    and a request, every free text of them the payload."""
    operator.display_name = PAYLOAD[:100]
    operator.save()
    recording = stored_recording(operator)
    Call.objects.filter(pk=recording.call.pk).update(status=Call.Status.IN_PROGRESS)
    customer = recording.call.customer
    customer.name = PAYLOAD[:100]
    customer.save()
    criterion = ScorecardCriterion.objects.create(
        name=PAYLOAD[:100], description=PAYLOAD, max_score=5
    )
    review = TrainingReview.objects.create(
        recording=recording, operator=operator, notes=PAYLOAD, self_evaluation=PAYLOAD
    )
    Feedback.objects.create(review=review, supervisor=supervisor, comment=PAYLOAD)
    made = CustomerRequest.objects.create(
        phone_number=customer.phone_number,
        kind="hear",
        due_at=timezone.now() + timedelta(days=7),
        message=PAYLOAD,
        representative=PAYLOAD[:100],
        staff_notes=PAYLOAD,
        decision_reason=PAYLOAD,
    )
    type(recording).objects.filter(pk=recording.pk).update(last_error=PAYLOAD)
    return {
        "recording": recording,
        "criterion": criterion,
        "review": review,
        "request": made,
        "customer": customer,
        "notice": payload_notice,
    }


def test_the_scorecard_criterion_on_the_training_page_is_escaped(client, world, supervisor):
    """The finding itself: a supervisor's page of an operator's review with the feedback form,
    whose help text is the criterion's description."""
    client.force_login(supervisor)

    response = client.get(reverse("training:review", args=[world["recording"].pk]))

    assert_escaped(response)
    text = response.content.decode()
    assert text.count(ESCAPED) >= 5  # criterion, notes, self-evaluation, feedback, operator


def test_the_operators_own_training_page_is_escaped(client, world, operator):
    client.force_login(operator.user)

    assert_escaped(client.get(reverse("training:review", args=[world["recording"].pk])))


def test_the_training_list_and_its_search_are_escaped(client, world, operator):
    client.force_login(operator.user)

    assert_escaped(client.get(reverse("training:list")))
    assert_escaped(client.get(reverse("training:list"), {"q": PAYLOAD}))


def test_the_live_calls_page_is_escaped(client, world, supervisor):
    client.force_login(supervisor)

    assert_escaped(client.get(reverse("contactcenter:live-calls")))


@pytest.mark.parametrize("page", ["current", "list", "detail"])
def test_the_public_notice_pages_are_escaped(client, world, page):
    version = world["notice"].version
    url = {
        "current": reverse("privacy:notice-current"),
        "list": reverse("privacy:notice-list"),
        "detail": reverse("privacy:notice-detail", args=[version]),
    }[page]

    # The list names versions only; it is rendered for the titles it might show one day.
    assert_escaped(client.get(url), shown=page != "list")
    client.cookies["django_language"] = "en"
    assert_escaped(client.get(url), shown=page != "list")


def _admin_pages(world):
    notice, made, recording = world["notice"], world["request"], world["recording"]
    return [
        reverse("admin:privacy_notice_changelist"),
        reverse("admin:privacy_notice_change", args=[notice.pk]),
        reverse("admin:privacy_notice_preview", args=[notice.pk]),
        reverse("admin:privacy_purpose_changelist"),
        reverse("admin:portal_customerrequest_changelist"),
        reverse("admin:portal_customerrequest_change", args=[made.pk]),
        reverse("admin:contactcenter_customer_changelist"),
        reverse("admin:contactcenter_customer_change", args=[world["customer"].pk]),
        reverse("admin:contactcenter_operator_changelist"),
        reverse("admin:contactcenter_call_change", args=[recording.call.pk]),
        reverse("admin:recordings_recording_changelist"),
        reverse("admin:recordings_recording_change", args=[recording.pk]),
        reverse("admin:training_scorecardcriterion_changelist"),
        reverse("admin:training_trainingreview_changelist"),
        reverse("admin:training_trainingreview_change", args=[world["review"].pk]),
    ]


def test_every_admin_page_that_shows_the_texts_is_escaped(client, world):
    client.force_login(factories.UserFactory(username="root", is_superuser=True, is_staff=True))

    for url in _admin_pages(world):
        response = client.get(url)
        assert response.status_code == 200, url
        text = response.content.decode()
        for piece in DANGEROUS:
            assert piece not in text, f"{piece!r} unescaped on {url}"


# --- the templates themselves ----------------------------------------------------------------

TEMPLATE_DIRS = [ROOT / "templates", *ROOT.glob("*/templates")]
UNESCAPING = re.compile(r"\|\s*safe\b|\{%\s*autoescape\s+off|\|\s*safeseq\b")


def test_no_template_of_ours_turns_escaping_off():
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for directory in TEMPLATE_DIRS
        if ".venv" not in directory.parts
        for path in directory.rglob("*.html")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if UNESCAPING.search(line)
    ]
    assert found == []


def test_format_html_and_mark_safe_are_not_given_user_text():
    """``format_html`` escapes its arguments; what it must never get is user text in the
    format string itself (an f-string or %), and ``mark_safe`` is used only where a reviewer
    marked it (``# noqa: S308`` with the reason, e.g. the QR code's SVG drawn by qrcode)."""
    misuse = re.compile(r"format_html\(\s*f[\"']|format_html\([^)]*%|mark_safe\(|SafeString\(")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in ROOT.glob("*/*.py")
        if path.parts[-2] not in {".venv", "tests"}
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if misuse.search(line) and "noqa: S308" not in line
    ]
    assert found == []
