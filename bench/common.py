"""Shared benchmark plumbing: machine facts, dataset lookup and result files."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
    }


def command_line(module: str) -> str:
    return f"python -m {module} {shlex.join(sys.argv[1:])}".strip()


def find_shared_datasets() -> Path:
    env = os.environ.get("CONDENSE_SHARED_DATASETS")
    candidates = [Path(env)] if env else [p / "shared" / "datasets" for p in Path(__file__).resolve().parents]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise SystemExit("real datasets not found: set CONDENSE_SHARED_DATASETS to the folder holding mnist/ and fashion-mnist/")


def mean_std(values: list[float]) -> str:
    return f"{100 * np.mean(values):.2f} ± {100 * np.std(values):.2f}"


def write_results(module: str, name: str, payload: dict, markdown: str, folder: Path = RESULTS) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"command": command_line(module), "machine": machine(), "finished_at": datetime.now(UTC).isoformat(), **payload}
    json_path = folder / f"{name}.json"
    md_path = folder / f"{name}.md"
    json_path.write_text(json.dumps(payload, indent=2))
    md_path.write_text(markdown_header(payload) + markdown)
    return json_path, md_path


def markdown_header(payload: dict) -> str:
    """The lines a results Markdown starts with: the command, machine and time its JSON records."""
    return f"Command: `{payload['command']}`\n\nMachine: {json.dumps(payload['machine'])}\n\nFinished: {payload['finished_at']}\n\n"
