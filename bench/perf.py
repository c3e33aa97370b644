"""Performance ratios of the service and the engine, each measured side by side in one run.

    python -m bench.perf                      # every part, on this machine's CPU
    python -m bench.perf --parts reuse        # one part
    python -m bench.perf --device cuda        # the engine parts on a GPU

Parts:
- ``reuse``: a second prune job on the same dataset with another score and keep fraction vs the first,
  through the API and a real Celery worker (embedded default), evaluation off; times are each job's
  ``started_at`` to ``finished_at``. The first job records every dynamics score and keeps the run;
  the second selects from it (issue 18, target <= 0.1).
- ``record_all``: what the first job pays for that: one in-process prune job recording every score into
  a store vs the same job recording only its own score, interleaved repeats, medians.
- ``decode``: loading the full MNIST training and test sets by decoding their IDX files vs reading them back
  from the worker's decoded-dataset cache (interleaved repeats, medians).
- ``batched``: an evaluation's 5 seed models trained together (vmap over stacked parameters) vs one after
  another, at ConvNet widths 16 and 64, interleaved repeats; the accuracies side by side.
- ``loop``: the engine's training loop (``train_model``) vs a bare PyTorch loop with the same model, batch,
  optimizer, schedule and data, at ConvNet widths 32 and 128; images/s, interleaved repeats (target >= 0.95).
- ``sweep``: one sweep of 5 scores x 3 keep fractions vs the 15 prune jobs it stands for, each on its own
  (in process, evaluation off; target <= 0.15 of their summed time).

Data: the first ``--per-class`` MNIST training images of each class from ``../shared/datasets`` (300: the
separate jobs of ``sweep`` and the models of ``batched`` keep the whole command in minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch

from app import launch
from bench.common import RESULTS, command_line, find_shared_datasets, mean_std, write_results
from engine.data import ImageDataset, load_dataset
from engine.data.cache import DecodedCache, cache_key
from engine.data.export import save_npz
from engine.device import resolve_device
from engine.evaluate import EvalSpec, evaluate_training_set
from engine.models import create_model
from engine.pipeline.prune import run_prune
from engine.pipeline.prune_config import ProxyConfig, PruneConfig
from engine.pipeline.sweep import run_sweep
from engine.pipeline.sweep_config import SweepConfig
from engine.seed import seed_everything
from engine.select.config import SelectionConfig
from engine.store import LocalFileStore
from engine.train import TrainConfig, train_model

MODULE = "bench.perf"
PARTS = ("reuse", "record_all", "sweep", "decode", "batched", "loop")
SWEEP_METHODS = ["el2n", "forgetting", "aum", "entropy", "tdds"]
SWEEP_KEEPS = [0.1, 0.3, 0.5]
TERMINAL = {"succeeded", "failed", "canceled"}


def first_per_class(dataset: ImageDataset, per_class: int) -> ImageDataset:
    idx = np.concatenate([np.flatnonzero(dataset.y_train == c)[:per_class] for c in range(dataset.num_classes)])
    return dataset.with_train_subset(np.sort(idx))


def npz_bytes(dataset: ImageDataset) -> bytes:
    """The subset as an upload, with its own test split."""
    with tempfile.TemporaryDirectory() as tmp:
        path = save_npz(Path(tmp) / "subset.npz", dataset.x_train, dataset.y_train, x_test=dataset.x_test,
                        y_test=dataset.y_test, classes=dataset.classes)
        return path.read_bytes()


def prune_spec(dataset_id: str, method: str, keep: float, proxy: ProxyConfig, device: str) -> dict[str, Any]:
    return {"kind": "prune", "dataset_id": dataset_id, "method": method, "keep_fraction": keep, "device": device,
            "proxy": {"epochs": proxy.epochs, "width": proxy.width}, "evaluation": None}


def run_job(client: httpx.Client, spec: dict[str, Any], timeout_s: float = 3600) -> dict[str, Any]:
    response = client.post("/v1/jobs", json=spec)
    response.raise_for_status()
    job_id = response.json()["id"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in TERMINAL:
            if job["status"] != "succeeded":
                raise RuntimeError(f"job {job_id} {job['status']}: {job.get('error')}")
            return job
        time.sleep(0.5)
    raise TimeoutError(job_id)


def job_seconds(job: dict[str, Any]) -> float:
    return (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])).total_seconds()


def reuse(data: ImageDataset, proxy: ProxyConfig, device: str, log) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="condense-perf-"))
    with launch.running_service(root, {"CONDENSE_DATA_DIR": str(root / "data")}) as base_url:
        headers = launch.local_auth_headers(root / "data")
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
            upload = client.post("/v1/datasets", files={"file": ("mnist-subset.npz", npz_bytes(data))})
            upload.raise_for_status()
            dataset_id = upload.json()["id"]
            first = run_job(client, prune_spec(dataset_id, "el2n", 0.3, proxy, device))
            log(f"reuse: first job {job_seconds(first):.1f}s, proxy run reused: {first['metrics']['proxy_run']['reused']}")
            second = run_job(client, prune_spec(dataset_id, "forgetting", 0.1, proxy, device))
            log(f"reuse: second job {job_seconds(second):.1f}s, reused: {second['metrics']['proxy_run']['reused']}")
            runs = client.get("/v1/proxy-runs").json()["data"]
    return {
        "samples": len(data.y_train), "proxy": proxy.__dict__,
        "first": {"method": "el2n", "keep": 0.3, "seconds": job_seconds(first), "proxy_run": first["metrics"]["proxy_run"]},
        "second": {"method": "forgetting", "keep": 0.1, "seconds": job_seconds(second),
                   "proxy_run": second["metrics"]["proxy_run"]},
        "ratio": job_seconds(second) / job_seconds(first),
        "stored_run_bytes": runs[0]["size_bytes"] if runs else None,
    }


def record_all(data: ImageDataset, proxy: ProxyConfig, device: str, repeats: int, log) -> dict[str, Any]:
    config = PruneConfig(method="el2n", selection=SelectionConfig(keep=0.3), proxy=proxy, evaluation=None, device=device)
    seconds: dict[str, list[float]] = {"every score, stored": [], "own score only": []}
    for r in range(repeats):
        for kind in seconds:
            with tempfile.TemporaryDirectory() as tmp:
                store = LocalFileStore(Path(tmp)) if kind.startswith("every") else None
                start = time.perf_counter()
                run_prune(data, config, proxy_runs=store)
                seconds[kind].append(time.perf_counter() - start)
            log(f"record_all repeat {r + 1}: {kind} {seconds[kind][-1]:.1f}s")
    medians = {kind: float(np.median(v)) for kind, v in seconds.items()}
    return {"samples": len(data.y_train), "proxy": proxy.__dict__, "seconds": seconds, "medians": medians,
            "ratio": medians["every score, stored"] / medians["own score only"]}


def sweep_vs_jobs(data: ImageDataset, proxy: ProxyConfig, device: str, log) -> dict[str, Any]:
    base = PruneConfig(proxy=proxy, evaluation=None, device=device)
    start = time.perf_counter()
    run_sweep(data, SweepConfig(SWEEP_METHODS, SWEEP_KEEPS, base))
    sweep_seconds = time.perf_counter() - start
    log(f"sweep: {len(SWEEP_METHODS) * len(SWEEP_KEEPS)} points in {sweep_seconds:.1f}s")
    jobs = []
    for point in SweepConfig(SWEEP_METHODS, SWEEP_KEEPS, base).points():
        start = time.perf_counter()
        run_prune(data, point)
        jobs.append(time.perf_counter() - start)
    log(f"sweep: the 15 separate jobs took {sum(jobs):.1f}s")
    return {"samples": len(data.y_train), "proxy": proxy.__dict__, "methods": SWEEP_METHODS, "keeps": SWEEP_KEEPS,
            "sweep_seconds": sweep_seconds, "job_seconds": jobs, "ratio": sweep_seconds / sum(jobs)}


def decode_vs_cache(root: Path, repeats: int, log) -> dict[str, Any]:
    seconds: dict[str, list[float]] = {"decode": [], "cache": []}
    with tempfile.TemporaryDirectory() as tmp:
        cache = DecodedCache(Path(tmp), max_bytes=2**34)
        key = cache_key("mnist", test_fraction=0.2, split_seed=0)
        cache.get_or_load(key, lambda: load_dataset(root / "mnist"))  # fill it
        for r in range(repeats):
            # Each load is timed until every pixel was read once: a memory-mapped entry would otherwise defer
            # its reads past the stopwatch.
            start = time.perf_counter()
            data = load_dataset(root / "mnist")
            float(data.x_train.sum() + data.x_test.sum())
            seconds["decode"].append(time.perf_counter() - start)
            start = time.perf_counter()
            cached = cache.get_or_load(key, lambda: load_dataset(root / "mnist"))
            float(cached.x_train.sum() + cached.x_test.sum())
            seconds["cache"].append(time.perf_counter() - start)
            log(f"decode repeat {r + 1}: decode {seconds['decode'][-1]:.2f}s, cache {seconds['cache'][-1]:.2f}s")
        entry_bytes = sum(p.stat().st_size for p in Path(tmp).glob("*.safetensors"))
    medians = {kind: float(np.median(v)) for kind, v in seconds.items()}
    return {"samples": len(data.y_train) + len(data.y_test), "seconds": seconds, "medians": medians,
            "ratio": medians["cache"] / medians["decode"], "entry_bytes": entry_bytes}


def batched_vs_sequential(data: ImageDataset, device: str, repeats: int, log, widths: list[int]) -> dict[str, Any]:
    rows = []
    for width in widths:
        spec = EvalSpec(model="convnet", width=width, epochs=3, seeds=5, device=device)
        seconds: dict[str, list[float]] = {"sequential": [], "batched": []}
        accuracy: dict[str, list[float]] = {}
        for r in range(repeats):
            for kind in seconds:
                stats = evaluate_training_set(data, None, replace(spec, batched=kind == "batched"), base_seed=0)
                seconds[kind].append(stats.seconds)
                accuracy[kind] = stats.per_seed
            log(f"batched width {width} repeat {r + 1}: sequential {seconds['sequential'][-1]:.1f}s, "
                f"batched {seconds['batched'][-1]:.1f}s")
        medians = {kind: float(np.median(v)) for kind, v in seconds.items()}
        rows.append({"width": width, "epochs": spec.epochs, "seeds": spec.seeds, "seconds": seconds, "medians": medians,
                     "accuracy": accuracy, "ratio": medians["batched"] / medians["sequential"]})
    return {"samples": len(data.y_train), "device": device, "rows": rows}


def bare_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, config: TrainConfig) -> None:
    """The reference: what a user writes by hand for the same training (no observers, progress or checkpoints)."""
    device = resolve_device(config.device)
    model.to(device).train()
    x, y = x.to(device), y.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    steps = math.ceil(len(x) / config.batch_size) * config.epochs
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(config.seed)
    for _ in range(config.epochs):
        for idx in torch.randperm(len(x), generator=generator).split(config.batch_size):
            idx = idx.to(device)
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()


def loop_vs_bare(data: ImageDataset, device: str, repeats: int, log, widths: list[int], epochs: int = 2) -> dict[str, Any]:
    x, y = data.train_tensors()
    c, h, _ = data.image_shape
    rows = []
    for width in widths:
        config = TrainConfig(epochs=epochs, seed=0, device=device)
        seconds: dict[str, list[float]] = {"bare PyTorch": [], "engine": []}
        for r in range(repeats + 1):  # the first round warms up (allocator, kernels) and is not counted
            for kind in seconds:
                seed_everything(0)
                model = create_model("convnet", channels=c, num_classes=data.num_classes, image_size=h, width=width)
                start = time.perf_counter()
                if kind == "engine":
                    train_model(model, x, y, config)
                else:
                    bare_loop(model, x, y, config)
                if r:
                    seconds[kind].append(time.perf_counter() - start)
        medians = {kind: float(np.median(v)) for kind, v in seconds.items()}
        images = len(x) * epochs
        rows.append({"width": width, "images": images, "seconds": seconds, "medians": medians,
                     "images_per_s": {k: images / m for k, m in medians.items()},
                     "ratio": medians["bare PyTorch"] / medians["engine"]})
        log(f"loop width {width}: engine / bare images/s {rows[-1]['ratio']:.3f}")
    return {"device": device, "samples": len(x), "rows": rows}


def _medians_section(title: str, r: dict[str, Any], description: str, ratio: str, digits: int = 1) -> list[str]:
    return [f"### {title}\n", f"Command: `{r['command']}`\n", f"{description}\n", "| run | median seconds |", "|---|---|",
            *(f"| {kind} | {m:.{digits}f} |" for kind, m in r["medians"].items()), "", f"**{ratio}: {r['ratio']:.3f}**\n"]


def markdown(payload: dict[str, Any]) -> str:
    lines = ["## Performance ratios\n"]
    if "reuse" in payload:
        r = payload["reuse"]
        lines += [
            "### Second prune job reusing the first one's proxy run\n",
            f"Command: `{r['command']}`\n",
            f"{r['samples']} MNIST images, proxy {r['proxy']['model']} width {r['proxy']['width']}, {r['proxy']['epochs']} "
            "epochs, evaluation off; through the API and one Celery worker (embedded default); job started to finished.\n",
            "| job | score | keep | seconds | proxy run reused |", "|---|---|---|---|---|",
            *(f"| {name} | {j['method']} | {j['keep']:.0%} | {j['seconds']:.1f} | {j['proxy_run']['reused']} |"
              for name, j in (("first", r["first"]), ("second", r["second"]))),
            "", f"**Ratio second / first: {r['ratio']:.3f}** (target <= 0.1). Stored run: {r['stored_run_bytes']} bytes.\n",
        ]
    if "record_all" in payload:
        r = payload["record_all"]
        lines += _medians_section(
            "What recording every score costs the first job", r,
            f"One in-process EL2N prune job (keep 30%, evaluation off, {r['samples']} MNIST images, proxy width "
            f"{r['proxy']['width']}, {r['proxy']['epochs']} epochs) recording every dynamics score into a store vs recording "
            f"its own score only; medians of {len(r['seconds']['own score only'])} interleaved repeats.", "Ratio",
        )
    if "sweep" in payload:
        r = payload["sweep"]
        lines += [
            "### A sweep vs the separate jobs it stands for\n",
            f"Command: `{r['command']}`\n",
            f"{len(r['methods'])} scores ({', '.join(r['methods'])}) x keeps {r['keeps']} on {r['samples']} MNIST images, proxy "
            f"width {r['proxy']['width']}, {r['proxy']['epochs']} epochs, evaluation off, in process.\n",
            "| run | seconds |", "|---|---|",
            f"| one sweep | {r['sweep_seconds']:.1f} |",
            f"| {len(r['job_seconds'])} separate prune jobs (sum) | {sum(r['job_seconds']):.1f} |",
            "", f"**Ratio: {r['ratio']:.3f}** (target <= 0.15)\n",
        ]
    if "decode" in payload:
        r = payload["decode"]
        lines += _medians_section(
            "Decoding a dataset vs the worker's decoded cache", r,
            f"MNIST from its gzip'd IDX files ({r['samples']} images) vs the cache entry ({r['entry_bytes'] / 2**20:.0f} MiB), "
            f"each until every pixel was read once; medians of {len(r['seconds']['decode'])} interleaved repeats.",
            "Ratio cache / decode", digits=2,
        )
    if "batched" in payload:
        r = payload["batched"]
        lines += [
            "### Evaluation seeds trained together vs one after another\n",
            f"Command: `{r['command']}`\n",
            f"5 ConvNets (one per seed) trained 3 epochs on {r['samples']} MNIST images on {r['device']}; medians of "
            "interleaved repeats. Batched: parameters stacked and the passes vectorised over seeds (same initial weights, "
            "batch orders and steps as sequential).\n",
            "| width | sequential s | batched s | **ratio** | accuracy sequential (%) | accuracy batched (%) |",
            "|---|---|---|---|---|---|",
            *(f"| {row['width']} | {row['medians']['sequential']:.1f} | {row['medians']['batched']:.1f} | **{row['ratio']:.3f}** | "
              f"{mean_std(row['accuracy']['sequential'])} | {mean_std(row['accuracy']['batched'])} |" for row in r["rows"]),
            "",
        ]
    if "loop" in payload:
        r = payload["loop"]
        lines += [
            "### The engine's training loop vs a bare PyTorch loop\n",
            f"Command: `{r['command']}`\n",
            f"The same ConvNet, SGD (momentum, weight decay), cosine schedule, batch 128 and {r['samples']} MNIST images in "
            f"memory on {r['device']}; medians of interleaved repeats after a warm-up round.\n",
            "| width | bare images/s | engine images/s | **engine / bare** |", "|---|---|---|---|",
            *(f"| {row['width']} | {row['images_per_s']['bare PyTorch']:.0f} | {row['images_per_s']['engine']:.0f} | "
              f"**{row['ratio']:.3f}** |" for row in r["rows"]),
            "", "Target: >= 0.95.\n",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batched-widths", default="16,64", help="ConvNet widths of the batched part")
    parser.add_argument("--loop-widths", default="32,128", help="ConvNet widths of the loop part")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the results files (read and written)")
    args = parser.parse_args()
    parts = args.parts.split(",")
    if unknown := set(parts) - set(PARTS):
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    started = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {msg}", flush=True)

    data = first_per_class(load_dataset(find_shared_datasets() / "mnist"), args.per_class)
    proxy = ProxyConfig(model="convnet", width=args.width, epochs=args.epochs)
    name = "perf-cpu" if args.device == "cpu" else f"perf-{args.device}"
    previous = args.results / f"{name}.json"
    payload = {k: v for k, v in (json.loads(previous.read_text()) if previous.is_file() else {}).items() if k in PARTS}
    command = command_line(MODULE)
    if "reuse" in parts:
        payload["reuse"] = {"command": command, **reuse(data, proxy, args.device, log)}
    if "record_all" in parts:
        payload["record_all"] = {"command": command, **record_all(data, proxy, args.device, args.repeats, log)}
    if "decode" in parts:
        payload["decode"] = {"command": command, **decode_vs_cache(find_shared_datasets(), max(args.repeats, 1), log)}
    if "batched" in parts:
        payload["batched"] = {"command": command, **batched_vs_sequential(
            data, args.device, max(args.repeats, 1), log, widths=[int(w) for w in args.batched_widths.split(",")])}
    if "loop" in parts:
        payload["loop"] = {"command": command, **loop_vs_bare(
            data, args.device, max(args.repeats, 1), log, widths=[int(w) for w in args.loop_widths.split(",")])}
    if "sweep" in parts:
        payload["sweep"] = {"command": command, **sweep_vs_jobs(data, proxy, args.device, log)}
    paths = write_results(MODULE, name, payload, markdown(payload), folder=args.results)
    log(f"wrote {paths[0]} and {paths[1]}")


if __name__ == "__main__":
    main()
