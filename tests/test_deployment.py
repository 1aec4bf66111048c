"""docker-compose.yml describes a deployment that can start: every command names real code,
every service that runs the app gets the production settings, and each has a health check.

No Docker engine runs here, so the file is read and checked rather than started."""

import importlib
import re

import pytest
import yaml
from django.core.management import get_commands

from .helpers.project import BASE_DIR

COMPOSE = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
APP_SERVICES = sorted(name for name, spec in SERVICES.items() if "build" in spec)

# What a production deployment must set (see settings.py's production guard and README).
PRODUCTION_VARIABLES = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "PUBLIC_BASE_URL",
    "DATABASE_URL",
    "REDIS_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "RECORDINGS_MASTER_KEYS",
    "RECORDINGS_ROOT",
}


def env_file_variables(name):
    # The deployment copies .env.example to .env; the example is what the repository ships.
    path = BASE_DIR / (".env.example" if name == ".env" else name)
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if re.match(r"^[A-Z][A-Z0-9_]*=", line))


def service_environment(spec):
    variables = {}
    env_files = spec.get("env_file", [])
    for name in [env_files] if isinstance(env_files, str) else env_files:
        variables.update(env_file_variables(name))
    variables.update(spec.get("environment", {}))
    return variables


def test_the_app_runs_as_web_worker_beat_and_a_migration():
    assert APP_SERVICES == ["beat", "migrate", "web", "worker"]
    assert {"db", "redis"} <= set(SERVICES)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_command_names_real_code(name):
    command = SERVICES[name]["command"]
    program = command[0]
    if program == "gunicorn":
        module_name, attribute = command[1].split(":")
        assert callable(getattr(importlib.import_module(module_name), attribute))
    elif program == "celery":
        app_module = command[command.index("-A") + 1]
        assert importlib.import_module(app_module).celery_app.main == "contactcenter"
        assert command[command.index("-A") + 2] in {"worker", "beat"}
    elif program == "python":
        assert command[1] == "manage.py"
        assert (BASE_DIR / "manage.py").exists()
        assert command[2] in get_commands()
    else:
        pytest.fail(f"{name}: unexpected program {program!r}")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_app_service_gets_every_production_variable(name):
    variables = service_environment(SERVICES[name])
    assert set(variables) >= PRODUCTION_VARIABLES, PRODUCTION_VARIABLES - set(variables)
    assert variables["DEBUG"] == "false"
    assert variables["REDIS_URL"].startswith("redis://redis:")
    assert variables["DATABASE_URL"].startswith("postgres://")
    assert variables["RECORDINGS_ROOT"] in {
        volume.split(":")[1] for volume in SERVICES[name]["volumes"]
    }


@pytest.mark.parametrize("name", ["web", "worker", "beat", "db", "redis"])
def test_long_running_services_have_health_checks(name):
    assert SERVICES[name]["healthcheck"]["test"]


def test_recordings_live_on_a_named_volume():
    assert "recordings" in COMPOSE["volumes"]
    assert "recordings:/data/recordings" in SERVICES["web"]["volumes"]


def test_the_app_waits_for_healthy_database_and_broker_and_for_migrations():
    for name in ("web", "worker", "beat"):
        depends = SERVICES[name]["depends_on"]
        assert depends["db"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_the_dockerfile_runs_as_an_unprivileged_user():
    dockerfile = (BASE_DIR / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11", dockerfile, flags=re.MULTILINE)
    assert re.search(r"^USER app$", dockerfile, flags=re.MULTILINE)


# --- requirements: what production runs, and what only tests and checks need ----------------

TEST_AND_LINT_TOOLS = {"pytest", "pytest-django", "factory-boy", "polib", "playwright", "ruff"}


def requirement_lines(name):
    """(line before, line) for each requirement a file names itself (not those it includes)."""
    lines = (BASE_DIR / name).read_text(encoding="utf-8").splitlines()
    return [
        (lines[number - 1] if number else "", line)
        for number, line in enumerate(lines)
        if line.strip() and not line.startswith(("#", "-r "))
    ]


def requirement_names(name):
    return {
        re.split(r"[\[=<>~!;\s]", line, maxsplit=1)[0].lower().replace("_", "-")
        for _before, line in requirement_lines(name)
    }


def test_the_image_installs_the_runtime_requirements_and_nothing_else():
    dockerfile = (BASE_DIR / "Dockerfile").read_text(encoding="utf-8")
    assert re.findall(r"pip install [^\n]*-r (\S+)", dockerfile) == ["requirements.txt"]
    assert "requirements-dev.txt" not in dockerfile


def test_test_and_lint_tools_are_development_requirements_only():
    development = (BASE_DIR / "requirements-dev.txt").read_text(encoding="utf-8")
    assert "-r requirements.txt" in development.splitlines()
    assert requirement_names("requirements-dev.txt") >= TEST_AND_LINT_TOOLS
    assert requirement_names("requirements.txt").isdisjoint(TEST_AND_LINT_TOOLS)
    assert requirement_names("requirements.txt").isdisjoint(
        requirement_names("requirements-dev.txt")
    )


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-dev.txt"])
def test_every_requirement_is_pinned_with_its_reason_above_it(name):
    for before, line in requirement_lines(name):
        assert re.fullmatch(r"[A-Za-z0-9_.-]+(\[[a-z,]+\])?==[0-9][0-9A-Za-z.]*", line), line
        assert before.startswith("# ") and not before.startswith("# ---"), line
