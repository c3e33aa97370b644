"""Bounded load test of the service on loopback: many clients submit small prune jobs and poll them.

    python -m bench.load [--clients 32] [--seconds 60] [--database-url URL --broker-url URL]

Starts a real API (uvicorn) and one Celery worker on a fresh data folder (the embedded default, or
the given Postgres + Redis), gives every client a tenant and API key of its own, and runs the clients
for a fixed time. Each client registers the built-in digits once, then loops: submit a job, poll its
status every ``--poll-interval`` seconds until it finishes or ``--polls`` polls have passed, submit the
next. Afterwards every job still queued or running is canceled through the API, and every submitted
id is read back: a job missing, failed, or left active counts as lost. Requests/s, p50/p99 latency of
submit and status, and every error go to bench/results/load-<backend>.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from app import launch
from app.core.config import Settings
from app.core.db import Database
from app.services.auth import create_key
from bench.common import write_results

MODULE = "bench.load"
TERMINAL = {"succeeded", "failed", "canceled"}


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

    async def call(self, kind: str, client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> Any:
        start = time.perf_counter()
        try:
            response = await client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            self.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            return None
        finally:
            self.latencies[kind].append(time.perf_counter() - start)
        if response.status_code >= 400:
            self.errors.append(f"{kind}: {response.status_code} {response.text[:200]}")
            return None
        return response.json() if response.content else {}


async def run_client(base_url: str, token: str, args: argparse.Namespace, stop_at: float, record: Record) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
        dataset = await record.call("register", client, "POST", "/v1/datasets", json={"builtin": "digits"})
        if dataset is None:
            return
        while time.monotonic() < stop_at:
            job = await record.call("submit", client, "POST", "/v1/jobs", json=small_job(dataset["id"]))
            if job is None:
                await asyncio.sleep(args.poll_interval)
                continue
            record.submitted.append((token, job["id"]))
            for _ in range(args.polls):
                if time.monotonic() >= stop_at:
                    break
                await asyncio.sleep(args.poll_interval)
                status = await record.call("status", client, "GET", f"/v1/jobs/{job['id']}")
                if status is not None and status["status"] in TERMINAL:
                    break


async def settle(base_url: str, record: Record) -> Counter[str]:
    """Cancels what is still active, then reads every submitted job back; returns final status counts."""
    final: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        for token, job_id in record.submitted:
            headers = {"Authorization": f"Bearer {token}"}
            job = (await client.get(f"/v1/jobs/{job_id}", headers=headers)).json()
            if job.get("status") in {"queued", "running"}:
                await client.post(f"/v1/jobs/{job_id}/cancel", headers=headers)
        deadline = time.monotonic() + 120  # a running job stops at its next cancellation check
        pending = list(record.submitted)
        while pending and time.monotonic() < deadline:
            still = []
            for token, job_id in pending:
                response = await client.get(f"/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"})
                status = response.json().get("status") if response.status_code == 200 else f"http {response.status_code}"
                if status in TERMINAL or status.startswith("http"):
                    final[status] += 1
                else:
                    still.append((token, job_id))
            pending = still
            if pending:
                await asyncio.sleep(0.5)
        final["left active"] += len(pending)
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

        async def run_all() -> None:
            await asyncio.gather(*(run_client(base_url, t, args, stop_at, record) for t in tokens))

        asyncio.run(run_all())
        elapsed = time.monotonic() - started
        final = asyncio.run(settle(base_url, record))

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
    json_path, md_path = write_results(MODULE, f"load-{backend}", payload, markdown)
    print(markdown)
    print(f"wrote {json_path} and {md_path}")
    if record.errors or lost:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
