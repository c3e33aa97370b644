"""The distill job: (score,) train or reuse experts, initialise, distil, evaluate, write artifacts.

Kinds: ``distill`` (init from random real images or noise) and ``prune_then_distill`` (init from
a pruned subset chosen by any pruning score and selection policy).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from engine.atomic import write_atomic
from engine.data.dataset import ImageDataset
from engine.data.imagefolder_zip import write_images_zip
from engine.device import resolve_device
from engine.distill.augment import default_strategy, parse_strategy
from engine.distill.base import Matcher, ModelFactory, RealData
from engine.distill.distribution_config import FIEM_NEEDS, has_layer_stack
from engine.distill.experts import (
    ExpertStore,
    Trajectories,
    data_fingerprint,
    expert_key,
    obtain_experts,
)
from engine.distill.families import FAMILIES, MatchSettings
from engine.distill.init import fit_per_class, noise_images, pick_pruned, pick_real
from engine.distill.loop import LoopResult, run_loop
from engine.distill.registry import START_RANGE_BY_IPC, MethodSpec, by_ipc, get_method
from engine.distill.schedule import (
    FIEX_NEEDS,
    DifficultySchedule,
    easy_to_hard,
    fiex_drops,
    filter_real,
)
from engine.distill.start import StartMode, resolve_start
from engine.distill.synthetic import SyntheticSet
from engine.distill.trajectory import FunctionalStudent
from engine.distill.trajectory_config import fixed_start_range
from engine.distill.zca import ZCAWhitening
from engine.evaluate import (
    AccuracyStats,
    EvalSpec,
    dd_ranking,
    evaluate_training_set,
    gain_over_random,
    mean_per_class,
)
from engine.evaluate.synthetic import evaluate_synthetic
from engine.models import create_model
from engine.pipeline.coreset_row import comparison, coreset_summary, select_coreset
from engine.pipeline.distill_config import DistillConfig, DistillEvalConfig
from engine.pipeline.report import environment
from engine.pipeline.scoring import compute_scores
from engine.progress import Tracker
from engine.registry import load
from engine.scores import get_score
from engine.select import importance_of
from engine.store import FileStore
from engine.train import TrainConfig
from engine.visualize import class_grid, save_loss_curve, save_png


@dataclass
class DistillResult:
    synthetic: SyntheticSet
    loss_curve: list[float]
    report: dict
    classes: list[str]  # the dataset's class names, by label

    def write(self, out_dir: Path) -> list[Path]:
        """Write synthetic.safetensors, synthetic.npz, synthetic_png.zip (one folder of PNGs per class), preview.png
        (class rows named), loss_curve.json and .png, and report.json."""
        out_dir.mkdir(parents=True, exist_ok=True)
        labels = self.synthetic.hard_labels().cpu().numpy()
        grid = class_grid(self.synthetic.pixels(), labels, self.synthetic.num_classes, per_class=min(self.synthetic.ipc, 20))
        names = [f"{name}: {n} image{'s' if n != 1 else ''}"
                 for name, n in zip(self.classes, np.bincount(labels, minlength=len(self.classes)), strict=True)]
        curve = json.dumps({"iteration": list(range(1, len(self.loss_curve) + 1)), "loss": self.loss_curve})
        return [
            self.synthetic.save_safetensors(out_dir / "synthetic.safetensors"),
            self.synthetic.save_npz(out_dir / "synthetic.npz"),
            write_images_zip(out_dir / "synthetic_png.zip", self.synthetic.pixels(),
                             self.synthetic.hard_labels().cpu().numpy(), self.classes),
            save_png(grid, out_dir / "preview.png", cell=self.synthetic.images.shape[2], row_labels=names),
            save_loss_curve(self.loss_curve, out_dir / "loss_curve.png"),
            write_atomic(out_dir / "loss_curve.json", lambda f: f.write(curve.encode())),
            write_atomic(out_dir / "report.json", lambda f: f.write(json.dumps(self.report, indent=2).encode())),
        ]


def _resolve(spec: MethodSpec, config: DistillConfig, channels: int) -> MatchSettings:
    use_dsa = spec.dsa if config.dsa is None else config.dsa
    groups = parse_strategy(config.dsa_strategy or default_strategy(channels)) if use_dsa else None
    schedule = config.schedule
    if schedule is None and spec.difficulty_schedule:
        schedule = DifficultySchedule.for_experts(config.options["experts"].epochs)
    fiem = spec.default_fiem_ratio(config.ipc) if config.fiem_ratio is None else config.fiem_ratio
    if FAMILIES.get(spec.family).embeds and fiem > 0 and not has_layer_stack(config.model):
        raise ValueError(f"{FIEM_NEEDS}; {config.model} has none")
    if config.fiex_ratio and spec.uses_experts:
        raise ValueError(FIEX_NEEDS)
    low, high, final, widen = start_range(spec, config)
    start, start_reason = resolve_start(config.init.mode, spec, config.ipc)
    return MatchSettings(
        dsa_groups=groups,
        # Soft labels come from expert logits: only trajectory methods have experts to ask.
        soft_labels=spec.uses_experts and (spec.default_soft_labels(config.ipc) if config.soft_labels is None
                                           else config.soft_labels),
        fiem_ratio=fiem,
        schedule=schedule if spec.uses_experts else None,
        fiex_drops=fiex_drops(config.ipc) if config.fiex_ratio else None,
        min_start_epoch=low,
        max_start_epoch=high,
        max_start_epoch_final=final,
        widen_iterations=widen,
        zca=spec.default_zca(channels) if config.zca is None else config.zca,
        start=start,
        start_reason=start_reason,
    )


def start_range(spec: MethodSpec, config: DistillConfig) -> tuple[int, int, int | None, int]:
    """(T-, T, T+, widening iterations): what is set, else the method's default.

    MTT: a fixed range (``fixed_start_range``). DATM-style methods: PAD Table 10's range for the IPC
    (``START_RANGE_BY_IPC``), T growing to T+ over the whole run. Every bound stays at or below the last
    expert epoch that still has M epochs ahead of it.
    """
    tm = config.options["trajectory"]
    last = max(0, config.options["experts"].epochs - tm.expert_epochs)
    if not spec.widen_start_range:
        low, high = fixed_start_range(tm)
        return low, min(last, high), None, 0
    low_f, high_f, final_f = (min(last, epoch) for epoch in by_ipc(START_RANGE_BY_IPC, config.ipc))
    low = tm.min_start_epoch if tm.min_start_epoch is not None else low_f
    high = tm.max_start_epoch if tm.max_start_epoch is not None else max(low, high_f)
    final = tm.max_start_epoch_final if tm.max_start_epoch_final is not None else max(high, final_f)
    return low, high, final, tm.widen_iterations or config.iterations


def _model_factory(dataset: ImageDataset, config: DistillConfig) -> ModelFactory:
    c, h, _ = dataset.image_shape
    return lambda: create_model(config.model, channels=c, num_classes=dataset.num_classes, image_size=h,
                                width=config.width, depth=config.depth)


def _scores_needed(config: DistillConfig, resolved: MatchSettings) -> list[str]:
    needed = []
    if resolved.start == "pruned":
        needed.append(config.init.prune_method)
    if (resolved.schedule is not None or resolved.fiex_drops is not None) and "el2n" not in needed:
        needed.append("el2n")
    return needed


def _checkpoint(workdir: Path | None, dataset: ImageDataset, config: DistillConfig) -> Path | None:
    """Keyed by everything the run depends on, so only an identical job resumes it."""
    if workdir is None:
        return None
    cfg = {k: v for k, v in config.to_dict().items() if k not in ("evaluation", "device")}
    key = json.dumps([dataset.content_hash, len(dataset.y_train), cfg], sort_keys=True, default=str)
    return workdir / f"distill-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"


@dataclass
class _LabelModel:
    """DATM's label model: the first expert's last checkpoint (DATM's default). An early
    checkpoint gives near-uniform logits that teach the evaluation model almost nothing; and a
    model trained on soft labels learns much of the label model's function, so its accuracy
    follows the label model's (the report records it for that reason: bench/results/distill-cpu.md)."""

    student: FunctionalStudent
    params: torch.Tensor
    correct: np.ndarray  # which training samples it classifies correctly
    summary: dict

    @classmethod
    def of(cls, experts: Trajectories, student: FunctionalStudent, real: RealData, dataset: ImageDataset,
           zca: ZCAWhitening | None) -> _LabelModel:
        params = experts.params[0, experts.epochs].to(real.x.device)

        @torch.no_grad()
        def classes(x: torch.Tensor) -> torch.Tensor:
            return torch.cat([student.forward(params, xb.to(params.device)).argmax(1).cpu() for xb in x.split(1024)])

        x_test, y_test = dataset.test_tensors()
        if zca is not None:
            x_test = zca.apply(x_test)
        correct = (classes(real.x) == real.y.cpu()).numpy()
        summary = {"expert": 0, "epoch": experts.epochs, "train_accuracy": float(correct.mean()),
                   "test_accuracy": float((classes(x_test) == y_test).float().mean())}
        return cls(student, params, correct, summary)

    def soft_labels(self, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return _expert_soft_labels(self.student.forward(self.params, images), classes)


def _initial_set(
    dataset: ImageDataset,
    config: DistillConfig,
    real: RealData,
    scores: dict[str, np.ndarray],
    label_model: _LabelModel | None,
    zca: ZCAWhitening | None,
    coreset: np.ndarray | None,
    start: StartMode,
) -> tuple[SyntheticSet, np.ndarray | None]:
    k, ipc = dataset.num_classes, config.ipc
    # DATM starts only from real images the label model classifies correctly.
    allowed = label_model.correct if label_model is not None else None
    indices = None
    if start == "noise":
        images = noise_images(k, ipc, dataset.image_shape, torch.Generator().manual_seed(config.seed)).to(real.x.device)
    else:
        if start == "pruned":
            spec = get_score(config.init.prune_method)
            importance = importance_of(scores[config.init.prune_method], spec.higher_is_important)
            indices = pick_pruned(importance, dataset.y_train, k, ipc, config.init.selection, config.seed, allowed)
        elif start == "coreset":
            assert coreset is not None
            indices = fit_per_class(coreset, dataset.y_train, k, ipc, config.seed)
        else:
            indices = pick_real(dataset.y_train, k, ipc, config.seed, allowed)
        images = real.x[torch.from_numpy(indices).to(real.x.device)].clone()
    labels = torch.arange(k, device=real.x.device).repeat_interleave(ipc)
    if label_model is not None:
        labels = label_model.soft_labels(images, labels)
    lr = torch.tensor(config.options["trajectory"].lr_init, device=real.x.device) if get_method(config.method).uses_experts else None
    synthetic = SyntheticSet(images, labels, k, dataset.mean, dataset.std, lr=lr, zca=zca)
    return synthetic, indices


def _expert_soft_labels(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Expert logits as learnable soft labels, with each image's own class on top.

    Starts are drawn from correctly classified images, but a class the expert still gets mostly
    wrong falls back to any of its images; for those, the true class's logit is swapped with the
    largest one so the label never teaches the wrong class, while the rest of the expert's
    similarity structure is kept.
    """
    labels = logits.detach().clone()
    rows = torch.arange(len(labels), device=labels.device)
    top = labels.argmax(1)
    top_values, own_values = labels[rows, top].clone(), labels[rows, classes].clone()
    labels[rows, top], labels[rows, classes] = own_values, top_values
    return labels


def _matched_real(real: RealData, dataset: ImageDataset, config: DistillConfig, resolved: MatchSettings,
                  scores: dict[str, np.ndarray], report: dict) -> RealData:
    """The real images the matcher sees: all of them, or what DC/DM's FIEX keeps (the initial images
    are drawn before, from every real image, as without it)."""
    if resolved.fiex_drops is None:
        return real
    kept = filter_real(scores["el2n"], dataset.y_train, dataset.num_classes, config.fiex_ratio, resolved.fiex_drops)
    report["fiex"] = {"drops": resolved.fiex_drops, "ratio": config.fiex_ratio, "kept": int(len(kept)),
                      "removed": int(len(dataset.y_train) - len(kept))}
    index = torch.from_numpy(kept).to(real.x.device)
    return RealData(real.x[index], real.y[index], real.num_classes)


def _matcher(
    spec: MethodSpec, config: DistillConfig, resolved: MatchSettings, real: RealData, new_model: ModelFactory,
    experts: Trajectories | None,
) -> Matcher:
    family = FAMILIES.get(spec.family)
    own = config.options[family.options[0].name]
    matcher: Matcher = load(family.build)(own, resolved, real, new_model, experts)
    return matcher


def random_real_baseline(
    dataset: ImageDataset, ipc: int, seed: int, spec: EvalSpec, tracker: Tracker | None = None
) -> AccuracyStats:
    """Random real subsets of ``ipc`` images per class: a different draw per evaluation seed, since
    which few images are drawn varies far more than the training seed does at small IPC."""
    tracker = tracker or Tracker()
    runs = []
    for s in range(spec.seeds):
        idx = pick_real(dataset.y_train, dataset.num_classes, ipc, seed + 1 + s)
        runs.append(evaluate_training_set(dataset, idx, replace(spec, seeds=1), base_seed=seed + 1000 + s,
                                          tracker=tracker.span(s / spec.seeds, (s + 1) / spec.seeds), stage="evaluate_random"))
    accs = [r.per_seed[0] for r in runs]
    return AccuracyStats(
        mean=float(np.mean(accs)), std=float(np.std(accs)), per_seed=accs,
        per_class=mean_per_class([r.per_class for r in runs]), train_size=runs[0].train_size,
        seconds=sum(r.seconds for r in runs), model=spec.model,
    )


def eval_spec(cfg: DistillEvalConfig, arch: str, dsa_strategy: str | None, device: str, full: bool = False) -> EvalSpec:
    """How a fresh ``arch`` is trained on a synthetic (or random real) set; ``full`` is the full-data
    reference, trained like ordinary data (TrainConfig's recipe): more images per epoch, fewer epochs, no DSA."""
    return EvalSpec(
        model=arch,
        width=cfg.width if arch.startswith("convnet") else None,
        depth=cfg.depth,
        epochs=cfg.full_epochs if full else cfg.epochs,
        batch_size=TrainConfig.batch_size if full else cfg.batch_size,
        lr=TrainConfig.lr if full else cfg.lr,
        seeds=cfg.seeds,
        device=device,
        dsa_strategy=None if full or not cfg.dsa else dsa_strategy,
    )


def _evaluate(
    dataset: ImageDataset, synthetic: SyntheticSet, config: DistillConfig, tracker: Tracker,
    coreset: np.ndarray | None = None,
) -> dict:
    cfg = config.evaluation
    assert cfg is not None
    strategy = config.dsa_strategy or default_strategy(dataset.image_shape[0])
    plan: list[tuple[str, str]] = [("synthetic", cfg.model)]
    if cfg.compare_random:
        plan.append(("random", cfg.model))
    if coreset is not None:
        plan.append(("coreset", cfg.model))
    for arch in cfg.archs:
        plan.append(("synthetic", arch))
        if cfg.compare_random:
            plan.append(("random", arch))
    if cfg.full_data:
        plan.append(("full", cfg.model))
    if cfg.compare_random and synthetic.soft:
        # DD-Ranking compares images, not labels: the soft-labelled set is also trained on its hard labels.
        plan.append(("hard_labels", cfg.model))
    out: dict = {}
    for i, (name, arch) in enumerate(plan):
        span = tracker.span(i / len(plan), (i + 1) / len(plan))
        spec = eval_spec(cfg, arch, strategy, config.device, full=name == "full")
        if name == "synthetic":
            stats = evaluate_synthetic(dataset, synthetic, spec, base_seed=config.seed + 1000, tracker=span)
        elif name == "hard_labels":
            stats = evaluate_synthetic(dataset, replace(synthetic, labels=synthetic.hard_labels()), spec,
                                       base_seed=config.seed + 1000, tracker=span, stage="evaluate_hard_labels")
        elif name == "random":
            stats = random_real_baseline(dataset, config.ipc, config.seed, spec, span)
        elif name == "coreset":
            # The synthetic set's protocol and seeds, so the two are paired seed by seed.
            stats = evaluate_training_set(dataset, coreset, spec, base_seed=config.seed + 1000, tracker=span,
                                          stage="evaluate_coreset")
        else:
            stats = evaluate_training_set(dataset, None, spec, base_seed=config.seed + 1000, tracker=span, stage="evaluate_full")
        target = out if arch == cfg.model else out.setdefault("cross_arch", {}).setdefault(arch, {})
        target[name] = stats.to_dict()
    return out


def _value_over_random(evaluation: dict) -> dict:
    """The gain over random real images and DD-Ranking's figures, both with the synthetic set under hard
    labels, so that the gain is the images' own and not the soft labels' knowledge distillation."""
    hard = evaluation.get("hard_labels", evaluation["synthetic"])
    return {"gain_over_random": gain_over_random(hard, evaluation["random"]),
            "dd_ranking": dd_ranking(hard, evaluation["random"], evaluation.get("full"))}


def run_distill(
    dataset: ImageDataset,
    config: DistillConfig,
    tracker: Tracker | None = None,
    workdir: Path | None = None,
    expert_store: ExpertStore | None = None,
    proxy_runs: FileStore | None = None,
) -> DistillResult:
    """Run a distill (or prune-then-distill) job.

    Args:
        dataset: validated dataset.
        config: the job; recorded in the report with the method defaults it resolved to.
        tracker: progress per iteration and cancellation (``CancelledError`` between iterations).
        workdir: checkpoint folder; re-running the same job with it resumes the synthetic set,
            its optimiser and the proxy scoring run.
        expert_store: where expert trajectories are looked up and kept (trajectory methods).
        proxy_runs: where recorded proxy runs are kept: the coreset row's selection reuses one
            (``engine.pipeline.coreset_row``).
    """
    tracker = tracker or Tracker()
    spec = get_method(config.method)
    if config.ipc < 1:
        raise ValueError("ipc must be >= 1")
    device = resolve_device(config.device)
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    resolved = _resolve(spec, config, dataset.image_shape[0])
    new_model = _model_factory(dataset, config)
    report: dict = {"kind": config.kind, "config": config.to_dict(), "seed": config.seed, "dataset": dataset.summary(),
                    "method": {"name": spec.name, "title": spec.title, "reference": spec.reference, "family": spec.family},
                    "resolved": asdict(resolved)}
    report.update(environment(device))
    timings: dict[str, float] = {}
    eval_share = 0.3 if config.evaluation is not None else 0.0
    prep_share = 0.25 if (spec.uses_experts or resolved.start in ("pruned", "coreset") or config.fiex_ratio) else 0.02
    prep = tracker.span(0.0, prep_share)

    x, y = dataset.train_tensors()
    zca = ZCAWhitening.fit(x) if resolved.zca else None
    if zca is not None:
        x = zca.apply(x)
    real = RealData(x.to(device), y.to(device), dataset.num_classes)

    t0 = time.perf_counter()
    needed = _scores_needed(config, resolved)
    scores = compute_scores(dataset, needed, config.init.proxy, seed=config.seed, device=config.device,
                            tracker=prep.span(0.0, 0.2), workdir=workdir).scores if needed else {}
    # The coreset start is the coreset of the report's comparison row: selected once, used for both.
    coreset = select_coreset(dataset, config, prep.span(0.2, 0.3), workdir, proxy_runs) if resolved.start == "coreset" else None
    timings["scoring_seconds"] = time.perf_counter() - t0

    experts, student = None, None
    if spec.uses_experts:
        t0 = time.perf_counter()
        key = expert_key(
            dataset.content_hash, data_fingerprint(x, y),
            {"name": config.model, "width": config.width, "depth": config.depth},
            config.options["experts"], resolved.schedule,
            {"proxy": asdict(config.init.proxy)} if resolved.schedule is not None else None,
            config.seed,
        )
        experts, reused = obtain_experts(
            expert_store, key, real, new_model, config.options["experts"], seed=config.seed, schedule=resolved.schedule,
            easy_to_hard=easy_to_hard(scores["el2n"]) if resolved.schedule is not None else None,
            augment_strategy="_".join(resolved.dsa_groups) if resolved.dsa_groups else None,
            tracker=prep.span(0.3, 1.0), scratch=workdir,
        )
        timings["experts_seconds"] = time.perf_counter() - t0
        report["experts"] = {"key": key, "reused": reused, "trained": not reused, "count": int(experts.params.shape[0]),
                             "epochs": experts.epochs, "parameters": int(experts.params.shape[2])}
        student = FunctionalStudent(new_model().to(device))

    label_model = None
    if resolved.soft_labels and experts is not None and student is not None:
        label_model = _LabelModel.of(experts, student, real, dataset, zca)
        report["label_model"] = label_model.summary
    synthetic, init_indices = _initial_set(dataset, config, real, scores, label_model, zca,
                                           None if coreset is None else coreset.indices, resolved.start)
    report["init"] = {"mode": config.init.mode, "start": resolved.start, "reason": resolved.start_reason,
                      "indices": init_indices.tolist() if init_indices is not None else None}
    if coreset is not None:
        report["coreset"] = coreset_summary(coreset)
    matcher = _matcher(spec, config, resolved, _matched_real(real, dataset, config, resolved, scores, report),
                       new_model, experts)
    loop: LoopResult = run_loop(
        matcher, synthetic, config.iterations, seed=config.seed, tracker=tracker.span(prep_share, 1.0 - eval_share),
        checkpoint=_checkpoint(workdir, dataset, config), checkpoint_every=config.checkpoint_every,
    )
    timings["distill_seconds"] = loop.seconds
    timings["seconds_per_iteration"] = loop.seconds_per_iteration
    report["distill"] = {"iterations": loop.iterations, "resumed_from_iteration": loop.resumed_from,
                         "final_loss": loop.loss_curve[-1] if loop.loss_curve else None}
    report["learned_lr"] = float(synthetic.lr) if synthetic.lr is not None else None
    report["soft_labels"] = synthetic.soft
    if config.evaluation is not None:
        t0 = time.perf_counter()
        evaluating = tracker.span(1.0 - eval_share, 1.0)
        if config.evaluation.compare_coreset and coreset is None:
            coreset = select_coreset(dataset, config, evaluating.span(0.0, 0.2), workdir, proxy_runs)
            report["coreset"] = coreset_summary(coreset)
        compared = coreset if config.evaluation.compare_coreset else None
        report["evaluation"] = _evaluate(dataset, synthetic, config, evaluating.span(0.2 if compared else 0.0, 1.0),
                                         None if compared is None else compared.indices)
        if "random" in report["evaluation"]:
            report.update(_value_over_random(report["evaluation"]))
        if compared is not None:
            report["comparison"] = comparison(report["evaluation"], config.ipc)
        timings["evaluation_seconds"] = time.perf_counter() - t0
    report["timings"] = timings
    tracker.report("done", 1.0, "distill finished")
    return DistillResult(synthetic, loop.loss_curve, report, list(dataset.classes))
