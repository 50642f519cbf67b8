"""The public Python API: ``decompose(image, n) -> LayerStack`` and its file-level twin.

>>> import layerctl.api as lc
>>> stack = lc.decompose("poster.png", layers=4)          # doctest: +SKIP
>>> lc.decompose_file("poster.png", "poster.psd")         # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from layerctl import __version__, formats, refine
from layerctl.backends import base
from layerctl.backends.base import BackendSettings, DecomposeRequest
from layerctl.console import counted
from layerctl.digests import pixels_sha256
from layerctl.errors import UsageError
from layerctl.imageio import InputImage, read_image, to_rgba
from layerctl.outputs import check_writable, readable
from layerctl.stack import Layer, LayerStack

ImageLike = str | os.PathLike[str] | np.ndarray | Image.Image | InputImage


def decompose(
    image: ImageLike,
    layers: int = 4,
    *,
    backend: str = "auto",
    settings: BackendSettings | None = None,
    lossless: bool = True,
    output_size: str = "input",
    max_pixels: int | None = None,
    max_memory: int | None = None,
    **request: Any,
) -> LayerStack:
    """Split ``image`` into ``layers`` RGBA layers, bottom first.

    ``request`` takes the :class:`DecomposeRequest` fields (seed, prompt, steps, cfg, …).
    With ``lossless`` the layers are adjusted so that their composite equals the input.
    A file is refused before decoding when it has over ``max_pixels`` pixels or its
    cost does not fit the memory plan (layerctl.budget, ``max_memory`` bytes at most).
    """
    if isinstance(image, str | os.PathLike):  # the plan needs the backend: checked here
        cost = base.peak_cost(backend, settings or BackendSettings(), layers)
        image = read_image(image, max_pixels, cost=cost, max_memory=max_memory)
    source = _as_input(image)
    req = DecomposeRequest(layers=layers, **request)
    return run(
        source, req, backend=backend, settings=settings, lossless=lossless, output_size=output_size
    )


def run(
    source: InputImage,
    request: DecomposeRequest,
    *,
    backend: str = "auto",
    settings: BackendSettings | None = None,
    lossless: bool = True,
    output_size: str = "input",
    note_fewer: bool = True,
) -> LayerStack:
    """Decompose an already-read input; the backend is loaded once per process.

    ``note_fewer``: say in the notes when the backend found fewer layers than asked
    (not for ``-n auto``, which asks for its upper bound)."""
    if request.layers < 1:
        raise UsageError(f"the number of layers must be at least 1, not {request.layers}")
    if output_size not in {"input", "model"}:
        raise UsageError(f"--output-size must be input or model, not {output_size!r}")
    settings = settings or BackendSettings()
    engine = base.load(backend, settings)
    raw = engine.decompose(source.pixels, request)
    roles, said = getattr(raw, "roles", []), list(getattr(raw, "notes", []))
    if note_fewer and len(raw) < request.layers and not said:  # else the backend says why
        said.append(f"found {counted(len(raw), 'layer')} (asked for up to {request.layers})")
    notes = [*source.notes, *said]
    height, width = source.pixels.shape[:2]
    if output_size == "input":
        raw = refine.to_size(raw, (width, height))
        if lossless:
            raw = refine.make_lossless(raw, source.pixels)
    stack = LayerStack(
        [Layer(name, px) for name, px in zip(layer_names(len(raw), roles), raw, strict=True)],
        metadata={
            "backend": engine.name,
            "parameters": {**asdict(request), "lossless": lossless, "output_size": output_size},
            "seed": request.seed,
            "source": {"path": readable(str(source.path)), "sha256": source.sha256},
            "layerctl": __version__,
            "notes": notes,
        },
        icc_profile=source.icc_profile,
    )
    return stack


def decompose_file(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    layers: int = 4,
    *,
    fmt: str | None = None,
    force: bool = False,
    max_pixels: int | None = None,
    max_memory: int | None = None,
    **kwargs: Any,
) -> LayerStack:
    """Read ``input_path``, decompose it and write the result atomically."""
    output = Path(output_path)
    formats.format_for(output, fmt)  # usage errors before any work
    check_writable(output, force, [Path(input_path)])
    stack = decompose(input_path, layers, max_pixels=max_pixels, max_memory=max_memory, **kwargs)
    formats.write(stack, output, fmt, force=force, inputs=[Path(input_path)])
    return stack


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


def _as_input(image: InputImage | np.ndarray | Image.Image) -> InputImage:
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
