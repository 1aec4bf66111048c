"""Benchmark: Twilio's voice webhooks under gunicorn with PostgreSQL (not a test).

Measures, in one run, against the same gunicorn server:

* ``constant``  — a bare Django view answering constant TwiML (the baseline);
* ``incoming``  — ``/twilio/voice/incoming``, correctly signed, a new CallSid every request
  (creates the call and its customer, reads the notice in force, answers the announcement);
* ``status``    — ``/twilio/voice/status``, correctly signed, for those calls.

For each: requests per second when saturated (closed loop, ``--concurrency`` connections),
then p50/p99 latency at half that rate (open loop, requests sent on a fixed schedule).

    python -m bench.webhooks [--seconds 10] [--concurrency 32] [--workers 4]

Needs PostgreSQL (``BENCH_DATABASE_URL``, default postgres://postgres@127.0.0.1:5432/bench,
created if missing). Prints a table and writes the numbers as JSON to ``--output``.
"""

import argparse
import asyncio
import base64
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import psycopg
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_BASE_URL = "https://bench.example.jp"
AUTH_TOKEN = "bench-auth-token"
ACCOUNT_SID = "AC" + "b" * 32


def bench_environment(database_url):
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "BEHIND_TLS_PROXY": "true",
        "TRUSTED_PROXIES": "127.0.0.1",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "RECORDINGS_MASTER_KEYS": "bench:" + "A" * 43 + "=",
        # Production settings refuse the public development key of the audit checkpoints.
        "AUDIT_ANCHOR_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "LOG_LEVEL": "WARNING",
    }


def ensure_database(database_url):
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def prepare(env):
    python = sys.executable
    for command in (["migrate", "--noinput", "-v0"], ["seed_demo", "--allow-production"]):
        subprocess.run(
            [python, "manage.py", *command],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )


def start_gunicorn(env, port, workers):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "contactcenter.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--log-level",
            "warning",
            "--keep-alive",
            "5",
        ],
        cwd=ROOT,
        env=env,
    )
    return process


def signed(path, params):
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_BASE_URL + path, params)
    return path, params, {"X-Twilio-Signature": signature, "X-Forwarded-Proto": "https"}


def incoming_requests(count):
    numbers = [f"+81901234{n:04d}" for n in range(1000)]  # 090-1234-0000 …
    sids = ["CA" + secrets.token_hex(16) for _ in range(count)]
    requests = [
        signed(
            "/twilio/voice/incoming",
            {
                "CallSid": sid,
                "AccountSid": ACCOUNT_SID,
                "From": random.choice(numbers),
                "To": "+815012345678",
                "CallStatus": "ringing",
                "Direction": "inbound",
            },
        )
        for sid in sids
    ]
    return sids, requests


def status_requests(sids):
    requests = []
    for sequence, status in enumerate(("ringing", "in-progress", "completed")):
        for sid in sids:
            params = {
                "CallSid": sid,
                "AccountSid": ACCOUNT_SID,
                "CallStatus": status,
                "SequenceNumber": str(sequence),
                "CallDuration": "60",
                "Timestamp": "Tue, 24 Nov 2026 10:00:00 +0000",
            }
            requests.append(signed("/twilio/voice/status", params))
    return requests


def constant_requests(count):
    return [
        ("/bench/constant-twiml", {"CallSid": "CA" + "0" * 32}, {"X-Forwarded-Proto": "https"})
    ] * count


async def send(session, base, request):
    path, params, headers = request
    started = time.perf_counter()
    async with session.post(base + path, data=params, headers=headers) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{path} answered {response.status}")
    return time.perf_counter() - started


async def saturate(base, requests, *, seconds, concurrency):
    """Closed loop: ``concurrency`` clients send back to back for ``seconds``."""
    queue = iter(requests)
    done = 0
    deadline = time.perf_counter() + seconds

    async def client(session):
        nonlocal done
        while time.perf_counter() < deadline:
            request = next(queue, None)
            if request is None:
                return
            await send(session, base, request)
            done += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return done / elapsed


async def paced(base, requests, *, rate, seconds):
    """Open loop: one request every 1/rate seconds, whatever the answers take."""
    count = int(rate * seconds)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        tasks = []
        for index, request in zip(range(count), requests, strict=False):
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(session, base, request)))
        latencies = await asyncio.gather(*tasks)
    latencies.sort()
    return {
        "rate": rate,
        "requests": len(latencies),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


async def wait_until_up(base):
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(
                    base + "/healthz", headers={"X-Forwarded-Proto": "https"}
                ) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("gunicorn did not come up")


async def run(base, *, seconds, concurrency):
    await wait_until_up(base)
    results = {}
    plenty = int(seconds * 5000)

    # Warm up every worker and code path.
    await saturate(base, constant_requests(500), seconds=2, concurrency=concurrency)

    rate = await saturate(base, constant_requests(plenty), seconds=seconds, concurrency=concurrency)
    latency = await paced(base, constant_requests(plenty), rate=rate / 2, seconds=seconds)
    results["constant"] = {"requests_per_second": rate, **latency}

    sids, requests = incoming_requests(plenty)
    rate = await saturate(base, requests, seconds=seconds, concurrency=concurrency)
    used = int(rate * seconds) + concurrency
    sids_latency, latency_requests = incoming_requests(int(rate / 2 * seconds) + 1)
    latency = await paced(base, latency_requests, rate=rate / 2, seconds=seconds)
    results["incoming"] = {"requests_per_second": rate, **latency}

    statuses = status_requests(sids[:used] + sids_latency)
    rate = await saturate(base, statuses, seconds=seconds, concurrency=concurrency)
    remaining = statuses[int(rate * seconds) + concurrency :]
    latency = await paced(base, remaining, rate=rate / 2, seconds=seconds)
    results["status"] = {"requests_per_second": rate, **latency}
    for name in ("incoming", "status"):
        results[name]["ratio_to_constant"] = (
            results[name]["requests_per_second"] / results["constant"]["requests_per_second"]
        )
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--output", default=str(ROOT / "var" / "bench-webhooks.json"))
    args = parser.parse_args()

    database_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench")
    ensure_database(database_url)
    env = bench_environment(database_url)
    prepare(env)
    server = start_gunicorn(env, args.port, args.workers)
    try:
        results = asyncio.run(
            run(f"http://127.0.0.1:{args.port}", seconds=args.seconds, concurrency=args.concurrency)
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    print(f"{'endpoint':<10} {'req/s':>8} {'ratio':>6} {'rate/2':>7} {'p50 ms':>7} {'p99 ms':>7}")
    for name, row in results.items():
        ratio = f"{row['ratio_to_constant']:.2f}" if "ratio_to_constant" in row else "1.00"
        print(
            f"{name:<10} {row['requests_per_second']:>8.0f} {ratio:>6} {row['rate']:>7.0f} "
            f"{row['p50_ms']:>7.1f} {row['p99_ms']:>7.1f}"
        )
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
