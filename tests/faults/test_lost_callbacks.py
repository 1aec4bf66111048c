"""Callbacks Twilio gave up on: whole calls through the emulator's caller driver against the
live app, with every status and recording callback of the customer's call lost (and, on
some calls, the end of the operator's leg too), plus recordings of calls whose webhooks
never reached us at all. After ``reconcile_twilio``, nothing is lost: every recording at
Twilio is fetched or deleted there, and no call is left in progress."""

import time

import pytest
from django.conf import settings
from django.core.management import call_command

from contactcenter.models import Call, Operator
from recordings.models import ReconciliationRun, Recording

from ..factories import PurposeFactory, published_notice
from ..helpers.staff import acknowledged_operator

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

CALLS = 50
UNSEEN_CALLS = 5  # calls whose webhooks never reached us (the database was down)
OPERATORS = 10
Status = Recording.Status


@pytest.fixture
def center(live_db, tasks_in_process):
    published_notice(purposes=[PurposeFactory(code="quality", name_ja="品質向上")])
    return [acknowledged_operator(f"op{n}") for n in range(OPERATORS)]


@pytest.fixture
def lossy_driver(live_server, twilio):
    from twilio_emulator import CallDriver

    return CallDriver(
        app_url=live_server.url,
        public_base_url=settings.PUBLIC_BASE_URL,
        account_sid=settings.TWILIO_ACCOUNT_SID,
        auth_token=settings.TWILIO_AUTH_TOKEN,
        emulator_url=twilio.url,
    )


def unseen_call(twilio, n):
    """A call Twilio handled and recorded while none of its webhooks reached us."""
    _, call = twilio.state.control(
        "POST", "/_emulator/calls", {"from": f"+8190555{n:05d}", "to": "+815012345678"}
    )
    _, recording = twilio.state.control("POST", f"/_emulator/calls/{call['sid']}/recordings", {})
    twilio.state.control("POST", f"/_emulator/recordings/{recording['sid']}/complete", {})
    twilio.state.control("POST", f"/_emulator/calls/{call['sid']}/hangup", {})


def lost(twilio):
    """Recordings Twilio still holds or that we neither stored nor refused, and open calls."""
    at_twilio = {sid for sid, r in twilio.state.recordings.items() if not r["deleted"]}
    ours = dict(Recording.objects.values_list("sid", "status"))
    unsettled = {
        sid
        for sid in twilio.state.recordings
        if ours.get(sid) not in (Status.STORED, Status.REFUSED)
    }
    open_calls = Call.objects.exclude(status__in=Call.FINAL_STATUSES).count()
    return at_twilio, unsettled, open_calls


def test_after_reconciliation_no_callback_is_lost(lossy_driver, twilio, center):
    for n in range(CALLS):
        # Every status and recording callback of the call is lost; on every tenth call the
        # end of the operator's leg too, so the operator stays "on a call".
        lossy_driver.drop_callbacks = {"status", "recording"} | (
            {"leg:completed"} if n % 10 == 9 else set()
        )
        lossy_driver.run(digits="2" if n % 5 == 4 else "1", talk_seconds=1)
    for n in range(UNSEEN_CALLS):
        unseen_call(twilio, n)

    at_twilio, unsettled, open_calls = lost(twilio)
    recorded = CALLS - CALLS // 5
    assert len(at_twilio) == recorded + UNSEEN_CALLS
    assert len(unsettled) == recorded + UNSEEN_CALLS  # none known to us
    assert open_calls == CALLS  # every call still "ringing"
    assert Operator.objects.filter(availability=Operator.Availability.ON_CALL).count() == 5

    started = time.monotonic()
    call_command("reconcile_twilio")
    seconds = time.monotonic() - started

    run = ReconciliationRun.objects.get()
    at_twilio, unsettled, open_calls = lost(twilio)
    assert (at_twilio, unsettled, open_calls) == (set(), set(), 0)
    stored = Recording.objects.filter(status=Status.STORED).count()
    refused = Recording.objects.filter(status=Status.REFUSED).count()
    assert (stored, refused) == (recorded, UNSEEN_CALLS)
    assert Recording.objects.filter(twilio_deleted_at__isnull=True).count() == 0
    assert not Operator.objects.filter(availability=Operator.Availability.ON_CALL).exists()
    assert not Call.objects.filter(recording_state=Call.RecordingState.REQUESTED).exists()
    assert Call.objects.filter(status=Call.Status.COMPLETED, duration__isnull=False).count() == (
        CALLS + UNSEEN_CALLS
    )
    assert run.status == ReconciliationRun.Status.SUCCEEDED
    assert run.errors == 0
    assert run.calls_closed == CALLS + UNSEEN_CALLS

    again = ReconciliationRun.objects.get(pk=_second_run())
    assert (again.created, again.queued, again.deleted_at_twilio, again.calls_closed) == (0,) * 4
    print(
        f"\nlost callbacks: {len(lossy_driver.dropped)} dropped over {CALLS} calls, "
        f"{UNSEEN_CALLS} calls never seen; reconciliation in {seconds:.2f} s: "
        f"{run.recordings_seen} recordings seen, {run.created} created, {run.queued} queued, "
        f"{stored} stored, {run.deleted_at_twilio} deleted at Twilio, "
        f"{run.calls_closed} calls closed; callbacks lost after it: 0"
    )


def _second_run():
    call_command("reconcile_twilio")
    return ReconciliationRun.objects.order_by("-started_at", "-pk").first().pk
