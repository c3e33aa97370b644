"""Where each sample came from, so results name the user's own files (issue 19).

A job's indices count samples in the engine's training order, after a held-out split; a user knows their data
by file. Every loader therefore records a stable source id per sample: the member path for a folder of images
(``train/cat/0042.png``), and ``FILE[ROW]`` for a file holding many samples (``x[17]`` of an .npz,
``train-images-idx3-ubyte.gz[17]``, ``data_batch_2[17]``, ``digits[17]`` of a builtin set). The split carries
them along, so ``dataset.train_sources.names(indices)`` names the samples a job kept, held-out split included.

Stored compactly: the distinct file names once, and per sample the index of its file and its row (-1 where the
file is one image), so MNIST's 60,000 ids cost two small integer arrays and one name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sources:
    """Source ids of one split's samples: sample ``i`` is ``files[file[i]]``, at row ``row[i]`` when that is >= 0."""

    files: tuple[str, ...]
    file: np.ndarray  # (N,) int64 index into files
    row: np.ndarray  # (N,) int64 row within the file; -1 where the file is the sample

    @classmethod
    def rows(cls, name: str, count: int) -> Sources:
        """``count`` samples stored as the rows of one file ``name``."""
        return cls((name,), np.zeros(count, np.int64), np.arange(count, dtype=np.int64))

    @classmethod
    def members(cls, names: Sequence[str]) -> Sources:
        """One sample per file, in the order given."""
        return cls(tuple(names), np.arange(len(names), dtype=np.int64), np.full(len(names), -1, np.int64))

    @classmethod
    def concat(cls, parts: Sequence[Sources]) -> Sources:
        """The samples of ``parts`` one after another (training batches read in turn)."""
        files: list[str] = []
        file_parts = []
        for part in parts:
            file_parts.append(part.file + len(files))
            files.extend(part.files)
        return cls(tuple(files), np.concatenate(file_parts), np.concatenate([p.row for p in parts]))

    def __len__(self) -> int:
        return len(self.file)

    def take(self, indices: np.ndarray) -> Sources:
        """The sources of ``indices``, in their order (a split, a subset)."""
        idx = np.asarray(indices, dtype=np.int64)
        return Sources(self.files, self.file[idx], self.row[idx])

    def names(self, indices: np.ndarray | None = None) -> list[str]:
        """The id of each sample (of ``indices``, in their order), as a user would name it."""
        part = self if indices is None else self.take(indices)
        return [self.files[f] if r < 0 else f"{self.files[f]}[{r}]"
                for f, r in zip(part.file.tolist(), part.row.tolist(), strict=True)]

    def is_member(self, index: int) -> bool:
        """Whether sample ``index`` is a file of its own (its bytes can be handed back as uploaded)."""
        return bool(self.row[index] < 0)
