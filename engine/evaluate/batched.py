"""Training an evaluation's K seed models together: their parameters stacked (``torch.func.stack_module_state``)
and their forward and backward passes vectorised over the seed axis (``torch.vmap``).

Each model keeps what it has when trained alone: its seed's initial weights, its seed's batch order, and
an SGD step of its own (SGD with momentum and weight decay is elementwise, so one optimizer over the
stacked tensors steps every model exactly as its own optimizer would; the loss is the sum of the models'
mean losses, so each slice's gradient is its model's). What changes is how the work is scheduled: K
small convolutions become one batched one. Whether that is faster depends on the device and the model
size; ``bench/perf --parts batched`` measures it, and ``EvalSpec.batched`` decides (off unless asked).

Models with buffers (BatchNorm's running statistics) and augmentation are not batched: the sequential
path trains them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
from torch.func import functional_call, stack_module_state

from engine.data.dataset import ImageDataset
from engine.device import resolve_device
from engine.evaluate.spec import EvalSpec
from engine.models import create_model
from engine.progress import Tracker
from engine.seed import seed_everything
from engine.train.config import TrainConfig
from engine.train.loop import iterate_minibatches, per_sample_loss


def can_batch(model: torch.nn.Module) -> bool:
    """Whether ``model`` can be trained vectorised over seeds: no buffers to update in place."""
    return not any(True for _ in model.buffers())


def train_and_test_seeds(
    dataset: ImageDataset,
    x: torch.Tensor,
    y: torch.Tensor,
    spec: EvalSpec,
    seeds: list[int],
    sample_weights: torch.Tensor | None = None,
    tracker: Tracker | None = None,
    stage: str = "evaluate",
    test_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> list[tuple[float, np.ndarray]] | None:
    """(accuracy, per-class accuracy) of one model per seed trained together, or None when the spec or the
    model cannot be batched (the caller then trains them one by one)."""
    if spec.augment or spec.dsa_strategy or len(seeds) < 2:
        return None
    device = resolve_device(spec.device)
    c, h, _ = dataset.image_shape
    models = []
    for seed in seeds:
        seed_everything(seed)  # the initial weights each seed's model gets when trained alone
        models.append(
            create_model(spec.model, channels=c, num_classes=dataset.num_classes, image_size=h, width=spec.width,
                         depth=spec.depth).to(device)
        )
    if not can_batch(models[0]):
        return None
    batch = max(1, min(spec.batch_size, len(x)))
    config = TrainConfig(epochs=spec.epochs, batch_size=batch, lr=spec.lr, seed=seeds[0], device=spec.device)
    params, _ = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def forward(p: dict[str, torch.Tensor], xb: torch.Tensor) -> torch.Tensor:
        return functional_call(base, p, (xb,))

    batched_forward = torch.vmap(forward)
    optimizer = torch.optim.SGD(params.values(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    n = len(x)
    total_steps = max(math.ceil(n / batch) * config.epochs, 1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    )
    generators = [seed_everything(seed) for seed in seeds]  # each seed's own batch order
    x_dev, y_dev = x.to(device), y.to(device)
    w_dev = sample_weights.to(device) if sample_weights is not None else None
    for epoch in range(1, config.epochs + 1):
        if tracker is not None:
            tracker.report(stage, (epoch - 1) / config.epochs, f"epoch {epoch}/{config.epochs}, {len(seeds)} seeds at once")
        orders = [iterate_minibatches(n, batch, g) for g in generators]
        for idxs in zip(*orders, strict=True):
            idx = torch.stack(idxs).to(device)  # (K, B): the batches are equally long, as n and B are shared
            logits = batched_forward(params, x_dev[idx]).float()
            losses = per_sample_loss(logits.flatten(0, 1), y_dev[idx].flatten(0, 1)).view(idx.shape)
            if w_dev is not None:
                w = w_dev[idx]
                loss = ((losses * w).sum(1) / w.sum(1)).sum()
            else:
                loss = losses.mean(1).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    return _test(dataset, batched_forward, params, device, test_transform)


@torch.no_grad()
def _test(dataset: ImageDataset, batched_forward, params: dict[str, torch.Tensor], device: torch.device,
          test_transform: Callable[[torch.Tensor], torch.Tensor] | None, chunk: int = 1024) -> list[tuple[float, np.ndarray]]:
    x, y = dataset.test_tensors()
    if test_transform is not None:
        x = test_transform(x)
    k = next(iter(params.values())).shape[0]
    preds = []
    for start in range(0, len(x), chunk):
        xb = x[start : start + chunk].to(device)
        logits = batched_forward(params, xb.unsqueeze(0).expand(k, *xb.shape))
        preds.append(logits.argmax(-1).cpu())
    pred, truth = torch.cat(preds, dim=1).numpy(), y.numpy()
    results = []
    for p in pred:
        per_class = np.array([float((p[truth == c] == c).mean()) if (truth == c).any() else float("nan")
                              for c in range(dataset.num_classes)])
        results.append((float((p == truth).mean()), per_class))
    return results
