"""Loading, validating and normalising image-classification datasets.

``load_dataset(source)`` accepts any registered format (``engine.data.formats.FORMATS``) or ``builtin:NAME``
and returns an :class:`ImageDataset`.
Every problem with the input raises :class:`DatasetError` (or :class:`DatasetTooLarge`) naming
the file, array or archive member at fault and what to do about it. ``inspect_dataset(source)``
makes the same checks and returns only the :class:`DatasetSummary`, without float32 copies.
"""

import lazy_loader

# Attributes load with their submodule on first use (lazy_loader): importing one light submodule, such as a
# config or a registry, does not import torch through this package.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "builtin": ["BUILTIN_DATASETS"],
        "dataset": ["DatasetSummary", "ImageDataset", "SplitInfo"],
        "errors": ["DatasetError", "DatasetTooLarge"],
        "export": ["save_npz"],
        "limits": ["LoadLimits"],
        "load": ["inspect_dataset", "load_dataset", "preview_samples"],
        "subset": ["long_tailed_indices", "subsample_per_class"],
    },
)
