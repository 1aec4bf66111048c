"""Twilio's webhooks arriving twice at the same instant: a retried /consent writes one
consent record, and a retried first webhook of a withheld number leaves no orphan customer.

The races are real: requests run in threads of their own, each with its own database
connection, on committed data; on PostgreSQL and on SQLite alike.
"""

import threading
import xml.etree.ElementTree as ET

import pytest
from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count
from django.test import Client

from consent.models import ConsentRecord
from contactcenter.models import Call, Customer
from contactcenter.phones import CallerIdStatus

from .factories import CallFactory, PurposeFactory, published_notice
from .helpers.staff import acknowledged_operator
from .helpers.webhooks import twilio_post

INCOMING = "/twilio/voice/incoming"
CONSENT = "/twilio/voice/consent"


def call_params(sid, *, caller="+81312345678"):
    return {
        "CallSid": sid,
        "AccountSid": settings.TWILIO_ACCOUNT_SID,
        "From": caller,
        "To": "+815012345678",
        "CallStatus": "ringing",
        "Direction": "inbound",
    }


def at_once(requests):
    """Send every ``(path, params, query, token)`` at the same moment, each from a thread
    with its own client and database connection; return the responses in order."""
    start = threading.Barrier(len(requests))
    responses = [None] * len(requests)
    errors = []

    def send(index, path, params, query, token):
        try:
            client = Client()
            start.wait()
            responses[index] = twilio_post(client, path, params, query=query, token=token)
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=send, args=(index, *request))
        for index, request in enumerate(requests)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return responses


def twiml(response):
    assert response.status_code == 200
    return ET.fromstring(response.content)


@pytest.fixture
def notice(live_db):
    return published_notice(purposes=[PurposeFactory(code="quality", name_ja="品質向上")])


@pytest.fixture
def operators(live_db):
    return [acknowledged_operator("op-a"), acknowledged_operator("op-b")]


def test_twenty_retries_of_one_consent_answer_write_one_record(notice, operators):
    """GIVEN a caller who pressed 1 WHEN Twilio sends that /consent request 20 times at once
    (a retry while the first still runs, with the same idempotency token as Twilio does)
    THEN the ledger holds one record for the call, and every answer dials with recording."""
    sid = "CA" + "c" * 32
    assert twilio_post(Client(), INCOMING, call_params(sid)).status_code == 200
    answer = {**call_params(sid), "Digits": "1", "CallStatus": "in-progress"}
    query = f"notice={notice.version}&lang=ja&attempt=1"

    responses = at_once([(CONSENT, answer, query, "retried-token")] * 20)

    dials = [twiml(response).find("Dial") for response in responses]
    assert [dial.get("record") for dial in dials] == ["record-from-answer-dual"] * 20
    records = ConsentRecord.objects.filter(call__sid=sid)
    assert records.count() == 1
    assert records.get().decision == ConsentRecord.Decision.GRANTED


def test_first_webhooks_of_withheld_numbers_at_once_leave_no_orphan_customer(notice, operators):
    """GIVEN 30 calls from withheld numbers WHEN each call's first webhook arrives twice at
    the same instant (60 requests, in two rounds of 30) THEN there are 30 calls and 30
    anonymous customers, each with exactly one call: no customer without a call."""
    sids = [f"CA{number:032x}" for number in range(30)]
    for round_sids in (sids[:15], sids[15:]):
        requests = [
            (INCOMING, call_params(sid, caller="anonymous"), "", None)
            for sid in round_sids
            for _copy in range(2)
        ]
        responses = at_once(requests)
        assert all(twiml(response).find("Gather") is not None for response in responses)

    anonymous = Customer.objects.exclude(caller_id_status=CallerIdStatus.PRESENTED)
    assert Call.objects.filter(sid__in=sids).count() == 30
    calls_per_customer = sorted(
        anonymous.annotate(calls_of=Count("calls")).values_list("calls_of", flat=True)
    )
    assert calls_per_customer == [1] * 30


@pytest.mark.django_db
def test_one_keypress_answer_per_call_and_party_is_the_rule_of_the_database():
    """GIVEN a caller's keypress answer on a call THEN a second one for the same party is
    refused by the database, while another call, another party or another method is not."""
    call = CallFactory()
    fields = {
        "customer": call.customer,
        "call": call,
        "party_role": ConsentRecord.PartyRole.CALLER,
        "decision": ConsentRecord.Decision.GRANTED,
        "method": ConsentRecord.Method.IVR_KEYPRESS,
    }
    ConsentRecord.objects.create(**fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        ConsentRecord.objects.create(**fields)
    ConsentRecord.objects.create(**{**fields, "call": CallFactory(customer=call.customer)})
    ConsentRecord.objects.create(**{**fields, "party_role": ConsentRecord.PartyRole.CALLEE})
    ConsentRecord.objects.create(
        **{**fields, "method": ConsentRecord.Method.VERBAL, "decision": "refused"}
    )
    assert ConsentRecord.objects.filter(call=call).count() == 3


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_duplicates_already_in_the_ledger():
    """GIVEN a ledger that already holds one call's keypress answer twice (written before the
    rule) WHEN the migration adds the rule THEN it succeeds, both records stay as they were
    (marked as written before the rule), and the rule holds for records written after."""
    executor = MigrationExecutor(connection)
    before = [("consent", "0002_roles")]
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    OldRecord = old_apps.get_model("consent", "ConsentRecord")
    call = CallFactory()  # the core's tables are not migrated back
    answer = {
        "customer_id": call.customer_id,
        "call_id": call.pk,
        "party_role": "caller",
        "decision": "granted",
        "method": "ivr_keypress",
    }
    for token in ("first", "retry"):
        OldRecord.objects.create(**answer, source_request={"idempotency_token": token})

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    kept = ConsentRecord.objects.filter(call_id=call.pk).order_by("pk")
    assert [record.source_request["idempotency_token"] for record in kept] == ["first", "retry"]
    assert all(record.before_one_answer_per_call for record in kept)
    later = CallFactory(customer=call.customer)
    ConsentRecord.objects.create(**{**answer, "call_id": later.pk})
    with pytest.raises(IntegrityError), transaction.atomic():
        ConsentRecord.objects.create(**{**answer, "call_id": later.pk})
    assert not ConsentRecord.objects.get(call_id=later.pk).before_one_answer_per_call
