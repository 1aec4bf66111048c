"""The third-party provision ledger (APPI arts. 29/30): a recording leaves the company only
through a record with a basis; the record is audited, append-only, kept 1 or 3 years and
then deleted by the daily task; its export is downloaded once, by its writer, decrypted;
a person sees exactly the records about them. A sealed recording (use stopped) is refused
for every use but the person's own hearing."""

import io
import zipfile
from datetime import date, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessEvent
from contactcenter.roles import NotAllowed
from recordings import provision, retention
from recordings.access import check_access, check_disclosure, training_recordings
from recordings.models import ProvisionRecord, Recording
from recordings.tasks import delete_expired_provision_records
from training import services as training_services
from twilio_emulator.server import synthetic_wav

from . import factories
from .factories import CustomerFactory

pytestmark = pytest.mark.django_db

Action = AccessEvent.Action
Basis = ProvisionRecord.Basis
Kind = ProvisionRecord.RecipientKind
Item = ProvisionRecord.Item
AUDIO = synthetic_wav(2)


@pytest.fixture
def recording(notice, operator):
    return factories.stored_recording(operator, audio=AUDIO)


def to_lawyer(recording, by, **changes):
    """A hand-over to a lawyer with the customer's written consent (what the tests vary)."""
    values = {
        "by": by,
        "recipient": "山田法律事務所 弁護士 山田太郎",
        "recipient_kind": Kind.LAWYER,
        "recipient_address": "東京都千代田区霞が関1-1-1",
        "items": [Item.AUDIO, Item.CALL],
        "basis": Basis.CONSENT,
        "consent_method": ProvisionRecord.ConsentMethod.WRITTEN,
        "consent_obtained_at": date(2026, 11, 30),
        "consent_statement": "同意書（署名済み）を受領、監督者が確認。原本は法務部で保管。",
        **changes,
    }
    return provision.provide(recording, **values)


def provision_events():
    return AccessEvent.objects.filter(action=Action.THIRD_PARTY_PROVISION)


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"basis": ""}, "basis"),
        ({"basis": "because"}, "basis"),
        ({"basis": Basis.LEGAL_GROUND, "ground_text": "  "}, "ground_text"),
        ({"consent_statement": ""}, "consent_statement"),
        ({"consent_method": ""}, "consent_method"),
        ({"consent_obtained_at": None}, "consent_obtained_at"),
        ({"recipient": ""}, "recipient_name"),
        ({"recipient_address": ""}, "recipient_address"),
        ({"recipient_kind": "friend"}, "recipient_kind"),
        ({"items": []}, "items"),
        ({"items": ["everything"]}, "items"),
    ],
)
def test_a_provision_without_its_basis_or_details_is_refused_and_changes_nothing(
    recording, supervisor, changes, field
):
    with pytest.raises(ValidationError) as refusal:
        to_lawyer(recording, supervisor, **changes)

    assert field in refusal.value.message_dict
    assert ProvisionRecord.objects.count() == 0
    assert not provision_events().exists()


def test_the_refusal_without_a_basis_is_worded_in_japanese(recording, supervisor):
    with pytest.raises(ValidationError) as refusal:
        to_lawyer(recording, supervisor, basis="")

    assert "根拠が必要です" in str(refusal.value.message_dict["basis"][0])


def test_an_operator_may_not_provide(recording, operator):
    with pytest.raises(NotAllowed):
        to_lawyer(recording, operator.user)

    assert ProvisionRecord.objects.count() == 0
    assert not provision_events().exists()


def test_a_compliance_officer_may_provide(recording, compliance_officer):
    assert to_lawyer(recording, compliance_officer).provided_by == compliance_officer


def test_a_purged_recording_cannot_be_provided(recording, supervisor):
    Recording.objects.filter(pk=recording.pk).update(retain_until=timezone.now())
    retention.purge_due(recording_ids=[recording.pk])
    recording.refresh_from_db()

    with pytest.raises(NotAllowed) as refusal:
        to_lawyer(recording, supervisor)

    assert refusal.value.reason == "not_stored"
    assert ProvisionRecord.objects.count() == 0


def test_a_customer_who_stopped_provision_is_not_provided(recording, supervisor):
    customer = recording.call.customer
    type(customer).objects.filter(pk=customer.pk).update(provision_stopped_at=timezone.now())
    recording.call.customer.refresh_from_db()

    with pytest.raises(NotAllowed) as refusal:
        to_lawyer(recording, supervisor)

    assert refusal.value.reason == "provision_stopped"
    assert ProvisionRecord.objects.count() == 0


# --- the record and its audit event -------------------------------------------------------------


def test_a_provision_is_recorded_with_everything_the_act_asks(recording, supervisor):
    record = to_lawyer(recording, supervisor, note="訴訟準備のため")

    record.refresh_from_db()
    customer = recording.call.customer
    assert record.customer == customer
    assert record.phone_number == customer.phone_number
    assert (record.call, record.recording) == (recording.call, recording)
    assert record.items == [Item.AUDIO, Item.CALL]
    assert record.recipient_kind == Kind.LAWYER
    assert record.provided_by == supervisor
    assert record.exported_at is None
    event = provision_events().get()
    assert (event.actor, event.recording_id, event.purpose) == (supervisor, recording.pk, "consent")
    assert event.detail == {
        "provision": record.pk,
        "recipient_kind": "lawyer",
        "items": ["audio", "call"],
    }


def test_a_legal_ground_keeps_its_text_and_no_consent(recording, supervisor):
    record = to_lawyer(
        recording,
        supervisor,
        recipient="警視庁丸の内警察署",
        recipient_kind=Kind.POLICE,
        basis=Basis.LEGAL_GROUND,
        ground_text="刑事訴訟法第197条第2項に基づく捜査関係事項照会（第123号）",
    )

    assert record.ground_text.startswith("刑事訴訟法")
    assert (record.consent_method, record.consent_statement) == ("", "")
    assert record.consent_obtained_at is None


def test_records_are_append_only(recording, supervisor):
    record = to_lawyer(recording, supervisor)

    record.recipient_name = "別の人"
    with pytest.raises(ValidationError):
        record.save()
    with pytest.raises(ValidationError):
        ProvisionRecord.objects.filter(pk=record.pk).update(recipient_name="別の人")
    with pytest.raises(ValidationError):
        ProvisionRecord.objects.all().delete()
    with pytest.raises(ValidationError):
        record.delete()
    assert ProvisionRecord.objects.get().recipient_name.startswith("山田法律事務所")


# --- retention ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("basis", "in_contract", "years"),
    [
        (Basis.CONSENT, False, 3),
        (Basis.CONSENT, True, 1),
        (Basis.LEGAL_GROUND, False, 3),
        (Basis.ENTRUSTMENT, False, 3),
        (Basis.LEGAL_GROUND, True, 3),  # a contract with the person is about consent only
    ],
)
def test_which_retention_applies(basis, in_contract, years):
    assert provision.retention_years(basis=basis, in_contract_document=in_contract) == years


def at_tokyo(*args):
    return timezone.make_aware(datetime(*args))


def test_the_retention_ends_at_the_end_of_the_same_day_years_later():
    assert provision.retain_until(at_tokyo(2026, 4, 10, 15, 0), years=3) == at_tokyo(
        2029, 4, 11, 0, 0
    )
    # 29 February: the month's last day that exists.
    assert provision.retain_until(at_tokyo(2028, 2, 29, 9, 0), years=1) == at_tokyo(
        2029, 3, 1, 0, 0
    )


def test_a_consent_recorded_in_a_contract_is_kept_one_year(recording, supervisor):
    record = to_lawyer(recording, supervisor, in_contract_document=True)

    expected = provision.retain_until(record.provided_at, years=1)
    assert record.in_contract_document
    assert record.retain_until == expected


def record_kept_until(recording, supervisor, retain_until, **changes):
    """A record as ``provide`` writes it, whose retention ends at ``retain_until``."""
    record = to_lawyer(recording, supervisor, **changes)
    # The ledger refuses updates; the test moves the date as time passing would.
    models.QuerySet.update(ProvisionRecord.objects.filter(pk=record.pk), retain_until=retain_until)
    return record


def test_the_daily_task_deletes_only_the_expired_records_and_audits_it(recording, supervisor):
    now = timezone.now()
    expired = record_kept_until(recording, supervisor, now - timedelta(seconds=1))
    expired_too = record_kept_until(recording, supervisor, now - timedelta(days=3))
    kept = record_kept_until(recording, supervisor, now + timedelta(minutes=5))

    assert delete_expired_provision_records() == 2

    assert list(ProvisionRecord.objects.values_list("pk", flat=True)) == [kept.pk]
    event = AccessEvent.objects.get(action=Action.PROVISION_RECORD_EXPIRED)
    assert event.detail == {"count": 2, "ids": sorted([expired.pk, expired_too.pk])}
    assert "山田" not in str(event.detail)
    assert delete_expired_provision_records() == 0
    assert AccessEvent.objects.filter(action=Action.PROVISION_RECORD_EXPIRED).count() == 1


def test_the_task_runs_every_day_from_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["delete-expired-provision-records"]
    assert entry["task"] == "recordings.tasks.delete_expired_provision_records"
    assert entry["schedule"] == 24 * 60 * 60


# --- what the person may see ----------------------------------------------------------------------


def test_records_about_lists_exactly_that_persons_unexpired_records(notice, operator, supervisor):
    mine = factories.stored_recording(operator, audio=AUDIO)
    theirs = factories.stored_recording(operator, audio=AUDIO)
    number = mine.call.customer.phone_number
    older = to_lawyer(mine, supervisor)
    newer = to_lawyer(mine, supervisor, recipient="東京海上日動", recipient_kind=Kind.INSURER)
    to_lawyer(theirs, supervisor)
    record_kept_until(mine, supervisor, timezone.now() - timedelta(seconds=1))
    to_lawyer(
        mine,
        supervisor,
        recipient="警視庁",
        recipient_kind=Kind.POLICE,
        basis=Basis.LEGAL_GROUND,
        ground_text="捜査関係事項照会",
    )

    assert list(provision.records_about(number)) == [newer, older]
    assert provision.records_about("").count() == 0
    assert provision.records_about(number, include_legal_grounds=True).count() == 3


def test_the_persons_summary_is_in_japanese(recording, supervisor):
    record = to_lawyer(recording, supervisor)

    assert record.summary_ja() == {
        "date": f"{timezone.localtime(record.provided_at):%Y-%m-%d}",
        "recipient": "山田法律事務所 弁護士 山田太郎",
        "recipient_kind": "弁護士",
        "items": ["録音音声", "通話記録"],
        "basis": "本人の同意",
        "ground": "",
    }


# --- the export: downloaded once, by its writer, decrypted ---------------------------------------


def export_url(record):
    return reverse("admin:recordings_provisionrecord_export", args=[record.pk])


def zip_of(response):
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_the_export_is_downloaded_once_with_the_decrypted_audio(client, recording, supervisor):
    record = to_lawyer(recording, supervisor, items=[Item.AUDIO, Item.CALL, Item.CONSENT])
    client.force_login(supervisor)

    response = client.post(export_url(record))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith("attachment")
    archive = zip_of(response)
    assert archive.read(f"{recording.sid}.wav") == AUDIO
    summary = archive.read(f"provision-{record.pk}.txt").decode()
    assert "提供先：山田法律事務所 弁護士 山田太郎（弁護士）" in summary
    assert "提供の根拠：本人の同意" in summary
    assert recording.plaintext_sha256 in summary
    assert "録音への同意" in summary
    download = AccessEvent.objects.get(action=Action.DOWNLOAD)
    assert (download.actor, download.purpose) == (supervisor, "consent")
    assert download.detail == {"channel": "third_party_export", "provision": record.pk}

    again = client.post(export_url(record), follow=True)

    assert "ダウンロード済み" in again.content.decode()
    assert AccessEvent.objects.filter(action=Action.DOWNLOAD).count() == 1


def test_without_the_audio_item_the_export_holds_only_the_summary(client, recording, supervisor):
    record = to_lawyer(recording, supervisor, items=[Item.CALL])
    client.force_login(supervisor)

    archive = zip_of(client.post(export_url(record)))

    assert archive.namelist() == [f"provision-{record.pk}.txt"]


def test_only_the_writer_may_download_and_only_while_fresh(client, recording, supervisor):
    other = factories.UserFactory(username="supervisor-2", roles=["監督者"])
    record = to_lawyer(recording, supervisor)

    with pytest.raises(provision.ExportRefused, match="記録した担当者だけ"):
        provision.open_export(record, by=other)
    with pytest.raises(provision.ExportRefused, match="15分"):
        provision.open_export(record, by=supervisor, at=record.provided_at + timedelta(minutes=16))

    client.force_login(other)
    refused = client.post(export_url(record), follow=True)
    assert "記録した担当者だけ" in refused.content.decode()
    assert not AccessEvent.objects.filter(action=Action.DOWNLOAD).exists()
    assert ProvisionRecord.objects.get().exported_at is None


def test_an_operator_cannot_open_the_provision_pages(client, recording, operator, supervisor):
    record = to_lawyer(recording, supervisor)
    client.force_login(operator.user)

    provide_url = reverse("admin:recordings_provisionrecord_provide", args=[recording.pk])
    assert client.get(provide_url).status_code in (302, 403)
    assert client.post(export_url(record)).status_code in (302, 403)
    assert ProvisionRecord.objects.get().exported_at is None


# --- the admin pages ---------------------------------------------------------------------------


def form_data(**changes):
    return {
        "recipient_name": "山田法律事務所 弁護士 山田太郎",
        "recipient_kind": "lawyer",
        "recipient_address": "東京都千代田区霞が関1-1-1",
        "items": ["audio", "call"],
        "basis": "consent",
        "consent_method": "written",
        "consent_obtained_at": "2026-11-30",
        "consent_statement": "同意書を受領",
        "note": "",
        **changes,
    }


def test_the_recording_page_offers_the_provision_to_those_who_may(client, recording, supervisor):
    client.force_login(supervisor)

    page = client.get(reverse("admin:recordings_recording_change", args=[recording.pk]))

    provide_url = reverse("admin:recordings_provisionrecord_provide", args=[recording.pk])
    assert f'href="{provide_url}"' in page.content.decode()
    assert "第三者に提供する" in page.content.decode()


def test_the_form_confirms_before_it_records(client, recording, supervisor):
    client.force_login(supervisor)
    url = reverse("admin:recordings_provisionrecord_provide", args=[recording.pk])

    assert client.get(url).status_code == 200
    missing = client.post(url, form_data(basis=""))
    assert "根拠が必要です" in missing.content.decode()
    confirming = client.post(url, form_data())
    assert "記録する内容の確認" in confirming.content.decode()
    assert ProvisionRecord.objects.count() == 0

    done = client.post(url, {**form_data(), "confirmed": "yes"})

    record = ProvisionRecord.objects.get()
    assert done.status_code == 302
    assert done["Location"] == export_url(record)
    assert "書き出しをダウンロード" in client.get(export_url(record)).content.decode()


def test_the_ledger_is_read_only_and_found_by_number_in_any_notation(client, recording, supervisor):
    record = to_lawyer(recording, supervisor)
    client.force_login(supervisor)
    national = "0" + record.phone_number[3:]  # +8180… as 080…

    listed = client.get(reverse("admin:recordings_provisionrecord_changelist"), {"q": national})
    other = client.get(reverse("admin:recordings_provisionrecord_changelist"), {"q": "09011112222"})
    by_basis = client.get(
        reverse("admin:recordings_provisionrecord_changelist"), {"basis__exact": "legal_ground"}
    )

    assert list(listed.context["cl"].result_list) == [record]
    assert list(other.context["cl"].result_list) == []
    assert list(by_basis.context["cl"].result_list) == []
    change = client.get(reverse("admin:recordings_provisionrecord_change", args=[record.pk]))
    assert change.status_code == 200
    assert 'name="_save"' not in change.content.decode()
    assert client.get(reverse("admin:recordings_provisionrecord_add")).status_code == 403


# --- sealing: use stopped, recording kept ---------------------------------------------------------


def test_a_sealed_recording_is_refused_for_every_use_but_the_persons_own_hearing(
    recording, supervisor, operator
):
    kept_until = recording.retain_until

    assert retention.seal([recording], by=supervisor, reason="お客様のご請求（利用停止）") == 1
    assert retention.seal([recording], by=supervisor, reason="二度目") == 0

    recording.refresh_from_db()
    assert recording.sealed_reason == "お客様のご請求（利用停止）"
    assert recording.sealed_by == supervisor
    assert (recording.status, recording.retain_until) == (Recording.Status.STORED, kept_until)
    assert check_access(supervisor, recording, "quality").reason == "sealed"
    assert check_access(operator.user, recording, "training").reason == "sealed"
    assert not training_recordings(supervisor).filter(pk=recording.pk).exists()
    with pytest.raises(training_services.NotOpenForTraining):
        training_services.mark_training_material(recording, by=supervisor)
    with pytest.raises(NotAllowed) as refusal:
        to_lawyer(recording, supervisor)
    assert refusal.value.reason == "sealed"
    # Hearing one's own recording is disclosure to the person, not a use of it.
    assert check_disclosure(
        recording,
        phone_number=recording.call.customer.phone_number,
        until=timezone.now() + timedelta(hours=1),
    )
    assert not Recording.objects.due_for_purge().filter(pk=recording.pk).exists()


def test_a_seal_needs_a_reason(recording, supervisor):
    with pytest.raises(ValueError):
        retention.seal([recording], by=supervisor, reason=" ")
    recording.refresh_from_db()
    assert recording.sealed_at is None


def test_the_sealed_recording_page_offers_neither_player_nor_provision(
    client, recording, supervisor
):
    retention.seal([recording], by=supervisor, reason="利用停止")
    client.force_login(supervisor)

    text = client.get(
        reverse("admin:recordings_recording_change", args=[recording.pk])
    ).content.decode()

    assert "利用を停止しています" in text
    assert "第三者に提供する" not in text


def test_another_customers_number_is_not_theirs(recording, supervisor):
    to_lawyer(recording, supervisor)
    stranger = CustomerFactory()

    assert provision.records_about(stranger.phone_number).count() == 0
