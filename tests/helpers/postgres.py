"""A PostgreSQL cluster of the test's own, which the test can stop, start and restart.

Never the machine's shared cluster (5432): this one lives in a temporary directory, listens on a
free port of 127.0.0.1 with trust authentication, and is deleted when the test is done.

    with PrivatePostgres() as cluster:          # started, with an empty database
        url = cluster.url                        # postgres://postgres@127.0.0.1:<port>/app
        run_project(["manage.py", "migrate"], DATABASE_URL=url, ...)
        cluster.stop()                           # the database is down
        cluster.start()                          # and back, same data

PostgreSQL refuses to run as root, so when the tests run as root its binaries run as the
``postgres`` user (``runuser``) in a directory that user owns. Missing binaries fail the test in CI
and skip it on a developer's machine (``require_service``)."""

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from .services import free_port, require_service

POSTGRES_ROOT = Path("/usr/lib/postgresql")
SYSTEM_USER = "postgres"
SUPERUSER = "postgres"
DATABASE = "app"
# Fast and small: the cluster lives for one test, durability across a crash of the machine does
# not matter, and several clusters may run at once on two shared cores.
SERVER_OPTIONS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "max_connections": "40",
    "log_min_messages": "warning",
}


def postgres_bin_dir():
    """The newest installed PostgreSQL's binaries (``/usr/lib/postgresql/<version>/bin``)."""
    override = os.environ.get("POSTGRES_BIN_DIR")
    candidates = [Path(override)] if override else []
    if POSTGRES_ROOT.is_dir():
        versions = [path for path in POSTGRES_ROOT.iterdir() if path.name.isdigit()]
        candidates += [path / "bin" for path in sorted(versions, key=lambda p: -int(p.name))]
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    if shutil.which("initdb") and shutil.which("pg_ctl"):
        return Path(shutil.which("initdb")).parent
    return None


class PrivatePostgres:
    """A PostgreSQL cluster of this test's own on a free port, with one database, ``url``."""

    def __init__(self, *, database=DATABASE):
        self.bin_dir = postgres_bin_dir()
        if self.bin_dir is None:
            require_service("PostgreSQL binaries", f"no initdb/pg_ctl under {POSTGRES_ROOT}")
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                self.owner = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                require_service("PostgreSQL", f"running as root and no {SYSTEM_USER!r} user")
        self.database = database
        self.port = free_port()
        self.url = f"postgres://{SUPERUSER}@127.0.0.1:{self.port}/{database}"
        self.directory = None

    # -- life cycle -----------------------------------------------------------------------

    def create(self):
        """initdb into a fresh temporary directory and start the cluster with ``database``."""
        # Not under pytest's tmp_path: its parents are private to root, and the server runs as
        # the postgres user, who must reach its data directory and socket.
        self.directory = Path(tempfile.mkdtemp(prefix="pgtest-"))
        if self.as_root:
            os.chown(self.directory, self.owner.pw_uid, self.owner.pw_gid)
        self._run(
            "initdb",
            "--pgdata",
            str(self.data_dir),
            "--username",
            SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C.UTF-8",
            "--no-sync",
        )
        self.start()
        self.psql(f'CREATE DATABASE "{self.database}"', database="postgres")
        return self

    def start(self):
        """Start (or start again) the cluster and wait until it accepts connections."""
        options = " ".join(f"-c {name}={value}" for name, value in SERVER_OPTIONS.items())
        options += f" -p {self.port} -c unix_socket_directories={self.directory}"
        self._run(
            "pg_ctl",
            "start",
            "--pgdata",
            str(self.data_dir),
            "--wait",
            "--timeout",
            "30",
            "--log",
            str(self.log_path),
            "--options",
            options,
        )
        return self

    def stop(self, *, mode="fast"):
        """Stop the cluster; ``mode="immediate"`` is a crash (no checkpoint, clients cut off)."""
        if self.running:
            self._run("pg_ctl", "stop", "--pgdata", str(self.data_dir), "--wait", "--mode", mode)

    def restart(self, *, mode="fast"):
        self.stop(mode=mode)
        return self.start()

    def destroy(self):
        """Stop the cluster and delete its directory."""
        if self.directory is None:
            return
        try:
            self.stop(mode="immediate")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __enter__(self):
        try:
            return self.create()
        except BaseException:
            self.destroy()
            raise

    def __exit__(self, *exc_info):
        self.destroy()

    # -- inspection -----------------------------------------------------------------------

    @property
    def data_dir(self):
        return self.directory / "data"

    @property
    def log_path(self):
        return self.directory / "server.log"

    @property
    def running(self):
        if self.directory is None or not self.data_dir.exists():
            return False
        status = self._run("pg_ctl", "status", "--pgdata", str(self.data_dir), check=False)
        return status.returncode == 0

    def log(self):
        """The server's log, for a failing test's message."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def psql(self, sql, *, database=None):
        """Run ``sql`` with psql as the superuser; returns its unaligned, tuples-only output."""
        result = self._run(
            "psql",
            "--no-psqlrc",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--username",
            SUPERUSER,
            "--dbname",
            database or self.database,
            "--tuples-only",
            "--no-align",
            "--set",
            "ON_ERROR_STOP=1",
            "--command",
            sql,
        )
        return result.stdout.strip()

    # -- internals ------------------------------------------------------------------------

    def _run(self, program, *args, check=True):
        command = [str(self.bin_dir / program), *args]
        if self.as_root:
            command = ["runuser", "-u", SYSTEM_USER, "--", *command]
        result = subprocess.run(
            command,
            cwd=self.directory or tempfile.gettempdir(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{program} {' '.join(args[:2])} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}\n--- server log ---\n{self.log()}"
            )
        return result
