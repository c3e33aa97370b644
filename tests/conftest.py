"""Fixtures shared by the engine tests: real data found through a path setting, never downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.data.dataset import ImageDataset, SplitInfo

# The test modules that ran longest in a serial run on 2 CPU cores, slowest first. xdist hands
# out whole modules (--dist loadfile) in collection order, so these start first and the last module
# running alone is a short one. A name that no longer exists is simply not found.
SLOWEST_MODULES = (
    "test_real_data_default_value_mnist.py",
    "test_real_data_default_value_fashion_mnist.py",
    "test_distill_accuracy.py",
    "test_startup_race.py",
    "test_e2e_recovery.py",
    "test_bench_distill.py",
    "test_bench_papers.py",
    "test_bench_perf.py",
    "test_api_fuzz.py",
    "test_api_tenants.py",
)
REDIS_DATABASES = 16  # a Redis server's default number of logical databases


def _worker_number() -> int | None:
    """0, 1, ... in an xdist worker (``PYTEST_XDIST_WORKER`` is gw0, gw1, ...), None in a serial run."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return int(worker.removeprefix("gw")) if worker else None


def _own_database(url: str, number: int) -> str:
    """``url`` with the database ``<name>_gw<number>`` on the same server, created if missing."""
    from sqlalchemy import create_engine, make_url, text

    base = make_url(url)
    name = f"{base.database}_gw{number}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            if connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def _own_redis_db(url: str, number: int) -> str:
    """``url`` with the Redis database index moved up by ``number`` (redis://host:port/<index>)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    index = int(parts.path.strip("/") or 0) + number
    if index >= REDIS_DATABASES:
        raise pytest.UsageError(f"{url}: xdist worker {number} would need Redis database {index}; use fewer workers or a lower index")
    return urlunsplit(parts._replace(path=f"/{index}"))


def pytest_configure(config: pytest.Config) -> None:
    """In an xdist worker: one torch thread, and every worker but the first its own test database and
    Redis database. Runs before any test module reads ``CONDENSE_TEST_*``.

    Threads: with one worker per core, torch's default of one thread per core oversubscribes the cores;
    two workers each training a ConvNet-16 (10 epochs, 1000 MNIST images) took 77-97 s with 2 threads
    and 17-26 s with 1 (2 cores, another busy process beside them). The variable carries the same
    setting to the services and commands the tests start.

    Databases: the service tests wipe them before each use (tests/service_fixtures.py), so two workers
    sharing them would wipe each other's.
    """
    number = _worker_number()
    if number is None:
        return
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    if number == 0:
        return
    if url := os.environ.get("CONDENSE_TEST_DATABASE_URL"):
        os.environ["CONDENSE_TEST_DATABASE_URL"] = _own_database(url, number)
    if url := os.environ.get("CONDENSE_TEST_BROKER_URL"):
        os.environ["CONDENSE_TEST_BROKER_URL"] = _own_redis_db(url, number)


@pytest.hookimpl(trylast=True)  # after pytest's own reordering by fixture parameters, which would undo it
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The SLOWEST_MODULES first, in that order; every other module after them, in collection order
    (a stable sort keeps each module's tests together and in their order)."""
    rank = {name: position for position, name in enumerate(SLOWEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def shared_datasets_dir() -> Path | None:
    """``$CONDENSE_SHARED_DATASETS``, else the nearest ``shared/datasets`` beside a parent of this file."""
    env = os.environ.get("CONDENSE_SHARED_DATASETS")
    if env:
        return Path(env) if Path(env).is_dir() else None
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "datasets"
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="module")
def service_overrides() -> dict[str, str]:
    """Extra ``CONDENSE_*`` variables of the module's ``live_service`` (tests/service_fixtures.py); a
    module that needs other settings (a short time limit, private servers) defines its own."""
    return {}


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    found = shared_datasets_dir()
    if found is None:
        pytest.skip("real datasets not found: set CONDENSE_SHARED_DATASETS or place shared/datasets beside the repo")
    return found


def make_dataset(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, name: str = "synthetic") -> ImageDataset:
    """An ImageDataset straight from arrays (N, C, H, W) in [0, 1], with statistics from the training part."""
    x = x.astype(np.float32)
    channels = x.shape[1]
    mean = tuple(float(x[:, c].mean()) for c in range(channels))
    std = tuple(max(float(x[:, c].std()), 1e-6) for c in range(channels))
    classes = [str(c) for c in range(int(max(y.max(), y_test.max())) + 1)]
    return ImageDataset(
        x, y.astype(np.int64), x_test.astype(np.float32), y_test.astype(np.int64), classes, name, "npz",
        f"test-{name}", SplitInfo("provided"), mean, std,
    )


@pytest.fixture(scope="session")
def digits() -> ImageDataset:
    """scikit-learn's 8x8 digits (ships in the wheel): 1400 train / 397 test."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    return make_dataset(x[:1400], y[:1400], x[1400:], y[1400:], "digits")


@pytest.fixture
def trainings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The stage of every proxy training the scoring step starts (to tell a trained run from a reused one)."""
    import engine.pipeline.scoring as scoring

    started: list[str] = []
    real = scoring.train_model

    def counting(*args, **kwargs):
        started.append(kwargs.get("stage", "?"))
        return real(*args, **kwargs)

    monkeypatch.setattr(scoring, "train_model", counting)
    return started
