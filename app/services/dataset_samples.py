"""A few training images of each class of a dataset, with their source names, for the dashboard's sample grid.

Read from the stored upload as registration reads it (no float32 copy of the whole set; the imports are the light
loaders', not torch) and kept per process for the last datasets asked for, since a page asks for them on every
visit and a dataset's bytes never change under its content hash."""

from __future__ import annotations

from collections import OrderedDict
from functools import partial

from app.blobstore import BlobStore
from app.core.config import Settings
from app.models import Dataset
from app.services.datasets import read_with_settings
from engine.data import preview_samples
from engine.data.detect import BUILTIN_PREFIX
from engine.data.imagefolder_zip import png_data_url

_KEPT = 16  # datasets whose samples stay in memory
_cache: OrderedDict[tuple[str, int, float, int], list[dict[str, str]]] = OrderedDict()


def dataset_samples(record: Dataset, store: BlobStore, settings: Settings, per_class: int) -> list[dict[str, str]]:
    """``per_class`` training images of each class: class name, source id and the image as a PNG data URL."""
    key = (record.content_hash, per_class, settings.dataset_test_fraction, settings.dataset_split_seed)
    if (samples := _cache.get(key)) is None:
        source = BUILTIN_PREFIX + record.builtin if record.builtin else str(store.path_for(record.blob_key or ""))
        read = partial(preview_samples, per_class=per_class)
        samples = [
            {"class_name": class_name, "source": name, "image": png_data_url(pixels)}
            for class_name, name, pixels in read_with_settings(read, source, settings, None)
        ]
        _cache[key] = samples
        while len(_cache) > _KEPT:
            _cache.popitem(last=False)
    _cache.move_to_end(key)
    return samples
