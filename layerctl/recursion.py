"""Recursive splitting: which layers to split again, and how children join the tree.

A split layer becomes a group with the layer's name whose children (``NAME.0`` bottom,
``NAME.1`` …) composite back to the layer. The backend sees only the layer's own pixels,
cropped to its alpha bounding box, and every child is limited to the layer's alpha, so
nothing appears outside the layer and the whole tree still composites to the input.

Which layers qualify (``Plan.qualifies``): pixel layers only (not groups, not empty);
at the first level only the indices in ``--split-layers`` when given; the bottom layer
of each level (the background) only with ``--split-background``; and only layers that
cover at least ``--min-coverage`` of the canvas (alpha-weighted), since tiny layers give
the model too little to work with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from layerctl.errors import UsageError
from layerctl.stack import Layer, LayerStack

# RGBA crop in; its layers out, bottom first, at the crop's size, compositing to the crop.
Decompose = Callable[[np.ndarray], list[np.ndarray]]


@dataclass(frozen=True)
class Plan:
    depth: int = 0
    split_layers: frozenset[int] | None = None  # first-level indices; None = every layer
    min_coverage: float = 0.01
    split_background: bool = False

    def qualifies(self, index: int, layer: Layer, level: int) -> bool:
        """Whether the ``index``-th layer (bottom first) at ``level`` (0 = top) is split."""
        if layer.is_group or layer.is_empty():
            return False
        if index == 0 and not self.split_background:
            return False
        if level == 0 and self.split_layers is not None and index not in self.split_layers:
            return False
        return layer.coverage() >= self.min_coverage


def parse_indices(text: str | None) -> frozenset[int] | None:
    """``"1,3"`` -> {1, 3}; None or empty -> None (every layer)."""
    if not text:
        return None
    try:
        indices = frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(
            f"--split-layers {text!r}: expected layer indices", hint="e.g. --split-layers 1,3"
        ) from None
    if any(i < 0 for i in indices):
        raise UsageError(f"--split-layers {text!r}: indices start at 0 (the background)")
    return indices


def expand(stack: LayerStack, plan: Plan, decompose: Decompose) -> LayerStack:
    """Split the qualifying layers of ``stack`` again, down to ``plan.depth`` levels."""
    layers = _expand(stack.layers, plan, decompose, level=0)
    metadata = {**stack.metadata, "recursion": _plan_record(plan)}
    return LayerStack(layers, metadata, stack.icc_profile)


def _expand(layers: list[Layer], plan: Plan, decompose: Decompose, level: int) -> list[Layer]:
    if level >= plan.depth:
        return layers
    out = []
    for index, layer in enumerate(layers):
        if plan.qualifies(index, layer, level):
            group = split_layer(layer, decompose)
            if group.is_group:
                group = Layer.group(group.name, _expand(group.children, plan, decompose, level + 1))
            layer = group
        out.append(layer)
    return out


def split_layer(layer: Layer, decompose: Decompose) -> Layer:
    """``layer`` as a group of the layers ``decompose`` finds in it, inside its alpha."""
    if layer.is_group:
        raise UsageError(f"layer {layer.name!r} is a group", hint="split one of its layers")
    box = layer.bbox()
    if box is None:
        raise UsageError(f"layer {layer.name!r} is empty; there is nothing to split")
    left, top, right, bottom = box
    crop = np.ascontiguousarray(layer.pixels[top:bottom, left:right])
    parts = decompose(crop)
    if len(parts) < 2:
        return layer
    children = []
    for i, part in enumerate(parts):
        full = np.zeros_like(layer.pixels)
        full[top:bottom, left:right] = part
        full[top:bottom, left:right, 3] = np.minimum(part[..., 3], crop[..., 3])
        children.append(Layer(f"{layer.name}.{i}", full, visible=layer.visible))
    return Layer.group(layer.name, children)


def find(stack: LayerStack, selector: str) -> Layer:
    """A layer by index among the top-level layers (bottom first) or by name at any depth."""
    if selector.lstrip("-").isdigit():
        index = int(selector)
        if not -len(stack.layers) <= index < len(stack.layers):
            raise UsageError(
                f"no layer {index}: the result has {len(stack.layers)} top-level layers",
                hint="indices count from 0 (the background); see `layerctl info`",
            )
        return stack.layers[index]
    matches = [layer for layer in stack.walk() if layer.name == selector]
    if not matches:
        raise UsageError(f"no layer named {selector!r}", hint="see `layerctl info` for names")
    if len(matches) > 1:
        raise UsageError(f"{len(matches)} layers are named {selector!r}", hint="use its index")
    return matches[0]


def replace(stack: LayerStack, old: Layer, new: Layer) -> LayerStack:
    """A copy of ``stack`` with ``old`` (found by identity) replaced by ``new``."""
    layers = _replace(stack.layers, old, new)
    return LayerStack(layers, dict(stack.metadata), stack.icc_profile)


def _replace(layers: list[Layer], old: Layer, new: Layer) -> list[Layer]:
    out = []
    for layer in layers:
        if layer is old:
            layer = new
        elif layer.is_group:
            children = _replace(layer.children, old, new)
            if any(a is not b for a, b in zip(children, layer.children, strict=True)):
                visible = layer.visible
                layer = Layer.group(layer.name, children)
                layer.visible = visible
        out.append(layer)
    return out


def _plan_record(plan: Plan) -> dict:
    return {
        "depth": plan.depth,
        "split_layers": sorted(plan.split_layers) if plan.split_layers is not None else None,
        "min_coverage": plan.min_coverage,
        "split_background": plan.split_background,
    }
