"""``condense distill``: learn a small synthetic training set (or prune, then distil) without a server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, get_args

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.choices import choices
from cli.group_options import flag, with_group_options
from cli.progress import progress_tracker
from cli.prune import DATA_HELP, Model, load_or_exit, parse_window, sentence
from cli.prune import Score as PruneMethod
from cli.spec_file import SPEC_HELP, read_spec, refuse_job_options
from engine.allocator import keep_freed_memory
from engine.config_fields import help_of
from engine.data.split import TEST_FRACTION
from engine.distill import get_method, method_names
from engine.distill.families import FAMILIES, families_using, options_from
from engine.distill.schedule import DifficultySchedule
from engine.distill.start import InitMode, ipc_problem
from engine.evaluate.verdict import describe
from engine.pipeline.distill_config import (
    DistillConfig,
    DistillEvalConfig,
    InitConfig,
    PrunedStartConfig,
)
from engine.pipeline.prune_config import ProxyConfig
from engine.select import SelectionError
from engine.select.config import RANKING_MODES

console = Console()
Method = choices("Method", method_names())
Init = choices("Init", get_args(InitMode))
PruneMode = choices("PruneMode", RANKING_MODES)
DEFAULT_WINDOW = ":".join(map(str, PrunedStartConfig.window or ()))
SPEC_KEEPS = {"data", "out", "test_fraction", "experts_dir", "spec"}  # beside --spec: the data and local folders


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
        return DifficultySchedule.for_experts(expert_epochs, **given)
    except ValueError as exc:
        raise typer.BadParameter(f"--schedule-*: {exc}") from None


def _family_options(family: str, given: dict[str, dict[str, Any]], lr_images: float | None) -> dict[str, Any]:
    """Every option group's config from the ``--<group>-*`` options given; another family's are refused, and
    so are combinations the family's own check rules out."""
    declared = FAMILIES.get(family)
    own = {group.name for group in declared.options}
    for group in given.keys() - own:
        users = " and ".join(families_using(group))
        raise typer.BadParameter(f"--{group}-* options are only used by {users}-matching methods, not {family} matching")
    options = options_from(given, family, **({} if lr_images is None else {"lr_images": lr_images}))
    for problem in declared.problems(options):
        raise typer.BadParameter(f"{flag(*problem.field.split('.', 1))}: {problem.message}")
    return options


@with_group_options
def distill(
    ctx: typer.Context,
    data: Annotated[str, typer.Argument(help=DATA_HELP)],
    out: Annotated[Path, typer.Option("--out", help="Output folder for synthetic.safetensors, synthetic.npz, preview.png, loss_curve.json, report.json.")],
    method: Annotated[Method, typer.Option(help="Distillation method.")] = Method(DistillConfig.method),  # type: ignore[valid-type]
    ipc: Annotated[int, typer.Option(help=sentence(help_of(DistillConfig, "ipc")), min=1)] = DistillConfig.ipc,
    iterations: Annotated[int, typer.Option(help=sentence(help_of(DistillConfig, "iterations")), min=1)] = DistillConfig.iterations,
    init: Annotated[Init, typer.Option(help="Start from random real images, noise, the coreset a default prune job keeps at this IPC, or a pruned subset (Prune-then-distill); auto: the coreset where it measured better for the method and IPC (DM, DC and DSA up to IPC 10, DATM-style from IPC 2 to 10), else random real images.")] = Init(InitConfig.mode),  # type: ignore[valid-type]
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
    schedule_initial_ratio: Annotated[float | None, typer.Option(help=f"Trajectory methods: FIEX's data scheduler (on for pad): {help_of(DifficultySchedule, 'initial_ratio')} (default: the method's, PAD Table 10).")] = None,
    schedule_addition_end: Annotated[int | None, typer.Option(help=f"FIEX: {help_of(DifficultySchedule, 'addition_end_epoch')} (default: a fifth of the expert run).")] = None,
    schedule_removal_epoch: Annotated[int | None, typer.Option(help=f"FIEX: {help_of(DifficultySchedule, 'removal_epoch').partition(';')[0]} (default: 60% of the expert run).")] = None,
    schedule_removal_fraction: Annotated[float | None, typer.Option(help=f"FIEX: {help_of(DifficultySchedule, 'removal_fraction')} (default: 0.1).")] = None,
    experts_dir: Annotated[Path | None, typer.Option(help="Folder that keeps expert trajectories for reuse (default: OUT/.experts).")] = None,
    eval_seeds: Annotated[int, typer.Option(help=sentence(help_of(DistillEvalConfig, "seeds") + "; 0 skips evaluation"))] = DistillEvalConfig.seeds,
    eval_epochs: Annotated[int, typer.Option(help=sentence(help_of(DistillEvalConfig, "epochs")))] = DistillEvalConfig.epochs,
    eval_width: Annotated[int, typer.Option(help=sentence("Evaluation " + help_of(DistillEvalConfig, "width")))] = DistillEvalConfig.width,
    cross_arch: Annotated[list[Model], typer.Option(help="Extra evaluation architectures, repeatable.")] = [],  # type: ignore[valid-type]  # noqa: B006
    compare_random: Annotated[bool, typer.Option("--random/--no-random", help=sentence(help_of(DistillEvalConfig, "compare_random")))] = DistillEvalConfig.compare_random,
    compare_coreset: Annotated[bool, typer.Option("--coreset/--no-coreset", help=sentence(help_of(DistillEvalConfig, "compare_coreset")))] = DistillEvalConfig.compare_coreset,
    full_data: Annotated[bool, typer.Option("--full/--no-full", help=sentence(help_of(DistillEvalConfig, "full_data")))] = DistillEvalConfig.full_data,
    checkpoint_every: Annotated[int, typer.Option(help=sentence(help_of(DistillConfig, "checkpoint_every") + " (same --out)"))] = DistillConfig.checkpoint_every,
    seed: Annotated[int, typer.Option(help=sentence(help_of(DistillConfig, "seed")))] = DistillConfig.seed,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = DistillConfig.device,
    test_fraction: Annotated[float, typer.Option(help="Held-out test fraction when the data has no test split.")] = TEST_FRACTION,
    spec: Annotated[Path | None, typer.Option(help=SPEC_HELP + " Kinds distill and prune_then_distill.", dir_okay=False)] = None,
    options: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Learn IPC synthetic images per class that train a model nearly as well as the full data."""
    if spec is not None:
        refuse_job_options(ctx, SPEC_KEEPS, console)
        given = read_spec(spec, ("distill", "prune_then_distill"), console)
        from app.services.job_configs import distill_config

        _run(data, out, distill_config(given), test_fraction, experts_dir)
        return
    family = get_method(method.value).family
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
        options=_family_options(family, options or {}, lr_images),
        evaluation=DistillEvalConfig(
            seeds=eval_seeds, epochs=eval_epochs, width=eval_width, compare_random=compare_random,
            compare_coreset=compare_coreset, full_data=full_data, archs=[a.value for a in cross_arch],
        ) if eval_seeds > 0 else None,
        checkpoint_every=checkpoint_every,
        seed=seed,
        device=device,
    )
    config.schedule = _schedule(FAMILIES.get(family).uses_experts, config.options["experts"].epochs,
                                initial_ratio=schedule_initial_ratio, addition_end_epoch=schedule_addition_end,
                                removal_epoch=schedule_removal_epoch, removal_fraction=schedule_removal_fraction)
    _run(data, out, config, test_fraction, experts_dir)


def _run(data: str, out: Path, config: DistillConfig, test_fraction: float, experts_dir: Path | None) -> None:
    """Load the data, run the distill job, write its files and print its report."""
    dataset = load_or_exit(data, test_fraction)
    if problem := ipc_problem(config.ipc, dataset.class_counts("train")):
        console.print(f"[red]error[/] in --ipc: {config.ipc} {problem}")
        raise typer.Exit(2)
    workdir = out / ".checkpoints"
    # The pipeline imports torch: imported when a job runs, so that `condense --help` answers at once.
    from engine.distill.experts import LocalExpertStore
    from engine.pipeline.distill import run_distill

    store = LocalExpertStore(experts_dir or out / ".experts")
    keep_freed_memory()
    try:
        with progress_tracker(f"distill {config.method}") as tracker:
            result = run_distill(dataset, config, tracker, workdir=workdir, expert_store=store)
    except (SelectionError, ValueError) as exc:
        console.print(f"[red]error[/]: {exc}\n  hint: check --ipc, --window and the method options against the data")
        raise typer.Exit(2) from None
    result.write(out)
    print_report(result.report)
    console.print(f"wrote {', '.join(p.name for p in sorted(out.iterdir()) if p.is_file())} to {out}")


def register(app: typer.Typer) -> None:
    app.command("distill")(distill)
