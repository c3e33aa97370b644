"""``condense prune``: score, select and evaluate a coreset without a server."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.choices import choices
from cli.progress import progress_tracker
from cli.spec_file import SPEC_HELP, read_spec, refuse_job_options
from engine.allocator import keep_freed_memory
from engine.config_fields import help_of
from engine.data import DatasetError, load_dataset
from engine.data.detect import BUILTIN_PREFIX, accepted_sources
from engine.data.split import TEST_FRACTION
from engine.evaluate.verdict import CONFIDENCE, describe
from engine.models import model_names
from engine.pipeline.prune_config import (
    EvalConfig,
    ProxyConfig,
    PruneConfig,
    prune_method_names,
)
from engine.pipeline.sweep_config import SweepConfig, row_label
from engine.scores import get_score, score_names
from engine.select import SelectionError
from engine.select.auto import check_method_params, describe_selection
from engine.select.config import ALLOCATIONS, SELECTION_MODES, SelectionConfig
from engine.store import LocalFileStore

if TYPE_CHECKING:
    from engine.data.dataset import ImageDataset

console = Console()
Method = choices("Method", prune_method_names())
Score = choices("Score", score_names())
Model = choices("Model", model_names())
Mode = choices("Mode", SELECTION_MODES)
Allocation = choices("Allocation", ALLOCATIONS)
DATA_HELP = f"Dataset: {accepted_sources()}."
SPEC_KEEPS = {"data", "out", "test_fraction", "proxy_runs", "spec"}  # beside --spec: the data and local folders
PARAMS_HELP = "; ".join(
    f"{name}: {', '.join(get_score(name).params)}" for name in score_names() if get_score(name).params
)


def sentence(help: str) -> str:
    """An engine field's help (a phrase, as the API describes the field) as a sentence of CLI help."""
    return f"{help[:1].upper()}{help[1:]}."


def parse_window(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        lo, hi = (float(part) for part in text.split(":"))
    except ValueError:
        raise typer.BadParameter("expected LO:HI percentiles as fractions, e.g. 0.7:0.8") from None
    if not 0.0 <= lo < hi <= 1.0:
        raise typer.BadParameter("need 0 <= LO < HI <= 1, e.g. 0.7:0.8")
    return lo, hi


def parse_params(pairs: list[str]) -> dict[str, float | int]:
    params: dict[str, float | int] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            number = float(value)
        except ValueError:  # also when there is no "="
            raise typer.BadParameter(f"--score-param {pair!r}: expected KEY=NUMBER, e.g. window=5") from None
        params[key] = int(number) if number.is_integer() else number
    return params


# The engine names fields as the API does; these are the options that set them.
_OPTIONS = {"proxy.epochs": "--epochs"}


def check_params(method: str, params: dict[str, float | int], epochs: int) -> None:
    """The API's submission check: parameters the score cannot run with fail here, not after training."""
    problems = check_method_params(method, params, epochs)
    for p in problems:
        option = _OPTIONS.get(p.field, p.field.replace("score_params.", "--score-param ", 1))
        console.print(f"[red]error[/] in {option}: {p.message}")
    if problems:
        raise typer.Exit(2)


def _percent(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}" + (f" ± {100 * std:.2f}" if std is not None else "")


def _verdict(row: dict) -> str:
    if row["verdict"] is None:
        return "-"
    if row["gain_low"] is None:
        return row["verdict"]
    return f"{row['verdict']} [{100 * row['gain_low']:+.2f}, {100 * row['gain_high']:+.2f}]"


def print_sweep(rows: list[dict]) -> None:
    table = Table(
        title="Sweep: test accuracy (%) of each score x keep vs random at the same size",
        caption=f"verdict: {CONFIDENCE:.0%} paired t-interval of the gain over random (points); overlap: Jaccard "
        "of the kept set with the most similar other subset at the same keep",
    )
    for col in ("scores @ keep", "policy", "kept", "accuracy", "overlap", "random", "gain (points)", "verdict"):
        table.add_column(col)
    for r in rows:
        # Points that kept the same samples are one subset, evaluated once: their row says so.
        points = row_label(r) + (": same subset" if len(r["methods"]) > 1 else "")
        overlap = "-" if r["overlap"] is None else f"{r['overlap']:.2f} with {r['overlap_with']}"
        gain = "-" if r["gain_over_random"] is None else f"{100 * r['gain_over_random']:+.2f} ± {100 * r['gain_std']:.2f}"
        policy = r["policy"] + ("" if r["score_used"] else " (score used: no)")
        table.add_row(points, policy, str(r["kept"]), _percent(r["accuracy"], r["accuracy_std"]), overlap,
                      _percent(r["random"], r["random_std"]), gain, _verdict(r))
    console.print(table)


def print_report(report: dict) -> None:
    sel = report["selection"]
    console.print(
        f"kept [bold]{sel['kept']}[/] of {sel['total']} samples ({sel['fraction']:.1%}), "
        f"class KL {sel['class_kl']:.4f}, scoring {report['timings']['scoring_seconds']:.1f}s"
    )
    console.print(f"selection: {report['selection']['policy']['reason']}")
    evaluation = report.get("evaluation")
    if not evaluation:
        return
    table = Table(title=f"Test accuracy ({describe_selection(report['selection']['policy'])})")
    for col in ("training set", "model", "samples", "accuracy (mean ± std)", "seeds"):
        table.add_column(col)
    rows = [(name, evaluation[name]) for name in ("subset", "random", "full") if name in evaluation]
    rows += [(escape(f"{name} [{arch}]"), stats) for arch, group in evaluation.get("cross_arch", {}).items() for name, stats in group.items()]
    for name, stats in rows:
        table.add_row(
            name, stats["model"], str(stats["train_size"]), f"{100 * stats['mean']:.2f} ± {100 * stats['std']:.2f}%", str(len(stats["per_seed"]))
        )
    console.print(table)
    if gain := report.get("gain_over_random"):
        gains = [(evaluation["subset"]["model"], gain)] + list(gain.get("cross_arch", {}).items())
        for model, by_model in gains:
            console.print(f"Subset on {model}: {describe(by_model['verdict'])}")


def prune(
    ctx: typer.Context,
    data: Annotated[str, typer.Argument(help=DATA_HELP)],
    out: Annotated[Path, typer.Option("--out", help="Output folder for scores.npy, ranking.npy, indices.npy, report.json, scores.csv, indices.json, coreset.npz, preview.png (a sweep: sweep.json, sweep.csv, selections.npz, curve.png, report.json).")],
    method: Annotated[list[Method], typer.Option(help="Pruning score; repeat it (or --keep) for a sweep of every score x keep.")] = [Method(PruneConfig.method)],  # type: ignore[valid-type]  # noqa: B006
    keep: Annotated[list[float], typer.Option(help="Fraction to keep in (0, 1], or a whole count >= 2; repeatable.")] = [SelectionConfig.keep],  # noqa: B006
    class_balanced: Annotated[bool | None, typer.Option("--class-balanced/--global", help=sentence(help_of(SelectionConfig, "class_balanced")))] = SelectionConfig.class_balanced,
    mode: Annotated[Mode, typer.Option(help=sentence(help_of(SelectionConfig, "mode")))] = Mode(SelectionConfig.mode),  # type: ignore[valid-type]
    window: Annotated[str | None, typer.Option(help="Percentile window LO:HI of the importance ranking, e.g. 0.7:0.8 (implies --mode window).")] = None,
    allocation: Annotated[Allocation, typer.Option(help=sentence(help_of(SelectionConfig, "allocation")))] = Allocation(SelectionConfig.allocation),  # type: ignore[valid-type]
    ccs_cutoff: Annotated[float, typer.Option(help=sentence(help_of(SelectionConfig, "ccs_hard_cutoff")))] = SelectionConfig.ccs_hard_cutoff,
    weights: Annotated[bool, typer.Option("--weights/--no-weights", help=sentence(help_of(SelectionConfig, "weights")))] = SelectionConfig.weights,
    proxy_model: Annotated[Model, typer.Option(help="Proxy architecture that produces the scores.")] = Model(ProxyConfig.model),  # type: ignore[valid-type]
    proxy_width: Annotated[int, typer.Option(help=sentence("Proxy " + help_of(ProxyConfig, "width")))] = ProxyConfig.width,
    epochs: Annotated[int, typer.Option(help=sentence("Proxy " + help_of(ProxyConfig, "epochs")))] = ProxyConfig.epochs,
    batch_size: Annotated[int, typer.Option(help="Proxy batch size.")] = ProxyConfig.batch_size,
    lr: Annotated[float, typer.Option(help=sentence("Proxy " + help_of(ProxyConfig, "lr")))] = ProxyConfig.lr,
    score_param: Annotated[list[str], typer.Option(help=f"Score parameter KEY=NUMBER, repeatable; {PARAMS_HELP}.")] = [],  # noqa: B006
    eval_seeds: Annotated[int, typer.Option(help=sentence(help_of(EvalConfig, "seeds") + "; 0 skips evaluation"))] = EvalConfig.seeds,
    eval_epochs: Annotated[int, typer.Option(help=sentence(help_of(EvalConfig, "epochs")))] = EvalConfig.epochs,
    eval_model: Annotated[Model, typer.Option(help="Evaluation architecture.")] = Model(EvalConfig.model),  # type: ignore[valid-type]
    eval_width: Annotated[int, typer.Option(help=sentence("Evaluation " + help_of(EvalConfig, "width")))] = EvalConfig.width,
    cross_arch: Annotated[list[Model], typer.Option(help="Extra evaluation architectures, repeatable.")] = [],  # type: ignore[valid-type]  # noqa: B006
    compare_random: Annotated[bool, typer.Option("--random/--no-random", help=sentence(help_of(EvalConfig, "compare_random")))] = EvalConfig.compare_random,
    full_data: Annotated[bool, typer.Option("--full/--no-full", help=sentence(help_of(EvalConfig, "full_data")))] = EvalConfig.full_data,
    seed: Annotated[int, typer.Option(help=sentence(help_of(PruneConfig, "seed")))] = PruneConfig.seed,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = PruneConfig.device,
    test_fraction: Annotated[float, typer.Option(help="Held-out test fraction when the data has no test split.")] = TEST_FRACTION,
    proxy_runs: Annotated[Path | None, typer.Option(help="Folder that keeps recorded proxy runs (every score at once): a later prune of the same data with the same proxy and seed selects without training.")] = None,
    spec: Annotated[Path | None, typer.Option(help=SPEC_HELP + " Kinds prune and prune_sweep.", dir_okay=False)] = None,
) -> None:
    """Score every training sample, keep the best subset, and report what it is worth.

    Several --method or --keep values run a sweep: one proxy run for every score x keep, a table and
    curve.png of accuracy against the kept fraction, each subset against random at the same size with its
    verdict; points that keep the same samples are one row, evaluated once.

    Example: condense prune builtin:digits --keep 0.1 --out pruned/
    """
    if spec is not None:
        refuse_job_options(ctx, SPEC_KEEPS, console)
        _run(data, out, *_spec_configs(spec), test_fraction, proxy_runs)
        return
    if window is not None:
        mode = Mode("window")
    score_params = parse_params(score_param)
    methods = list(dict.fromkeys(m.value for m in method))
    keeps = [int(k) if k >= 2 and k.is_integer() else k for k in dict.fromkeys(keep)]
    sweep = len(methods) * len(keeps) > 1
    if sweep and score_params:
        console.print("[red]error[/] in --score-param: a sweep runs every score with its defaults")
        raise typer.Exit(2)
    for name in methods:
        check_params(name, score_params, epochs)
    config = PruneConfig(
        method=methods[0],
        selection=SelectionConfig(
            keep=keeps[0],
            mode=mode.value,
            window=parse_window(window),
            class_balanced=class_balanced,
            allocation=allocation.value,
            ccs_hard_cutoff=ccs_cutoff,
            weights=weights,
        ),
        proxy=ProxyConfig(model=proxy_model.value, width=proxy_width, epochs=epochs, batch_size=batch_size, lr=lr),
        evaluation=EvalConfig(
            seeds=eval_seeds,
            epochs=eval_epochs,
            model=eval_model.value,
            width=eval_width,
            compare_random=compare_random,
            full_data=full_data,
            archs=[a.value for a in cross_arch],
        )
        if eval_seeds > 0
        else None,
        score_params=score_params,
        seed=seed,
        device=device,
    )
    _run(data, out, config, SweepConfig(methods, keeps, config) if sweep else None, test_fraction, proxy_runs)


def _spec_configs(path: Path) -> tuple[PruneConfig, SweepConfig | None]:
    given = read_spec(path, ("prune", "prune_sweep"), console)
    from app.services.job_configs import prune_config, sweep_config

    if given.kind == "prune_sweep":
        sweep = sweep_config(given)  # type: ignore[arg-type]
        return sweep.base, sweep
    return prune_config(given), None  # type: ignore[arg-type]


def _run(data: str, out: Path, config: PruneConfig, sweep: SweepConfig | None, test_fraction: float,
         proxy_runs: Path | None) -> None:
    """Load the data, run the prune job (or the sweep), write its files and print its report."""
    dataset = load_or_exit(data, test_fraction)
    # The pipelines import torch: imported when a job runs, so that `condense --help` answers at once.
    from engine.pipeline.prune import run_prune
    from engine.pipeline.sweep import run_sweep

    keep_freed_memory()
    store = LocalFileStore(proxy_runs) if proxy_runs is not None else None
    try:
        label = f"sweep of {len(sweep.methods) * len(sweep.keeps)}" if sweep else f"prune {config.method}"
        with progress_tracker(label) as tracker:
            if sweep:
                result = run_sweep(dataset, sweep, tracker, workdir=_checkpoints(out), proxy_runs=store)
            else:
                result = run_prune(dataset, config, tracker, workdir=_checkpoints(out), proxy_runs=store)
    except SelectionError as exc:
        console.print(f"[red]error[/] in selection: {exc}")
        raise typer.Exit(2) from None
    if sweep:
        result.write(out)
        print_sweep(result.rows)
    else:
        # subset.zip copies the upload's own image files
        result.write(out, dataset, origin=None if data.startswith(BUILTIN_PREFIX) else data)
        print_report(result.report)
    console.print(f"wrote {', '.join(p.name for p in sorted(out.iterdir()) if p.is_file())} to {out}")


def load_or_exit(data: str, test_fraction: float) -> ImageDataset:
    """The DATA argument's dataset, summarised in one line; a problem is printed with its hint, exit status 2."""
    try:
        dataset = load_dataset(data, test_fraction=test_fraction)
    except DatasetError as exc:
        console.print(f"[red]error[/] in {exc.field}: {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""))
        raise typer.Exit(2) from None
    console.print(
        f"{dataset.name}: {len(dataset.y_train)} train / {len(dataset.y_test)} test, "
        f"{dataset.num_classes} classes, images {dataset.image_shape}"
    )
    return dataset


def _checkpoints(out: Path) -> Path:
    folder = out / ".checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def register(app: typer.Typer) -> None:
    app.command("prune")(prune)
