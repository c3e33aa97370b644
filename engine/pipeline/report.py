"""Facts every report carries so a result can be reproduced and compared."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from importlib import metadata

import numpy as np
import torch


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment(device: torch.device) -> dict:
    return {
        "created_at": datetime.now(UTC).isoformat(),
        "versions": {
            "condense": _version("condense"),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
    }
