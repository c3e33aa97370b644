"""``condense distill``: learn a small synthetic training set (or prune, then distil) without a server."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, get_args

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.progress import progress_tracker
from cli.choices import choices
from cli.prune import Score as PruneMethod
from cli.prune import DATA_HELP, Model, parse_window, sentence
from engine.allocator import keep_freed_memory
from engine.config_fields import help_of
from engine.data import DatasetError, load_dataset
from engine.data.split import TEST_FRACTION
from engine.distill import get_method, method_names
from engine.distill.experts_config import ExpertConfig
from engine.distill.start import InitMode, ipc_problem
from engine.distill.schedule import DifficultySchedule
from engine.distill.trajectory_config import TMConfig
from engine.evaluate.verdict import describe
from engine.pipeline.distill_config import DistillConfig, DistillEvalConfig, InitConfig, PrunedStartConfig
from engine.pipeline.prune_config import ProxyConfig
from engine.select import SelectionError
from engine.select.config import RANKING_MODES

console = Console()
Method = choices("Method", method_names())
Init = choices("Init", get_args(InitMode))
PruneMode = choices("PruneMode", RANKING_MODES)
DEFAULT_WINDOW = ":".join(map(str, PrunedStartConfig.window or ()))


def print_report(report: dict) -> None:
    timings = report["timings"]
    line = f"{report['kind']} with {report['method']['title']}: {report['distill']['iterations']} iterations, " \
           f"{timings['seconds_per_iteration']:.2f}s per iteration"
    if report.get("learned_lr") is not None:
        line += f", learned lr {report['learned_lr']:.4g}"
    if "experts" in report:
        line += f", experts {'reused' if report['experts']['reused'] else 'trained'}"
    console.print(line)
    evaluation = report.get("evaluation")
    if not evaluation:
        return
    table = Table(title="Test accuracy")
    for col in ("training set", "model", "samples", "accuracy (mean ± std)", "seeds"):
        table.add_column(col)
    rows = [(name, evaluation[name]) for name in ("synthetic", "hard_labels", "coreset", "random", "full") if name in evaluation]
    rows += [(escape(f"{name} [{arch}]"), stats) for arch, group in evaluation.get("cross_arch", {}).items() for name, stats in group.items()]
    for name, stats in rows:
        table.add_row(name, stats["model"], str(stats["train_size"]),
                      f"{100 * stats['mean']:.2f} ± {100 * stats['std']:.2f}%", str(len(stats["per_seed"])))
    console.print(table)
    if ranking := report.get("dd_ranking"):
        gain = report["gain_over_random"]  # reported with dd_ranking, under its protocol
        console.print(f"Synthetic set ({ranking['protocol']}): {describe(gain['verdict'], what='random real images')}")
        figures = {"improvement over random real": ranking["improvement_over_random"],
                   "hard-label recovery": ranking["hard_label_recovery"]}
        text = ", ".join(f"{name} {100 * f['mean']:+.2f} ± {100 * f['std']:.2f} points"
                         for name, f in figures.items() if f is not None)
        if ranking["label_robust_score"] is not None:
            text += f", label-robust score {100 * ranking['label_robust_score']['mean']:.1f}"
        console.print(f"DD-Ranking ({ranking['protocol']}): {text}")
    if comparison := report.get("comparison"):
        console.print(f"[bold]{comparison['recommendation']}[/]")


def _schedule(uses_experts: bool, expert_epochs: int, **given: float | int | None) -> DifficultySchedule | None:
    """FIEX's scheduler from the options given, the rest PAD's defaults for the expert run; None: the method's."""
    given = {name: value for name, value in given.items() if value is not None}
    if not given:
        return None
    if not uses_experts:
        raise typer.BadParameter("--schedule-* options order the experts' training data: only trajectory methods have experts")
    try:
        return replace(DifficultySchedule.for_experts(expert_epochs), **given)
    except ValueError as exc:
        raise typer.BadParameter(f"--schedule-*: {exc}") from None


def distill(
    data: Annotated[str, typer.Argument(help=DATA_HELP)],
    out: Annotated[Path, typer.Option("--out", help="Output folder for synthetic.safetensors, synthetic.npz, preview.png, loss_curve.json, report.json.")],
    method: Annotated[Method, typer.Option(help="Distillation method.")] = Method(DistillConfig.method),  # type: ignore[valid-type]
    ipc: Annotated[int, typer.Option(help=sentence(help_of(DistillConfig, "ipc")), min=1)] = DistillConfig.ipc,
    iterations: Annotated[int, typer.Option(help=sentence(help_of(DistillConfig, "iterations")), min=1)] = DistillConfig.iterations,
    init: Annotated[Init, typer.Option(help="Start from random real images, noise, the coreset a default prune job keeps at this IPC, or a pruned subset (Prune-then-distill); auto: the coreset where it measured better for the method and IPC (DM, DC, DSA and DATM-style up to IPC 10), else random real images.")] = Init(InitConfig.mode),  # type: ignore[valid-type]
    prune_method: Annotated[PruneMethod, typer.Option(help="--init pruned: the pruning score.")] = PruneMethod(InitConfig.prune_method),  # type: ignore[valid-type]
    prune_mode: Annotated[PruneMode, typer.Option(help=f"--init pruned: {help_of(PrunedStartConfig, 'mode')}.")] = PruneMode(PrunedStartConfig.mode),  # type: ignore[valid-type]
    window: Annotated[str | None, typer.Option(help=f"--init pruned: percentile window LO:HI of each class's importance ranking, default {DEFAULT_WINDOW} in window mode (implies --prune-mode window).")] = None,
    proxy_epochs: Annotated[int, typer.Option(help=sentence(help_of(ProxyConfig, "epochs") + " of the proxy run that scores samples (pruned init, PAD scheduler)"))] = ProxyConfig.epochs,
    model: Annotated[Model, typer.Option(help=sentence(help_of(DistillConfig, "model")))] = Model(DistillConfig.model),  # type: ignore[valid-type]
    width: Annotated[int, typer.Option(help=sentence("Matching network " + help_of(DistillConfig, "width")))] = DistillConfig.width,
    dsa: Annotated[bool | None, typer.Option("--dsa/--no-dsa", help=sentence(help_of(DistillConfig, "dsa")))] = DistillConfig.dsa,
    zca: Annotated[bool | None, typer.Option("--zca/--no-zca", help=sentence(help_of(DistillConfig, "zca")))] = DistillConfig.zca,
    soft_labels: Annotated[bool | None, typer.Option("--soft-labels/--hard-labels", help=sentence(help_of(DistillConfig, "soft_labels")))] = DistillConfig.soft_labels,
    fiem_ratio: Annotated[float | None, typer.Option(help=sentence(help_of(DistillConfig, "fiem_ratio") + ", in [0, 1)"))] = DistillConfig.fiem_ratio,
    fiex_ratio: Annotated[float, typer.Option(help=sentence(help_of(DistillConfig, "fiex_ratio") + ", in [0, 1)"))] = DistillConfig.fiex_ratio,
    lr_images: Annotated[float | None, typer.Option(help="Learning rate of the synthetic pixels (default: the method's).")] = None,
    syn_steps: Annotated[int, typer.Option(help="Trajectory methods: student steps per iteration (N).")] = TMConfig.syn_steps,
    expert_epochs: Annotated[int, typer.Option(help="Trajectory methods: expert epochs to match (M).")] = TMConfig.expert_epochs,
    min_start_epoch: Annotated[int | None, typer.Option(help="Trajectory methods: lowest expert start epoch (T-; default: the method's for the IPC).")] = TMConfig.min_start_epoch,
    max_start_epoch: Annotated[int | None, typer.Option(help="Trajectory methods: highest expert start epoch (T; default: mtt 10, datm/pad by IPC as PAD Table 10).")] = TMConfig.max_start_epoch,
    max_start_epoch_final: Annotated[int | None, typer.Option(help="datm/pad: T grows to this T+ over the run (default: the method's for the IPC).")] = TMConfig.max_start_epoch_final,
    lr_labels: Annotated[float, typer.Option(help="datm/pad: soft-label learning rate.")] = TMConfig.lr_labels,
    schedule_initial_ratio: Annotated[float | None, typer.Option(help="Trajectory methods: FIEX's data scheduler (on for pad): share of the easiest samples an expert starts on (default: the method's, PAD Table 10).", min=0.0, max=1.0)] = None,
    schedule_addition_end: Annotated[int | None, typer.Option(help="FIEX: the expert epoch by which all data is in (default: a fifth of the expert run).", min=1)] = None,
    schedule_removal_epoch: Annotated[int | None, typer.Option(help="FIEX: the expert epoch from which the easiest samples are dropped (default: 60% of the expert run).", min=1)] = None,
    schedule_removal_fraction: Annotated[float | None, typer.Option(help="FIEX: share of the easiest samples dropped then (default: 0.1), in [0, 1).", min=0.0)] = None,
    num_experts: Annotated[int, typer.Option(help="Trajectory methods: expert trajectories to train.")] = ExpertConfig.num_experts,
    expert_train_epochs: Annotated[int, typer.Option(help="Trajectory methods: epochs of each expert.")] = ExpertConfig.epochs,
    experts_dir: Annotated[Path | None, typer.Option(help="Folder that keeps expert trajectories for reuse (default: OUT/.experts).")] = None,
    eval_seeds: Annotated[int, typer.Option(help=sentence(help_of(DistillEvalConfig, "seeds") + "; 0 skips evaluation"))] = DistillEvalConfig.seeds,
    eval_epochs: Annotated[int, typer.Option(help=sentence(help_of(DistillEvalConfig, "epochs")))] = DistillEvalConfig.epochs,
    eval_width: Annotated[int, typer.Option(help=sentence("Evaluation " + help_of(DistillEvalConfig, "width")))] = DistillEvalConfig.width,
    cross_arch: Annotated[list[Model], typer.Option(help="Extra evaluation architectures, repeatable.")] = [],  # type: ignore[valid-type]  # noqa: B006
    compare_random: Annotated[bool, typer.Option("--random/--no-random", help=sentence(help_of(DistillEvalConfig, "compare_random")))] = DistillEvalConfig.compare_random,
    full_data: Annotated[bool, typer.Option("--full/--no-full", help=sentence(help_of(DistillEvalConfig, "full_data")))] = DistillEvalConfig.full_data,
    checkpoint_every: Annotated[int, typer.Option(help=sentence(help_of(DistillConfig, "checkpoint_every") + " (same --out)"))] = DistillConfig.checkpoint_every,
    seed: Annotated[int, typer.Option(help=sentence(help_of(DistillConfig, "seed")))] = DistillConfig.seed,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = DistillConfig.device,
    test_fraction: Annotated[float, typer.Option(help="Held-out test fraction when the data has no test split.")] = TEST_FRACTION,
) -> None:
    """Learn IPC synthetic images per class that train a model nearly as well as the full data."""
    spec = get_method(method.value)
    if window is not None:
        prune_mode = PruneMode("window")
    for option, share in (("--fiem-ratio", fiem_ratio), ("--fiex-ratio", fiex_ratio)):
        if share is not None and not 0.0 <= share < 1.0:
            raise typer.BadParameter(f"{option} must be in [0, 1), e.g. 0.25")
    config = DistillConfig(
        method=method.value,
        ipc=ipc,
        iterations=iterations,
        init=InitConfig(
            mode=init.value,
            prune_method=prune_method.value,
            selection=PrunedStartConfig(
                mode=prune_mode.value,
                window=parse_window(window or DEFAULT_WINDOW) if prune_mode.value == "window" else None,
            ),
            proxy=ProxyConfig(epochs=proxy_epochs),
        ),
        model=model.value,
        width=width,
        dsa=dsa,
        zca=zca,
        soft_labels=soft_labels,
        fiem_ratio=fiem_ratio,
        fiex_ratio=fiex_ratio,
        experts=ExpertConfig(num_experts=num_experts, epochs=expert_train_epochs),
        evaluation=DistillEvalConfig(
            seeds=eval_seeds, epochs=eval_epochs, width=eval_width, compare_random=compare_random,
            full_data=full_data, archs=[a.value for a in cross_arch],
        ) if eval_seeds > 0 else None,
        checkpoint_every=checkpoint_every,
        seed=seed,
        device=device,
    )
    config.trajectory = replace(
        config.trajectory, syn_steps=syn_steps, expert_epochs=expert_epochs, min_start_epoch=min_start_epoch,
        max_start_epoch=max_start_epoch, max_start_epoch_final=max_start_epoch_final, lr_labels=lr_labels,
    )
    if spec.uses_experts and expert_train_epochs <= expert_epochs:
        raise typer.BadParameter("--expert-train-epochs must exceed --expert-epochs (the student matches M epochs ahead)")
    config.schedule = _schedule(spec.uses_experts, expert_train_epochs, initial_ratio=schedule_initial_ratio,
                                addition_end_epoch=schedule_addition_end, removal_epoch=schedule_removal_epoch,
                                removal_fraction=schedule_removal_fraction)
    if lr_images is not None:
        config.dc.lr_images = config.dm.lr_images = config.trajectory.lr_images = lr_images
    try:
        dataset = load_dataset(data, test_fraction=test_fraction)
    except DatasetError as exc:
        console.print(f"[red]error[/] in {exc.field}: {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""))
        raise typer.Exit(2) from None
    console.print(
        f"{dataset.name}: {len(dataset.y_train)} train / {len(dataset.y_test)} test, "
        f"{dataset.num_classes} classes, images {dataset.image_shape}"
    )
    if problem := ipc_problem(ipc, dataset.class_counts("train")):
        console.print(f"[red]error[/] in --ipc: {ipc} {problem}")
        raise typer.Exit(2)
    workdir = out / ".checkpoints"
    # The pipeline imports torch: imported when a job runs, so that `condense --help` answers at once.
    from engine.distill.experts import LocalExpertStore
    from engine.pipeline.distill import run_distill

    store = LocalExpertStore(experts_dir or out / ".experts")
    keep_freed_memory()
    try:
        with progress_tracker(f"distill {method.value}") as tracker:
            result = run_distill(dataset, config, tracker, workdir=workdir, expert_store=store)
    except (SelectionError, ValueError) as exc:
        console.print(f"[red]error[/]: {exc}\n  hint: check --ipc, --window and the method options against the data")
        raise typer.Exit(2) from None
    result.write(out)
    print_report(result.report)
    console.print(f"wrote {', '.join(p.name for p in sorted(out.iterdir()) if p.is_file())} to {out}")


def register(app: typer.Typer) -> None:
    app.command("distill")(distill)
