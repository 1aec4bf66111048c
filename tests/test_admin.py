"""The admin shows each role what it may see, in Japanese first, and nothing more."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.urls import reverse

from contactcenter.models import Call, Customer, Operator
from training.models import ScorecardCriterion

from .factories import (
    CallFactory,
    CustomerFactory,
    NoticeFactory,
    PurposeFactory,
    UserFactory,
    published_notice,
)


def sample_organisation():
    from .factories import complete_organisation

    return complete_organisation()


def sample_cross_border_recipient():
    from privacy.models import CrossBorderRecipient

    sample_organisation()
    return CrossBorderRecipient.objects.get()


def sample_cross_border_check():
    from django.utils import timezone

    from privacy.crossborder import record_check

    supervisor = UserFactory(username="checker", roles=["監督者"])
    return record_check(
        recipient=sample_cross_border_recipient(),
        by=supervisor,
        checked_on=timezone.localdate(),
        scope="DPA",
        result="confirmed",
    )


def sample_consent_record():
    from consent.models import ConsentRecord
    from consent.services import record_consent

    call = CallFactory()
    return record_consent(
        customer=call.customer,
        call=call,
        party_role=ConsentRecord.PartyRole.CALLER,
        decision=ConsentRecord.Decision.GRANTED,
        method=ConsentRecord.Method.IVR_KEYPRESS,
        digits="1",
    )


def sample_recording(**fields):
    from recordings.models import Recording

    return Recording.objects.create(sid=f"RE{CallFactory().pk:032x}", call=CallFactory(), **fields)


def sample_tombstone():
    from recordings.models import Recording, Tombstone

    return Tombstone.objects.create(
        recording=sample_recording(status=Recording.Status.REFUSED),
        reason=Tombstone.Reason.NO_CONSENT,
        deleted_by_system="consent gate at ingest",
    )


def sample_provision_record():
    from django.utils import timezone

    from recordings.models import ProvisionRecord

    recording = sample_recording()
    return ProvisionRecord.objects.create(
        recipient_name="山田法律事務所",
        recipient_kind=ProvisionRecord.RecipientKind.LAWYER,
        recipient_address="東京都千代田区霞が関1-1-1",
        customer=recording.call.customer,
        phone_number=recording.call.customer.phone_number,
        call=recording.call,
        recording=recording,
        items=[ProvisionRecord.Item.AUDIO],
        basis=ProvisionRecord.Basis.ENTRUSTMENT,
        provided_by=UserFactory(username="sample-provider"),
        retain_until=timezone.now() + timezone.timedelta(days=3 * 365),
    )


def sample_outbox_message():
    from recordings.models import OutboxMessage

    return OutboxMessage.objects.create(task="recordings.tasks.fetch_recording", kwargs={})


def sample_reconciliation_run():
    from django.utils import timezone

    from recordings.models import ReconciliationRun

    return ReconciliationRun.objects.create(since=timezone.now(), errors=1, error_text="RE…: 503")


def sample_access_event():
    from audit.models import AccessEvent
    from audit.services import record

    return record(
        AccessEvent.Action.PLAYBACK,
        actor=UserFactory(username="listener"),
        recording=sample_recording(),
        purpose="quality",
        detail={"channel": "both"},
    )


def sample_training_review():
    from training.models import Feedback, Score, TrainingReview

    recording = sample_recording()
    review = TrainingReview.objects.create(
        recording=recording, operator=recording.call.operator, notes="メモ", self_rating=3
    )
    feedback = Feedback.objects.create(
        review=review, supervisor=UserFactory(username="coach"), comment="良い"
    )
    Score.objects.create(feedback=feedback, criterion=ScorecardCriterion.objects.first(), score=4)
    return review


def sample_customer_request():
    from datetime import timedelta

    from django.utils import timezone

    from portal.models import CustomerRequest

    call = CallFactory()
    made = CustomerRequest.objects.create(
        phone_number=call.customer.phone_number,
        customer=call.customer,
        kind=CustomerRequest.Kind.HEAR,
        due_at=timezone.now() - timedelta(days=1),
    )
    made.calls.set([call])
    return made


pytestmark = pytest.mark.django_db


# One sample row per registered model, so that every changelist and change form is opened.
def sample_login_record(model_name, **fields):
    from django.apps import apps

    model = apps.get_model("axes", model_name)
    fields = {
        "username": "someone",
        "ip_address": "192.0.2.1",
        "path_info": "/admin/login/",
        **fields,
    }
    return model.objects.create(user_agent="test", http_accept="*/*", **fields)


def sample_device(app_label, model_name):
    from django.apps import apps

    user = UserFactory(username=f"{model_name.lower()}-holder")
    return apps.get_model(app_label, model_name).objects.create(user=user, name="sample")


def sample_incident():
    from django.utils import timezone

    from incidents.models import Incident

    return Incident.objects.create(
        reference="INC-2026-0001",
        title="sample",
        description="x",
        became_known_at=timezone.now(),
        category_financial=True,
    )


def sample_incident_notification():
    from incidents.models import IncidentNotification

    return IncidentNotification.objects.create(
        incident=sample_incident(),
        customer=CustomerFactory(),
        phone_number="+819000000001",
        channel="sms",
    )


SAMPLES = {
    "incidents.incident": sample_incident,
    "incidents.incidentnotification": sample_incident_notification,
    "auth.user": lambda: UserFactory(username="sample-user"),
    "auth.group": lambda: Group.objects.get(name="監督者"),
    "contactcenter.operator": lambda: CallFactory().operator,
    "contactcenter.customer": lambda: CustomerFactory(),
    "contactcenter.call": lambda: CallFactory(),
    "privacy.purpose": lambda: PurposeFactory(),
    "privacy.notice": lambda: NoticeFactory(purposes=[PurposeFactory()]),
    "privacy.notice[published]": lambda: published_notice(purposes=[PurposeFactory()]),
    "privacy.organisation": sample_organisation,
    "privacy.crossborderrecipient": sample_cross_border_recipient,
    "privacy.crossbordercheck": sample_cross_border_check,
    "consent.consentrecord": sample_consent_record,
    "recordings.recording": sample_recording,
    "recordings.tombstone": sample_tombstone,
    "recordings.outboxmessage": sample_outbox_message,
    "recordings.reconciliationrun": sample_reconciliation_run,
    "recordings.provisionrecord": sample_provision_record,
    "audit.accessevent": sample_access_event,
    "training.scorecardcriterion": lambda: ScorecardCriterion.objects.first(),
    "training.trainingreview": sample_training_review,
    "portal.customerrequest": sample_customer_request,
    # Staff accounts: django-axes' login records, django-otp's devices.
    "axes.accessattempt": lambda: sample_login_record("AccessAttempt", failures_since_start=1),
    "axes.accesslog": lambda: sample_login_record("AccessLog"),
    "axes.accessfailurelog": lambda: sample_login_record("AccessFailureLog"),
    "otp_totp.totpdevice": lambda: sample_device("otp_totp", "TOTPDevice"),
    "otp_static.staticdevice": lambda: sample_device("otp_static", "StaticDevice"),
}

SUPERVISOR_MODELS = [
    "contactcenter.operator",
    "contactcenter.customer",
    "contactcenter.call",
    "privacy.purpose",
    "privacy.notice",
    "privacy.notice[published]",
    "privacy.organisation",
    "privacy.crossborderrecipient",
    "privacy.crossbordercheck",
    "consent.consentrecord",
    "recordings.recording",
    "recordings.tombstone",
    "recordings.outboxmessage",
    "recordings.reconciliationrun",
    "audit.accessevent",
    "training.scorecardcriterion",
    "training.trainingreview",
    "portal.customerrequest",
]


def admin_urls(label, obj):
    app_label, model_name = label.split("[")[0].split(".")
    return (
        reverse(f"admin:{app_label}_{model_name}_changelist"),
        reverse(f"admin:{app_label}_{model_name}_change", args=[obj.pk]),
    )


def test_every_registered_model_has_a_sample():
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert registered == {label.split("[")[0] for label in SAMPLES}


@pytest.mark.parametrize("label", sorted(SAMPLES))
def test_a_superuser_opens_every_changelist_and_change_form(client, label):
    client.force_login(UserFactory(username="root", is_superuser=True))
    for url in admin_urls(label, SAMPLES[label]()):
        response = client.get(url)
        assert response.status_code == 200, url


@pytest.mark.parametrize("label", SUPERVISOR_MODELS)
def test_a_supervisor_opens_core_changelists_and_change_forms(client, supervisor, label):
    client.force_login(supervisor)
    for url in admin_urls(label, SAMPLES[label]()):
        response = client.get(url)
        assert response.status_code == 200, url


@pytest.mark.parametrize("label", SUPERVISOR_MODELS)
def test_a_compliance_officer_sees_the_core_data(client, compliance_officer, label):
    client.force_login(compliance_officer)
    for url in admin_urls(label, SAMPLES[label]()):
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("label", ["auth.user", "auth.group"])
@pytest.mark.parametrize("role", ["supervisor", "compliance_officer", "operator"])
def test_account_administration_is_refused_to_staff_roles(client, request, role, label):
    user = request.getfixturevalue(role)
    user = user.user if isinstance(user, Operator) else user
    client.force_login(user)
    for url in admin_urls(label, SAMPLES[label]()):
        assert client.get(url).status_code == 403, url


def test_a_compliance_officer_cannot_change_an_operator(client, compliance_officer, operator):
    client.force_login(compliance_officer)
    url = reverse("admin:contactcenter_operator_change", args=[operator.pk])
    response = client.post(url, {"display_name": "changed"})
    assert response.status_code == 403
    operator.refresh_from_db()
    assert operator.display_name != "changed"


class TestOperatorsSeeOnlyTheirOwnData:
    def test_the_call_list_shows_only_their_calls(self, client, operator, other_operator):
        own = CallFactory(operator=operator)
        other = CallFactory(operator=other_operator)
        client.force_login(operator.user)
        response = client.get(reverse("admin:contactcenter_call_changelist"))
        assert response.status_code == 200
        assert own.sid in response.text
        assert other.sid not in response.text

    def test_another_operators_call_cannot_be_opened(self, client, operator, other_operator):
        other = CallFactory(operator=other_operator)
        client.force_login(operator.user)
        response = client.get(reverse("admin:contactcenter_call_change", args=[other.pk]))
        assert response.status_code == 302
        assert response.url == reverse("admin:index")
        assert (
            client.get(
                reverse("admin:contactcenter_call_change", args=[CallFactory(operator=operator).pk])
            ).status_code
            == 200
        )

    def test_the_operator_list_shows_only_themselves(self, client, operator, other_operator):
        client.force_login(operator.user)
        response = client.get(reverse("admin:contactcenter_operator_changelist"))
        assert operator.display_name in response.text
        assert other_operator.display_name not in response.text
        other_url = reverse("admin:contactcenter_operator_change", args=[other_operator.pk])
        assert client.get(other_url).status_code == 302

    def test_customers_are_refused(self, client, operator):
        client.force_login(operator.user)
        assert client.get(reverse("admin:contactcenter_customer_changelist")).status_code == 403


def test_calls_cannot_be_added_or_deleted_in_the_admin(client, supervisor):
    call = CallFactory()
    client.force_login(supervisor)
    assert client.get(reverse("admin:contactcenter_call_add")).status_code == 403
    assert (
        client.post(
            reverse("admin:contactcenter_call_delete", args=[call.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert Call.objects.filter(pk=call.pk).exists()


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(reverse("admin:contactcenter_call_changelist"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_the_admin_speaks_japanese_by_default_and_english_on_request(client, supervisor):
    CallFactory()
    client.force_login(supervisor)
    url = reverse("admin:contactcenter_call_changelist")

    response = client.get(url)
    assert '<html lang="ja"' in response.text
    assert "通話録音コンプライアンス管理" in response.text
    assert "通話時間" in response.text

    response = client.post(reverse("set_language"), {"language": "en", "next": url})
    assert response.status_code == 302
    response = client.get(url)
    assert '<html lang="en"' in response.text
    assert "Call recording compliance" in response.text
    assert "duration" in response.text.lower()


def test_customers_are_found_by_the_number_as_people_type_it(client, supervisor):
    wanted = CustomerFactory(phone_number="+81312345678")
    other = CustomerFactory(phone_number="+81662345678")
    client.force_login(supervisor)
    response = client.get(reverse("admin:contactcenter_customer_changelist"), {"q": "03-1234-5678"})
    assert response.status_code == 200
    assert reverse("admin:contactcenter_customer_change", args=[wanted.pk]) in response.text
    assert reverse("admin:contactcenter_customer_change", args=[other.pk]) not in response.text


def test_withheld_customers_render_in_the_list(client, supervisor):
    anonymous = Customer.objects.for_caller("anonymous")
    client.force_login(supervisor)
    response = client.get(reverse("admin:contactcenter_customer_changelist"))
    assert f"非通知の発信者 #{anonymous.pk}" in response.text
