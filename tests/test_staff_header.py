"""Staff pages share one header: the user's name and role, logout, language, and links to what
the role may use; the operator pages no longer wear the customer site's header."""

import pytest
from django.urls import reverse

from recordings.models import Recording
from training.models import Feedback, TrainingReview

from .factories import CallFactory

OPERATOR_PAGES = ["/operator/training/", "/operator/calls/"]


def awaiting_review(operator, n):
    call = CallFactory(operator=operator)
    recording = Recording.objects.create(
        sid=f"RE{n:032x}", call=call, status=Recording.Status.COMPLETED
    )
    return TrainingReview.objects.create(recording=recording, operator=operator, notes="n")


@pytest.mark.parametrize("url", OPERATOR_PAGES)
def test_operator_pages_show_name_role_logout_and_language(client, operator, url):
    client.force_login(operator.user)
    page = client.get(url).content.decode()
    assert 'class="staff-header"' in page
    assert operator.user.get_username() in page
    assert "オペレーター" in page  # the role
    assert f'action="{reverse("admin:logout")}"' in page
    assert f'action="{reverse("set_language")}"' in page
    # not the customer site's header and footer
    assert reverse("portal:start") not in page


def test_the_acknowledgement_page_has_the_staff_header(client, db, notice):
    from tests.factories import OperatorFactory, UserFactory

    newcomer = OperatorFactory(user=UserFactory(username="newcomer", roles=["オペレーター"]))
    client.force_login(newcomer.user)
    page = client.get(reverse("consent:acknowledge")).content.decode()
    assert 'class="staff-header"' in page and "newcomer" in page


def test_supervisors_see_the_reviews_awaiting_feedback_with_their_count(
    client, supervisor, operator
):
    answered = awaiting_review(operator, 1)
    awaiting_review(operator, 2)
    awaiting_review(operator, 3)
    Feedback.objects.create(review=answered, supervisor=supervisor, comment="good")
    client.force_login(supervisor)
    for url in ["/operator/calls/", "/admin/"]:
        page = client.get(url).content.decode()
        link = reverse("training:awaiting-feedback")
        assert link in page, url
        assert ">2<" in page or "(2)" in page, url
    listed = client.get(reverse("training:awaiting-feedback"))
    assert listed.status_code == 200
    assert [review.pk for review in listed.context["reviews"]] == list(
        TrainingReview.objects.filter(feedback__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    header = client.get("/operator/calls/").content.decode()
    assert reverse("admin:index") in header and reverse("backoffice:dashboard") in header


def test_operators_do_not_see_links_they_cannot_use(client, operator):
    awaiting_review(operator, 1)
    client.force_login(operator.user)
    page = client.get("/operator/training/").content.decode()
    assert reverse("training:awaiting-feedback") not in page
    assert reverse("backoffice:dashboard") not in page
    assert f'href="{reverse("admin:index")}"' not in page
    assert reverse("admin:contactcenter_call_changelist") in page  # their calls
    assert client.get(reverse("training:awaiting-feedback")).status_code == 403


def test_the_admin_header_links_to_the_operator_pages(client, operator):
    client.force_login(operator.user)
    page = client.get("/admin/").content.decode()
    assert reverse("contactcenter:live-calls") in page
    assert reverse("training:list") in page


def test_the_header_costs_a_constant_number_of_queries(
    client, supervisor, operator, django_assert_max_num_queries
):
    client.force_login(supervisor)
    awaiting_review(operator, 1)
    client.get("/operator/calls/")
    with django_assert_max_num_queries(12) as few:
        client.get("/operator/calls/")
    for n in range(2, 22):
        awaiting_review(operator, n)
    with django_assert_max_num_queries(len(few)):
        client.get("/operator/calls/")
