"""Customers' requests after the proof: made on the portal, worked by staff in the admin
queue, fulfilled (listening links, deletion, withdrawal), and audited end to end."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessEvent
from consent.models import ConsentRecord
from portal.models import CustomerRequest, ListeningLink
from recordings import retention
from recordings.models import Recording, Tombstone

from .factories import CustomerFactory, UserFactory
from .helpers.portal import find_call, prove
from .test_playback import AUDIO, stored_recording

pytestmark = pytest.mark.django_db

Action = AccessEvent.Action
NUMBER = "+819011112222"
MINE = reverse("portal:mine")
QUEUE = reverse("admin:portal_customerrequest_changelist")


@pytest.fixture(autouse=True)
def _fresh_limits(portal_codes):
    """Codes through the Twilio emulator, and the portal's limits fresh (conftest)."""


@pytest.fixture
def mine(notice, operator):
    recording = stored_recording(operator)
    customer = recording.call.customer
    customer.phone_number = NUMBER
    customer.save()
    return recording


@pytest.fixture
def theirs(notice, operator):
    recording = stored_recording(operator)
    return recording


def ask(client, kind, calls, **extra):
    for call in calls:
        find_call(client, call)
    return client.post(
        MINE, {"kind": kind, "calls": [str(call.pk) for call in calls], **extra}, follow=False
    )


class TestMakingARequest:
    def test_a_request_about_their_call_is_received_audited_and_staff_are_told(
        self, client, twilio, mine, supervisor
    ):
        supervisor.email = "kantoku@example.jp"
        supervisor.save()
        prove(client, twilio, NUMBER)

        with self_capture(client) as captured:
            response = ask(client, "hear", [mine.call])

        assert response["Location"] == reverse("portal:sent")
        made = CustomerRequest.objects.get()
        assert made.phone_number == NUMBER
        assert made.customer == mine.call.customer
        assert list(made.calls.all()) == [mine.call]
        assert made.due_at - made.created_at == timedelta(days=7)
        event = AccessEvent.objects.get(action=Action.REQUEST_RECEIVED)
        assert event.detail["request"] == made.reference
        assert event.actor_label == f"customer {NUMBER}"
        assert captured
        [email] = mail.outbox
        assert email.to == ["kantoku@example.jp"]
        assert made.reference in email.subject
        page = client.get(reverse("portal:sent")).content.decode()
        assert made.reference in page

    def test_another_customers_call_cannot_be_named(self, client, twilio, mine, theirs):
        prove(client, twilio, NUMBER)

        response = ask(client, "hear", [theirs.call])

        assert response.status_code == 400
        assert not CustomerRequest.objects.exists()

    def test_a_withdrawal_needs_no_call(self, client, twilio, mine):
        prove(client, twilio, NUMBER)

        ask(client, "withdraw", [])

        assert CustomerRequest.objects.get().kind == "withdraw"

    def test_someone_acting_for_the_caller_says_who_they_are_and_is_flagged(
        self, client, twilio, mine
    ):
        prove(client, twilio, NUMBER)

        assert ask(client, "delete", [mine.call], on_behalf="on").status_code == 400
        ask(client, "delete", [mine.call], on_behalf="on", representative="山田花子（長女）")

        made = CustomerRequest.objects.get()
        assert made.on_behalf
        assert made.representative == "山田花子（長女）"

    def test_a_copy_needs_its_form(self, client, twilio, mine):
        prove(client, twilio, NUMBER)

        assert ask(client, "copy", [mine.call]).status_code == 400
        ask(client, "copy", [mine.call], copy_format="link")

        assert CustomerRequest.objects.get().copy_format == "link"

    def test_without_the_proof_nothing_can_be_asked(self, client, mine):
        response = ask(client, "hear", [mine.call])

        assert response["Location"] == reverse("portal:start")
        assert not CustomerRequest.objects.exists()


class self_capture:
    """Run the on_commit callbacks of what happens inside (the staff email is one)."""

    def __init__(self, client):
        from django.test import TestCase

        self.context = TestCase.captureOnCommitCallbacks(execute=True)

    def __enter__(self):
        self.callbacks = self.context.__enter__()
        return self.callbacks

    def __exit__(self, *exc):
        return self.context.__exit__(*exc)


def made_request(kind, recording, **fields):
    made = CustomerRequest.objects.create(
        phone_number=NUMBER,
        customer=recording.call.customer,
        kind=kind,
        due_at=timezone.now() + timedelta(days=7),
        **fields,
    )
    made.calls.set([recording.call])
    return made


def decide(client, user, made, action, **form):
    client.force_login(user)
    return client.post(
        QUEUE,
        {"action": action, "_selected_action": [made.pk], "confirm": "yes", **form},
        follow=True,
    )


class TestTheQueue:
    def test_staff_see_the_queue_with_overdue_requests_marked(
        self, client, mine, supervisor, compliance_officer
    ):
        late = made_request("hear", mine)
        CustomerRequest.objects.filter(pk=late.pk).update(due_at=timezone.now() - timedelta(days=1))
        for user in (supervisor, compliance_officer):
            client.force_login(user)
            page = client.get(QUEUE + "?due=overdue").content.decode()
            assert late.reference in page
            assert "期限超過" in page

    def test_operators_do_not_see_the_queue(self, client, mine, operator):
        client.force_login(operator.user)

        assert client.get(QUEUE).status_code == 403

    def test_granting_hear_sends_a_listening_link_by_sms(self, client, twilio, mine, supervisor):
        made = made_request("hear", mine)

        decide(client, supervisor, made, "approve", reason="本人確認済み")

        made.refresh_from_db()
        assert made.status == "done"
        assert made.decided_by == supervisor
        link = ListeningLink.objects.get()
        assert link.recording == mine
        sms = twilio.state.messages[-1]
        assert sms["to"] == NUMBER
        assert "/requests/listen/" in sms["body"]
        assert AccessEvent.objects.get(action=Action.REQUEST_DECIDED).actor == supervisor

    def test_a_closed_request_is_not_decided_twice(self, client, twilio, mine, supervisor):
        made = made_request("hear", mine)
        decide(client, supervisor, made, "approve")

        decide(client, supervisor, made, "approve")

        assert ListeningLink.objects.count() == 1
        assert AccessEvent.objects.filter(action=Action.REQUEST_DECIDED).count() == 1

    def test_granting_deletion_purges_with_the_customers_reason(
        self, client, twilio, mine, supervisor
    ):
        made = made_request("delete", mine)

        decide(client, supervisor, made, "approve")

        mine.refresh_from_db()
        assert mine.status == Recording.Status.PURGED
        assert mine.tombstone.reason == Tombstone.Reason.CUSTOMER_REQUEST
        assert mine.tombstone.deleted_by == supervisor
        assert "削除" in twilio.state.messages[-1]["body"]

    def test_a_held_recording_is_kept_and_the_customer_is_told_why(
        self, client, twilio, mine, supervisor
    ):
        retention.place_hold(mine, reason="係争中", by=supervisor)
        made = made_request("delete", mine)

        decide(client, supervisor, made, "approve")

        mine.refresh_from_db()
        assert mine.status == Recording.Status.STORED
        assert not any(window.is_open for window in mine.purposes.all())
        assert "法" in twilio.state.messages[-1]["body"]

    def test_granting_withdrawal_writes_the_ledger(
        self, client, twilio, mine, supervisor, tasks_in_process
    ):
        made = made_request("withdraw", mine)

        with self_capture(client):
            decide(client, supervisor, made, "approve")

        record = ConsentRecord.objects.filter(decision="withdrawn").get()
        assert record.customer == mine.call.customer
        assert made.reference in record.note
        mine.refresh_from_db()
        assert mine.status == Recording.Status.PURGED
        assert mine.tombstone.reason == Tombstone.Reason.CONSENT_WITHDRAWN

    def test_a_refusal_needs_a_lawful_ground_and_tells_the_customer(
        self, client, twilio, mine, supervisor
    ):
        made = made_request("hear", mine)

        decide(client, supervisor, made, "refuse", ground="", reason="")
        assert CustomerRequest.objects.get().status == "received"
        decide(client, supervisor, made, "refuse", ground="identity", reason="本人と確認できず")

        made.refresh_from_db()
        assert made.status == "refused"
        assert made.refusal_ground == "identity"
        assert made.reference in twilio.state.messages[-1]["body"]


class TestListening:
    @pytest.fixture
    def link_url(self, client, twilio, mine, supervisor):
        made = made_request("hear", mine)
        decide(client, supervisor, made, "approve")
        client.logout()
        return re.search(r"https?://\S+", twilio.state.messages[-1]["body"]).group(0)

    def path(self, url):
        return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])

    def test_the_customer_opens_the_link_and_hears_the_recording(self, client, link_url, mine):
        page = client.get(self.path(link_url))

        assert page.status_code == 200
        text = page.content.decode()
        assert "nodownload" in text
        audio_url = re.search(r'src="([^"]+/audio/)"', text).group(1)
        whole = client.get(audio_url)
        assert b"".join(whole.streaming_content) == AUDIO
        part = client.get(audio_url, HTTP_RANGE="bytes=1000-1999")
        assert part.status_code == 206
        assert b"".join(part.streaming_content) == AUDIO[1000:2000]
        event = AccessEvent.objects.get(action=Action.PLAYBACK)
        assert event.recording_id == mine.pk
        assert event.purpose == "disclosure"
        assert event.actor_label == f"customer {NUMBER}"

    def test_the_link_allows_three_plays(self, client, link_url):
        # A play is counted when its audio starts (issue 15), not when the page loads.
        answers = []
        for _ in range(4):
            page = client.get(self.path(link_url))
            answers.append(page.status_code)
            if page.status_code == 200:
                client.get(self.path(link_url) + "audio/", HTTP_RANGE="bytes=0-99")

        assert answers == [200, 200, 200, 403]

    def test_the_audio_needs_the_page_opened_in_the_same_browser(self, client, link_url):
        from django.test import Client

        page = client.get(self.path(link_url)).content.decode()
        audio_url = re.search(r'src="([^"]+/audio/)"', page).group(1)

        assert Client().get(audio_url).status_code == 403

    def test_expired_forged_and_purged_links_are_refused(self, client, link_url, mine):
        path = self.path(link_url)
        assert client.get(path[:-3] + "xx/").status_code == 403
        ListeningLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        assert "期限" in client.get(path).content.decode()
        ListeningLink.objects.update(expires_at=timezone.now() + timedelta(hours=1))
        Recording.objects.filter(pk=mine.pk).update(retain_until=timezone.now())
        retention.purge_due()
        assert client.get(path).status_code == 403


def test_a_customer_sees_only_their_own_requests(client, twilio, mine, theirs):
    other = CustomerFactory(phone_number="+819055556666")
    theirs.call.customer = other
    theirs.call.save()
    CustomerRequest.objects.create(
        phone_number=other.phone_number,
        kind="delete",
        due_at=timezone.now() + timedelta(days=7),
    )
    prove(client, twilio, NUMBER)

    page = client.get(MINE).content.decode()

    assert CustomerRequest.objects.get().reference not in page


def test_the_staff_email_goes_only_to_staff_with_an_address(client, twilio, mine):
    UserFactory(username="no-mail", email="")
    prove(client, twilio, NUMBER)

    with self_capture(client):
        ask(client, "hear", [mine.call])

    assert mail.outbox == []


class TestListeningByPhone:
    @pytest.fixture
    def link_path(self, client, twilio, mine, supervisor):
        made = made_request("hear", mine)
        decide(client, supervisor, made, "approve")
        client.logout()
        url = re.search(r"https?://\S+", twilio.state.messages[-1]["body"]).group(0)
        return "/" + url.split("://", 1)[1].split("/", 1)[1]

    def test_we_call_the_proven_number_and_play_the_recording(
        self, client, twilio, link_path, mine, settings
    ):
        response = client.post(link_path + "call/")

        assert response.status_code == 200
        [call] = twilio.state.outbound_calls
        assert call["to"] == NUMBER
        assert 'language="ja-JP"' in call["twiml"]
        play = re.search(r"<Play>([^<]+)</Play>", call["twiml"]).group(1)
        assert play.startswith(settings.PUBLIC_BASE_URL + "/requests/phone-audio/")
        audio = client.get(play[len(settings.PUBLIC_BASE_URL) :])  # as Twilio fetches it
        assert b"".join(audio.streaming_content) == AUDIO
        event = AccessEvent.objects.get(action=Action.PLAYBACK)
        assert event.detail["by_phone"] is True
        assert ListeningLink.objects.get().plays == 1

    def test_the_phone_audio_url_is_signed_and_short_lived(self, client, twilio, link_path):
        client.post(link_path + "call/")
        play = re.search(r"<Play>([^<]+)</Play>", twilio.state.outbound_calls[0]["twiml"]).group(1)
        path = "/" + play.split("://", 1)[1].split("/", 1)[1]

        assert client.get(path[:-4] + "abc/").status_code == 403
        ListeningLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        assert client.get(path).status_code == 403

    def test_twilio_unreachable_is_said(self, client, link_path, settings):
        settings.TWILIO_API_BASE_URL = "http://127.0.0.1:1"

        response = client.post(link_path + "call/")

        assert response.status_code == 503
        assert "お電話できませんでした" in response.content.decode()


def test_a_copy_as_a_file_is_an_archive_with_the_call_and_consent_details(
    client, twilio, mine, supervisor
):
    import io
    import zipfile

    made = made_request("copy", mine, copy_format="file")
    decide(client, supervisor, made, "approve")
    client.logout()
    url = re.search(r"https?://\S+", twilio.state.messages[-1]["body"]).group(0)
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]

    page = client.get(path).content.decode()
    download = client.get(path + "copy.zip")

    assert "同意" in page
    assert download["Content-Type"] == "application/zip"
    assert download["Content-Disposition"].startswith("attachment")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    assert archive.testzip() is None
    assert archive.read(f"{mine.sid}.wav") == AUDIO
    details = archive.read(f"{made.reference}.txt").decode()
    assert mine.plaintext_sha256 in details
    assert "同意" in details


def test_a_listening_link_does_not_download(client, twilio, mine, supervisor):
    made = made_request("hear", mine)
    decide(client, supervisor, made, "approve")
    client.logout()
    url = re.search(r"https?://\S+", twilio.state.messages[-1]["body"]).group(0)
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    client.get(path)

    assert client.get(path + "copy.zip").status_code == 403
