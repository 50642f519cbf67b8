"""Grouping lifted elements into the requested number of layers, and ordering them."""

from __future__ import annotations

import numpy as np

POSITION_WEIGHT = 0.5  # how much distance on the canvas counts against colour difference


def group(features: np.ndarray, count: int) -> list[list[int]]:
    """Split elements into ``count`` groups that are alike in colour and near each other.

    ``features`` is (K, D): per element its mean colour (0..1) and centre (0..1 of the
    canvas diagonal). Ward's agglomerative clustering (scipy) merges the most alike
    first, so a line of same-coloured glyphs becomes one text layer before it is
    merged with anything else. Groups come back in element order of their first member.
    """
    k = len(features)
    if k <= count:
        return [[i] for i in range(k)]
    if count == 1:
        return [list(range(k))]
    from scipy.cluster.hierarchy import fcluster, linkage

    weights = np.array([1.0] * (features.shape[1] - 2) + [POSITION_WEIGHT] * 2)
    tree = linkage(features * weights, method="ward")
    labels = fcluster(tree, t=count, criterion="maxclust")
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(int(label), []).append(index)
    return sorted(groups.values(), key=lambda members: members[0])
