"""Benchmark: purging recordings past retention, against plain deletion (not a test).

Measures, on PostgreSQL, with ``--count`` (default 100,000) stored recordings past retention,
each with its call and a real file of ``--file-kib`` (default 4 KiB) in the recordings
storage:

* ``plain``  — the baseline: one ``SELECT`` of the due rows' file names, ``os.remove`` of
  every file, one ``DELETE`` of the rows (no key shredding, no tombstones, no hold check);
* ``purge``  — the application's ``recordings.retention.purge_due(batch_size=500)``: batches
  claimed with ``SKIP LOCKED``; in each batch's transaction every recording loses its key
  and gets a tombstone and an event in the audit trail; then its file is deleted through
  ``storages["recordings"]`` and its file name cleared.

Each is measured on a freshly generated set (same size, same layout). Every generated
recording has ``twilio_deleted_at`` set, so ``purge_due``'s final ``confirm_twilio_deletions``
finds nothing to do and no Twilio request is made; ``TWILIO_API_BASE_URL`` points at a closed
local port so that a stray one would fail at once rather than leave the machine.

Memory: the process's resident set size is sampled every 10 ms during each run (peak growth
over the size just before it, and the kernel's exact high-water mark ``VmHWM`` where it can
be reset), and noted after every batch, so the table shows it at 10 %, 50 % and 100 % of the
purge; ``--small-count`` (default 10,000) repeats the purge once on a tenth of the rows, to
show that the peak does not grow with the number of recordings.

    python -m bench.purge [--count 100000] [--runs 3] [--small-count 10000]

Needs PostgreSQL. The benchmark works in a database of its own, named after
``BENCH_DATABASE_URL`` (default postgres://postgres@127.0.0.1:5432/bench) with ``_purge``
appended: it is created and migrated once, kept as a template, and made again from it for
every generated set, because purged recordings leave tombstones and events in the
append-only audit trail that nothing may delete. Prints a table and writes the numbers as
JSON to ``--output``.
"""

import argparse
import hashlib
import json
import os
import shutil
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from bench.ingest import MemorySampler, Timer, _status
from bench.webhooks import bench_environment

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
INSERT_BATCH = 5000
CHECKPOINTS = (0.1, 0.5, 1.0)


class Database:
    """A database of the benchmark's own, made again from a migrated template for every set.

    Purged recordings keep their tombstones and their events in the append-only audit trail,
    which nothing may delete, so every set starts from an empty, migrated database instead.
    """

    def __init__(self, url):
        parts = urlsplit(url)
        self.url = url
        self.name = parts.path.lstrip("/")
        self.template = f"{self.name}_template"
        self.admin_url = parts._replace(path="/postgres").geturl()

    def admin(self, *statements):
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            for statement in statements:
                connection.execute(statement)

    def create(self):
        """An empty database (migrated by ``setup_django``), with no template yet."""
        self.admin(
            f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)',
            f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)',
            f'CREATE DATABASE "{self.name}"',
        )

    def keep_as_template(self):
        from django.db import connections

        connections.close_all()
        self.admin(f'CREATE DATABASE "{self.template}" TEMPLATE "{self.name}"')

    def renew(self):
        from django.db import connections

        connections.close_all()
        self.admin(
            f'DROP DATABASE "{self.name}" WITH (FORCE)',
            f'CREATE DATABASE "{self.name}" TEMPLATE "{self.template}"',
        )

    def drop_template(self):
        from django.db import connections

        connections.close_all()
        self.admin(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')


def setup_django(database, storage_dir):
    env = bench_environment(database.url)
    env.update(
        {
            "RECORDINGS_ROOT": str(storage_dir),
            # A closed port: a Twilio request, which none of the generated rows needs, fails
            # at once instead of reaching out.
            "TWILIO_API_BASE_URL": "http://127.0.0.1:9",
        }
    )
    os.environ.update(env)

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def table(model):
    from django.db import connection

    return connection.ops.quote_name(model._meta.db_table)


def sql(statement, params=()):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def empty_storage(storage_dir):
    shutil.rmtree(storage_dir, ignore_errors=True)
    storage_dir.mkdir(mode=0o700)


def vacuum():
    from contactcenter.models import Call
    from recordings.models import Recording, Tombstone

    for model in (Recording, Tombstone, Call):
        sql(f"VACUUM ANALYZE {table(model)}")


def generate(database, count, storage_dir, file_size):
    """A new database with ``count`` stored recordings past retention, each with a call and a
    file; then everything is synced to disk and the tables vacuumed and analysed."""
    from django.utils import timezone

    from contactcenter.models import Call
    from recordings.models import Recording

    database.renew()
    empty_storage(storage_dir)
    now = timezone.now()
    content = os.urandom(file_size)
    wrapped_key = os.urandom(60)  # nonce (12) + data key (32) + tag (16), as wrap_key makes
    months = [now - timedelta(days=400 - 30 * n) for n in range(12)]
    for month in months:
        (storage_dir / f"{month:%Y/%m}").mkdir(parents=True, exist_ok=True, mode=0o700)
    for start in range(0, count, INSERT_BATCH):
        numbers = range(start, min(start + INSERT_BATCH, count))
        calls = Call.objects.bulk_create(
            Call(
                sid=f"CAbench{n:027d}",
                status=Call.Status.COMPLETED,
                started_at=months[n % 12],
                ended_at=months[n % 12] + timedelta(minutes=3),
                duration=180,
            )
            for n in numbers
        )
        recordings = []
        for n, call in zip(numbers, calls, strict=True):
            sid = f"REbench{n:027d}"
            name = f"{months[n % 12]:%Y/%m}/{sid}-{n:08x}.ccrec"
            descriptor = os.open(storage_dir / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as blob:
                blob.write(content)
            recordings.append(
                Recording(
                    sid=sid,
                    call=call,
                    status=Recording.Status.STORED,
                    duration=180,
                    channels=2,
                    blob_name=name,
                    key_id="bench",
                    wrapped_key=wrapped_key,
                    plaintext_size=file_size - 60,
                    ciphertext_size=file_size,
                    plaintext_sha256=hashlib.sha256(sid.encode()).hexdigest(),
                    ciphertext_sha256=hashlib.sha256(name.encode()).hexdigest(),
                    stored_at=call.ended_at,
                    twilio_deleted_at=call.ended_at,
                    retain_until=now - timedelta(days=1 + n % 300),
                )
            )
        Recording.objects.bulk_create(recordings)
    os.sync()
    vacuum()


class SqlTimer:
    """A database execute wrapper adding up the time per kind of statement."""

    def __init__(self):
        self.seconds = {}

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            kind = sql.lstrip().split(None, 1)[0].upper()
            self.seconds[kind] = self.seconds.get(kind, 0.0) + time.perf_counter() - started

    @property
    def total(self):
        return sum(self.seconds.values())


def run_purge(count):
    from django.db import connection

    from recordings import retention

    sql_timer = SqlTimer()
    sql_after_files = [0.0]
    progress = []
    started = None
    original = retention._delete_files

    def delete_files(rows):
        sql_before = sql_timer.total
        original(rows)
        file_step_sql = sql_timer.total - sql_before  # the UPDATE that clears blob_name
        files.seconds -= file_step_sql  # keep only the file deletions
        sql_after_files[0] += file_step_sql
        previous = progress[-1] if progress else {"done": 0, "seconds": 0.0}
        elapsed = time.perf_counter() - started
        progress.append(
            {
                "done": previous["done"] + len(rows),
                "seconds": elapsed,
                "batch_seconds": elapsed - previous["seconds"],
                "rss_mib": _status("VmRSS") / MiB,
            }
        )

    files = Timer(delete_files)
    retention._delete_files = files
    try:
        with connection.execute_wrapper(sql_timer), MemorySampler() as memory:
            started = time.perf_counter()
            purged = retention.purge_due(batch_size=500)
            seconds = time.perf_counter() - started
    finally:
        retention._delete_files = original
    if purged != count:
        raise RuntimeError(f"purge_due purged {purged} recordings of {count}")
    checkpoints = []
    for fraction in CHECKPOINTS:
        point = next(p for p in progress if p["done"] >= fraction * count)
        checkpoints.append(
            {
                "fraction": fraction,
                **point,
                "rss_growth_mib": point["rss_mib"] - memory.before / MiB,
            }
        )
    return {
        "seconds": seconds,
        "recordings_per_second": count / seconds,
        "sql_seconds": dict(sql_timer.seconds),
        "sql_after_files_seconds": sql_after_files[0],
        "file_seconds": files.seconds,
        "checkpoints": checkpoints,
        "batches": len(progress),
        **memory.result(),
    }


def run_plain(count, storage_dir):
    from django.db import connection
    from django.utils import timezone

    from recordings.models import Recording

    now = timezone.now()
    due = "status = 'stored' AND retain_until <= %s"
    with MemorySampler() as memory:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT blob_name FROM {table(Recording)} WHERE {due}", [now])  # noqa: S608
            names = [name for (name,) in cursor.fetchall()]
        selected = time.perf_counter()
        for name in names:
            os.remove(os.path.join(storage_dir, name))
        removed = time.perf_counter()
        deleted = sql(f"DELETE FROM {table(Recording)} WHERE {due}", [now])  # noqa: S608
        finished = time.perf_counter()
    if len(names) != count or deleted != count:
        raise RuntimeError(f"plain deletion removed {len(names)} files and {deleted} rows")
    seconds = finished - started
    return {
        "seconds": seconds,
        "recordings_per_second": count / seconds,
        "select_seconds": selected - started,
        "file_seconds": removed - selected,
        "delete_seconds": finished - removed,
        **memory.result(),
    }


def measure(database, count, runs, storage_dir, file_size, *, plain=True):
    rows = []
    for number in range(1, runs + 1):
        generate(database, count, storage_dir, file_size)
        row = {"run": number, "count": count, "purge": run_purge(count)}
        if plain:
            generate(database, count, storage_dir, file_size)
            row["plain"] = run_plain(count, storage_dir)
            row["ratio"] = row["plain"]["seconds"] / row["purge"]["seconds"]
        empty_storage(storage_dir)
        rows.append(row)
    return rows


def summarize(rows):
    def median(*path):
        values = []
        for row in rows:
            value = row
            for key in path:
                value = value[key]
            values.append(value)
        return None if None in values else statistics.median(values)

    summary = {
        "purge_recordings_per_second": median("purge", "recordings_per_second"),
        "purge_seconds": median("purge", "seconds"),
        "purge_peak_growth_mib": median("purge", "peak_growth_mib"),
        "purge_hwm_growth_mib": median("purge", "hwm_growth_mib"),
    }
    if "plain" in rows[0]:
        summary.update(
            {
                "plain_recordings_per_second": median("plain", "recordings_per_second"),
                "plain_seconds": median("plain", "seconds"),
                "plain_peak_growth_mib": median("plain", "peak_growth_mib"),
                "ratio": median("ratio"),
            }
        )
    return summary


def print_table(rows, summary):
    print(
        f"{'run':>4} {'count':>7} {'plain s':>8} {'plain rec/s':>11} {'purge s':>8} "
        f"{'purge rec/s':>11} {'ratio':>6} {'plain +MiB':>10} {'purge +MiB':>10}"
    )
    for row in rows:
        plain = row.get("plain")
        print(
            f"{row['run']:>4} {row['count']:>7} "
            + (
                f"{plain['seconds']:>8.2f} {plain['recordings_per_second']:>11.0f} "
                if plain
                else f"{'':>8} {'':>11} "
            )
            + f"{row['purge']['seconds']:>8.2f} {row['purge']['recordings_per_second']:>11.0f} "
            + (f"{row['ratio']:>6.2f} " if plain else f"{'':>6} ")
            + (f"{plain['peak_growth_mib']:>10.1f} " if plain else f"{'':>10} ")
            + f"{row['purge']['peak_growth_mib']:>10.1f}"
        )
    if "ratio" in summary:
        print(
            f"{'med':>4} {'':>7} {summary['plain_seconds']:>8.2f} "
            f"{summary['plain_recordings_per_second']:>11.0f} {summary['purge_seconds']:>8.2f} "
            f"{summary['purge_recordings_per_second']:>11.0f} {summary['ratio']:>6.2f} "
            f"{summary['plain_peak_growth_mib']:>10.1f} {summary['purge_peak_growth_mib']:>10.1f}"
        )
    for row in rows:
        purge = row["purge"]
        points = ", ".join(
            f"{p['fraction']:.0%} {p['rss_growth_mib']:+.1f} MiB at {p['seconds']:.1f} s "
            f"(batch {p['batch_seconds'] * 1000:.0f} ms)"
            for p in purge["checkpoints"]
        )
        sql_time = ", ".join(
            f"{kind} {seconds:.2f}" for kind, seconds in purge["sql_seconds"].items()
        )
        hwm = purge["hwm_growth_mib"]
        print(
            f"  run {row['run']} ({row['count']}) purge RSS: {points}"
            + (f"; exact peak {hwm:+.1f} MiB" if hwm is not None else "")
        )
        print(
            f"      purge time: SQL {sql_time} (of which after the files "
            f"{purge['sql_after_files_seconds']:.2f}); files {purge['file_seconds']:.2f} s"
        )
        if "plain" in row:
            plain = row["plain"]
            print(
                f"      plain time: SELECT {plain['select_seconds']:.2f}, files "
                f"{plain['file_seconds']:.2f}, DELETE {plain['delete_seconds']:.2f} s"
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small-count", type=int, default=10_000, help="0 to skip")
    parser.add_argument("--file-kib", type=int, default=4)
    parser.add_argument("--output", default=str(ROOT / "var" / "bench-purge.json"))
    args = parser.parse_args()

    base_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench")
    parts = urlsplit(base_url)
    database = Database(parts._replace(path=parts.path + "_purge").geturl())
    (ROOT / "var").mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-purge-", dir=ROOT / "var"))
    storage_dir = workdir / "recordings"
    file_size = args.file_kib * 1024
    database.create()
    try:
        setup_django(database, storage_dir)
        database.keep_as_template()
        measure(database, 1000, 1, storage_dir, file_size)  # warm up: code, translations
        rows = measure(database, args.count, args.runs, storage_dir, file_size)
        results = {
            "options": vars(args),
            "database": database.name,
            "runs": rows,
            "median": summarize(rows),
        }
        print_table(rows, results["median"])
        if args.small_count:
            small = measure(database, args.small_count, 1, storage_dir, file_size, plain=False)
            results["small"] = {"runs": small, "median": summarize(small)}
            print()
            print_table(small, results["small"]["median"])
    finally:
        database.drop_template()
        shutil.rmtree(workdir, ignore_errors=True)

    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
