"""The headline numbers a job record shows (``JobPublic.metrics``), read from the engine's report; the full report
is the job's ``report.json`` artifact."""

from __future__ import annotations

from typing import Any


def job_metrics(report: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a job's ``report``."""
    selection = report.get("selection", {})
    summary: dict[str, Any] = {
        key: selection[key] for key in ("kept", "total", "fraction", "class_kl", "ccs_dropped") if key in selection
    }
    if "policy" in selection:
        policy = selection["policy"]
        summary["policy"] = policy["mode"]
        summary |= {key: policy[key] for key in ("score", "score_used", "window", "reason")}
    if "rows" in report:  # a sweep: one line per distinct subset, naming every point that kept it
        keys = ("point", "methods", "keeps", "policy", "score_used", "kept", "accuracy", "random", "gain_over_random",
                "verdict", "overlap", "overlap_with")
        summary["points"] = [{key: row[key] for key in keys} for row in report["rows"]]
    if "gain_over_random" in report:
        summary["gain_over_random"] = _gain(report["gain_over_random"])
    if "dd_ranking" in report:
        summary["dd_ranking"] = {
            key: _gain(value) if key == "improvement_over_random" else _mean_std(value)
            for key, value in report["dd_ranking"].items()
            if isinstance(value, dict)
        }
    for name, stats in report.get("evaluation", {}).items():
        if name == "cross_arch":
            summary["cross_arch"] = {arch: {k: _mean_std(v) for k, v in runs.items()} for arch, runs in stats.items()}
        else:
            summary[f"{name}_accuracy"] = _mean_std(stats)
    if "distill" in report:
        summary |= {
            "iterations": report["distill"]["iterations"],
            "resumed_from_iteration": report["distill"]["resumed_from_iteration"],
            "final_loss": report["distill"]["final_loss"],
            "learned_lr": report["learned_lr"],
            "soft_labels": report["soft_labels"],
        }
    if "comparison" in report:
        comparison = report["comparison"]
        summary["synthetic_over_coreset"] = _gain(comparison["synthetic_over_coreset"])
        if "coreset_over_random" in comparison:
            summary["coreset_over_random"] = _gain(comparison["coreset_over_random"])
        summary["recommendation"] = comparison["recommendation"]
    if "label_model" in report:
        summary["label_model"] = report["label_model"]
    if "experts" in report:
        summary["experts"] = {
            key: report["experts"][key] for key in ("reused", "trained", "count", "epochs", "trained_by_job")
        }
    if "proxy_run" in report:
        summary["proxy_run"] = {key: report["proxy_run"].get(key) for key in ("reused", "trained_by_job")}
    summary["timings"] = report.get("timings", {})
    return summary


def _mean_std(stats: dict[str, Any]) -> dict[str, Any]:
    return {"mean": stats.get("mean"), "std": stats.get("std")}


def _gain(gain: dict[str, Any]) -> dict[str, Any]:
    """A gain over random as the job shows it: mean and std, and the verdict (its paired interval and seed
    count), since a mean alone does not say whether the gain is more than noise; each extra architecture's too."""
    shown = {**_mean_std(gain), "verdict": gain["verdict"]}
    if "cross_arch" in gain:
        shown["cross_arch"] = {arch: _gain(by_arch) for arch, by_arch in gain["cross_arch"].items()}
    return shown
