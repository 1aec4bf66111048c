"""Running the project in a separate process, as a deployment would."""

import os
import subprocess
import sys

from django.conf import settings

BASE_DIR = settings.BASE_DIR
SETTINGS_VARIABLES_PREFIXES = (
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "PUBLIC_BASE_URL",
    "DATABASE",
    "REDIS_URL",
    "TWILIO_",
    "RECORDINGS_",
    "STATIC_ROOT",
    "BEHIND_TLS_PROXY",
    "TRUSTED_PROXIES",
    "SECURE_",
    "EMAIL_URL",
    "DEFAULT_FROM_EMAIL",
    "LOG_LEVEL",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)


def project_env(**variables):
    """This process's environment without any project setting, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_VARIABLES_PREFIXES)}
    env["DJANGO_SETTINGS_MODULE"] = "contactcenter.settings"
    env.update({k: str(v) for k, v in variables.items()})
    return env


def run_project(args, *, timeout=60, **variables):
    """Run ``python <args>`` in the project directory with only ``variables`` configured."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=project_env(**variables),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def production_variables(**overrides):
    """A complete, valid set of production settings (no real secrets)."""
    values = {
        "DEBUG": "false",
        "SECRET_KEY": "s" * 20 + "-production-secret-key-for-tests-" + "k" * 10,
        "ALLOWED_HOSTS": "callcenter.example.jp",
        "PUBLIC_BASE_URL": "https://callcenter.example.jp",
        "TWILIO_ACCOUNT_SID": "AC" + "a" * 32,
        "TWILIO_AUTH_TOKEN": "production-auth-token",
        "RECORDINGS_MASTER_KEYS": "k2026:" + "A" * 43 + "=",
        "AUDIT_ANCHOR_KEY": "B" * 43 + "=",
    }
    values.update(overrides)
    return values
