"""Settings come from the environment; a wrong or missing production value stops the start
with a message naming the variable, and production settings pass Django's deploy checks."""

import re

import pytest
from django.conf import settings

from .helpers.project import BASE_DIR, production_variables, run_project

CHECK = ["manage.py", "check"]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"DEBUG": "flase"}, "DEBUG"),
        ({"DEBUG": "false"}, "SECRET_KEY"),
        (production_variables(SECRET_KEY="short"), "SECRET_KEY"),
        (production_variables(ALLOWED_HOSTS="*"), "ALLOWED_HOSTS"),
        (production_variables(PUBLIC_BASE_URL="http://callcenter.example.jp"), "PUBLIC_BASE_URL"),
        (production_variables(TWILIO_AUTH_TOKEN=""), "TWILIO_AUTH_TOKEN"),
        (production_variables(TWILIO_ACCOUNT_SID="AC" + "0" * 32), "TWILIO_ACCOUNT_SID"),
        (production_variables(RECORDINGS_MASTER_KEYS=""), "RECORDINGS_MASTER_KEYS"),
        ({"PUBLIC_BASE_URL": "callcenter.example.jp"}, "PUBLIC_BASE_URL"),
        ({"DATABASE_URL": "mysql://root@localhost/cc"}, "DATABASE_URL"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"DATABASE_CONN_MAX_AGE": "-5"}, "DATABASE_CONN_MAX_AGE"),
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"),
        ({"TWILIO_ACCOUNT_SID": "ACnothex"}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_API_BASE_URL": "ftp://twilio.local"}, "TWILIO_API_BASE_URL"),
        ({"TWILIO_CALLER_ID": "03-1234-5678"}, "TWILIO_CALLER_ID"),
        ({"RECORDINGS_MASTER_KEYS": "k1:c2hvcnQ="}, "RECORDINGS_MASTER_KEYS"),
        ({"RECORDINGS_MASTER_KEYS": "no-separator"}, "RECORDINGS_MASTER_KEYS"),
        ({"BEHIND_TLS_PROXY": "maybe"}, "BEHIND_TLS_PROXY"),
        ({"TWILIO_RECORDING_PRIVATE_KEYS": "key.pem"}, "TWILIO_RECORDING_PRIVATE_KEYS"),
        (
            {"TWILIO_RECORDING_PRIVATE_KEYS": "CR" + "0" * 32 + ":/nonexistent/key.pem"},
            "TWILIO_RECORDING_PRIVATE_KEYS",
        ),
        ({"EMAIL_URL": "pigeon://coop"}, "EMAIL_URL"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ],
)
def test_a_bad_value_stops_the_start_naming_the_variable(variables, named):
    result = run_project(CHECK, **variables)
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {named}:" in result.stderr


@pytest.mark.integration
def test_production_settings_pass_the_deploy_checks_without_warnings():
    result = run_project([*CHECK, "--deploy", "--fail-level", "WARNING"], **production_variables())
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.integration
def test_production_without_hsts_preload_is_reported_by_the_deploy_checks():
    result = run_project(
        [*CHECK, "--deploy", "--fail-level", "WARNING"],
        **production_variables(SECURE_HSTS_PRELOAD="false"),
    )
    assert result.returncode != 0
    assert "security.W021" in result.stderr


@pytest.mark.integration
def test_without_redis_the_log_says_once_that_tasks_run_in_process():
    result = run_project(CHECK)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("REDIS_URL is not set: Celery tasks run in-process") == 1


@pytest.mark.integration
def test_with_redis_configured_tasks_are_not_run_in_process():
    result = run_project(CHECK, REDIS_URL="redis://127.0.0.1:6379/0")
    assert result.returncode == 0, result.stderr
    assert "REDIS_URL is not set" not in result.stderr


def test_japanese_and_tokyo_are_the_defaults():
    assert settings.LANGUAGE_CODE == "ja"
    assert settings.TIME_ZONE == "Asia/Tokyo"
    assert [code for code, _name in settings.LANGUAGES] == ["ja", "en"]


def test_celery_is_configured_for_idempotent_tasks():
    from contactcenter.celery import app

    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.broker_transport_options["visibility_timeout"] == 3600


def settings_variables():
    source = (BASE_DIR / "contactcenter" / "settings.py").read_text(encoding="utf-8")
    readers = r"env\.\w+|_bool|_int|_url|_master_keys|_recording_private_keys"
    names = re.findall(rf'(?:{readers})\(\s*"([A-Z][A-Z0-9_]+)"', source)
    return list(dict.fromkeys(names))


def readme_variables():
    readme = (BASE_DIR / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", section, flags=re.MULTILINE)


def test_the_readme_configuration_table_matches_the_settings_line_for_line():
    assert settings_variables(), "no variables found in settings.py"
    assert readme_variables() == settings_variables()
