"""Time with glibc's default heap settings vs the product's (engine.allocator keeps freed memory).

Two workloads at the issue's reference shape (28x28 single-channel images, ConvNet-128, 10 classes):
one trajectory-matching iteration of 20 unrolled steps over 100 synthetic images, and one epoch of
training on 5000 images in batches of 256. Each measurement runs in a fresh process; the two settings
alternate, so both see the same machine load, and the result is their ratio within this run.

    python -m bench.allocator [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import torch

from bench.common import write_results
from engine.allocator import keep_freed_memory
from engine.models import create_model
from engine.train import TrainConfig, train_model

SETTINGS = ("glibc defaults", "kept freed memory")


def _train_epoch_seconds(samples: int = 5000) -> float:
    torch.manual_seed(0)
    x, y = torch.randn(samples, 1, 28, 28), torch.randint(0, 10, (samples,))
    model = create_model("convnet", channels=1, num_classes=10, image_size=28, width=128)
    train_model(model, x[:512], y[:512], TrainConfig(epochs=1, batch_size=256, amp=False))  # warm-up
    start = time.perf_counter()
    train_model(model, x, y, TrainConfig(epochs=1, batch_size=256, amp=False))
    return time.perf_counter() - start


def _child(workload: str, setting: str) -> dict:
    if workload == "trajectory":
        args = [sys.executable, "-m", "engine.distill.memory", "--steps", "20", "--iterations", "2", "--json"]
        args += ["--glibc-defaults"] if setting == SETTINGS[0] else []
        proc = subprocess.run(args, capture_output=True, text=True, check=True)
        return {"seconds": json.loads(proc.stdout.strip().splitlines()[-1])[0]["seconds_per_iteration"]}
    args = [sys.executable, "-m", "bench.allocator", "--child", setting]
    proc = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=SETTINGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child == SETTINGS[1]:
            keep_freed_memory()
        print(json.dumps({"seconds": _train_epoch_seconds()}))
        return
    results: dict = {}
    for workload in ("trajectory", "train"):
        runs: dict[str, list[float]] = {s: [] for s in SETTINGS}
        for repeat in range(args.repeats):
            order = SETTINGS if repeat % 2 == 0 else SETTINGS[::-1]
            for setting in order:
                runs[setting].append(_child(workload, setting)["seconds"])
                print(f"{workload} {setting}: {runs[setting][-1]:.2f} s", flush=True)
        ratios = [d / k for d, k in zip(runs[SETTINGS[0]], runs[SETTINGS[1]], strict=True)]
        results[workload] = {"seconds": runs, "ratios": ratios, "ratio_mean": float(np.mean(ratios)), "ratio_std": float(np.std(ratios))}
    lines = ["## glibc heap settings (engine.allocator)\n",
             "Seconds per trajectory-matching iteration (20 unrolled steps, 100 images) and per training epoch "
             "(5000 images, batch 256), ConvNet-128 on 28x28 images; each in a fresh process, the settings alternating.\n",
             f"| workload | {SETTINGS[0]} | {SETTINGS[1]} | speed-up (defaults / kept), mean ± std over {args.repeats} pairs |",
             "|---|---|---|---|"]
    for workload, r in results.items():
        cells = [", ".join(f"{s:.1f}" for s in r["seconds"][name]) for name in SETTINGS]
        lines.append(f"| {workload} | {cells[0]} | {cells[1]} | {r['ratio_mean']:.2f} ± {r['ratio_std']:.2f} |")
    write_results("bench.allocator", "allocator-cpu", {"repeats": args.repeats, "results": results}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
