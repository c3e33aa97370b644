"""What validating an upload costs the real API process in memory, read from the kernel's own peak
RSS (VmHWM) of the uvicorn process, reset before each upload.

The uploads are tiny files of mostly blank uint8 images (a compression ratio near 140, under the
bomb limit of 200), so any copy the validation makes shows up as many times the file's size. Before
``inspect_dataset``, the API loaded the dataset as a job does (float32 copies, split, statistics):
the 0.94 MiB file below raised the API's peak by about 1.15 GB, and a 15 MB file could need 18 GB.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.service_fixtures import (  # noqa: F401 - fixtures
    LiveService,
    assert_problem,
    backend,
    live_service,
    random_npz_bytes,
)

pytestmark = pytest.mark.slow

SIDE = 32
ACCEPTED = 131_072  # images: 128 MiB of uint8 pixels, 512 MiB as float32
REFUSED = 2 * ACCEPTED  # declares 1 GiB of float32 pixels
MAX_DECODED_BYTES = 768 << 20


@pytest.fixture(scope="module")
def service_overrides() -> dict[str, str]:
    return {"CONDENSE_DATASET_MAX_DECODED_BYTES": str(MAX_DECODED_BYTES)}


def _sparse_npz(path: Path, count: int) -> Path:
    """``count`` 32x32 uint8 images, all zero but one pixel in about 700 (ratio 143), with random labels."""
    rng = np.random.default_rng(count)
    x = np.zeros((count, SIDE, SIDE), np.uint8)
    x.reshape(-1)[rng.integers(0, x.size, x.size // 700)] = rng.integers(1, 256, x.size // 700)
    np.savez_compressed(path, x=x, y=rng.integers(0, 10, count))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sparse")
    return {"accepted": _sparse_npz(folder / "accepted.npz", ACCEPTED), "refused": _sparse_npz(folder / "refused.npz", REFUSED)}


def _status_bytes(pid: int, key: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{key}:\s+(\d+) kB$", status, re.MULTILINE)
    assert match, status
    return int(match[1]) * 1024


def _peak_rise(service: LiveService, call: Callable[[], httpx.Response]) -> tuple[httpx.Response, int]:
    """``call``'s response and how far the API process's peak RSS rose above its RSS when it began."""
    pid = service.api.pid
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    start = _status_bytes(pid, "VmHWM")
    response = call()
    return response, _status_bytes(pid, "VmHWM") - start


def _upload(service: LiveService, path: Path) -> Callable[[], httpx.Response]:
    def call() -> httpx.Response:
        with path.open("rb") as f:
            return service.client.post("/v1/datasets", files={"file": (path.name, f)}, timeout=120)

    return call


@pytest.fixture(scope="module")
def warm_api(live_service: LiveService) -> LiveService:
    """The API after one small upload, so that first-use imports and caches are not counted."""
    response = live_service.client.post("/v1/datasets", files={"file": ("warm.npz", random_npz_bytes())})
    assert response.status_code == 201, response.text
    return live_service


def test_validating_an_upload_makes_no_float32_copy(warm_api: LiveService, files: dict[str, Path]) -> None:
    path = files["accepted"]
    assert path.stat().st_size < 1 << 20
    response, rise = _peak_rise(warm_api, _upload(warm_api, path))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["num_samples"] == ACCEPTED and body["image_shape"] == [1, SIDE, SIDE]
    pixels = ACCEPTED * SIDE * SIDE
    # The uint8 pixels once, with room for the allocator (x1.5), plus 64 MiB for the rest (labels,
    # bounded read and statistics chunks, the request). A single float32 copy alone would be 4x.
    assert rise <= 1.5 * pixels + (64 << 20), f"the API's peak rose by {rise / 2**20:,.0f} MiB for {pixels / 2**20:,.0f} MiB of pixels"


def test_declared_too_large_is_refused_before_it_is_read(warm_api: LiveService, files: dict[str, Path]) -> None:
    response, rise = _peak_rise(warm_api, _upload(warm_api, files["refused"]))
    body = assert_problem(response, 413, "x")
    assert rise <= 32 << 20, f"the API's peak rose by {rise / 2**20:,.0f} MiB for an upload refused by its header"
    assert "need 1.0 GiB" in body["detail"] and "limit of 768.0 MiB" in body["detail"]
