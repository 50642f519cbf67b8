"""One run's decomposition, opened once: the backend resolved, every option checked, the
model loaded. Calling it on an image gives that image's layer tree: the layer count
(``-n auto``), the per-image seed, the backend, back to input size and exact, recursion.

The CLI (single files, batches, worker processes, Ray actors, ``layerctl split``) and the
Python API (``layerctl.open``, ``layerctl.decompose``) all go through it, so each gives
the same layers for the same input and options.

>>> import layerctl
>>> run = layerctl.open(backend="classic", layers="auto")  # doctest: +SKIP
>>> stack = run("poster.png")                               # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layerctl import recursion
from layerctl.backends import base
from layerctl.backends.base import BackendSettings, DecomposeRequest
from layerctl.budget import Cost
from layerctl.choices import Format, OutputSize, plain
from layerctl.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from layerctl.imageio import InputImage
    from layerctl.stack import LayerStack

    ImageLike = str | os.PathLike[str] | np.ndarray | Image.Image | InputImage

AUTO = "auto"
LayerCount = int | str  # a number, or AUTO
MAX_LAYERS = 64


@dataclass(frozen=True)
class Options:
    """A checked run: what :func:`configure` returns. Picklable, so worker processes and
    Ray actors open the very same :class:`Decomposer`."""

    backend: str  # resolved: never "auto"
    settings: BackendSettings  # the backend's own Settings schema
    request: DecomposeRequest  # its own Request schema; seed: the user's, layers: per image
    layers: LayerCount = 4
    max_layers: int = 8
    lossless: bool = True
    output_size: str = OutputSize.input.value
    recursion: recursion.Plan = field(default_factory=recursion.Plan)
    max_pixels: int | None = None  # None: as many as the memory plan allows
    max_memory: int | None = None  # bytes one image may take (layerctl.budget)
    memory_share: int = 1  # processes decomposing at once (--workers), sharing memory
    # What the file-level paths (batch.process, api.decompose_file) write.
    fmt: str | None = None
    force: bool = False
    preview: bool = False  # also write <output>.preview.png, a contact sheet


def configure(
    backend: str = AUTO,
    *,
    layers: LayerCount = 4,
    max_layers: int = 8,
    seed: int = 0,
    lossless: bool = True,
    output_size: str = OutputSize.input.value,
    recursive: int = 0,
    split_layers: str | Collection[int] | None = None,
    min_coverage: float = 0.01,
    split_background: bool = False,
    max_pixels: int | None = None,
    max_memory: int | None = None,
    fmt: str | None = None,
    force: bool = False,
    preview: bool = False,
    strict: Collection[str] | None = None,
    label: Callable[[str], str] = str,
    **backend_options: Any,
) -> Options:
    """Check every option and resolve the backend, before any image is read or model loaded.

    ``backend_options`` are the backend's own, as its schemas name them (steps, prompt,
    device, …: layerctl/backends/model_options.py). Those named in ``strict`` (default:
    all of them, as a Python caller passes them on purpose) must be options of the
    chosen backend, else it is a usage error naming the backends that take them; the
    others it does not take are ignored (the CLI's config-file and environment values).
    ``label`` names an option in messages (the CLI: its flag).
    """
    layers = _layer_count(layers, label)
    if not 2 <= max_layers <= MAX_LAYERS:
        raise UsageError(f"{label('max_layers')} {max_layers}: must be 2 to {MAX_LAYERS}")
    output_size = _choice(OutputSize, output_size, label("output_size"))
    plan = _plan(recursive, split_layers, min_coverage, split_background, label)
    fmt = None if fmt is None else _choice(Format, fmt, label("fmt"))
    values = {key: plain(value) for key, value in backend_options.items()}
    strict = set(values) if strict is None else set(strict)
    name, settings, request = base.configure(backend, {**values, "seed": seed}, strict, label)
    return Options(
        name,
        settings,
        request,
        layers,
        max_layers,
        lossless,
        output_size,
        plan,
        max_pixels,
        max_memory,
        fmt=fmt,
        force=force,
        preview=preview,
    )


def _layer_count(value: LayerCount, label: Callable[[str], str]) -> LayerCount:
    if value == AUTO:
        return AUTO
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LAYERS:
        raise UsageError(f"{label('layers')} {value!r}: must be 1 to {MAX_LAYERS}, or auto")
    return value


def _plan(
    depth: int,
    split_layers: str | Collection[int] | None,
    min_coverage: float,
    split_background: bool,
    label: Callable[[str], str],
) -> recursion.Plan:
    """``--recursive`` and the options that say which layers it splits again."""
    if depth < 0:
        raise UsageError(f"{label('recursive')} {depth}: must be 0 (off) or more")
    if not 0 <= min_coverage <= 1:
        raise UsageError(f"{label('min_coverage')} {min_coverage}: must be 0 to 1")
    if isinstance(split_layers, str) or split_layers is None:
        indices = recursion.parse_indices(split_layers)
    else:
        indices = frozenset(int(i) for i in split_layers) or None
    return recursion.Plan(depth, indices, min_coverage, split_background)


def _choice(kind: type, value: Any, name: str) -> str:
    try:
        return kind(plain(value)).value
    except ValueError:
        choices = ", ".join(c.value for c in kind)
        raise UsageError(f"{name} {value!r}: must be one of {choices}") from None


class Decomposer:
    """A run's decomposition: ``Decomposer(options)`` loads the backend's model (once per
    process: ``base.load`` caches it); calling it on an image returns its layer tree."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.backend = base.load(options.backend, options.settings)

    @classmethod
    def open(cls, backend: str = AUTO, **options: Any) -> Decomposer:
        """:func:`configure`, then load: a bad option fails here, before any image."""
        return cls(configure(backend, **options))

    def __call__(self, image: ImageLike) -> LayerStack:
        """The layer tree for one image (a path, an array, a PIL image or an InputImage)."""
        source = self.read(image) if isinstance(image, str | os.PathLike) else as_input(image)
        stack = self._decompose(source, self.options.output_size, self.options.request)
        if self.options.recursion.depth > 0:
            stack = recursion.expand(stack, self.options.recursion, self.split)
        return stack

    def read(self, path: str | os.PathLike[str]) -> InputImage:
        """Read one input, refused before decoding when it cannot fit the memory plan."""
        return read_source(Path(path), self.options)

    def split(self, pixels: np.ndarray) -> list[np.ndarray]:
        """One layer's own pixels split again (``recursion.Decompose``): children get
        the request's ``for_layer`` (an image's prompt does not describe its layers)."""
        from layerctl.digests import pixels_sha256
        from layerctl.imageio import InputImage

        source = InputImage(pixels, Path("<layer>"), pixels_sha256(pixels))
        stack = self._decompose(source, OutputSize.input.value, self.options.request.for_layer())
        return [layer.pixels for layer in stack.layers]

    def layer_count(self, pixels: np.ndarray) -> int:
        """The layers to ask for: the fixed count; for ``-n auto`` the ``--max-layers``
        bound when the backend finds the count itself (it never pads), else the
        colour-structure rule of layerctl/auto.py."""
        options = self.options
        if options.layers != AUTO:
            return int(options.layers)
        if getattr(self.backend, "finds_layer_count", False):
            return options.max_layers
        from layerctl.auto import suggest_layers

        return suggest_layers(pixels, options.max_layers)

    def _decompose(
        self, source: InputImage, output_size: str, request: DecomposeRequest
    ) -> LayerStack:
        from layerctl import __version__, refine
        from layerctl.console import counted
        from layerctl.outputs import readable
        from layerctl.seeds import image_seed
        from layerctl.stack import Layer, LayerStack

        options = self.options
        request = request.with_(
            layers=self.layer_count(source.pixels),
            seed=image_seed(options.request.seed, source.sha256),
        )
        raw = self.backend.decompose(source.pixels, request)
        roles, said = getattr(raw, "roles", []), list(getattr(raw, "notes", []))
        if options.layers != AUTO and len(raw) < request.layers and not said:  # else it says why
            said.append(f"found {counted(len(raw), 'layer')} (asked for up to {request.layers})")
        height, width = source.pixels.shape[:2]
        if output_size == OutputSize.input:
            raw = refine.to_size(raw, (width, height))
            if options.lossless:
                raw = refine.make_lossless(raw, source.pixels)
        names = layer_names(len(raw), roles)
        parameters = {"lossless": options.lossless, "output_size": output_size}
        return LayerStack(
            [Layer(name, px) for name, px in zip(names, raw, strict=True)],
            metadata={
                "backend": self.backend.name,
                "parameters": {**request.model_dump(mode="json"), **parameters},
                "seed": request.seed,
                "requested": {"layers": options.layers, "seed": options.request.seed},
                "source": {"path": readable(str(source.path)), "sha256": source.sha256},
                "layerctl": __version__,
                "notes": [*source.notes, *said],
            },
            icc_profile=source.icc_profile,
        )


def read_source(path: Path, options: Options) -> InputImage:
    """Read one input, refused before decoding when it cannot fit the memory plan for
    this run's backend (layerctl.budget) or is over ``--max-pixels``."""
    from layerctl.imageio import read_image

    return read_image(
        path,
        options.max_pixels,
        cost=peak_cost(options),
        max_memory=options.max_memory,
        share=options.memory_share,
    )


def peak_cost(options: Options) -> Cost:
    """Host memory one image takes with this run's backend, at the most layers it may get."""
    most = options.max_layers if options.layers == AUTO else int(options.layers)
    return base.peak_cost(options.backend, most)


def layer_names(n: int, roles: Sequence[str] = ()) -> list[str]:
    """A name per layer: its role ("Text", "Shape 2" when there are several), or
    "Background", "Layer 1", … where the backend did not say."""
    if len(roles) != n:
        return ["Background"] + [f"Layer {i}" for i in range(1, n)]
    total = Counter(roles)
    seen: Counter[str] = Counter()
    names = []
    for role in roles:
        seen[role] += 1
        names.append(f"{role} {seen[role]}" if total[role] > 1 else role)
    return names


def as_input(image: Any) -> InputImage:
    """An array (uint8 (H, W), (H, W, 3) or (H, W, 4)) or a PIL image as an input."""
    import numpy as np
    from PIL import Image

    from layerctl.digests import pixels_sha256
    from layerctl.imageio import InputImage, to_rgba

    if isinstance(image, InputImage):
        return image
    if isinstance(image, np.ndarray):
        pixels = _array_to_rgba(image)
        return InputImage(pixels, Path("<array>"), pixels_sha256(pixels))
    if isinstance(image, Image.Image):
        pixels = to_rgba(image)
        return InputImage(
            pixels, Path("<image>"), pixels_sha256(pixels), image.info.get("icc_profile")
        )
    raise UsageError(f"cannot read a {type(image).__name__} as an image")


def _array_to_rgba(array: np.ndarray) -> np.ndarray:
    import numpy as np
    from PIL import Image

    from layerctl.imageio import to_rgba

    if array.dtype != np.uint8:
        raise UsageError(f"image arrays must be uint8, not {array.dtype}")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in {1, 3, 4}:
        raise UsageError(f"image arrays must be (H, W), (H, W, 3) or (H, W, 4), not {array.shape}")
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[array.shape[2]]
    return to_rgba(
        Image.fromarray(np.ascontiguousarray(array.squeeze(-1) if mode == "L" else array), mode)
    )
