"""What a job costs on this machine: the default prune and distill jobs and their short forms (docs/jobs.md).

    python -m bench.job_cost                  # the built-in digits (1437 training images of 8x8)
    python -m bench.job_cost --data ../shared/datasets/mnist --per-class 500 --name job-cost-cpu-mnist

Each job runs through the engine as a worker runs it (the service adds a few requests' worth of time), from the
settings a job spec gets by default or from the short spec docs/jobs.md shows; wall seconds of the whole job,
and of its report's share, one run each.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pydantic import TypeAdapter

from app.schemas.jobs import JobCreate
from app.services.job_configs import distill_config, prune_config
from bench.common import RESULTS, command_line, write_results
from engine.allocator import keep_freed_memory
from engine.data import load_dataset, subsample_per_class
from engine.pipeline.distill import run_distill
from engine.pipeline.prune import run_prune

QUICK_PRUNE = {"proxy": {"epochs": 3, "width": 32}, "evaluation": {"seeds": 1, "epochs": 5, "full_data": False}}
QUICK_DISTILL = {"iterations": 50, "evaluation": {"seeds": 1, "epochs": 50, "width": 32}}
LOCAL_DATASET = "ds_000000000000000000000000"  # the spec needs an id; the data is --data
# Names without commas: --jobs takes a comma-separated list of them.
JOBS = {
    "default prune job (keep 10%)": {"kind": "prune", "keep_fraction": 0.1},
    "short prune job (keep 10%)": {"kind": "prune", "keep_fraction": 0.1, **QUICK_PRUNE},
    "default distill job (DM at IPC 10)": {"kind": "distill"},
    "short distill job (DM at IPC 10)": {"kind": "distill", **QUICK_DISTILL},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="builtin:digits")
    parser.add_argument("--jobs", default=",".join(JOBS), help="which of the jobs to run (comma-separated names)")
    parser.add_argument("--per-class", type=int, default=None, help="keep this many training images per class")
    parser.add_argument("--name", default="job-cost-cpu", help="results file name")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    chosen = args.jobs.split(",")
    keep_freed_memory()  # as the worker does
    dataset = load_dataset(args.data)
    if args.per_class:
        dataset = dataset.with_train_subset(subsample_per_class(dataset.y_train, args.per_class))
    rows = []
    specs = TypeAdapter(JobCreate)
    for name, body in ((n, b) for n, b in JOBS.items() if n in chosen):
        spec = specs.validate_python({**body, "dataset_id": LOCAL_DATASET, "device": "cpu"})
        start = time.perf_counter()
        if body["kind"] == "prune":
            report = run_prune(dataset, prune_config(spec)).report
        else:
            report = run_distill(dataset, distill_config(spec)).report
        seconds = time.perf_counter() - start
        evaluation = report["timings"].get("evaluation_seconds")
        rows.append({"job": name, "spec": body, "seconds": round(seconds, 1),
                     "evaluation_seconds": None if evaluation is None else round(evaluation, 1)})
        print(f"{name}: {seconds:.0f} s", flush=True)
    previous = args.results / f"{args.name}.json"
    old = json.loads(previous.read_text()) if previous.is_file() else {}
    # Rows of jobs not run this time stay, so that a slow job can be measured on its own.
    rows = [r for r in old.get("rows", []) if r["job"] not in {row["job"] for row in rows}] + rows
    rows.sort(key=lambda r: list(JOBS).index(r["job"]))
    payload = {"commands": [*old.get("commands", []), command_line("bench.job_cost")], "data": args.data,
               "per_class": args.per_class, "rows": rows}
    lines = [f"## What a job costs ({dataset.name}: {len(dataset.y_train)} training images of "
             f"{'x'.join(map(str, dataset.image_shape))}, CPU)\n",
             "One run each, through the engine as a worker runs it.\n",
             "| job | spec (besides dataset_id) | wall s | of which the accuracy report |", "|---|---|---|---|"]
    for row in rows:
        report = "" if row["evaluation_seconds"] is None else f"{row['evaluation_seconds']:.1f}"
        lines.append(f"| {row['job']} | `{json.dumps(row['spec'])}` | {row['seconds']:.1f} | {report} |")
    write_results("bench.job_cost", args.name, payload, "\n".join(lines) + "\n", args.results)


if __name__ == "__main__":
    main()
