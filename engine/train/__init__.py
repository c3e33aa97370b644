"""Training: one loop for proxies, evaluation and experts, with per-sample dynamics recording."""

import lazy_loader

# Attributes load with their submodule on first use (lazy_loader): importing one light submodule, such as a
# config or a registry, does not import torch through this package.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "config": ["TrainConfig"],
        "loop": ["TrainObserver", "TrainResult", "predict", "train_model"],
    },
)
