"""What the distill defaults are worth at the CPU scale, and what else was tried (issue 34 point 6).

    python -m bench.distill_trials                               # every trial on MNIST and Fashion-MNIST
    python -m bench.distill_trials --methods dm --ipcs 10 --jobs 2

Each trial is one change of a method's configuration in bench.distill's tables (the CPU scale: 500 real
images per class, width 32): the default distill job as a user gets it (DM, 200 iterations, DM's pixel
learning rate of 1, 256 real images per class per step), a start from the coreset that a default prune job
keeps at the same IPC (issue 34 point 5's row) instead of random real images, and other learning rates.
Every trial pins its start (bench.distill's random real images unless it says 'coreset start'), so 'the default
job' is the default job as it was before ``init: auto`` chose the coreset for DM and DC (then DSA and DATM-style) up to IPC 10 from these rows.
Trials run under the tables' evaluation protocol and seeds, so their per-seed accuracies pair with the tables'
random real rows and with the row each trial is compared against; verdicts are 95% paired t-intervals
(``engine.evaluate.verdict``). Results go to ``distill-trials-<scale>.{json,md}``; the tables' baselines are
read from ``distill-<scale>.json`` (run ``python -m bench.distill --parts tables`` first).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bench.common import RESULTS, command_line, find_shared_datasets, mean_std, write_results
from bench.distill import DATASET_NAMES, METHODS, SCALES, TITLES, cell_job, run_jobs
from engine.distill.distribution_config import DistributionConfig
from engine.distill.registry import METHODS as REGISTERED
from engine.evaluate.verdict import paired_verdict
from engine.pipeline.distill_config import DistillConfig

TABLES = "tables"  # compared against the method's row in bench.distill's tables


@dataclass(frozen=True)
class Trial:
    name: str
    overrides: dict = field(default_factory=dict)
    against: str = TABLES  # the trial (of the same method) or the tables row it is compared with


CORESET = {"init.mode": "coreset", "evaluation.compare_coreset": True}


def trials(job_iterations: int = DistillConfig.iterations) -> dict[str, list[Trial]]:
    """Each method's trials; the default distill job runs DM for ``job_iterations`` (a job's default unless a
    smoke run shortens it) with DistributionConfig's pixel learning rate and real batch."""
    job = {"iterations": job_iterations, "options.distribution.lr_images": DistributionConfig.lr_images, "options.distribution.batch_real": DistributionConfig.batch_real}
    return {
        "dm": [
            Trial("the default job", job),
            Trial("the default job, coreset start", job | CORESET, against="the default job"),
            Trial("the default job, pixel lr 5", job | {"options.distribution.lr_images": 5.0}, against="the default job"),
            Trial("the default job, pixel lr 5, coreset start", job | {"options.distribution.lr_images": 5.0} | CORESET,
                  against="the default job"),
        ],
        **{method: [Trial("coreset start", CORESET)] for method in ("dc", "dsa", "mtt")},
        # DATM-style and PAD lose to random real at IPC 50 on MNIST with soft labels from the short experts'
        # last checkpoint (a weak label model at this scale): the same runs with hard labels test that cause.
        **{method: [Trial("coreset start", CORESET), Trial("hard labels", {"soft_labels": False})]
           for method in ("datm", "pad")},
    }


TRIALS = trials()


def trial_jobs(args: argparse.Namespace, root: Path, experts: str) -> list[dict]:
    scale = SCALES[args.scale]
    ipcs = [int(i) for i in args.ipcs.split(",")]
    chosen = set(args.trials.split(",")) if args.trials else None
    # The tables' rows start as a job does (``init: auto``); a trial keeps its own start (random real unless named).
    return [cell_job(args.scale, scale, root, name, ipc, method, experts, None, args.device)
            | {"overrides": {"init.mode": "real"} | trial.overrides, "variant": trial.name}
            for ipc in ipcs for name in args.datasets.split(",")
            for method in args.methods.split(",") for trial in trials(args.job_iterations)[method]
            if chosen is None or trial.name in chosen]


def _paired(a: list[float], b: list[float]) -> str:
    diffs = np.asarray(a) - np.asarray(b)
    verdict = paired_verdict(diffs)
    return f"{100 * diffs.mean():+.2f} ± {100 * diffs.std():.2f}, {verdict.verdict}"


def tables_row(res: dict, row: dict) -> dict | None:
    """The tables' row a trial is compared with, as the tables hold it now."""
    return next((r for r in res["rows"] if r["ipc"] == row["ipc"] and r["method"] == row["method"]), None)


def reference_of(tables: dict, row: dict) -> dict | None:
    """What a trial is compared with in the tables when it runs, kept in its row: the tables are re-run under
    later defaults, and a trial's comparison is with the row of its day."""
    ref = tables_row(tables[row["dataset"]], row) if row["dataset"] in tables else None
    return ref and {key: ref.get(key) for key in ("iterations", "accuracy", "init")}


def markdown(payload: dict, tables: dict) -> str:
    lines = ["## Distill defaults and what else was tried (CPU scale)\n",
             "Commands: " + ", ".join(f"`{c}`" for c in payload["commands"]) + "\n",
             "Test accuracy (%) mean ± std over the evaluation seeds of bench.distill's tables (same protocol and "
             "seeds, so every comparison is paired by seed: mean ± std of the per-seed difference in points, and "
             "the 95% paired t-interval's verdict). 'vs random' is against the tables' random real images of the "
             "IPC; 'vs reference' against the row named in 'compared with' (the tables' row of the method at the "
             "scale's budget, or another trial); 'coreset' is the start's own accuracy where the trial evaluated it, "
             "and 'over its start' what distilling added to it. Every trial names its start: 'the default job' "
             "starts from random real images, as the default job did before `init: auto`, which now starts a "
             "method from the coreset at the IPCs its registry entry names, from these rows ("
             + "; ".join(f"{TITLES[m.name]}: IPC {m.coreset_start_from_ipc} to {m.coreset_start_up_to_ipc}"
                         for m in REGISTERED if m.coreset_start_up_to_ipc) + ").\n",
             *[f"Note: {note}\n" for note in payload.get("notes", [])]]
    for name in DATASET_NAMES:
        rows = [r for r in payload["rows"] if r["dataset"] == name]
        res = tables.get(name)
        if not rows or res is None:
            continue
        lines += [f"### {DATASET_NAMES[name]}\n",
                  "| method | IPC | trial | iterations | accuracy | vs random | compared with | vs reference | coreset | "
                  "over its start | wall s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        order = {m: i for i, m in enumerate(METHODS)}
        names = {m: [t.name for t in TRIALS.get(m, [])] for m in METHODS}
        for row in sorted(rows, key=lambda r: (r["ipc"], order[r["method"]], names[r["method"]].index(r["variant"]))):
            trial = next(t for t in TRIALS[row["method"]] if t.name == row["variant"])
            random = res["random"].get(str(row["ipc"]))
            if trial.against == TABLES:
                ref = row.get("reference") or tables_row(res, row)
                ref_name = f"tables ({ref['iterations']} iterations)" if ref else "tables (not run)"
            else:
                ref = next((r for r in rows if r["ipc"] == row["ipc"] and r["method"] == row["method"]
                            and r["variant"] == trial.against), None)
                ref_name = trial.against
            coreset = row.get("coreset")
            lines.append(
                f"| {TITLES[row['method']]} | {row['ipc']} | {row['variant']} | {row['iterations']} | "
                f"{mean_std(row['accuracy'])} | {_paired(row['accuracy'], random['accuracy']) if random else ''} | "
                f"{ref_name} | {_paired(row['accuracy'], ref['accuracy']) if ref else ''} | "
                f"{mean_std(coreset['per_seed']) if coreset else ''} | "
                f"{_paired(row['accuracy'], coreset['per_seed']) if coreset else ''} | {row['wall_seconds']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=["cpu", "smoke"], default="cpu")
    parser.add_argument("--datasets", default="mnist,fashion-mnist")
    parser.add_argument("--ipcs", default="10,1,50", help="in the order they run (the default job's IPC first)")
    parser.add_argument("--methods", default=",".join(TRIALS))
    parser.add_argument("--trials", help="only the trials of these names (comma-separated; default: every one)")
    parser.add_argument("--jobs", type=int, default=1, help="runs side by side, each on cpu_count / jobs threads")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--job-iterations", type=int, default=DistillConfig.iterations,
                        help="iterations of the default-job trials (a job's default; smoke runs shorten it)")
    parser.add_argument("--note", help="a remark on the conditions of this run")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the results files (read and written)")
    args = parser.parse_args()
    if unknown := set(args.methods.split(",")) - set(TRIALS):
        parser.error(f"unknown methods {sorted(unknown)}; choose from {', '.join(TRIALS)}")
    tables_file = args.results / f"distill-{args.scale}.json"
    if not tables_file.is_file():
        parser.error(f"{tables_file} not found: run python -m bench.distill --parts tables --scale {args.scale} first")
    tables = json.loads(tables_file.read_text())["tables"]["results"]
    root = find_shared_datasets()
    name = f"distill-trials-{args.scale}"
    previous = args.results / f"{name}.json"
    payload = json.loads(previous.read_text()) if previous.is_file() else {}
    payload = {"commands": [*payload.get("commands", []), command_line("bench.distill_trials")],
               "notes": [*payload.get("notes", []), *([args.note] if args.note else [])],
               "scale_settings": asdict(SCALES[args.scale]),
               "rows": payload.get("rows", [])}
    started = time.perf_counter()

    def keep(row: dict) -> None:
        if next(t for t in TRIALS[row["method"]] if t.name == row["variant"]).against == TABLES:
            row["reference"] = reference_of(tables, row)
        key = (row["dataset"], row["ipc"], row["method"], row["variant"])
        payload["rows"] = [r for r in payload["rows"] if (r["dataset"], r["ipc"], r["method"], r["variant"]) != key]
        payload["rows"].append(row)
        print(f"[{time.perf_counter() - started:7.1f}s] {row['dataset']} IPC {row['ipc']} {row['method']} "
              f"{row['variant']}: {mean_std(row['accuracy'])}", flush=True)
        write_results("bench.distill_trials", name, payload, markdown(payload, tables), args.results)

    with tempfile.TemporaryDirectory(prefix="condense-bench-experts-") as experts:
        run_jobs(trial_jobs(args, root, experts), args.jobs, keep)
    write_results("bench.distill_trials", name, payload, markdown(payload, tables), args.results)


if __name__ == "__main__":
    main()
