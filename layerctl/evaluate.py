"""Scores of a decomposition against ground truth, by the LayerD protocol.

Protocol of LayerD (Suzuki et al., "LayerD: Decomposing Raster Graphic Designs into
Layers", ICCV 2025, arXiv:2509.25134, §5; reference code: CyberAgentAILab/LayerD,
``layerd/evaluation``), which Qwen-Image-Layered also reports on Crello:

1. **Occlusion grouping** (each side): repeatedly peel off the layers that no later
   remaining layer overlaps (alpha > 0 on both) — the current top — and composite each
   such group into one image; groups are then listed bottom first. Decompositions that
   differ only in the order of disjoint layers compare equal.
2. **Matching**: dynamic time warping over the two group sequences, with
   cost(p, g) = (RGB L1(p, g) + (1 − alpha soft IoU(p, g))) / 2, where RGB L1 is the
   mean absolute RGB difference (0..1) over the pixels where g's alpha > 0, and soft
   IoU = Σ min(αp, αg) / Σ max(αp, αg). Scores are the means over the warping path.
3. **Edits**: up to ``max_merges`` greedy merges of two adjacent groups on either side
   (the merge that most raises the similarity 1 − cost of the pairs it touches; none
   when no merge helps), rescoring after each. Level k reports the scores after k
   merges; a sample that stopped early keeps its last scores at higher levels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from layerctl.errors import BadResult, UsageError
from layerctl.stack import LayerStack, composite

MAX_MERGES = 5
METRICS = ("rgb_l1", "alpha_iou", "cost")


def rgb_l1(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean |RGB difference| (0..1) over the ground truth's visible (alpha > 0) pixels."""
    visible = gt[..., 3] > 0
    if not visible.any():
        return 0.0
    diff = np.abs(pred[..., :3].astype(np.float32) - gt[..., :3].astype(np.float32))
    return float(diff.mean(axis=-1)[visible].mean() / 255.0)


def alpha_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Soft IoU of the alpha channels: Σ min / Σ max (0 when both are empty)."""
    a, b = pred[..., 3].astype(np.float32), gt[..., 3].astype(np.float32)
    union = float(np.maximum(a, b).sum())
    return float(np.minimum(a, b).sum()) / union if union > 0 else 0.0


def occlusion_groups(alphas: Sequence[np.ndarray]) -> list[list[int]]:
    """Index groups, bottom first; no layer is overlapped by a later one of its group's peel."""
    hard = [a > 0 for a in alphas]
    remaining = list(range(len(alphas)))
    groups = []
    while remaining:
        group = [
            i
            for pos, i in enumerate(remaining)
            if not any((hard[i] & hard[j]).any() for j in remaining[pos + 1 :])
        ]
        groups.append(group)
        remaining = [i for i in remaining if i not in group]
    return groups[::-1]


def grouped(layers: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each occlusion group composited into one RGBA image."""
    groups = occlusion_groups([layer[..., 3] for layer in layers])
    return [composite([layers[i] for i in group]) for group in groups]


def dtw_path(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost monotone warping path from (0, 0) to (n−1, m−1), steps ↓ → ↘.

    Ties go to the diagonal, then to advancing the first sequence, as in LayerD's code.
    """
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j], acc[i, j - 1], acc[i - 1, j - 1])
    i, j = n, m
    path = [(i - 1, j - 1)]
    while (i, j) != (1, 1):
        if i == 1:
            j -= 1
        elif j == 1:
            i -= 1
        else:
            diag, up, left = acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]
            if diag <= up and diag <= left:
                i, j = i - 1, j - 1
            elif up <= left:
                i -= 1
            else:
                j -= 1
        path.append((i - 1, j - 1))
    return path[::-1]


class _Scorer:
    """Pair scores, remembered per (pred, gt) image so merges rescore only new pairs."""

    def __init__(self) -> None:
        self._memo: dict[tuple[int, int], tuple[float, float, float]] = {}
        self._keep: list[np.ndarray] = []  # ids stay valid while the images live

    def __call__(self, pred: np.ndarray, gt: np.ndarray) -> tuple[float, float, float]:
        key = (id(pred), id(gt))
        if key not in self._memo:
            self._keep += [pred, gt]
            l1, iou = rgb_l1(pred, gt), alpha_iou(pred, gt)
            self._memo[key] = (l1, iou, (l1 + 1.0 - iou) / 2.0)
        return self._memo[key]

    def cost(self, pred: np.ndarray, gt: np.ndarray) -> float:
        return self(pred, gt)[2]


def match(pred: list[np.ndarray], gt: list[np.ndarray], scorer: _Scorer):
    """(warping path, mean scores along it)."""
    cost = np.array([[scorer.cost(p, g) for g in gt] for p in pred])
    path = dtw_path(cost)
    values = np.array([scorer(pred[i], gt[j]) for i, j in path])
    return path, dict(zip(METRICS, (float(v) for v in values.mean(axis=0)), strict=True))


def _best_merge(
    side: list[np.ndarray], other: list[np.ndarray], pairs: list[tuple[int, int]], sim
) -> tuple[int | None, float]:
    """(i, gain) of the adjacent merge (i, i+1) on ``side`` that most helps, or (None, -inf).

    For a merge of i and i+1 the pairs that touched them (G_i, G_{i+1}) are rescored:
    the merged image takes G_i, and G_{i+1} goes to whichever of the merged image and
    layer i+2 suits it better (the reference code's candidate set). Sides of two or
    fewer layers are not merged.
    """
    best: tuple[int | None, float] = (None, float("-inf"))
    if len(side) <= 2:
        return best
    for i in range(len(side) - 1):
        merged = composite([side[i], side[i + 1]])
        first = [other[b] for a, b in pairs if a == i]
        second = [other[b] for a, b in pairs if a == i + 1]
        now = sum(sim(side[i], g) for g in first) + sum(sim(side[i + 1], g) for g in second)
        on_merged = [sum(sim(merged, g) for g in first), sum(sim(merged, g) for g in second)]
        options = [on_merged[0] + on_merged[1]]
        if i + 2 < len(side):
            options += [
                on_merged[0] + sum(sim(side[i + 2], g) for g in group) for group in (first, second)
            ]
        gain = max(options) - now
        if gain > 0 and gain > best[1]:
            best = (i, gain)
    return best


def _merge_at(layers: list[np.ndarray], i: int) -> list[np.ndarray]:
    return [*layers[:i], composite([layers[i], layers[i + 1]]), *layers[i + 2 :]]


def evaluate_layers(
    pred: Sequence[np.ndarray], gt: Sequence[np.ndarray], max_merges: int = MAX_MERGES
) -> list[dict[str, float]]:
    """Scores at merge levels 0..k (k ≤ max_merges) for two bottom-first layer lists."""
    if not pred or not gt:
        raise BadResult("cannot score an empty stack")
    if pred[0].shape != gt[0].shape:
        raise UsageError(
            f"canvas sizes differ: {pred[0].shape[1]}x{pred[0].shape[0]} predicted, "
            f"{gt[0].shape[1]}x{gt[0].shape[0]} ground truth",
            hint="decompose with --output-size input",
        )
    scorer = _Scorer()

    def sim(p: np.ndarray, g: np.ndarray) -> float:
        return 1.0 - scorer.cost(p, g)

    def sim_flipped(g: np.ndarray, p: np.ndarray) -> float:
        return 1.0 - scorer.cost(p, g)

    p_side, g_side = grouped(pred), grouped(gt)
    pairs, scores = match(p_side, g_side, scorer)
    levels = [{"merges": 0, **scores}]
    for level in range(1, max_merges + 1):
        on_pred = _best_merge(p_side, g_side, pairs, sim)
        on_gt = _best_merge(g_side, p_side, [(b, a) for a, b in pairs], sim_flipped)
        if on_pred[0] is None and on_gt[0] is None:
            break
        if on_pred[1] > on_gt[1]:
            p_side = _merge_at(p_side, on_pred[0])
        else:
            g_side = _merge_at(g_side, on_gt[0])
        pairs, scores = match(p_side, g_side, scorer)
        levels.append({"merges": level, **scores})
    return levels


def evaluate_stacks(
    pred: LayerStack, gt: LayerStack, max_merges: int = MAX_MERGES
) -> list[dict[str, float]]:
    """Scores of two stacks' pixel layers (groups flattened to their leaves)."""
    return evaluate_layers(
        [layer.pixels for layer in pred.leaves() if layer.visible],
        [layer.pixels for layer in gt.leaves() if layer.visible],
        max_merges,
    )


def mean_levels(samples: Sequence[list[dict[str, float]]], max_merges: int = MAX_MERGES):
    """Per merge level, the mean over samples; a sample that stopped early counts its last."""
    out = []
    for level in range(max_merges + 1):
        rows = [levels[min(level, len(levels) - 1)] for levels in samples]
        out.append({"merges": level, **{k: float(np.mean([r[k] for r in rows])) for k in METRICS}})
    return out


@dataclass
class Report:
    pairs: list[tuple[str, Path, Path]]  # (name, pred, gt) that were scored
    samples: list[list[dict[str, float]]]
    unmatched: list[str]  # ground-truth names with no prediction

    def mean(self) -> list[dict[str, float]]:
        return mean_levels(self.samples)

    def as_dict(self) -> dict:
        return {
            "mean": self.mean(),
            "samples": [
                {"name": name, "pred": str(p), "gt": str(g), "levels": levels}
                for (name, p, g), levels in zip(self.pairs, self.samples, strict=True)
            ],
            "unmatched": self.unmatched,
        }


def is_result(path: Path) -> bool:
    """A single result (PSD, ORA, PPTX, SVG, PNG-stack folder), not a folder of them."""
    from layerctl.formats import FILE_SUFFIXES

    if path.is_dir():
        return (path / "manifest.json").is_file()
    return path.suffix.lower() in FILE_SUFFIXES


def evaluate_paths(pred: Path, gt: Path, max_merges: int = MAX_MERGES) -> Report:
    """Score one result against one ground truth, or two folders matched by name."""
    from layerctl import formats

    for path in (pred, gt):
        if not path.exists():
            raise BadResult(f"{path}: no such file or folder")
    if is_result(pred) and is_result(gt):
        pairs = [(pred.name, pred, gt)]
        unmatched = []
    elif pred.is_dir() and gt.is_dir() and not is_result(pred) and not is_result(gt):
        found = _results_by_name(pred)
        truth = _results_by_name(gt)
        pairs = [(name, found[name], truth[name]) for name in sorted(truth) if name in found]
        unmatched = sorted(set(truth) - set(found))
        if not pairs:
            raise BadResult(
                f"no result in {pred} has the name of one in {gt}",
                hint="name each prediction like its ground truth (a.psd ↔ a.psd, a.ora or a/)",
            )
    else:
        raise UsageError(
            f"compare a result with a result, or a folder of results with another: {pred}, {gt}"
        )
    samples = [evaluate_stacks(formats.read(p), formats.read(g), max_merges) for _, p, g in pairs]
    return Report(pairs, samples, unmatched)


def _results_by_name(folder: Path) -> dict[str, Path]:
    """Results directly in ``folder`` by name without suffix (a.psd, a.ora, a/ → "a")."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if is_result(path):
            name = path.stem if path.is_file() else path.name
            if name in found:
                raise BadResult(f"{folder}: two results named {name!r}", hint="keep one of them")
            found[name] = path
    return found
