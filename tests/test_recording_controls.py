"""Live recording controls (一時停止 / 再開 / 停止): who may use them, what Twilio is told, what
the call's timeline keeps, and what people see when Twilio refuses."""

import pytest
from django.urls import reverse

from contactcenter.models import Call, CallEvent
from contactcenter.roles import COMPLIANCE, SUPERVISOR

from .factories import CallFactory, UserFactory

pytestmark = pytest.mark.django_db

RecordingState = Call.RecordingState


def twilio_status(twilio, call):
    return twilio.state.recordings[call.twilio_recording_sid]["status"]


def control(client, call, action):
    return client.post(
        reverse("api:call-recording", args=[call.sid]),
        {"action": action},
        content_type="application/json",
    )


class TestWhoMayControl:
    def test_the_operator_on_the_call_may(self, client, live_call, operator, twilio):
        client.force_login(operator.user)
        response = control(client, live_call, "pause")
        assert response.status_code == 200
        assert response.json()["recording_state"] == "paused"
        assert twilio_status(twilio, live_call) == "paused"

    def test_a_supervisor_may_control_any_call(self, client, live_call, twilio):
        client.force_login(UserFactory(username="boss", roles=[SUPERVISOR]))
        assert control(client, live_call, "pause").status_code == 200
        assert twilio_status(twilio, live_call) == "paused"

    @pytest.mark.parametrize("who", ["other_operator", "compliance"])
    def test_others_are_refused_and_nothing_changes(self, client, request, live_call, twilio, who):
        user = (
            request.getfixturevalue("other_operator").user
            if who == "other_operator"
            else UserFactory(username="auditor", roles=[COMPLIANCE])
        )
        client.force_login(user)
        response = control(client, live_call, "pause")
        assert response.status_code == 403
        assert "オペレーターまたは監督者" in response.json()["detail"]
        assert twilio_status(twilio, live_call) == "in-progress"
        assert twilio.state.requests == []
        live_call.refresh_from_db()
        assert live_call.recording_state == RecordingState.RECORDING
        assert not live_call.events.exists()

    def test_anonymous_requests_are_refused(self, client, live_call, twilio):
        assert control(client, live_call, "pause").status_code == 403
        assert twilio.state.requests == []


class TestWhatTwilioIsTold:
    def test_pause_resume_and_stop_reach_twilio_and_the_timeline(
        self, client, live_call, operator, twilio
    ):
        client.force_login(operator.user)
        for action, expected in [
            ("pause", "paused"),
            ("resume", "in-progress"),
            ("stop", "stopped"),
        ]:
            assert control(client, live_call, action).status_code == 200
            assert twilio_status(twilio, live_call) == expected
        forms = [r["form"] for r in twilio.state.requests if r["method"] == "POST"]
        assert forms[0] == {"Status": "paused", "PauseBehavior": "silence"}
        assert forms[1] == {"Status": "in-progress"}
        assert forms[2] == {"Status": "stopped"}
        assert all("/Recordings/Twilio.CURRENT.json" in r["path"] for r in twilio.state.requests)
        events = list(live_call.events.values_list("kind", "actor"))
        assert events == [
            (CallEvent.Kind.RECORDING_PAUSED, operator.user.pk),
            (CallEvent.Kind.RECORDING_RESUMED, operator.user.pk),
            (CallEvent.Kind.RECORDING_STOPPED, operator.user.pk),
        ]

    def test_a_stopped_recording_cannot_be_paused(self, client, live_call, operator, twilio):
        client.force_login(operator.user)
        control(client, live_call, "stop")
        response = control(client, live_call, "pause")
        assert response.status_code == 409
        assert "停止" in response.json()["detail"]

    def test_resume_needs_a_paused_recording(self, client, live_call, operator):
        client.force_login(operator.user)
        assert control(client, live_call, "resume").status_code == 409

    def test_a_finished_call_cannot_be_controlled(self, client, live_call, operator, twilio):
        Call.objects.filter(pk=live_call.pk).update(status=Call.Status.COMPLETED)
        client.force_login(operator.user)
        response = control(client, live_call, "pause")
        assert response.status_code == 409
        assert twilio.state.requests == []

    def test_an_unknown_action_is_a_clear_error(self, client, live_call, operator):
        client.force_login(operator.user)
        response = control(client, live_call, "rewind")
        assert response.status_code == 400
        assert "action" in response.json()

    def test_an_unknown_call_is_404(self, client, operator):
        client.force_login(operator.user)
        response = client.post(
            reverse("api:call-recording", args=["CA" + "9" * 32]),
            {"action": "pause"},
            content_type="application/json",
        )
        assert response.status_code == 404


class TestTwilioErrors:
    def test_twilio_refusing_is_shown_and_kept_on_the_timeline(self, client, operator, twilio):
        # In progress here, but Twilio has never heard of it.
        call = CallFactory(
            operator=operator,
            status=Call.Status.IN_PROGRESS,
            recording_state=RecordingState.RECORDING,
        )
        client.force_login(operator.user)
        response = control(client, call, "pause")
        assert response.status_code == 502
        assert "Twilio がリクエストを拒否しました（20404）" in response.json()["detail"]
        call.refresh_from_db()
        assert call.recording_state == RecordingState.RECORDING
        failure = call.events.get()
        assert failure.kind == CallEvent.Kind.RECORDING_CONTROL_FAILED
        assert failure.actor == operator.user

    def test_twilio_unreachable_says_to_try_again(self, client, live_call, operator, settings):
        settings.TWILIO_API_BASE_URL = "http://127.0.0.1:1"
        client.force_login(operator.user)
        response = control(client, live_call, "pause")
        assert response.status_code == 502
        assert "Twilio に接続できませんでした" in response.json()["detail"]

    def test_wrong_credentials_are_reported(self, client, live_call, operator, settings, twilio):
        settings.TWILIO_AUTH_TOKEN = "not-the-token"
        client.force_login(operator.user)
        response = control(client, live_call, "pause")
        assert response.status_code == 502
        assert "20003" in response.json()["detail"]
        assert twilio_status(twilio, live_call) == "in-progress"


class TestThePage:
    def test_an_operator_sees_their_live_calls_with_the_buttons(
        self, client, live_call, operator, other_operator
    ):
        others = CallFactory(operator=other_operator, status=Call.Status.IN_PROGRESS)
        client.force_login(operator.user)
        page = client.get(reverse("contactcenter:live-calls"))
        assert page.status_code == 200
        assert "通話中" in page.text
        assert f'id="call-{live_call.sid}"' in page.text
        assert f'id="call-{others.sid}"' not in page.text
        assert 'value="pause">一時停止</button>' in page.text
        assert 'value="stop"' in page.text
        assert 'value="resume"' not in page.text

    def test_pausing_from_the_page_shows_the_result(self, client, live_call, operator, twilio):
        client.force_login(operator.user)
        response = client.post(
            reverse("contactcenter:control-recording", args=[live_call.sid]),
            {"action": "pause"},
            follow=True,
        )
        assert "一時停止中" in response.text
        assert twilio_status(twilio, live_call) == "paused"
        assert 'value="resume">再開</button>' in response.text

    def test_a_refusal_is_shown_on_the_page(self, client, live_call, other_operator):
        client.force_login(other_operator.user)
        response = client.post(
            reverse("contactcenter:control-recording", args=[live_call.sid]),
            {"action": "pause"},
            follow=True,
        )
        assert 'role="alert"' in response.text
        assert "オペレーターまたは監督者" in response.text

    def test_the_page_needs_a_login(self, client):
        response = client.get(reverse("contactcenter:live-calls"))
        assert response.status_code == 302
        assert reverse("admin:login") in response.url


class TestTheApi:
    def test_live_calls_list_only_yours_with_their_actions(
        self, client, live_call, operator, other_operator
    ):
        CallFactory(operator=other_operator, status=Call.Status.IN_PROGRESS)
        CallFactory(operator=operator, status=Call.Status.COMPLETED)
        client.force_login(operator.user)
        data = client.get(reverse("api:live-calls")).json()
        assert [row["sid"] for row in data] == [live_call.sid]
        assert data[0]["actions"] == ["pause", "stop"]
        assert data[0]["recording_state"] == "recording"

    def test_the_openapi_schema_describes_the_controls(self, client, operator):
        client.force_login(operator.user)
        response = client.get(reverse("api:schema"), HTTP_ACCEPT="application/json")
        assert response.status_code == 200
        schema = response.json()
        assert "/api/calls/{sid}/recording/" in schema["paths"]
        assert "/api/calls/live/" in schema["paths"]

    def test_the_api_root_lists_the_endpoints(self, client, operator):
        client.force_login(operator.user)
        data = client.get(reverse("api:root"), HTTP_ACCEPT="application/json").json()
        assert data["live_calls"].endswith("/api/calls/live/")
        assert data["schema"].endswith("/api/schema/")
