"""One image to one layer tree: layer count (``-n auto``), per-image seed, backend, recursion.

Everything here is shared by the single-file command, the batch loop, worker processes,
Ray actors and ``layerctl split``, so each path gives the same layers for the same input.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from layerctl import recursion
from layerctl.backends import base
from layerctl.backends.base import BackendSettings, DecomposeRequest
from layerctl.budget import Cost
from layerctl.digests import pixels_sha256
from layerctl.imageio import InputImage, read_image
from layerctl.seeds import image_seed
from layerctl.stack import LayerStack

AUTO = "auto"
LayerCount = int | str  # a number, or AUTO


@dataclass(frozen=True)
class Options:
    """How to decompose, chosen once per run; picklable so workers get the same."""

    layers: LayerCount = 4
    max_layers: int = 8
    request: DecomposeRequest = field(default_factory=DecomposeRequest)  # seed: the user's
    backend: str = "auto"
    settings: BackendSettings = field(default_factory=BackendSettings)
    lossless: bool = True
    output_size: str = "input"
    recursion: recursion.Plan = field(default_factory=recursion.Plan)
    fmt: str | None = None
    force: bool = False
    max_pixels: int | None = None  # None: as many as the memory plan allows
    max_memory: int | None = None  # bytes one image may take (layerctl.budget)
    memory_share: int = 1  # processes decomposing at once (--workers), sharing memory
    preview: bool = False  # also write <output>.preview.png, a contact sheet


def read_source(path: Path, options: Options) -> InputImage:
    """Read one input, refused before decoding when it cannot fit the memory plan for
    this run's backend (layerctl.budget) or is over ``--max-pixels``."""
    cost = peak_cost(options)
    return read_image(
        path,
        options.max_pixels,
        cost=cost,
        max_memory=options.max_memory,
        share=options.memory_share,
    )


def peak_cost(options: Options) -> Cost:
    """Host memory one image takes with this run's backend, at the most layers it may get."""
    most = options.max_layers if options.layers == AUTO else int(options.layers)
    return base.peak_cost(options.backend, options.settings, most)


def layer_count(pixels, options: Options) -> int:
    """The number of layers to ask for: the fixed count; for ``-n auto`` the
    ``--max-layers`` bound when the backend finds the count itself (it never pads),
    else the colour-structure rule of layerctl/auto.py."""
    if options.layers == AUTO:
        from layerctl.auto import suggest_layers

        # The backend this image goes to next anyway, loaded once per process.
        if getattr(base.load(options.backend, options.settings), "finds_layer_count", False):
            return options.max_layers
        return suggest_layers(pixels, options.max_layers)
    return int(options.layers)


def decompose_source(source: InputImage, options: Options) -> LayerStack:
    """The layer tree for one input: decompose, then split again per ``options.recursion``."""
    stack = _decompose(source, options, options.output_size)
    if options.recursion.depth > 0:
        # A --prompt describes the whole image, not its layers: children are auto-captioned.
        children = replace(options, request=options.request.with_(prompt=None))
        stack = recursion.expand(stack, options.recursion, layer_splitter(children))
    return stack


def layer_splitter(options: Options) -> recursion.Decompose:
    """A ``recursion.Decompose`` running the backend on a layer's own pixels."""

    def split(pixels):
        source = InputImage(pixels, Path("<layer>"), pixels_sha256(pixels))
        return [layer.pixels for layer in _decompose(source, options, "input").layers]

    return split


def _decompose(source: InputImage, options: Options, output_size: str) -> LayerStack:
    from layerctl import api

    request = options.request.with_(
        layers=layer_count(source.pixels, options),
        seed=image_seed(options.request.seed, source.sha256),
    )
    stack = api.run(
        source,
        request,
        backend=options.backend,
        settings=options.settings,
        lossless=options.lossless,
        output_size=output_size,
        note_fewer=options.layers != AUTO,
    )
    stack.metadata["requested"] = {"layers": options.layers, "seed": options.request.seed}
    return stack
