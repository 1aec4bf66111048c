"""Benchmark: playing an encrypted one-hour recording over HTTP (not a test).

Measures, against one gunicorn server (production settings, one sync worker) on PostgreSQL:

* ``ttfb``      — time to first byte of a Range request for 64 KiB in the middle of a one-hour
  two-channel recording (115 MB of audio), through ``/recordings/audio/<token>/``: session
  login, the playback link checked, purpose-bound access checked in the database, the data
  key unwrapped, the blob opened and the segments decrypted. Keep-alive connection, random
  offsets in the middle third, ``--samples`` requests;
* ``stream``    — the whole recording streamed (both sides) through the same view, against
* ``baseline``  — Django's ``FileResponse`` of the same audio stored unencrypted, through the
  same server (a bench-only view in ``bench/urls.py``);
* ``one side``  — the customer's side alone (mono WAV made on the fly), for reference.

    python -m bench.playback [--samples 200] [--runs 3] [--minutes 60]

Needs PostgreSQL (``BENCH_DATABASE_URL``, default postgres://postgres@127.0.0.1:5432/bench,
created and migrated if missing). Prints a table and writes JSON to ``--output``.
"""

import argparse
import http.client
import json
import os
import random
import secrets
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

from bench.webhooks import ROOT, bench_environment, ensure_database, prepare, start_gunicorn

RATE, CHANNELS, WIDTH = 8000, 2, 2
SECOND = RATE * CHANNELS * WIDTH


def wav_chunks(seconds):
    """A two-channel 16-bit WAV of ``seconds``, one second at a time (never all in memory)."""
    data_size = seconds * SECOND
    yield struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_size,
        b"WAVE",
        b"fmt ",
        16,
        1,
        CHANNELS,
        RATE,
        RATE * CHANNELS * WIDTH,
        CHANNELS * WIDTH,
        16,
        b"data",
        data_size,
    )
    rng = random.Random(7)
    second = bytes(rng.getrandbits(8) for _ in range(SECOND))
    for _ in range(seconds):
        yield second


def set_up(env, seconds, plain_path):
    """Store the recording encrypted through the application, and the same audio in clear
    for the baseline; return the session cookie and the playback links."""
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.sessions.backends.db import SessionStore
    from django.core import signing

    from consent.services import may_record
    from contactcenter.models import Call
    from recordings import ingest
    from recordings.models import Recording
    from recordings.views import TOKEN_SALT

    call = next(c for c in Call.objects.filter(status="completed") if may_record(call=c))
    recording = Recording.objects.create(
        sid="RE" + secrets.token_hex(16),
        call=call,
        status=Recording.Status.COMPLETED,
        channels=2,
        duration=seconds,
    )
    started = time.perf_counter()
    ingest.store_audio(recording, wav_chunks(seconds))
    store_seconds = time.perf_counter() - started
    with plain_path.open("wb") as plain:
        for chunk in wav_chunks(seconds):
            plain.write(chunk)

    user = get_user_model().objects.get(username="supervisor")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    purpose = recording.purposes.order_by("purpose__code").first().purpose.code

    def link(channel):
        token = signing.dumps(
            {"r": recording.pk, "u": user.pk, "p": purpose, "c": channel, "d": False, "e": 0},
            salt=TOKEN_SALT,
        )
        return f"/recordings/audio/{token}/"

    recording.refresh_from_db()
    return {
        "cookie": f"sessionid={session.session_key}",
        "both": link("both"),
        "customer": link("customer"),
        "size": recording.plaintext_size,
        "stored_size": recording.ciphertext_size,
        "store_seconds": store_seconds,
    }


def connect(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=120)


def headers(setup, **extra):
    return {"Cookie": setup["cookie"], "X-Forwarded-Proto": "https", "Host": "127.0.0.1", **extra}


def wait_until_up(port):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            connection = connect(port)
            connection.request("GET", "/healthz", headers={"X-Forwarded-Proto": "https"})
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def time_to_first_byte(port, setup, samples):
    connection = connect(port)
    size = setup["size"]
    times = []
    for _ in range(samples):
        start = random.randrange(size // 3, 2 * size // 3)
        wanted = headers(setup, Range=f"bytes={start}-{start + 65535}")
        began = time.perf_counter()
        connection.request("GET", setup["both"], headers=wanted)
        response = connection.getresponse()
        response.read(1)
        times.append((time.perf_counter() - began) * 1000)
        rest = response.read()
        if response.status != 206 or len(rest) != 65535:
            raise RuntimeError(f"unexpected answer {response.status}, {len(rest) + 1} bytes")
    connection.close()
    times.sort()
    return {
        "p50_ms": statistics.median(times),
        "p95_ms": times[int(len(times) * 0.95) - 1],
        "max_ms": times[-1],
    }


def stream(port, path, setup):
    connection = connect(port)
    began = time.perf_counter()
    connection.request("GET", path, headers=headers(setup))
    response = connection.getresponse()
    received = 0
    while chunk := response.read(1024 * 1024):
        received += len(chunk)
    seconds = time.perf_counter() - began
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"{path} answered {response.status}")
    return received / seconds / 1e6, received


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--output", default=str(ROOT / "var" / "bench-playback.json"))
    options = parser.parse_args()

    database_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench")
    ensure_database(database_url)
    workdir = Path(tempfile.mkdtemp(prefix="bench-playback-", dir=ROOT / "var"))
    plain_path = workdir / "plain.wav"
    env = {
        **bench_environment(database_url),
        "RECORDINGS_ROOT": str(workdir / "recordings"),
        "BENCH_PLAIN_AUDIO": str(plain_path),
    }
    prepare(env)
    setup = set_up(env, options.minutes * 60, plain_path)
    server = start_gunicorn(env, options.port, workers=1)
    try:
        wait_until_up(options.port)
        ttfb = [time_to_first_byte(options.port, setup, options.samples) for _ in range(3)]
        rates = {"stream": [], "baseline": [], "one side": []}
        for _ in range(options.runs):
            for name, path in (
                ("baseline", "/bench/plain-audio"),
                ("stream", setup["both"]),
                ("one side", setup["customer"]),
            ):
                rate, _ = stream(options.port, path, setup)
                rates[name].append(rate)
    finally:
        server.terminate()
        server.wait(timeout=20)
        for path in sorted(workdir.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        workdir.rmdir()

    result = {
        "audio_bytes": setup["size"],
        "stored_bytes": setup["stored_size"],
        "store_seconds": setup["store_seconds"],
        "ttfb_p50_ms": statistics.median(run["p50_ms"] for run in ttfb),
        "ttfb_p95_ms": statistics.median(run["p95_ms"] for run in ttfb),
        "ttfb_max_ms": max(run["max_ms"] for run in ttfb),
        "ttfb_runs": ttfb,
        "rates_mb_s": rates,
        "stream_mb_s": statistics.median(rates["stream"]),
        "baseline_mb_s": statistics.median(rates["baseline"]),
        "one_side_mb_s": statistics.median(rates["one side"]),
    }
    result["ratio"] = result["stream_mb_s"] / result["baseline_mb_s"]
    print(f"audio: {setup['size'] / 1e6:.1f} MB ({options.minutes} min, two channels)")
    print(
        f"ttfb of a 64 KiB range in the middle: p50 {result['ttfb_p50_ms']:.1f} ms, "
        f"p95 {result['ttfb_p95_ms']:.1f} ms, max {result['ttfb_max_ms']:.1f} ms"
    )
    print(
        f"streaming: encrypted {result['stream_mb_s']:.0f} MB/s, FileResponse "
        f"{result['baseline_mb_s']:.0f} MB/s, ratio {result['ratio']:.2f}; "
        f"one side {result['one_side_mb_s']:.0f} MB/s"
    )
    Path(options.output).parent.mkdir(exist_ok=True)
    Path(options.output).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
