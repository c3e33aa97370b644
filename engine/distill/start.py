"""Where a job asks its synthetic set to start, and whether its data allows it: light, so that the API and the
CLI check a request without torch. The starts themselves are built by ``engine.distill.init``.

``auto`` (a distill job's default) starts from the coreset where the method's registry entry says a coreset
start measured better (``MethodSpec.coreset_start_up_to_ipc``), else from random real images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from engine.distill.registry import MethodSpec

# A distill job starts from real images, noise or the coreset a default prune job keeps at the same size
# (engine.pipeline.coreset_row), or lets ``auto`` choose between the last two; "pruned" (a named score's
# policy) is what makes it prune_then_distill.
UnprunedInitMode = Literal["auto", "real", "noise", "coreset"]
InitMode = Literal[UnprunedInitMode, "pruned"]
StartMode = Literal["real", "noise", "coreset", "pruned"]


def resolve_start(mode: InitMode, spec: MethodSpec, ipc: int) -> tuple[StartMode, str]:
    """The start a job's ``init`` mode stands for, and why."""
    if mode != "auto":
        return mode, "named by the job"
    lowest, highest = spec.coreset_start_from_ipc, spec.coreset_start_up_to_ipc
    if lowest <= ipc <= highest:
        span = f"up to IPC {highest}" if lowest == 1 else f"from IPC {lowest} up to {highest}"
        return "coreset", f"auto: {spec.title} measured better from the coreset than from random real images {span}"
    if ipc < lowest <= highest:
        return "real", f"auto: below IPC {lowest} a coreset start measured worse for {spec.title} on one dataset"
    if highest:
        return "real", f"auto: above IPC {spec.coreset_start_up_to_ipc} a coreset start did not measure better for {spec.title}"
    return "real", f"auto: a coreset start has not measured better for {spec.title}"


def ipc_problem(ipc: int, class_counts: Sequence[int]) -> str | None:
    """Why a synthetic set of ``ipc`` images per class cannot start from these classes' training samples
    (every start takes ``ipc`` real images of each class), or None where it can."""
    smallest = min(class_counts)
    if ipc > smallest:
        return f"must be at most {smallest}, the training samples of the dataset's smallest class; use {smallest} or less"
    return None
