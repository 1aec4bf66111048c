"""No card number on tape: the operator's 「カード番号」 button pauses the recording at Twilio for
``CARD_PAUSE_SECONDS`` and it resumes by itself (or at the operator's word), both moments on the
call's timeline; a pause that failed or was missed marks the call "may contain card data", and
its recording is then kept only as long as its shortest purpose allows."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from contactcenter.models import Call, CallEvent
from contactcenter.services import resume_expired_card_pauses
from recordings import ingest, retention
from recordings.models import RecordingPurpose

from .factories import consented_call
from .helpers.recordings import completed

pytestmark = pytest.mark.django_db

RecordingState = Call.RecordingState
Kind = CallEvent.Kind
LIVE = reverse("contactcenter:live-calls")


def at_twilio(twilio, call):
    return twilio.state.recordings[call.twilio_recording_sid]["status"]


def press(client, call, action):
    return client.post(
        reverse("contactcenter:control-recording", args=[call.sid]), {"action": action}
    )


def test_card_number_pauses_at_twilio_and_says_when_it_resumes(
    client, live_call, operator, twilio, settings
):
    settings.CARD_PAUSE_SECONDS = 90
    client.force_login(operator.user)
    before = timezone.now()

    response = press(client, live_call, "card")

    assert response.status_code == 302
    assert at_twilio(twilio, live_call) == "paused"
    live_call.refresh_from_db()
    assert live_call.recording_state == RecordingState.PAUSED
    assert before + timedelta(seconds=89) < live_call.card_pause_until
    assert live_call.card_pause_until <= timezone.now() + timedelta(seconds=90)
    [event] = live_call.events.all()
    assert (event.kind, event.actor) == (Kind.CARD_PAUSE, operator.user)
    page = client.get(LIVE).content.decode()
    assert 'class="card-pause"' in page
    assert "自動で再開" in page


def test_the_operator_resumes_before_the_time_is_up(client, live_call, operator, twilio):
    client.force_login(operator.user)
    press(client, live_call, "card")

    press(client, live_call, "card_end")

    assert at_twilio(twilio, live_call) == "in-progress"
    live_call.refresh_from_db()
    assert live_call.recording_state == RecordingState.RECORDING
    assert live_call.card_pause_until is None
    assert list(live_call.events.values_list("kind", flat=True)) == [
        Kind.CARD_PAUSE,
        Kind.CARD_PAUSE_ENDED,
    ]
    assert live_call.card_data_suspected_at is None


def test_the_pause_runs_out_and_the_recording_resumes_by_itself(
    client, live_call, operator, twilio
):
    client.force_login(operator.user)
    press(client, live_call, "card")
    assert resume_expired_card_pauses() == 0  # not yet
    Call.objects.filter(pk=live_call.pk).update(
        card_pause_until=timezone.now() - timedelta(seconds=1)
    )

    assert resume_expired_card_pauses() == 1

    assert at_twilio(twilio, live_call) == "in-progress"
    live_call.refresh_from_db()
    assert live_call.recording_state == RecordingState.RECORDING
    assert live_call.card_pause_until is None
    ended = live_call.events.get(kind=Kind.CARD_PAUSE_ENDED)
    assert ended.actor is None
    assert ended.detail == "時間になったため自動で"
    assert resume_expired_card_pauses() == 0


def test_an_ordinary_pause_is_not_resumed_by_the_card_timer(client, live_call, operator, twilio):
    client.force_login(operator.user)
    press(client, live_call, "pause")

    assert resume_expired_card_pauses(now=timezone.now() + timedelta(days=1)) == 0
    assert at_twilio(twilio, live_call) == "paused"


def test_a_pause_that_fails_marks_the_call_as_possibly_holding_card_data(
    client, live_call, operator, twilio
):
    # Twilio no longer knows the call: the pause is refused and the recording runs on.
    twilio.state.calls[live_call.sid]["status"] = "completed"
    del twilio.state.calls[live_call.sid]
    client.force_login(operator.user)

    response = press(client, live_call, "card")

    assert response.status_code == 302
    live_call.refresh_from_db()
    assert live_call.recording_state == RecordingState.RECORDING
    assert live_call.card_data_suspected_at is not None
    kinds = list(live_call.events.values_list("kind", flat=True))
    assert kinds == [Kind.RECORDING_CONTROL_FAILED, Kind.CARD_DATA_MARKED]
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages and "Twilio" in messages[0]


def test_the_operator_marks_a_card_number_spoken_while_recording(client, live_call, operator):
    client.force_login(operator.user)

    press(client, live_call, "card_data")
    press(client, live_call, "card_data")  # twice: the first mark's time is kept

    live_call.refresh_from_db()
    assert live_call.card_data_suspected_at is not None
    assert live_call.events.filter(kind=Kind.CARD_DATA_MARKED).count() == 2
    assert "カード情報を含む可能性" in client.get(LIVE).content.decode()


def test_someone_elses_call_cannot_be_marked(client, live_call, other_operator):
    client.force_login(other_operator.user)

    response = press(client, live_call, "card_data")

    assert response.status_code == 302
    [message] = list(response.wsgi_request._messages)
    assert "担当オペレーターまたは監督者" in str(message)
    live_call.refresh_from_db()
    assert live_call.card_data_suspected_at is None
    assert not live_call.events.exists()


def test_a_recording_of_a_marked_call_is_kept_only_for_its_shortest_purpose(
    client, twilio, notice, operator
):
    call = consented_call(operator)
    Call.objects.filter(pk=call.pk).update(card_data_suspected_at=timezone.now())
    call.refresh_from_db()
    recording = completed(client, twilio, call)

    ingest.fetch(recording.pk)
    recording.refresh_from_db()

    windows = RecordingPurpose.objects.filter(recording=recording)
    assert {w.purpose.code for w in windows} == {"quality", "training"}  # 30 and 90 days
    assert {w.usable_until for w in windows} == {call.started_at + timedelta(days=30)}
    assert recording.retain_until == call.started_at + timedelta(days=30)


def test_a_supervisor_marks_a_stored_recording_and_its_retention_shortens(
    client, twilio, notice, operator, supervisor
):
    call = consented_call(operator)
    recording = completed(client, twilio, call)
    ingest.fetch(recording.pk)
    recording.refresh_from_db()
    assert recording.retain_until == call.started_at + timedelta(days=90)
    client.force_login(supervisor)

    changelist = reverse("admin:recordings_recording_changelist")
    form = {"action": "mark_card_data", "_selected_action": [recording.pk]}
    confirm = client.post(changelist, form)
    assert "カード情報を含む可能性" in confirm.content.decode()
    client.post(changelist, {**form, "confirm": "1", "reason": "通話後の確認で判明"})

    recording.refresh_from_db()
    assert recording.retain_until == call.started_at + timedelta(days=30)
    windows = RecordingPurpose.objects.filter(recording=recording)
    assert {w.usable_until for w in windows} == {call.started_at + timedelta(days=30)}
    call.refresh_from_db()
    assert call.card_data_note == "通話後の確認で判明"
    page = client.get(reverse("admin:recordings_recording_change", args=[recording.pk]))
    assert "通話後の確認で判明" in page.content.decode()


def test_an_operator_may_not_mark_a_stored_recording(twilio, notice, operator, client):
    from contactcenter.roles import NotAllowed

    call = consented_call(operator)
    recording = completed(client, twilio, call)
    ingest.fetch(recording.pk)
    recording.refresh_from_db()
    with pytest.raises(NotAllowed):
        retention.mark_card_data(recording, by=operator.user, note="x")
    call.refresh_from_db()
    assert call.card_data_suspected_at is None


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_a_browser_the_countdown_runs_and_the_page_resumes_at_zero(
    page, live_server, live_db, twilio, settings
):
    from django.conf import settings as django_settings

    from twilio_emulator import CallDriver

    from .factories import PurposeFactory, published_notice
    from .helpers.browser import log_in
    from .helpers.staff import acknowledged_operator

    settings.CARD_PAUSE_SECONDS = 10
    published_notice(purposes=[PurposeFactory()])
    acknowledged_operator("op")
    driver = CallDriver(
        app_url=live_server.url,
        public_base_url=django_settings.PUBLIC_BASE_URL,
        account_sid=django_settings.TWILIO_ACCOUNT_SID,
        auth_token=django_settings.TWILIO_AUTH_TOKEN,
        emulator_url=twilio.url,
    )
    call = driver.run(digits="1", hold=True)
    recording = twilio.state.recordings[call.recording_sid]

    log_in(page, "op", "pass")
    page.goto("/operator/calls/")
    row = page.locator(f"#call-{call.call_sid}")
    row.get_by_role("button", name="カード番号", exact=True).click()
    timer = row.get_by_role("timer")
    expect(timer).to_contain_text("自動で再開")
    assert recording["status"] == "paused"
    left = int(timer.locator(".card-pause-left").inner_text())
    assert 0 < left <= 10
    expect(timer.locator(".card-pause-left")).not_to_have_text(str(left), timeout=3000)
    # At zero the page resumes the recording itself.
    expect(row).to_contain_text("録音中", timeout=15000)
    assert recording["status"] == "in-progress"
    stored = Call.objects.get(sid=call.call_sid)
    assert list(stored.events.values_list("kind", flat=True))[-2:] == [
        Kind.CARD_PAUSE,
        Kind.CARD_PAUSE_ENDED,
    ]
    driver.hang_up(call)


def test_the_recordings_list_filters_those_that_may_contain_card_data(
    client, twilio, notice, operator, supervisor
):
    marked, clean = consented_call(operator), consented_call(operator)
    Call.objects.filter(pk=marked.pk).update(card_data_suspected_at=timezone.now())
    recordings = {}
    for call in (marked, clean):
        recordings[call.pk] = completed(client, twilio, call)
    client.force_login(supervisor)

    page = client.get(reverse("admin:recordings_recording_changelist"), {"card_data": "yes"})

    text = page.content.decode()
    assert recordings[marked.pk].sid[-6:] in text
    assert recordings[clean.pk].sid[-6:] not in text
