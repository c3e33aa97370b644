"""Bounded load test of the service on loopback: many clients submit small prune jobs and poll them.

    python -m bench.load [--clients 32] [--seconds 60] [--database-url URL --broker-url URL]

Starts a real API (uvicorn) and one Celery worker on a fresh data folder (the embedded default, or
the given Postgres + Redis), gives every client a tenant and API key of its own, and runs the clients
(the Python client, one thread each, with retries off so that every refusal is counted) for a fixed time. Each client registers the built-in digits once, then loops: submit a job, poll its
status every ``--poll-interval`` seconds until it finishes or ``--polls`` polls have passed, submit the
next. Afterwards every job still queued or running is canceled through the API, and every submitted
id is read back: a job missing, failed, or left active counts as lost. Requests/s, p50/p99 latency of
submit and status, and every error go to bench/results/load-<backend>.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np

from app import launch
from app.core.config import Settings
from app.core.db import Database
from app.services.auth import create_key
from bench.common import RESULTS, write_results
from condense.client import Client, CondenseError

MODULE = "bench.load"
TERMINAL = {"succeeded", "failed", "canceled"}
T = TypeVar("T")


def small_job(dataset_id: str) -> dict[str, Any]:
    """About a second of worker time on two CPU cores: one proxy epoch of a narrow ConvNet, no evaluation."""
    return {
        "kind": "prune",
        "dataset_id": dataset_id,
        "method": "el2n",
        "keep_fraction": 0.3,
        "device": "cpu",
        "proxy": {"epochs": 1, "width": 8, "batch_size": 128},
        "evaluation": None,
    }


@dataclass
class Record:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    submitted: list[tuple[str, str]] = field(default_factory=list)  # (tenant key, job id)

    def call(self, kind: str, request: Callable[[], T]) -> T | None:
        """One client call, timed; a refusal or a transport error is recorded and gives None."""
        start = time.perf_counter()
        try:
            return request()
        except (CondenseError, httpx.HTTPError) as exc:
            self.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            return None
        finally:
            self.latencies[kind].append(time.perf_counter() - start)


def connect(base_url: str, token: str) -> Client:
    # No retries: a load test counts every 429 and 503 the client would otherwise wait out.
    return Client(base_url, token, timeout=30, retries=0)


def run_client(base_url: str, token: str, args: argparse.Namespace, stop_at: float, record: Record) -> None:
    with connect(base_url, token) as client:
        dataset = record.call("register", lambda: client.datasets.builtin("digits"))
        if dataset is None:
            return
        while time.monotonic() < stop_at:
            job = record.call("submit", lambda: client.jobs.submit(small_job(dataset.id)))
            if job is None:
                time.sleep(args.poll_interval)
                continue
            record.submitted.append((token, job.id))
            for _ in range(args.polls):
                if time.monotonic() >= stop_at:
                    break
                time.sleep(args.poll_interval)
                status = record.call("status", lambda job=job: client.jobs.get(job.id))
                if status is not None and status.status in TERMINAL:
                    break


def settle(base_url: str, record: Record) -> Counter[str]:
    """Cancels what is still active, then reads every submitted job back; returns final status counts."""
    final: Counter[str] = Counter()
    clients = {token: connect(base_url, token) for token in {token for token, _ in record.submitted}}
    try:
        for token, job_id in record.submitted:
            if clients[token].jobs.get(job_id).status in {"queued", "running"}:
                clients[token].jobs.cancel(job_id)
        deadline = time.monotonic() + 120  # a running job stops at its next cancellation check
        pending = list(record.submitted)
        while pending and time.monotonic() < deadline:
            still = []
            for token, job_id in pending:
                try:
                    status = clients[token].jobs.get(job_id).status
                except CondenseError as exc:
                    status = f"http {exc.status}"
                if status in TERMINAL or status.startswith("http"):
                    final[status] += 1
                else:
                    still.append((token, job_id))
            pending = still
            if pending:
                time.sleep(0.5)
        final["left active"] += len(pending)
    finally:
        for client in clients.values():
            client.close()
    return final


def percentile_ms(values: list[float], q: float) -> float:
    return round(1000 * float(np.percentile(values, q)), 1) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--poll-interval", type=float, default=0.25)
    parser.add_argument("--polls", type=int, default=20, help="status polls per job before the next submit")
    parser.add_argument("--database-url", default="", help="Postgres URL (default: embedded SQLite)")
    parser.add_argument("--broker-url", default="", help="Redis URL (default: the filesystem broker)")
    parser.add_argument("--worker-concurrency", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the results files")
    args = parser.parse_args()

    backend = "servers" if args.database_url else "embedded"
    root = Path(tempfile.mkdtemp(prefix="condense-load-"))
    overrides = {"CONDENSE_DATA_DIR": str(root / "data")}
    if args.database_url:
        overrides |= {"CONDENSE_DATABASE_URL": args.database_url, "CONDENSE_BROKER_URL": args.broker_url}
    with launch.running_service(root, overrides, worker_concurrency=args.worker_concurrency) as base_url:
        settings = Settings.from_variables(overrides)
        db = Database(settings.database_url)
        with db.session() as session:
            tokens = [create_key(session, f"load-{i:02d}")[1] for i in range(args.clients)]
        db.dispose()
        record = Record()
        started = time.monotonic()
        stop_at = started + args.seconds

        # One thread per client: each waits on its own requests, as separate users would.
        with ThreadPoolExecutor(len(tokens)) as pool:
            list(pool.map(lambda token: run_client(base_url, token, args, stop_at, record), tokens))
        elapsed = time.monotonic() - started
        final = settle(base_url, record)

    requests = sum(len(v) for v in record.latencies.values())
    submitted = len(record.submitted)
    lost = submitted - sum(final[s] for s in TERMINAL)
    rows = {
        kind: {
            "requests": len(values),
            "p50_ms": percentile_ms(values, 50),
            "p99_ms": percentile_ms(values, 99),
            "max_ms": percentile_ms(values, 100),
        }
        for kind, values in sorted(record.latencies.items())
    }
    payload = {
        "backend": backend,
        "clients": args.clients,
        "seconds": round(elapsed, 1),
        "worker_concurrency": args.worker_concurrency,
        "requests": requests,
        "requests_per_s": round(requests / elapsed, 1),
        "errors": len(record.errors),
        "error_samples": record.errors[:20],
        "jobs_submitted": submitted,
        "jobs_final": dict(final),
        "jobs_lost": lost,
        "latency": rows,
        "cpu_count": os.cpu_count(),
    }
    table = "| request | count | p50 (ms) | p99 (ms) | max (ms) |\n|---|---|---|---|---|\n" + "".join(
        f"| {kind} | {r['requests']} | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} |\n" for kind, r in rows.items()
    )
    markdown = (
        f"# Load: {args.clients} clients for {elapsed:.0f} s on loopback ({backend}, one worker)\n\n"
        f"{requests} requests, {requests / elapsed:.1f} requests/s, {len(record.errors)} errors.\n\n{table}\n"
        f"Jobs: {submitted} submitted; final statuses after canceling what was still active: {dict(final)}; "
        f"lost: {lost}.\n"
    )
    json_path, md_path = write_results(MODULE, f"load-{backend}", payload, markdown, args.results)
    print(markdown)
    print(f"wrote {json_path} and {md_path}")
    if record.errors or lost:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
