"""Prototype selection: cover each class's feature space with as many k-means clusters as samples to keep,
and keep the sample nearest each centroid.

At small budgets the samples worth keeping are the prototypical ones, spread over the modes of each class,
not the hard ones (Sorscher et al., "Beyond neural scaling laws", NeurIPS 2022, Sec. 3: "keep easy
examples when data is scarce"; the kept medoids are the facility-location coreset that CRAIG,
Mirzasoleiman et al., ICML 2020, approximates). The features are the proxy model's penultimate-layer
outputs after its last epoch, L2-normalised so that distances compare directions, not activation scale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.cluster import KMeans

if TYPE_CHECKING:
    from engine.select.config import SelectionConfig


def class_prototypes(features: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Indices (into ``features``) of ``count`` samples, one per k-means cluster: the one nearest its centroid."""
    if count <= 0:
        return np.empty(0, dtype=np.int64)
    if count >= len(features):
        return np.arange(len(features), dtype=np.int64)
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    km = KMeans(n_clusters=count, n_init=1, random_state=seed).fit(unit)
    distance = np.linalg.norm(unit - km.cluster_centers_[km.labels_], axis=1)
    # Nearest member of each cluster: sort by (cluster, distance), take each cluster's first row.
    order = np.lexsort((distance, km.labels_))
    first = np.flatnonzero(np.r_[True, np.diff(km.labels_[order]) != 0])
    chosen = order[first]
    if len(chosen) < count:
        # Duplicate features leave fewer distinct clusters than asked: fill up with the most central of the rest.
        rest = np.setdiff1d(np.arange(len(features)), chosen)
        chosen = np.concatenate([chosen, rest[np.argsort(distance[rest], kind="stable")][: count - len(chosen)]])
    return chosen.astype(np.int64)


def keep_prototypes(importance: np.ndarray, features: np.ndarray | None, k: int, config: SelectionConfig,
                    rng: np.random.Generator, seed: int) -> np.ndarray:
    """The ``prototypes`` policy (``engine.select.registry``): the score is not read."""
    assert features is not None  # the dispatcher refuses a policy that needs features without them
    return class_prototypes(features, k, seed)
