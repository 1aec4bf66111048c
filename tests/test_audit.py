"""The access audit trail: append-only, chained by hashes so that an edited, removed or
reordered row is found and named, one unbroken chain however many processes write at once,
read-only in the admin and exported to a CSV file that Excel opens."""

import csv
import re
import threading
from io import StringIO
from itertools import pairwise

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.test import RequestFactory
from django.urls import reverse

from audit.models import AccessEvent, AuditTrailIsAppendOnly
from audit.services import (
    GENESIS_HASH,
    HASHED_FIELDS,
    event_hash,
    record,
    record_many,
    verify_chain,
)
from recordings.models import Recording

from .factories import CallFactory, PurposeFactory, UserFactory, published_notice

pytestmark = pytest.mark.django_db

Action = AccessEvent.Action


def a_recording(**fields):
    call = CallFactory()
    return Recording.objects.create(sid=f"RE{call.pk:032x}", call=call, **fields)


def a_request(user=None, *, ip="192.0.2.10", user_agent="Mozilla/5.0 (Windows NT 10.0)"):
    request = RequestFactory().get("/", REMOTE_ADDR=ip, HTTP_USER_AGENT=user_agent)
    if user is not None:
        request.user = user
    return request


@pytest.fixture
def trail():
    """Five events of different kinds, as the app writes them."""
    listener = UserFactory(username="listener")
    recording = a_recording()
    return [
        record(
            Action.PLAYBACK,
            recording=recording,
            purpose="quality",
            detail={"channel": "both"},
            request=a_request(listener),
        ),
        record(Action.DOWNLOAD, actor=listener, recording=recording, purpose="dispute"),
        record(Action.HOLD_PLACED, actor=listener, recording=recording, detail={"reason": "係争"}),
        record(Action.KEY_ROTATION, actor_label="key rotation", detail={"rewrapped": 12}),
        record(Action.PURGE, actor_label="purge", recording=recording),
    ]


def verify_audit():
    out = StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue()


def tamper(*statements):
    """Run raw SQL as someone with direct access to the database would.

    PostgreSQL's trigger refuses it (the first statement already); to show that the chain
    still finds what a superuser who switches triggers off could do, it is then run that way.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The test's transaction holds deferred foreign-key checks, which TRUNCATE refuses
            # to run past; checking them now lets it reach the trigger.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                cursor.execute(*statements[0])
            with transaction.atomic():
                cursor.execute("SET LOCAL session_replication_role = replica")
                for sql, params in statements:
                    cursor.execute(sql, params)
                cursor.execute("SET LOCAL session_replication_role = DEFAULT")
        else:
            for sql, params in statements:
                cursor.execute(sql, params)


# --- the chain -----------------------------------------------------------------------------


def test_a_chain_of_events_verifies(trail):
    """GIVEN five events WHEN the trail is checked THEN each links to the one before it, from
    1 to 5, and the command reports it intact with the last hash."""
    events = list(AccessEvent.objects.all())
    assert [event.seq for event in events] == [1, 2, 3, 4, 5]
    assert events[0].previous_hash == GENESIS_HASH
    for previous, event in pairwise(events):
        assert event.previous_hash == previous.hash
    assert all(re.fullmatch(r"[0-9a-f]{64}", event.hash) for event in events)

    result = verify_chain()
    assert result.ok
    assert result.checked == 5
    assert result.first_broken_seq is None
    assert f"Audit trail intact: 5 events, last hash {events[-1].hash}" in verify_audit()


def test_each_event_keeps_who_what_and_from_where(trail):
    """The request gives the user, the IP address and the browser; the user name is copied,
    and so is the recording's SID, so that a row reads on its own."""
    playback, download, _hold, rotation, _purge = trail
    playback.refresh_from_db()
    assert playback.actor.username == "listener"
    assert playback.actor_label == "listener"
    assert playback.ip == "192.0.2.10"
    assert playback.user_agent == "Mozilla/5.0 (Windows NT 10.0)"
    assert playback.recording_sid == Recording.objects.get(pk=playback.recording_id).sid
    assert playback.purpose == "quality"
    assert playback.detail == {"channel": "both"}
    assert download.ip is None
    assert rotation.actor is None
    assert rotation.actor_label == "key rotation"
    assert {event.action for event in AccessEvent.objects.all()} == {
        "playback",
        "download",
        "hold_placed",
        "key_rotation",
        "purge",
    }


def test_the_stored_row_gives_the_same_hash_as_when_it_was_written():
    """An IPv6 address, a long user agent, a date and Japanese text in the detail come back
    from the database exactly as they were hashed."""
    from datetime import date

    user = UserFactory(username="田中")
    event = record(
        Action.PLAYBACK,
        detail={"day": date(2026, 4, 1), "note": "研修用", "count": 3, "ok": True},
        request=a_request(user, ip="2001:DB8:0:0::1", user_agent="x" * 400),
    )
    stored = AccessEvent.objects.get(pk=event.pk)
    assert stored.ip == "2001:db8::1"
    assert len(stored.user_agent) == 300
    assert stored.actor_label == "田中"
    assert stored.detail == {"day": "2026-04-01", "note": "研修用", "count": 3, "ok": True}
    assert event_hash({name: getattr(stored, name) for name in HASHED_FIELDS}) == stored.hash
    assert verify_chain().ok


def test_an_anonymous_visitor_is_recorded_by_address_only():
    from django.contrib.auth.models import AnonymousUser

    event = record(Action.REFUSED, request=a_request(AnonymousUser(), ip="198.51.100.7"))

    event.refresh_from_db()
    assert event.actor is None
    assert event.actor_label == ""
    assert event.ip == "198.51.100.7"
    assert verify_chain().ok


def test_record_many_of_nothing_writes_nothing():
    assert record_many([]) == []
    assert not AccessEvent.objects.exists()


def test_record_many_continues_the_chain_after_record(trail):
    """GIVEN five events WHEN three more are appended at once THEN they are 6, 7, 8, in the
    given order, linked to the fifth and to each other."""
    recordings = [a_recording() for _ in range(3)]
    added = record_many(
        [
            {"action": Action.PURGE, "actor_label": "purge", "recording": recording}
            for recording in recordings
        ]
    )

    assert [event.seq for event in added] == [6, 7, 8]
    assert [event.recording_sid for event in added] == [r.sid for r in recordings]
    assert added[0].previous_hash == trail[-1].hash
    assert added[1].previous_hash == added[0].hash
    assert added[2].previous_hash == added[1].hash
    assert AccessEvent.objects.filter(action=Action.PURGE).count() == 4
    assert verify_chain().checked == 8
    assert verify_chain().ok


def test_an_event_written_in_a_transaction_that_rolls_back_leaves_no_gap(trail):
    """Inside a transaction an event is written in a savepoint: if the transaction rolls
    back, the event goes with it, and the next one takes its place in the chain."""

    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned), transaction.atomic():
        record(Action.EXPORT, actor_label="someone")
        raise Abandoned

    after = record(Action.EXPORT, actor_label="someone else")
    assert after.seq == 6
    assert after.previous_hash == trail[-1].hash
    assert verify_chain().ok


def test_an_unknown_action_is_refused():
    with pytest.raises(ValueError):
        record("listened", actor_label="someone")
    assert not AccessEvent.objects.exists()


def test_an_empty_trail_is_intact():
    assert verify_chain().ok
    assert verify_chain().checked == 0
    assert "Audit trail intact: no events yet." in verify_audit()


# --- tampering -----------------------------------------------------------------------------


def test_an_edited_row_is_named(trail):
    """GIVEN an intact trail WHEN someone changes who listened in row 3 THEN the check stops
    at event 3: its content no longer matches its hash."""
    tamper(("UPDATE audit_accessevent SET actor_label = %s WHERE seq = %s", ["someone else", 3]))

    result = verify_chain()
    assert not result.ok
    assert result.first_broken_seq == 3
    assert result.checked == 2
    assert result.problem == "event 3: its content does not match its hash (edited)"
    with pytest.raises(CommandError, match=r"event 3: its content does not match its hash"):
        verify_audit()


def test_an_edit_with_its_hash_recomputed_breaks_the_next_link(trail):
    """Whoever edits a row and recomputes its hash still breaks the link from the next row."""
    event = AccessEvent.objects.get(seq=3)
    forged = {name: getattr(event, name) for name in HASHED_FIELDS}
    forged["detail"] = {"reason": "書き換え"}
    tamper(
        (
            "UPDATE audit_accessevent SET detail = %s, hash = %s WHERE seq = %s",
            ['{"reason": "書き換え"}', event_hash(forged), 3],
        )
    )

    result = verify_chain()
    assert result.first_broken_seq == 4
    assert result.problem == (
        "event 4: previous hash does not match event 3 (a row was removed or reordered)"
    )


def test_a_deleted_row_shows_as_a_gap(trail):
    tamper(("DELETE FROM audit_accessevent WHERE seq = %s", [3]))

    result = verify_chain()
    assert not result.ok
    assert result.first_broken_seq == 3
    assert result.problem == "event 3 is missing (rows 2 → 4)"
    with pytest.raises(CommandError, match=r"event 3 is missing \(rows 2 → 4\)"):
        verify_audit()


def test_a_deleted_first_row_is_named(trail):
    tamper(("DELETE FROM audit_accessevent WHERE seq = %s", [1]))

    result = verify_chain()
    assert result.first_broken_seq == 1
    assert result.problem == "event 1 is missing (the trail starts at 2)"


def test_two_swapped_rows_are_named(trail):
    """GIVEN an intact trail WHEN rows 2 and 3 swap places (all their content but the
    position) THEN the check stops at event 2, which no longer links to event 1."""
    tamper(
        ("UPDATE audit_accessevent SET seq = %s WHERE seq = %s", [1000, 2]),
        ("UPDATE audit_accessevent SET seq = %s WHERE seq = %s", [2, 3]),
        ("UPDATE audit_accessevent SET seq = %s WHERE seq = %s", [3, 1000]),
    )

    assert AccessEvent.objects.get(seq=2).action == Action.HOLD_PLACED
    result = verify_chain()
    assert result.first_broken_seq == 2
    assert result.problem == (
        "event 2: previous hash does not match event 1 (a row was removed or reordered)"
    )
    with pytest.raises(CommandError, match="event 2: previous hash does not match event 1"):
        verify_audit()


def test_emptying_the_trail_shows_in_the_last_hash(trail):
    """An emptied trail is a chain of nothing, so the last hash the command printed earlier is
    what shows it. On PostgreSQL TRUNCATE is refused outright."""
    noted = verify_audit()
    assert trail[-1].hash in noted

    if connection.vendor == "postgresql":
        tamper(("TRUNCATE audit_accessevent", []))
    else:  # SQLite has no TRUNCATE
        tamper(("DELETE FROM audit_accessevent", []))

    assert trail[-1].hash not in verify_audit()
    assert not AccessEvent.objects.exists()


# --- append-only in the app ----------------------------------------------------------------


def test_saving_an_event_again_is_refused(trail):
    event = AccessEvent.objects.get(seq=2)
    event.actor_label = "someone else"
    with pytest.raises(AuditTrailIsAppendOnly):
        event.save()
    event.refresh_from_db()
    assert event.actor_label == "listener"


def test_deleting_an_event_is_refused(trail):
    with pytest.raises(AuditTrailIsAppendOnly):
        AccessEvent.objects.get(seq=2).delete()
    assert AccessEvent.objects.count() == 5


def test_bulk_updates_and_deletes_are_refused(trail):
    with pytest.raises(AuditTrailIsAppendOnly):
        AccessEvent.objects.filter(seq=2).update(actor_label="someone else")
    with pytest.raises(AuditTrailIsAppendOnly):
        AccessEvent.objects.all().delete()
    assert AccessEvent.objects.count() == 5
    assert verify_chain().ok


def test_a_new_event_cannot_overwrite_an_existing_row(trail):
    """An event given an existing row's id is inserted, never written over that row."""
    existing = AccessEvent.objects.get(seq=2)
    copy = AccessEvent.objects.get(seq=2)
    copy._state.adding = True
    copy.actor_label = "someone else"
    with pytest.raises(IntegrityError), transaction.atomic():
        copy.save()
    existing.refresh_from_db()
    assert existing.actor_label == "listener"
    assert verify_chain().ok


def test_a_recording_with_events_cannot_be_deleted(trail):
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        Recording.objects.get(pk=trail[0].recording_id).delete()
    with pytest.raises(ProtectedError):
        Recording.objects.filter(pk=trail[0].recording_id).delete()
    assert Recording.objects.filter(pk=trail[0].recording_id).exists()


# --- several writers at once ---------------------------------------------------------------


def write_concurrently(write, *, threads=4):
    """Run ``write(thread_number)`` in several threads started at the same moment."""
    start = threading.Barrier(threads)
    errors = []

    def run(number):
        try:
            start.wait()
            write(number)
        except Exception as error:  # reported by the test below
            errors.append(error)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert errors == []


@pytest.mark.usefixtures("transactional_db")
def test_writers_in_several_threads_make_one_unbroken_chain():
    """GIVEN four threads each appending 25 events at the same time THEN the trail is one
    chain of 100: no fork, no gap, no duplicate."""

    def write(number):
        for i in range(25):
            record(Action.PLAYBACK, actor_label=f"thread {number}", detail={"i": i})

    write_concurrently(write)

    result = verify_chain()
    assert result.ok, result.problem
    assert result.checked == 100
    assert list(AccessEvent.objects.values_list("seq", flat=True)) == list(range(1, 101))
    for number in range(4):
        assert AccessEvent.objects.filter(actor_label=f"thread {number}").count() == 25


@pytest.mark.usefixtures("transactional_db")
def test_batches_from_several_threads_stay_together():
    """Each batch appended with record_many is contiguous in the chain, whoever else writes."""

    def write(number):
        for batch in range(5):
            record_many(
                [
                    {"action": Action.PURGE, "actor_label": f"purge {number}.{batch}"}
                    for _ in range(5)
                ]
            )

    write_concurrently(write)

    assert verify_chain().checked == 100
    assert verify_chain().ok
    labels = list(AccessEvent.objects.values_list("actor_label", flat=True))
    batches = [labels[i : i + 5] for i in range(0, 100, 5)]
    assert all(len(set(batch)) == 1 for batch in batches)
    assert len({batch[0] for batch in batches}) == 20


# --- the admin -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["supervisor", "compliance_officer"])
def test_supervisors_and_compliance_officers_read_the_trail(client, request, trail, role):
    client.force_login(request.getfixturevalue(role))

    response = client.get(reverse("admin:audit_accessevent_changelist"))
    assert response.status_code == 200
    assert trail[0].recording_sid in response.text
    assert "鍵のローテーション" in response.text  # the process that acted, in Japanese
    response = client.get(reverse("admin:audit_accessevent_change", args=[trail[0].pk]))
    assert response.status_code == 200
    assert trail[0].hash in response.text


def test_operators_do_not_see_the_trail(client, operator, trail):
    client.force_login(operator.user)
    assert client.get(reverse("admin:audit_accessevent_changelist")).status_code == 403
    assert client.get(reverse("admin:audit_accessevent_export")).status_code == 403
    assert not AccessEvent.objects.filter(action=Action.EXPORT).exists()


def test_nobody_adds_changes_or_deletes_events_in_the_admin(client, trail):
    client.force_login(UserFactory(username="root", is_superuser=True))
    event = trail[1]

    assert client.get(reverse("admin:audit_accessevent_add")).status_code == 403
    change_url = reverse("admin:audit_accessevent_change", args=[event.pk])
    assert client.post(change_url, {"actor_label": "someone else"}).status_code == 403
    delete_url = reverse("admin:audit_accessevent_delete", args=[event.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.actor_label == "listener"
    assert verify_chain().ok


def test_the_list_is_searched_by_ip_address_and_filtered_by_action(client, supervisor, trail):
    """An address is searched whole, on its index (a part of one would scan the trail)."""
    client.force_login(supervisor)
    url = reverse("admin:audit_accessevent_changelist")

    response = client.get(url, {"q": "192.0.2.10"})
    assert response.status_code == 200
    assert response.context["cl"].result_list[0] == trail[0]
    assert len(response.context["cl"].result_list) == 1
    assert list(client.get(url, {"q": "192.0.2"}).context["cl"].result_list) == []

    response = client.get(url, {"action__exact": "purge"})
    assert list(response.context["cl"].result_list) == [trail[4]]


def exported(response):
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(StringIO(body.decode("utf-8-sig"))))


def test_the_csv_export_holds_the_filtered_events_and_is_itself_recorded(client, supervisor, trail):
    """GIVEN the list filtered to downloads WHEN a supervisor exports it THEN the
    CSV (with a BOM for Excel) holds exactly those events with their place in the chain,
    and the export is in the trail with its filters."""
    client.force_login(supervisor)
    changelist = client.get(
        reverse("admin:audit_accessevent_changelist"), {"action__exact": "download"}
    )
    export_url = reverse("admin:audit_accessevent_export") + "?action__exact=download"
    assert f'href="{export_url}"' in changelist.text

    response = client.get(export_url)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="access-events-\d{8}-\d{4}\.csv"',
        response["Content-Disposition"],
    )
    rows = exported(response)
    download = trail[1]
    assert [row["seq"] for row in rows] == [str(download.seq)]
    assert rows[0]["hash"] == download.hash
    assert rows[0]["previous_hash"] == download.previous_hash
    assert rows[0]["actor_label"] == "listener"
    assert rows[0]["recording_sid"] == download.recording_sid
    assert rows[0]["purpose"] == "dispute"

    export = AccessEvent.objects.get(action=Action.EXPORT)
    assert export.actor == supervisor
    assert export.actor_label == "supervisor"
    assert export.ip == "127.0.0.1"
    assert export.detail == {"filters": "action__exact=download", "through_seq": 5}
    assert verify_chain().ok


def test_an_unfiltered_export_lists_the_whole_trail_in_order(client, compliance_officer, trail):
    client.force_login(compliance_officer)

    rows = exported(client.get(reverse("admin:audit_accessevent_export")))

    assert [int(row["seq"]) for row in rows] == [1, 2, 3, 4, 5]
    assert rows[2]["detail"] == '{"reason":"係争"}'
    assert rows[0]["previous_hash"] == GENESIS_HASH
    assert all(row["previous_hash"] == prev["hash"] for prev, row in pairwise(rows))
    assert AccessEvent.objects.get(seq=6).action == Action.EXPORT


def test_the_export_does_not_let_a_browser_string_run_as_a_formula(client, supervisor):
    record(Action.PLAYBACK, request=a_request(supervisor, user_agent="=HYPERLINK(1)"))
    client.force_login(supervisor)

    rows = exported(client.get(reverse("admin:audit_accessevent_export")))

    assert rows[0]["user_agent"] == "'=HYPERLINK(1)"


# --- who writes events ---------------------------------------------------------------------


def test_publishing_a_notice_is_recorded(supervisor):
    first = published_notice(purposes=[PurposeFactory()], by=supervisor)
    second = published_notice(purposes=[PurposeFactory()], by=supervisor)

    events = list(AccessEvent.objects.filter(action=Action.NOTICE_PUBLISHED))
    assert [event.detail for event in events] == [
        {"version": first.version},
        {"version": second.version},
    ]
    assert [first.version, second.version] == [1, 2]
    assert all(event.actor == supervisor for event in events)
    assert all(event.actor_label == "supervisor" for event in events)
    assert verify_chain().ok


def test_a_refused_publication_records_nothing(supervisor):
    from django.core.exceptions import ValidationError

    from privacy.services import publish_notice

    notice = published_notice(purposes=[PurposeFactory()], by=supervisor)
    with pytest.raises(ValidationError):
        publish_notice(notice=notice, by=supervisor)
    assert AccessEvent.objects.filter(action=Action.NOTICE_PUBLISHED).count() == 1


def test_the_roles_grant_reading_the_trail_to_supervisors_and_compliance_only(
    supervisor, compliance_officer, operator
):
    assert supervisor.has_perm("audit.view_accessevent")
    assert compliance_officer.has_perm("audit.view_accessevent")
    assert not operator.user.has_perm("audit.view_accessevent")
    for user in (supervisor, compliance_officer):
        assert not user.has_perm("audit.change_accessevent")
        assert not user.has_perm("audit.delete_accessevent")
        assert not user.has_perm("audit.add_accessevent")
