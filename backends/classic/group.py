"""Grouping regions into the requested number of layers.

Regions that overlap must land on different layers for either to stay whole, while
regions side by side may share one. So layers follow depth first: levels are the
longest-path layering of the occlusion DAG, counted from the top (regions of one
level never overlap). Levels are
then split by colour and position when more layers are asked for, or adjacent levels
merged when fewer are.
"""

from __future__ import annotations

import itertools

import numpy as np

POSITION_WEIGHT = 0.5  # how much distance on the canvas counts against colour difference
ALIKE = 0.2  # Ward distance (colour 0..1, weighted position) below which a split separates
# nothing a designer would tell apart: -n is an upper bound, not a quota


def levels(ranks: list[int], above: list[set[int]]) -> list[int]:
    """Level per region index (0 = lowest), counted down from the top.

    A region with nothing on it is on the top level; otherwise it is one level below
    the lowest region on it. Counting from the top matches how the LayerD protocol
    groups layers (peeling what nothing overlaps), so a line of text that partly lies
    on a banner stays on one level.
    """
    depth = [0] * len(ranks)
    for i in reversed(ranks):  # top first: every region on i already has its depth
        depth[i] = max((depth[j] + 1 for j in above[i]), default=0)
    deepest = max(depth, default=0)
    return [deepest - d for d in depth]


def plan(level: list[int], features: np.ndarray, areas: np.ndarray, count: int) -> list[list[int]]:
    """``count`` or fewer groups of region indices, bottom first.

    Fewer when there are fewer regions than ``count``, or when no split left would
    separate regions further apart than ALIKE.
    """
    by_level: dict[int, list[int]] = {}
    for index, lv in enumerate(level):
        by_level.setdefault(lv, []).append(index)
    stacks = [by_level[lv] for lv in sorted(by_level)]
    while len(stacks) > count:  # merge the adjacent pair with the least area
        sizes = [areas[a].sum() + areas[b].sum() for a, b in itertools.pairwise(stacks)]
        k = int(np.argmin(sizes))
        stacks[k : k + 2] = [stacks[k] + stacks[k + 1]]
    slots = [1] * len(stacks)
    trees = [_tree(features[members]) for members in stacks]
    while sum(slots) < count:  # the next layer goes where it separates the most
        gains = [
            _height(tree, slot) if slot < len(members) else -1.0
            for tree, slot, members in zip(trees, slots, stacks, strict=True)
        ]
        k = int(np.argmax(gains))
        if gains[k] < ALIKE:
            break
        slots[k] += 1
    groups = []
    for members, slot, tree in zip(stacks, slots, trees, strict=True):
        groups += _split(members, slot, tree)
    return groups


def _weighted(features: np.ndarray) -> np.ndarray:
    weights = np.array([1.0] * (features.shape[1] - 2) + [POSITION_WEIGHT] * 2)
    return features * weights


def _tree(features: np.ndarray):
    """Ward's agglomerative clustering (scipy) of colour + position, or None for one."""
    if len(features) < 2:
        return None
    from scipy.cluster.hierarchy import linkage

    return linkage(_weighted(features), method="ward")


def _height(tree, clusters: int) -> float:
    """How far apart the two groups are that the next split (clusters → +1) separates."""
    return float(tree[-clusters, 2]) if tree is not None else -1.0


def _split(members: list[int], count: int, tree) -> list[list[int]]:
    if count <= 1 or tree is None:
        return [members]
    from scipy.cluster.hierarchy import fcluster

    labels = fcluster(tree, t=count, criterion="maxclust")
    parts: dict[int, list[int]] = {}
    for index, label in zip(members, labels, strict=True):
        parts.setdefault(int(label), []).append(index)
    return sorted(parts.values(), key=lambda part: part[0])
