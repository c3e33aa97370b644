"""Loading, validating and normalising image-classification datasets.

``load_dataset(source)`` accepts an ``.npz``, a zip/tar(.gz) of class folders, the MNIST IDX
files, CIFAR-10/100 python batches or ``builtin:NAME`` and returns an :class:`ImageDataset`.
Every problem with the input raises :class:`DatasetError` (or :class:`DatasetTooLarge`) naming
the file, array or archive member at fault and what to do about it. ``inspect_dataset(source)``
makes the same checks and returns only the :class:`DatasetSummary`, without float32 copies.
"""

from engine.data.builtin import BUILTIN_DATASETS
from engine.data.dataset import DatasetSummary, ImageDataset, SplitInfo
from engine.data.errors import DatasetError, DatasetTooLarge
from engine.data.export import save_npz
from engine.data.limits import LoadLimits
from engine.data.load import inspect_dataset, load_dataset
from engine.data.subset import long_tailed_indices, subsample_per_class

__all__ = [
    "BUILTIN_DATASETS",
    "DatasetError",
    "DatasetSummary",
    "DatasetTooLarge",
    "ImageDataset",
    "LoadLimits",
    "SplitInfo",
    "inspect_dataset",
    "load_dataset",
    "long_tailed_indices",
    "save_npz",
    "subsample_per_class",
]
