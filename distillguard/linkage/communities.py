"""Communities of the account graph (igraph Leiden): candidate campaigns."""

from __future__ import annotations

import random

import igraph as ig
import numpy as np

__all__ = ["leiden_communities"]


def leiden_communities(n: int, sources: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                       *, resolution: float, seed: int = 0) -> np.ndarray:
    """Community number per node (isolated nodes get their own).

    Modularity Leiden with ``resolution``: lower merges more. Deterministic for
    a seed.
    """
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    graph = ig.Graph(n=n, edges=np.column_stack([sources, targets]).tolist(), directed=False)
    graph.es["weight"] = weights.astype(float).tolist()
    graph.simplify(combine_edges="sum")
    ig.set_random_number_generator(random.Random(seed))
    partition = graph.community_leiden(objective_function="modularity", weights="weight",
                                       resolution=resolution, n_iterations=-1)
    return np.asarray(partition.membership, dtype=np.int64)
