"""The app served by gunicorn with production settings, as Twilio reaches it in production.

    with AppServer(database_url=cluster.url, log_path=tmp_path / "app.log") as app:
        response = app.twilio_post("/twilio/voice/incoming", params)

Production settings (``production_variables``) behind a TLS proxy: requests carry the public
host and ``X-Forwarded-Proto: https`` as the proxy would, and are signed over PUBLIC_BASE_URL.
"""

import shutil
import subprocess
import sys
import time

import pytest
import requests
from twilio.request_validator import RequestValidator

from .project import BASE_DIR, production_variables, project_env, run_project
from .services import free_port

PUBLIC_HOST = "callcenter.example.jp"


def migrate(database_url, **variables):
    """Create the schema in ``database_url`` with the project's migrations."""
    result = run_project(
        ["manage.py", "migrate", "--no-input"],
        timeout=180,
        **production_variables(DATABASE_URL=database_url, **variables),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def run_in_app(code, database_url, **variables):
    """Run Python ``code`` in the project (``manage.py shell -c``) against ``database_url``."""
    result = run_project(
        ["manage.py", "shell", "-c", code],
        timeout=120,
        **production_variables(DATABASE_URL=database_url, **variables),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


class AppServer:
    def __init__(self, *, database_url, log_path, workers=2, **variables):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.workers = workers
        self.variables = production_variables(
            DATABASE_URL=database_url,
            BEHIND_TLS_PROXY="true",
            TRUSTED_PROXIES="127.0.0.1",
            **variables,
        )
        self.validator = RequestValidator(self.variables["TWILIO_AUTH_TOKEN"])
        self.http = requests.Session()
        self.process = None

    def start(self):
        gunicorn = shutil.which("gunicorn", path=str(sys.prefix) + "/bin")
        assert gunicorn, "gunicorn is not installed (requirements.txt)"
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [
                gunicorn,
                "contactcenter.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                "--timeout",
                "30",
            ],
            cwd=BASE_DIR,
            env=project_env(**self.variables),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 30
        while True:
            try:
                # A GET of a webhook is refused (405) without touching the database or Redis.
                self.http.get(
                    self.url + "/twilio/voice/incoming", headers=self.headers(), timeout=5
                )
                return self
            except requests.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not start\n{self.log()}")
                time.sleep(0.1)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def headers(self, **extra):
        return {"Host": PUBLIC_HOST, "X-Forwarded-Proto": "https", **extra}

    def twilio_post(self, path, params, *, timeout=20):
        """POST ``params`` to ``path`` (with its query) signed as Twilio signs it."""
        signature = self.validator.compute_signature(
            self.variables["PUBLIC_BASE_URL"] + path, params
        )
        return self.http.post(
            self.url + path,
            data=params,
            headers=self.headers(**{"X-Twilio-Signature": signature}),
            timeout=timeout,
            allow_redirects=False,
        )
