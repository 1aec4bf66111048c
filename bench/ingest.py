"""Benchmark: fetching a recording into encrypted storage, against a plain copy (not a test).

Measures, against the same local media server (a separate process, so its memory is not
counted here):

* ``plain``    — the baseline: the same HTTP download (``requests``, ``stream=True``,
  ``iter_content(256 KiB)``) written through the same ``storages["recordings"]`` ``save``,
  with no hashing, no encryption and no read-back;
* ``ingest``   — the application's ``recordings.ingest._download_and_store``: download,
  hash, encrypt while streaming, save through ``storages["recordings"]``, then read the
  stored copy back once and verify it (hash of the stored bytes, decryption of every
  segment, hash of the decrypted audio). The read-back (``_verify``) is timed on its own.

Throughput for ``--size-mib`` (default 256 MiB, ``--runs`` times), then peak memory for
``--memory-mib`` (default 1 GiB, ``--memory-runs`` times): the process's resident set size
is sampled every 10 ms from ``/proc/self/status`` (and the kernel's exact high-water mark,
``VmHWM``, is reset before each run where Linux allows it) and reported as growth over the
resident size just before the run.

    python -m bench.ingest [--size-mib 256] [--runs 3] [--memory-mib 1024] [--memory-runs 2]

The database is SQLite in a temporary directory (it is not what is measured: one call and
one recording row per run); the recordings storage is a temporary directory under ``var/``,
on the same disk as the project. Prints a table and writes the numbers as JSON to
``--output``.
"""

import argparse
import contextlib
import ctypes
import gc
import json
import os
import re
import secrets
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from bench.webhooks import bench_environment

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
BLOCK_SIZE = MiB
WAV_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")
# The recording SID carries the size to serve: "RE" + 16 hex digits of size + 16 random.
MEDIA_PATH = re.compile(
    r"/2010-04-01/Accounts/AC[0-9a-fA-F]{32}/Recordings/RE(?P<size>[0-9a-f]{16})[0-9a-f]{16}\.wav"
)


# --- the media server (its own process) ----------------------------------------------------


def wav_header(data_size):
    """A canonical 44-byte WAV header: PCM, 2 channels, 8 kHz, 16 bits, as Twilio serves."""
    channels, rate, bits = 2, 8000, 16
    return WAV_HEADER.pack(
        b"RIFF",
        min(36 + data_size, 0xFFFFFFFF),
        b"WAVE",
        b"fmt ",
        16,
        1,
        channels,
        rate,
        rate * channels * bits // 8,
        channels * bits // 8,
        bits,
        b"data",
        min(data_size, 0xFFFFFFFF),
    )


class MediaHandler(BaseHTTPRequestHandler):
    """Answers Twilio's media path with ``size`` bytes: a WAV header, then a repeated block."""

    protocol_version = "HTTP/1.1"
    block = os.urandom(BLOCK_SIZE)

    def do_GET(self):
        match = MEDIA_PATH.fullmatch(urlsplit(self.path).path)
        if not match:
            self.send_error(404)
            return
        size = int(match["size"], 16)
        self.send_response(200)
        self.send_header("Content-Type", "audio/x-wav")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        header = wav_header(max(size - WAV_HEADER.size, 0))[:size]
        block = memoryview(self.block)
        try:
            self.wfile.write(header)
            remaining = size - len(header)
            while remaining:
                piece = block[: min(remaining, BLOCK_SIZE)]
                self.wfile.write(piece)
                remaining -= len(piece)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format, *args):
        pass


def serve():
    server = ThreadingHTTPServer(("127.0.0.1", 0), MediaHandler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


def start_media_server():
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.ingest", "--serve"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    port = int(process.stdout.readline())
    return process, f"http://127.0.0.1:{port}"


# --- memory --------------------------------------------------------------------------------


def _status(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_high_water_mark():
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); return whether it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def _release_free_memory():
    """Hand freed heap back to the system (glibc), so that growth is counted from a clean
    base: memory freed before the run and reused during it would otherwise hide growth."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class MemorySampler:
    """Samples VmRSS every ``interval`` seconds in a thread; ``growth`` is peak − before."""

    def __init__(self, interval=0.01):
        self.interval = interval
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stopping.wait(self.interval):
            self.peak = max(self.peak, _status("VmRSS"))

    def __enter__(self):
        gc.collect()
        _release_free_memory()
        self.exact = _reset_high_water_mark()
        self.before = self.peak = _status("VmRSS")
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()
        self.peak = max(self.peak, _status("VmRSS"))
        self.high_water_mark = _status("VmHWM") if self.exact else None

    def result(self):
        return {
            "rss_before_mib": self.before / MiB,
            "peak_growth_mib": (self.peak - self.before) / MiB,
            "hwm_growth_mib": ((self.high_water_mark - self.before) / MiB if self.exact else None),
        }


# --- the two paths -------------------------------------------------------------------------


class Timer:
    """Wraps a function to add up the time spent in it."""

    def __init__(self, function):
        self.function = function
        self.seconds = 0.0

    def __call__(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return self.function(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started


def new_recording(size):
    from contactcenter.models import Call
    from recordings.models import Recording

    token = secrets.token_hex(16)
    call = Call.objects.create(sid="CA" + token, status=Call.Status.COMPLETED)
    return Recording.objects.create(
        sid=f"RE{size:016x}{token[:16]}", call=call, status=Recording.Status.COMPLETED
    )


def blob_name(recording, suffix):
    from django.utils import timezone

    return f"{timezone.now():%Y/%m}/{recording.sid}-{secrets.token_hex(4)}{suffix}"


def run_plain(size):
    """The baseline: download and save through the same storage, nothing else."""
    import requests
    from django.conf import settings
    from django.core.files import File
    from django.core.files.storage import storages

    import twilio_client
    from recordings import ingest

    recording = new_recording(size)
    storage = storages["recordings"]
    with MemorySampler() as memory:
        started = time.perf_counter()
        response = requests.get(
            twilio_client.recording_media_url(recording.sid),
            auth=(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN),
            stream=True,
            timeout=twilio_client.TIMEOUT_SECONDS,
        )
        with response:
            response.raise_for_status()
            chunks = response.iter_content(ingest.DOWNLOAD_CHUNK)
            name = blob_name(recording, ".wav")
            name = storage.save(name, File(ingest._ReadableStream(chunks), name=name))
        seconds = time.perf_counter() - started
    stored = storage.size(name)
    storage.delete(name)
    if stored != size:
        raise RuntimeError(f"plain copy stored {stored} bytes of {size}")
    return {"seconds": seconds, **memory.result()}


def run_ingest(size):
    """The application: ``_download_and_store``, with the read-back timed on its own."""
    from django.core.files.storage import storages

    from recordings import ingest

    recording = new_recording(size)
    name = blob_name(recording, ".ccrec")  # chosen by the caller, as ``fetch`` does
    verify = Timer(ingest._verify)
    ingest._verify = verify
    try:
        with MemorySampler() as memory:
            started = time.perf_counter()
            stored = ingest._download_and_store(recording, name)
            seconds = time.perf_counter() - started
    finally:
        ingest._verify = verify.function
    storages["recordings"].delete(stored["blob_name"])
    if stored["plaintext_size"] != size:
        raise RuntimeError(f"ingest stored {stored['plaintext_size']} bytes of {size}")
    return {
        "seconds": seconds,
        "verify_seconds": verify.seconds,
        "ciphertext_size": stored["ciphertext_size"],
        **memory.result(),
    }


def measure(size, runs):
    rows = []
    for number in range(1, runs + 1):
        plain = run_plain(size)
        ingest = run_ingest(size)
        without_verify = ingest["seconds"] - ingest["verify_seconds"]
        rows.append(
            {
                "run": number,
                "size_mib": size / MiB,
                "plain": {**plain, "mib_per_second": size / MiB / plain["seconds"]},
                "ingest": {**ingest, "mib_per_second": size / MiB / ingest["seconds"]},
                "ratio": plain["seconds"] / ingest["seconds"],
                "ratio_without_verify": plain["seconds"] / without_verify,
            }
        )
    return rows


def medians(rows):
    def median(path):
        values = []
        for row in rows:
            value = row
            for key in path:
                value = value[key]
            values.append(value)
        return None if None in values else statistics.median(values)

    return {
        "plain_mib_per_second": median(("plain", "mib_per_second")),
        "ingest_mib_per_second": median(("ingest", "mib_per_second")),
        "ingest_verify_seconds": median(("ingest", "verify_seconds")),
        "ratio": median(("ratio",)),
        "ratio_without_verify": median(("ratio_without_verify",)),
        "plain_peak_growth_mib": median(("plain", "peak_growth_mib")),
        "ingest_peak_growth_mib": median(("ingest", "peak_growth_mib")),
        "plain_hwm_growth_mib": median(("plain", "hwm_growth_mib")),
        "ingest_hwm_growth_mib": median(("ingest", "hwm_growth_mib")),
    }


def print_table(title, rows, summary):
    print(title)
    print(
        f"{'run':>4} {'MiB':>6} {'plain MiB/s':>11} {'ingest MiB/s':>12} {'verify s':>8} "
        f"{'ratio':>6} {'w/o verify':>10} {'plain +MiB':>10} {'ingest +MiB':>11}"
    )
    for row in rows:
        print(
            f"{row['run']:>4} {row['size_mib']:>6.0f} {row['plain']['mib_per_second']:>11.0f} "
            f"{row['ingest']['mib_per_second']:>12.0f} {row['ingest']['verify_seconds']:>8.2f} "
            f"{row['ratio']:>6.2f} {row['ratio_without_verify']:>10.2f} "
            f"{row['plain']['peak_growth_mib']:>10.1f} {row['ingest']['peak_growth_mib']:>11.1f}"
        )
    print(
        f"{'med':>4} {'':>6} {summary['plain_mib_per_second']:>11.0f} "
        f"{summary['ingest_mib_per_second']:>12.0f} {summary['ingest_verify_seconds']:>8.2f} "
        f"{summary['ratio']:>6.2f} {summary['ratio_without_verify']:>10.2f} "
        f"{summary['plain_peak_growth_mib']:>10.1f} {summary['ingest_peak_growth_mib']:>11.1f}"
    )
    if summary["ingest_hwm_growth_mib"] is not None:
        print(
            f"     exact peak (VmHWM) growth, median: plain +{summary['plain_hwm_growth_mib']:.1f}"
            f" MiB, ingest +{summary['ingest_hwm_growth_mib']:.1f} MiB"
        )
    print()


def setup_django(workdir, media_url):
    env = bench_environment(f"sqlite:///{workdir / 'bench.sqlite3'}")
    env.update({"RECORDINGS_ROOT": str(workdir / "recordings"), "TWILIO_API_BASE_URL": media_url})
    os.environ.update(env)

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256, help="throughput runs' size")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--memory-mib", type=int, default=1024, help="0 to skip")
    parser.add_argument("--memory-runs", type=int, default=2)
    parser.add_argument("--output", default=str(ROOT / "var" / "bench-ingest.json"))
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return

    (ROOT / "var").mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-", dir=ROOT / "var"))
    server, media_url = start_media_server()
    try:
        setup_django(workdir, media_url)
        measure(16 * MiB, 1)  # warm up: imports, connections, the page cache of the code
        results = {
            "options": {
                "size_mib": args.size_mib,
                "runs": args.runs,
                "memory_mib": args.memory_mib,
                "memory_runs": args.memory_runs,
            }
        }
        rows = measure(args.size_mib * MiB, args.runs)
        results["throughput"] = {"runs": rows, "median": medians(rows)}
        print_table(f"throughput, {args.size_mib} MiB", rows, results["throughput"]["median"])
        if args.memory_mib:
            rows = measure(args.memory_mib * MiB, args.memory_runs)
            results["memory"] = {"runs": rows, "median": medians(rows)}
            print_table(f"peak memory, {args.memory_mib} MiB", rows, results["memory"]["median"])
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)

    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
