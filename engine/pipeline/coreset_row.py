"""Distilled vs pruned vs random at the same size: the third row of a distill job's report (issue 34.5).

A distilled set of ``ipc`` images per class is worth its cost only if it beats what a prune job would keep
at the same size. So a distill job also selects the coreset that a default prune job (``method: auto``,
``mode: auto``) keeps at ``ipc x classes`` samples, from the same proxy settings and seed (a stored proxy run
of the same data and proxy serves it without training), trains it under the synthetic set's own evaluation
protocol and seeds, and says which of the three is worth most, with paired verdicts
(:mod:`engine.evaluate.verdict`). The coreset splits its budget as every ``auto`` selection does (equal shares,
``engine.select.allocation``), so it is ``ipc`` per class wherever a class holds that many.
"""

from __future__ import annotations

from pathlib import Path

from engine.data.dataset import ImageDataset
from engine.evaluate import gain_over_random
from engine.evaluate.verdict import describe
from engine.pipeline.distill_config import DistillConfig
from engine.pipeline.prune import PruneResult, select_subset
from engine.pipeline.prune_config import PruneConfig
from engine.progress import Tracker
from engine.select.auto import AUTO
from engine.select.config import SelectionConfig
from engine.store import FileStore


def coreset_config(config: DistillConfig, num_classes: int) -> PruneConfig:
    """The default prune job at the distill job's size, proxy and seed."""
    return PruneConfig(method=AUTO, selection=SelectionConfig(keep=config.ipc * num_classes), proxy=config.init.proxy,
                       evaluation=None, seed=config.seed, device=config.device)


def select_coreset(
    dataset: ImageDataset, config: DistillConfig, tracker: Tracker, workdir: Path | None, proxy_runs: FileStore | None
) -> PruneResult:
    return select_subset(dataset, coreset_config(config, dataset.num_classes), tracker, workdir, proxy_runs)


def coreset_summary(coreset: PruneResult) -> dict:
    """What the report records of the coreset: its indices and how they were chosen."""
    return {"indices": coreset.indices.tolist(), "score": coreset.report["score"],
            "selection": coreset.report["selection"], "proxy_run": coreset.report.get("proxy_run")}


def comparison(evaluation: dict, ipc: int) -> dict:
    """Paired gains of the synthetic set (as delivered, with its labels) over the coreset, and of the coreset
    over random real images, with a one-line recommendation."""
    synthetic, coreset = evaluation["synthetic"], evaluation["coreset"]
    over_coreset = gain_over_random(synthetic, coreset)
    out: dict = {"synthetic_over_coreset": over_coreset}
    if "random" in evaluation:
        out["coreset_over_random"] = gain_over_random(coreset, evaluation["random"])
    verdict = over_coreset["verdict"]
    figure = describe(verdict, what="the pruned coreset")
    if verdict["verdict"] == "better":
        line = f"at IPC {ipc} on this data the distilled set is worth more than the pruned coreset: {figure}"
    elif verdict["verdict"] == "worse":
        line = f"at IPC {ipc} on this data the pruned coreset is worth more than the distilled set: {figure}"
    else:
        line = f"at IPC {ipc} on this data the distilled set and the pruned coreset cannot be told apart: {figure}"
    if "coreset_over_random" in out:
        line += f"; the coreset: {describe(out['coreset_over_random']['verdict'], what='random real images')}"
    out["recommendation"] = line
    return out
