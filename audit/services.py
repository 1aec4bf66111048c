"""Writing to the access audit trail, and checking that nobody rewrote it.

Every event is chained to the one before it: its ``hash`` is the SHA-256 of a canonical JSON
of its own content and the previous event's hash, and ``seq`` counts 1, 2, 3, … So an edited
row no longer matches its hash, a removed row leaves a gap, and rows swapped or reordered no
longer link. Removing the newest rows leaves a shorter chain that still verifies; comparing
the last hash with one noted earlier (``manage.py verify_audit`` prints it) catches that.
"""

import csv
import hashlib
import json
import re
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connections, router, transaction
from django.db.models import Max
from django.utils import timezone

from contactcenter.proxies import client_address

from .models import AccessEvent

GENESIS_HASH = "0" * 64

# The PostgreSQL advisory lock that serialises appends, in every process: a fixed number no
# other code uses (the ASCII of "audit" followed by 1).
CHAIN_LOCK_ID = 0x61756469740001

# SQLite has no advisory locks; threads of one process (the development server, the tests)
# take this lock instead. Between processes the unique ``seq`` makes a race fail, not fork.
_sqlite_chain_lock = threading.Lock()

# A writer that took the same ``seq`` first (another process on SQLite) makes an insert fail;
# it is tried this many times in all.
APPEND_ATTEMPTS = 5

HASHED_FIELDS = (
    "seq",
    "occurred_at",
    "actor_id",
    "actor_label",
    "action",
    "recording_id",
    "recording_sid",
    "purpose",
    "detail",
    "ip",
    "user_agent",
    "previous_hash",
)


def event_hash(values):
    """The SHA-256 (hex) of an event's hashed fields, given as a mapping of field names.

    The JSON is canonical (sorted keys, no spaces, UTF-8) so the same content always gives
    the same hash, on any database and in any process.
    """
    content = {name: values[name] for name in HASHED_FIELDS}
    content["occurred_at"] = (
        content["occurred_at"].astimezone(UTC).isoformat(timespec="microseconds")
    )
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    action,
    *,
    actor=None,
    actor_label="",
    recording=None,
    purpose="",
    detail=None,
    request=None,
):
    """Append one event to the trail and return it.

    Guarantees: the event is chained after the newest event, even with other threads and
    processes appending at the same time; inside a transaction it is written in a savepoint
    and disappears with that transaction if it rolls back (on PostgreSQL other writers then
    wait for that transaction to end, so keep it short). ``detail`` is stored as JSON
    (dates and lazy translations become strings); keep it to strings, whole numbers,
    booleans, lists and dicts.
    """
    return _append(
        [
            _new_event(
                action,
                actor=actor,
                actor_label=actor_label,
                recording=recording,
                purpose=purpose,
                detail=detail,
                request=request,
            )
        ]
    )[0]


def record_many(events):
    """Append several events, in the given order, with one lock and one INSERT; return them.

    Each item is a dict of ``record``'s keyword arguments, ``action`` included. The events
    are consecutive in the chain: no other writer's event comes between them.
    """
    events = [_new_event(**event) for event in events]
    return _append(events) if events else []


def _new_event(
    action,
    *,
    actor=None,
    actor_label="",
    recording=None,
    purpose="",
    detail=None,
    request=None,
):
    ip, user_agent = None, ""
    if request is not None:
        ip = client_ip(request)
        user_agent = request.META.get("HTTP_USER_AGENT", "")[:300]
        user = getattr(request, "user", None)
        if actor is None and user is not None and user.is_authenticated:
            actor = user
    if actor is not None and not actor.is_authenticated:
        actor = None  # an anonymous visitor: only the request's address and browser are known
    if actor is not None and not actor_label:
        actor_label = actor.get_username()
    return AccessEvent(
        action=AccessEvent.Action(action).value,
        actor=actor,
        actor_label=actor_label[:150],
        recording_id=recording.pk if recording is not None else None,
        recording_sid=recording.sid if recording is not None else "",
        purpose=purpose,
        # Stored as it will be read back, so that the hash computed now is the one verified.
        detail=json.loads(json.dumps(detail or {}, cls=DjangoJSONEncoder)),
        ip=ip,
        user_agent=user_agent,
    )


def client_ip(request):
    """The client's address (behind trusted proxies: ``contactcenter.proxies``) in the form
    the database returns it, or None if the request does not carry one."""
    address = client_address(request)
    if address is None:
        return None
    return AccessEvent._meta.get_field("ip").get_prep_value(address)


def _append(events):
    using = router.db_for_write(AccessEvent)
    for _attempt in range(APPEND_ATTEMPTS - 1):
        try:
            return _append_once(events, using=using)
        except IntegrityError:
            continue  # another process took the same seq: read the end of the chain again
    return _append_once(events, using=using)


def _append_once(events, *, using):
    connection = connections[using]
    # The Python lock is taken outside the transaction so that, when this is the outermost
    # one, it has committed before the next thread reads the end of the chain.
    with (
        _sqlite_chain_lock if connection.vendor == "sqlite" else nullcontext(),
        transaction.atomic(using),
    ):
        if connection.vendor == "postgresql":
            # Held until the outermost transaction ends, so that no writer reads an end of
            # the chain that another, uncommitted writer has already extended.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_ID])
        _link(events, using=using)
        return AccessEvent.objects.using(using).bulk_create(events)


def _link(events, *, using):
    last = AccessEvent.objects.using(using).order_by("-seq").values_list("seq", "hash").first()
    seq, previous_hash = last or (0, GENESIS_HASH)
    now = _database_now(using)
    for event in events:
        seq += 1
        event.seq = seq
        event.occurred_at = now
        event.previous_hash = previous_hash
        event.hash = previous_hash = event_hash(
            {name: getattr(event, name) for name in HASHED_FIELDS}
        )


def _database_now(using):
    """The database's time now, as it will be stored (the hash is computed from it).

    Taken from the database, not the host: events written by hosts whose clocks differ still
    follow one another in time. Read after the chain's lock is taken, so it is later than
    the time of the event before. PostgreSQL's ``clock_timestamp()`` is the time of reading
    (``CURRENT_TIMESTAMP`` would be the transaction's start, possibly before that lock);
    SQLite's ``CURRENT_TIMESTAMP`` has whole seconds only, so its milliseconds are asked for.
    """
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT clock_timestamp()")
            return cursor.fetchone()[0].astimezone(UTC)
        cursor.execute("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")
        return datetime.fromisoformat(cursor.fetchone()[0]).replace(tzinfo=UTC)


@dataclass(frozen=True)
class ChainCheck:
    """What ``verify_chain`` found: ``ok``, how many events it checked, and the first break."""

    ok: bool
    checked: int
    first_broken_seq: int | None = None
    problem: str = ""
    last_hash: str = ""


def verify_chain():
    """Recompute every hash in ``seq`` order and report the first broken link.

    Reads the trail in chunks, so memory stays bounded however long it is. The problem is
    given in English for logs and the command line, e.g. "event 17: its content does not
    match its hash (edited)". An event whose time is earlier than the one before it is a
    break too: times come from the database's clock, so the trail never goes back in time.
    """
    expected_seq, previous_hash, checked, previous_time = 1, GENESIS_HASH, 0, None
    rows = AccessEvent.objects.order_by("seq").values(*HASHED_FIELDS, "hash")
    for row in rows.iterator(chunk_size=2000):
        seq = row["seq"]
        problem = None
        if seq > expected_seq:
            missing = (
                f"event {expected_seq} is missing"
                if seq == expected_seq + 1
                else f"events {expected_seq} to {seq - 1} are missing"
            )
            problem = (
                f"{missing} (rows {expected_seq - 1} → {seq})"
                if expected_seq > 1
                else f"{missing} (the trail starts at {seq})"
            )
            seq = expected_seq
        elif seq < expected_seq:
            problem = f"event {seq} is out of sequence (expected {expected_seq})"
        elif row["previous_hash"] != previous_hash:
            problem = (
                f"event {seq}: previous hash does not match event {seq - 1} "
                "(a row was removed or reordered)"
                if seq > 1
                else "event 1: previous hash is not the start of the chain"
            )
        elif event_hash(row) != row["hash"]:
            problem = f"event {seq}: its content does not match its hash (edited)"
        elif previous_time is not None and row["occurred_at"] < previous_time:
            problem = (
                f"event {seq}: its time ({row['occurred_at'].isoformat()}) is earlier than "
                f"event {seq - 1}'s ({previous_time.isoformat()}): written with a clock that "
                "was behind, or its time was changed"
            )
        if problem:
            return ChainCheck(False, checked, seq, problem, previous_hash)
        checked += 1
        expected_seq += 1
        previous_hash = row["hash"]
        previous_time = row["occurred_at"]
    return ChainCheck(True, checked, last_hash="" if checked == 0 else previous_hash)


EXPORT_COLUMNS = (*HASHED_FIELDS, "hash")


def export_csv(events, *, request, filters=""):
    """Record the export, then return the CSV of ``events`` as an iterator of text chunks.

    Guarantees: the export is in the trail (an EXPORT event with ``filters`` and the last
    ``seq`` it covers) before a single row is read; it covers the events that existed at
    that moment, in ``seq`` order, so that the chain can be checked from the file; it is
    read in chunks, so memory stays bounded however many rows match. The file starts with
    a UTF-8 byte order mark, without which Excel reads Japanese as mojibake. Free-text
    cells that a spreadsheet would run as a formula are prefixed with an apostrophe.
    """
    through_seq = AccessEvent.objects.aggregate(last=Max("seq"))["last"] or 0
    record(
        AccessEvent.Action.EXPORT,
        detail={"filters": filters, "through_seq": through_seq},
        request=request,
    )
    rows = events.filter(seq__lte=through_seq).order_by("seq").values_list(*EXPORT_COLUMNS)
    return _csv_chunks(rows)


class _Echo:
    """A file-like object whose ``write`` returns what it is given, for ``csv.writer``."""

    def write(self, value):
        return value


def _csv_chunks(rows):
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(EXPORT_COLUMNS)
    detail = EXPORT_COLUMNS.index("detail")
    occurred_at = EXPORT_COLUMNS.index("occurred_at")
    for row in rows.iterator(chunk_size=2000):
        row = [_cell(value) for value in row]
        row[occurred_at] = timezone.localtime(row[occurred_at]).isoformat()
        row[detail] = json.dumps(
            row[detail], sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        yield writer.writerow(row)


# Excel and LibreOffice skip leading blanks (the ideographic space U+3000 included) and read
# the fullwidth ＝＋－＠ a Japanese input method types as their ASCII forms, then run the cell
# as a formula.
_FORMULA_START = re.compile(r"[\s\u3000]*[=+\-@\uff1d\uff0b\uff0d\uff20]")


def _cell(value):
    # CSV injection: a spreadsheet runs a cell that starts with one of these as a formula,
    # and a browser's user agent is whatever the client sent. A cell that starts with a tab,
    # a line break or other white space is quoted as well: nothing we write starts so.
    if isinstance(value, str) and (value[:1].isspace() or _FORMULA_START.match(value)):
        return "'" + value
    return value
