"""Issue 14, finding 1: the audit trail cannot be rewritten by the application and still verify.

The application's PostgreSQL role does not own the audit table and may only read and append to
it, so it cannot disable the trigger, update or delete rows. Whoever can (the owner, a
superuser) is caught by signed checkpoints of the chain head kept outside the database: a
deleted tail or a chain recomputed from an edited event contradicts a checkpoint, which
``verify_audit`` names."""

import base64
import json
import os
import re
from io import StringIO

import psycopg
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import CommandError, call_command
from django.db import connection

from audit.models import AccessEvent
from audit.services import HASHED_FIELDS, event_hash, record, verify_chain
from audit.tasks import anchor_audit_trail
from contactcenter.settings import DEV_AUDIT_ANCHOR_KEY

from .helpers.project import BASE_DIR, production_variables, run_project
from .helpers.services import require_service

pytestmark = pytest.mark.django_db


def append(count):
    for number in range(count):
        record(AccessEvent.Action.KEY_ROTATION, actor_label="test", detail={"n": number})


def verify_audit(*args):
    out = StringIO()
    call_command("verify_audit", *args, stdout=out)
    return out.getvalue()


def anchored_files():
    _dirs, files = storages["recordings"].listdir("audit-anchors")
    return sorted(files)


def as_owner(*statements):
    """Run SQL as the table's owner would, the append-only trigger switched off first."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # ALTER TABLE refuses to run past the test transaction's deferred key checks.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE audit_accessevent DISABLE TRIGGER USER")
        for sql, params in statements:
            cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_accessevent ENABLE TRIGGER USER")


def require_postgresql():
    if connection.vendor != "postgresql":
        require_service("PostgreSQL", "DATABASE_URL is not a postgres:// URL")


# --- the runtime role ----------------------------------------------------------------------


@pytest.fixture
def runtime_role(transactional_db):
    """A login role of this test's own, granted by ``grant_runtime_role`` as the owner."""
    require_postgresql()
    role = f"audit_runtime_{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'runtime'")
    try:
        call_command("grant_runtime_role", role, stdout=StringIO())
        yield role
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP OWNED BY {role}")
            cursor.execute(f"DROP ROLE {role}")


def runtime_url(role):
    database = connection.settings_dict
    host = database["HOST"] or "127.0.0.1"
    return f"postgres://{role}:runtime@{host}:{database['PORT'] or 5432}/{database['NAME']}"


@pytest.mark.postgresql
def test_the_runtime_role_may_only_read_and_append_to_the_trail(runtime_role):
    append(3)
    attempts = [
        "ALTER TABLE audit_accessevent DISABLE TRIGGER ALL",
        "ALTER TABLE audit_accessevent DISABLE TRIGGER USER",
        f"ALTER TABLE audit_accessevent OWNER TO {runtime_role}",
        "DROP TRIGGER audit_accessevent_no_update_or_delete ON audit_accessevent",
        "UPDATE audit_accessevent SET purpose = 'forged' WHERE seq = 2",
        "DELETE FROM audit_accessevent WHERE seq = 3",
        "TRUNCATE audit_accessevent",
        "SET session_replication_role = replica",
    ]
    refused = 0
    with psycopg.connect(runtime_url(runtime_role), autocommit=True) as runtime:
        for sql in attempts:
            try:
                runtime.execute(sql)
            except psycopg.errors.InsufficientPrivilege:
                refused += 1
        assert runtime.execute("SELECT count(*) FROM audit_accessevent").fetchone() == (3,)
    assert refused == len(attempts)

    # The application itself, connected as that role, appends to the chain.
    result = run_project(
        [
            "manage.py",
            "shell",
            "-c",
            "from audit.services import record; record('key_rotation', actor_label='runtime')",
        ],
        DATABASE_URL=runtime_url(runtime_role),
    )
    assert result.returncode == 0, result.stderr
    assert list(AccessEvent.objects.values_list("seq", "actor_label"))[-1] == (4, "runtime")
    assert verify_chain().ok


@pytest.fixture
def server(db):
    """A connection to the test's PostgreSQL server outside the test's transaction."""
    require_postgresql()
    database = connection.settings_dict
    with psycopg.connect(
        host=database["HOST"] or "127.0.0.1",
        port=database["PORT"] or 5432,
        user=database["USER"],
        password=database["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as server:
        yield server


@pytest.mark.postgresql
def test_migrate_runs_as_the_owner_and_grants_the_runtime_role(server):
    """What docker compose does: migrate connects as DATABASE_MIGRATE_URL's role, and the
    application's role can then work but owns nothing."""
    suffix = os.getpid()
    owner, app, name = f"a14_owner_{suffix}", f"a14_app_{suffix}", f"a14_migrate_{suffix}"
    server.execute(f"CREATE ROLE {owner} LOGIN PASSWORD 'pw'")
    server.execute(f"CREATE ROLE {app} LOGIN PASSWORD 'pw'")
    server.execute(f"CREATE DATABASE {name} OWNER {owner}")
    host = connection.settings_dict["HOST"] or "127.0.0.1"
    port = connection.settings_dict["PORT"] or 5432
    app_url = f"postgres://{app}:pw@{host}:{port}/{name}"
    try:
        migrated = run_project(
            ["manage.py", "migrate", "--noinput"],
            timeout=120,
            DATABASE_URL=app_url,
            DATABASE_MIGRATE_URL=f"postgres://{owner}:pw@{host}:{port}/{name}",
        )
        assert migrated.returncode == 0, migrated.stderr
        assert f"Granted {app} read and write on" in migrated.stdout
        appended = run_project(
            [
                "manage.py",
                "shell",
                "-c",
                "from audit.services import record; record('key_rotation', actor_label='app')\n"
                "from django.db import connection\n"
                "try:\n"
                "    connection.cursor().execute("
                "'ALTER TABLE audit_accessevent DISABLE TRIGGER USER')\n"
                "except Exception as error:\n"
                "    print('refused:', error)",
            ],
            DATABASE_URL=app_url,
        )
        assert appended.returncode == 0, appended.stderr
        assert "refused: must be owner of table audit_accessevent" in appended.stdout
        with psycopg.connect(app_url.replace(f"{app}:pw", f"{owner}:pw")) as as_owner_role:
            owners = as_owner_role.execute(
                "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
            events = as_owner_role.execute("SELECT actor_label FROM audit_accessevent").fetchall()
        assert owners == [(owner,)]
        assert events == [("app",)]
    finally:
        server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        server.execute(f"DROP ROLE IF EXISTS {app}")
        server.execute(f"DROP ROLE IF EXISTS {owner}")


@pytest.mark.postgresql
def test_a_superuser_cannot_be_made_the_runtime_role():
    require_postgresql()
    with pytest.raises(CommandError, match="superuser"):
        call_command("grant_runtime_role", connection.settings_dict["USER"])


# --- checkpoints ---------------------------------------------------------------------------


@pytest.mark.parametrize(("deleted", "first_contradicted"), [(1, 30), (5, 30), (25, 10)])
def test_deleting_the_newest_events_is_named_by_the_first_checkpoint_it_contradicts(
    deleted, first_contradicted
):
    for _ in range(3):
        append(10)
        verify_audit("--anchor")
    assert anchored_files() == ["000000000010.json", "000000000020.json", "000000000030.json"]

    as_owner(("DELETE FROM audit_accessevent WHERE seq > %s", [30 - deleted]))

    assert verify_chain().ok  # the shortened chain alone still verifies
    with pytest.raises(CommandError) as refusal:
        verify_audit()
    problems = str(refusal.value).splitlines()[1:]
    assert problems[0].startswith(
        f"checkpoint audit-anchors/{first_contradicted:012d}.json (event {first_contradicted},"
    )
    assert f"the trail ends at event {30 - deleted}" in problems[0]


def test_an_edited_event_with_its_hashes_recomputed_contradicts_the_checkpoint():
    append(10)
    verify_audit("--anchor")
    rows = list(AccessEvent.objects.order_by("seq").values("id", *HASHED_FIELDS, "hash"))
    previous_hash = rows[2]["hash"]
    statements = []
    for row in rows[3:]:
        if row["seq"] == 4:
            row["detail"] = {"n": "rewritten"}
        row["previous_hash"] = previous_hash
        row["hash"] = previous_hash = event_hash(row)
        statements.append(
            (
                "UPDATE audit_accessevent SET detail = %s, previous_hash = %s, hash = %s"
                " WHERE id = %s",
                [json.dumps(row["detail"]), row["previous_hash"], row["hash"], row["id"]],
            )
        )
    # Hashes are unique: move them aside first so the rewritten ones can take their place.
    as_owner(
        ("UPDATE audit_accessevent SET hash = 'x' || seq WHERE seq > 3", []),
        *statements,
    )

    assert verify_chain().ok  # the project's own function recomputed a consistent chain
    with pytest.raises(CommandError) as refusal:
        verify_audit()
    assert "checkpoint audit-anchors/000000000010.json (event 10, anchored at " in str(
        refusal.value
    )
    assert "event 10's hash differs from the checkpoint's (the chain was rewritten)" in str(
        refusal.value
    )


def test_a_checkpoint_with_a_bad_signature_is_reported():
    append(4)
    verify_audit("--anchor")
    storage = storages["recordings"]
    name = "audit-anchors/000000000004.json"
    with storage.open(name) as file:
        document = json.load(file)
    # Someone who rewrote the chain writes a checkpoint that agrees, signed with another key.
    forger = Ed25519PrivateKey.generate()
    content = {"seq": 4, "hash": "f" * 64, "anchored_at": document["anchored_at"]}
    signed = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    forged = {**document, **content, "signature": base64.urlsafe_b64encode(forger.sign(signed))}
    storage.delete(name)
    storage.save(
        name, ContentFile(json.dumps({**forged, "signature": forged["signature"].decode()}))
    )

    with pytest.raises(CommandError, match=r"000000000004\.json .*signature does not verify"):
        verify_audit()


def test_the_beat_task_anchors_the_head_only_when_the_trail_grew():
    assert settings.CELERY_BEAT_SCHEDULE["anchor-audit-trail"]["task"] == (
        "audit.tasks.anchor_audit_trail"
    )
    assert anchor_audit_trail.apply().get() is None  # nothing to anchor yet
    append(3)
    assert anchor_audit_trail.apply().get() == 3
    assert anchor_audit_trail.apply().get() is None
    append(1)
    assert anchor_audit_trail.apply().get() == 4
    assert anchored_files() == ["000000000003.json", "000000000004.json"]
    assert "agrees with 2 signed checkpoints" in verify_audit()


def test_an_auditor_checks_the_checkpoints_offline_with_the_public_key(tmp_path, settings):
    settings.AUDIT_ANCHOR_DIR = str(tmp_path / "anchors")
    append(2)
    verify_audit("--anchor")
    public_key = verify_audit("--public-key").strip()
    assert len(public_key) == 44

    report = verify_audit("--anchors-only", settings.AUDIT_ANCHOR_DIR, "--public-key", public_key)
    assert "1 checkpoints, every signature verifies" in report
    assert report.startswith(f"2\t{AccessEvent.objects.get(seq=2).hash}\t")

    other = verify_audit_key(Ed25519PrivateKey.generate())
    with pytest.raises(CommandError, match="signature does not verify"):
        verify_audit("--anchors-only", settings.AUDIT_ANCHOR_DIR, "--public-key", other)


def verify_audit_key(private_key):
    from audit.anchors import public_key_text

    return public_key_text(private_key.public_key())


# --- settings and deployment ---------------------------------------------------------------


def test_production_refuses_the_development_anchor_key():
    refused = run_project(
        ["manage.py", "check"], **production_variables(AUDIT_ANCHOR_KEY=DEV_AUDIT_ANCHOR_KEY)
    )
    assert refused.returncode != 0
    assert "AUDIT_ANCHOR_KEY: set your own Ed25519 key" in refused.stderr
    short = run_project(["manage.py", "check"], **production_variables(AUDIT_ANCHOR_KEY="AAAA"))
    assert "AUDIT_ANCHOR_KEY: must decode to 32 bytes" in short.stderr


def test_the_migration_url_must_name_the_same_database():
    result = run_project(
        ["manage.py", "check"],
        DATABASE_URL="postgres://app@db:5432/contactcenter",
        DATABASE_MIGRATE_URL="postgres://owner@db:5432/other",
    )
    assert "DATABASE_MIGRATE_URL: must name the same database as DATABASE_URL" in result.stderr


COMPOSE = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text(encoding="utf-8"))


def database_user(url):
    # The password is a compose variable (``${X:?message}``), which urlsplit cannot read.
    return re.match(r"postgres://([^:@]+)", url).group(1)


def database_name(url):
    return url.rsplit("/", 1)[1]


def test_compose_runs_the_app_as_the_runtime_role_and_migrations_as_the_owner():
    services = COMPOSE["services"]
    for name in ("web", "worker", "beat"):
        environment = services[name]["environment"]
        assert database_user(environment["DATABASE_URL"]) == "contactcenter_app"
        assert "DATABASE_MIGRATE_URL" not in environment
    migrate = services["migrate"]["environment"]
    assert database_user(migrate["DATABASE_MIGRATE_URL"]) == "contactcenter"
    assert database_name(migrate["DATABASE_MIGRATE_URL"]) == database_name(migrate["DATABASE_URL"])
    db = services["db"]
    assert db["environment"]["POSTGRES_USER"] == "postgres"
    init = next(volume for volume in db["volumes"] if "docker-entrypoint-initdb.d" in volume)
    script = (BASE_DIR / init.split(":")[0].removeprefix("./")).read_text(encoding="utf-8")
    assert "CREATE ROLE contactcenter LOGIN NOSUPERUSER" in script
    assert "CREATE ROLE contactcenter_app LOGIN NOSUPERUSER" in script
    assert "CREATE DATABASE contactcenter OWNER contactcenter;" in script
    example = (BASE_DIR / ".env.example").read_text(encoding="utf-8").splitlines()
    assert {"AUDIT_ANCHOR_KEY=", "POSTGRES_APP_PASSWORD=", "POSTGRES_PASSWORD="} <= set(example)
