"""bench.papers: the seed papers' experiments run end to end through the command (smoke scale, real MNIST)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.papers import DECILES, FIEX_TABLE6_BEST, PAD_VARIANTS, TDDS_VARIANTS, class_kl
from tests.bench_command import run_bench


def test_class_kl_is_zero_for_the_same_distribution_and_finite_when_a_class_is_lost() -> None:
    full = np.array([50, 30, 20])
    assert class_kl(np.array([5, 3, 2]), full) == pytest.approx(0.0)
    lost = class_kl(np.array([10, 0, 0]), full)
    assert lost == pytest.approx(np.log(1 / 0.5))  # all mass on a class holding half the data


@pytest.mark.slow
def test_every_part_runs_through_the_bench_command(shared_datasets: Path, tmp_path: Path) -> None:
    run_bench("papers", "--scale", "smoke", "--distill-scale", "smoke", "--datasets", "mnist", "--seeds", "1",
              "--ipcs", "1", shared_datasets=shared_datasets, results=tmp_path)
    payload = json.loads((tmp_path / "papers-smoke.json").read_text())

    windows = payload["el2n_windows"]["results"]["mnist"]["rows"]
    assert [r.get("decile") for r in windows] == [None, *range(DECILES)]  # random first, then the deciles
    assert len({r["kept"] for r in windows}) == 1 and all(r["class_kl"] == pytest.approx(0.0, abs=1e-9) for r in windows)

    balance = {r["name"]: r for r in payload["class_balance"]["results"]["mnist"]["rows"]}
    assert balance["EL2N hardest, class-balanced"]["class_kl"] == pytest.approx(0.0, abs=1e-9)
    assert balance["EL2N hardest, over all samples"]["class_kl"] > 0  # hardest samples crowd into a few classes

    sweep = payload["tdds_sweep"]["results"]["mnist"]["rows"]
    assert {(r["name"], r["keep"]) for r in sweep} == {
        (name, keep) for name in ["random", *TDDS_VARIANTS] for keep in (0.1, 0.3)
    }

    ablation = payload["pad_ablation"]["results"]["mnist"]
    rows = {row["variant"]: row for row in ablation["rows"]}
    assert set(rows) == set(PAD_VARIANTS)
    for variant, (method, fiem) in PAD_VARIANTS.items():
        resolved = rows[variant]["resolved"]  # what the engine ran, not only what was asked
        assert rows[variant]["method"] == method and (resolved["fiem_ratio"] > 0) == fiem
        assert resolved["fiem_ratio"] == rows[variant]["overrides"]["fiem_ratio"]
        assert (resolved["schedule"] is not None) == (method == "pad")  # FIEX: PAD's expert data scheduler
        assert len(rows[variant]["accuracy"]) == 1
    fiex = {row["variant"]: row for row in payload["fiex_dc_dm"]["results"]["mnist"]["rows"]}
    assert set(fiex) == {"DC", "DC + FIEX", "DM", "DM + FIEX"}
    for variant, row in fiex.items():
        assert row["resolved"]["fiex_drops"] == ("hardest" if "FIEX" in variant else None)  # IPC 1 drops the hardest
        assert row["overrides"]["fiex_ratio"] == (FIEX_TABLE6_BEST[row["method"], 1] if "FIEX" in variant else 0.0)
    table = (tmp_path / "papers-smoke.md").read_text()
    for heading in ("001 Sec. 4.4, Fig. 1", "001 Sec. 4.2, Tables 3 and 4", "002 Sec. 5.3", "003 Sec. 4.3.1, Table 3b",
                    "003 App. A.1, Table 6"):
        assert heading in table
    assert "| FIEX + FIEM (PAD) | 1 | 0.25 |" in table

    # --render writes the Markdown again from the results file alone, keeping the run's own header.
    (tmp_path / "papers-smoke.md").unlink()
    run_bench("papers", "--scale", "smoke", "--render", shared_datasets=shared_datasets, results=tmp_path, timeout=120)
    assert (tmp_path / "papers-smoke.md").read_text() == table
