"""The default prune job beats random on real Fashion-MNIST (protocol: tests/real_data_default_value.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.real_data_default_value import check_default_job_beats_random


@pytest.mark.slow
def test_default_job_beats_random(shared_datasets: Path) -> None:
    check_default_job_beats_random(shared_datasets, "fashion-mnist")
