"""seed_demo fills an empty database with a believable demo; running it again changes nothing."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.forms.models import model_to_dict
from django.urls import reverse

from consent.models import ConsentRecord
from consent.services import has_standing_consent, may_record
from contactcenter.models import Call, Customer, Operator
from contactcenter.phones import CallerIdStatus
from privacy.models import Notice
from recordings.models import Recording

pytestmark = pytest.mark.django_db


def snapshot():
    users = get_user_model().objects.order_by("username")
    return {
        "users": [
            (u.username, u.password, u.is_staff, sorted(u.groups.values_list("name", flat=True)))
            for u in users
        ],
        "operators": [model_to_dict(o) for o in Operator.objects.order_by("pk")],
        "customers": [model_to_dict(c) for c in Customer.objects.order_by("pk")],
        "calls": [model_to_dict(c) for c in Call.objects.order_by("pk")],
        "notices": [model_to_dict(n) for n in Notice.objects.order_by("pk")],
        "consent": list(ConsentRecord.objects.order_by("pk").values()),
        "recordings": list(
            Recording.objects.order_by("pk").values("sid", "status", "blob_name", "key_id")
        ),
    }


def test_running_it_twice_gives_the_same_data(capsys):
    call_command("seed_demo")
    first = snapshot()
    call_command("seed_demo")
    assert snapshot() == first
    assert "0 new" in capsys.readouterr().out


def test_it_creates_each_role_and_prints_the_credentials(capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    users = {u.username: u for u in get_user_model().objects.all()}
    assert set(users) == {"supervisor", "compliance", "operator1", "operator2", "operator3"}
    assert users["supervisor"].groups.get().name == "監督者"
    assert users["compliance"].groups.get().name == "コンプライアンス担当"
    assert {users[f"operator{i}"].groups.get().name for i in (1, 2, 3)} == {"オペレーター"}
    for username in users:
        assert username in out
    assert "demo-supervisor-pass" in out
    assert Operator.objects.count() == 3
    assert all(o.has_acknowledged_recording for o in Operator.objects.all())


def test_it_creates_customers_and_calls_including_a_withheld_caller():
    call_command("seed_demo")
    assert Customer.objects.filter(caller_id_status=CallerIdStatus.PRESENTED).count() == 5
    assert Customer.objects.filter(caller_id_status=CallerIdStatus.WITHHELD).count() == 1
    assert Call.objects.count() == 16
    assert Call.objects.filter(status=Call.Status.NO_ANSWER, operator=None).exists()
    assert Call.objects.filter(status=Call.Status.COMPLETED).exclude(operator=None).exists()


def test_the_printed_supervisor_account_opens_the_japanese_admin(client):
    call_command("seed_demo")
    # The README's tour: the password, then the code `demo_totp supervisor` prints.
    client.post(
        reverse("admin:login"), {"username": "supervisor", "password": "demo-supervisor-pass"}
    )
    code = io.StringIO()
    call_command("demo_totp", "supervisor", stdout=code)
    client.post(reverse("staff:otp-verify"), {"code": code.getvalue().strip()})
    response = client.get(reverse("admin:contactcenter_call_changelist"))
    assert response.status_code == 200
    assert "通話" in response.text
    assert Call.objects.first().sid in response.text


def test_it_refuses_to_run_in_production(settings):
    settings.IS_PRODUCTION = True
    with pytest.raises(CommandError, match="DEBUG off"):
        call_command("seed_demo")
    assert not get_user_model().objects.exists()
    call_command("seed_demo", allow_production=True)
    assert get_user_model().objects.filter(username="supervisor").exists()


def test_it_publishes_notice_v1_with_three_purposes_before_the_first_call(client):
    call_command("seed_demo")
    notice = Notice.objects.get()
    assert notice.version == 1
    assert notice.is_published
    assert notice.effective_from < Call.objects.earliest("started_at").started_at
    days = {np.purpose.code: np.retention_days for np in notice.notice_purposes.all()}
    assert days == {"quality": 365, "training": 90, "evidence": 3 * 365}
    page = client.get(reverse("privacy:notice-current")).text
    assert "品質向上" in page and "研修" in page and "応対内容の確認・紛争対応" in page
    assert "通話日から3年間" in page


def test_every_demo_call_has_the_callers_answer_and_one_refused(client):
    call_command("seed_demo")
    calls = list(Call.objects.select_related("customer", "operator"))
    answers = ConsentRecord.objects.filter(call__isnull=False)
    assert answers.count() == len(calls)
    assert answers.filter(decision=ConsentRecord.Decision.REFUSED, digits="2").count() == 1
    assert all(record.announcement_sha256 for record in answers)
    permissions = [may_record(call=call) for call in calls]
    assert sum(1 for p in permissions if not p) == 1
    assert {p.reason for p in permissions if not p} == {"refused"}


def test_demo_operators_have_standing_consent(client):
    call_command("seed_demo")
    for operator in Operator.objects.all():
        assert has_standing_consent(operator)
    assert ConsentRecord.objects.filter(operator__isnull=False).count() == 3


def test_it_stores_a_few_encrypted_two_channel_recordings(settings):
    import io
    import wave
    from pathlib import Path

    from django.core.files.storage import storages

    from recordings import crypto

    call_command("seed_demo")
    call_command("seed_demo")

    recordings = list(Recording.objects.all())
    assert len(recordings) == 5
    for recording in recordings:
        assert recording.status == Recording.Status.STORED
        assert may_record(call=recording.call)
        assert recording.purposes.exists()
        assert recording.retain_until > recording.call.started_at
        key = crypto.unwrap_key(recording.key_id, bytes(recording.wrapped_key))
        with storages["recordings"].open(recording.blob_name, "rb") as blob:
            assert blob.read(5) == b"CCREC"
            audio = b"".join(crypto.decrypt_all(blob, key))
        with wave.open(io.BytesIO(audio)) as wav:
            assert wav.getnchannels() == 2
            assert abs(wav.getnframes() / wav.getframerate() - recording.call.duration) <= 1
    root = Path(settings.STORAGES["recordings"]["OPTIONS"]["location"])
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) == 5
    assert not any(b"RIFF" in p.read_bytes() for p in files)


def test_demo_recordings_are_as_long_as_their_calls():
    """Issue 15, item 7: a 4 s recording of a 97–842 s call could not be seeked."""
    import io
    import wave

    from recordings.models import Recording

    from .helpers.recordings import decrypted

    call_command("seed_demo")
    stored = Recording.objects.filter(status=Recording.Status.STORED).select_related("call")
    assert stored.exists()
    for recording in stored:
        with wave.open(io.BytesIO(decrypted(recording))) as audio:
            seconds = audio.getnframes() / audio.getframerate()
            assert audio.getnchannels() == 2
        assert abs(seconds - recording.call.duration) <= 1
        assert recording.duration == recording.call.duration
