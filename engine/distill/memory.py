"""Peak memory and time per iteration of trajectory matching versus unroll steps.

Peak memory of CPU tensors is invisible to tracemalloc, so each setting runs in a fresh process
and reports the growth of its peak resident set (VmHWM) over the iterations; on CUDA it
reports ``torch.cuda.max_memory_allocated``. Data and experts are random tensors of the requested
shape: memory and time depend on shapes, not on pixel values.

    python -m engine.distill.memory --steps 10 20 40 --unroll checkpoint graph
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from engine.allocator import keep_freed_memory
from engine.device import resolve_device
from engine.distill.experts import Trajectories
from engine.distill.loop import run_loop
from engine.distill.synthetic import SyntheticSet
from engine.distill.trajectory import TrajectoryMatcher
from engine.distill.trajectory_config import TrajectoryConfig
from engine.models import create_model


@dataclass
class UnrollMeasurement:
    steps: int
    unroll: str
    peak_mb: float
    seconds_per_iteration: float
    device: str
    ipc: int
    width: int
    image_size: int


def peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # VmHWM is this address space's own peak; ru_maxrss is not, since Linux carries the parent's
    # peak across fork + exec, so a child of a large process (pytest late in a suite) sees no growth.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no procfs: kB on Linux, the best left


def measure_in_process(
    steps: int, unroll: str, *, ipc: int = 10, num_classes: int = 10, width: int = 128, image_size: int = 28,
    channels: int = 1, iterations: int = 3, device: str = "auto",
) -> UnrollMeasurement:
    """Run ``iterations`` trajectory-matching iterations here; meaningful only in a fresh process."""
    dev = resolve_device(device)
    torch.manual_seed(0)
    model = create_model("convnet", channels=channels, num_classes=num_classes, image_size=image_size, width=width).to(dev)
    start = torch.nn.utils.parameters_to_vector(model.parameters()).detach().cpu()
    epochs = torch.arange(4, dtype=torch.float32).reshape(4, 1) * 0.01
    experts = Trajectories((start + epochs * torch.randn_like(start)).unsqueeze(0))
    images = torch.randn(num_classes * ipc, channels, image_size, image_size, device=dev)
    labels = torch.arange(num_classes, device=dev).repeat_interleave(ipc)
    synthetic = SyntheticSet(images, labels, num_classes, (0.0,) * channels, (1.0,) * channels, lr=torch.tensor(0.01, device=dev))
    config = TrajectoryConfig(syn_steps=steps, expert_epochs=2, max_start_epoch=1, unroll=unroll)  # type: ignore[arg-type]
    # Warm-up with ONE unrolled step: kernels, allocator pools and the one-step working set are the
    # baseline, so the reported peak is what the extra unrolled steps add.
    run_loop(TrajectoryMatcher(experts, model, replace(config, syn_steps=1)), synthetic, 1)
    matcher = TrajectoryMatcher(experts, model, config)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    before = peak_mb(dev) if dev.type != "cuda" else torch.cuda.memory_allocated(dev) / 2**20
    t0 = time.perf_counter()
    run_loop(matcher, synthetic, iterations)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = (time.perf_counter() - t0) / iterations
    return UnrollMeasurement(steps, unroll, peak_mb(dev) - before, seconds, str(dev), ipc, width, image_size)


def measure_unroll(
    steps: list[int], unrolls: tuple[str, ...] = ("checkpoint",), **kwargs: int | str
) -> list[UnrollMeasurement]:
    """One fresh subprocess per (unroll, steps) setting, so each peak is its own."""
    out = []
    for unroll in unrolls:
        for n in steps:
            args = [sys.executable, "-m", "engine.distill.memory", "--steps", str(n), "--unroll", unroll, "--json"]
            for key, value in kwargs.items():
                args += [f"--{key.replace('_', '-')}", str(value)]
            proc = subprocess.run(args, capture_output=True, text=True, check=True)
            out.append(UnrollMeasurement(**json.loads(proc.stdout.strip().splitlines()[-1])[0]))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--unroll", nargs="+", default=["checkpoint"], choices=["checkpoint", "graph"])
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", action="store_true", help="measure in this process (one setting) and print JSON")
    parser.add_argument("--glibc-defaults", action="store_true",
                        help="leave glibc's heap settings as they are (the product keeps freed memory: engine.allocator)")
    args = parser.parse_args(argv)
    if not args.glibc_defaults:
        keep_freed_memory()
    common = {"ipc": args.ipc, "width": args.width, "image_size": args.image_size, "iterations": args.iterations, "device": args.device}
    if args.json:
        result = measure_in_process(args.steps[0], args.unroll[0], **common)
        print(json.dumps([asdict(result)]))
        return
    for m in measure_unroll(args.steps, tuple(args.unroll), **common):
        print(f"{m.unroll:>10} steps {m.steps:>3}: peak +{m.peak_mb:8.1f} MB, {m.seconds_per_iteration:6.2f} s/iteration ({m.device})")


if __name__ == "__main__":
    main()
