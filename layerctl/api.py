"""The public Python API: the same :class:`~layerctl.decomposer.Decomposer` the CLI runs.

>>> import layerctl
>>> stack = layerctl.decompose("poster.png", layers=4, seed=7)      # doctest: +SKIP
>>> run = layerctl.open(backend="qwen", steps=30, layers="auto")     # doctest: +SKIP
>>> for path in paths:                                               # doctest: +SKIP
...     run(path).layers
>>> layerctl.decompose_file("poster.png", "poster.psd")              # doctest: +SKIP

Options are the CLI's, as keywords (``--max-layers`` is ``max_layers``): the core ones
(layers, max_layers, seed, lossless, output_size, recursive, split_layers, …) and the
backend's own (``layerctl backends``); an option the backend does not take is a
UsageError, as on the command line. A seed is mixed with each image's content, as the
CLI does, so both give the same layers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layerctl.decomposer import AUTO, Decomposer, LayerCount, configure

if TYPE_CHECKING:
    from layerctl.decomposer import ImageLike
    from layerctl.stack import LayerStack


def open(backend: str = AUTO, **options: Any) -> Decomposer:
    """Resolve the backend, check every option and load the model, once for many images."""
    return Decomposer.open(backend, **options)


def decompose(image: ImageLike, layers: LayerCount = 4, **options: Any) -> LayerStack:
    """Split ``image`` (a path, an array, a PIL image) into ``layers`` RGBA layers, bottom
    first (``"auto"``: a count per image). With ``lossless`` (the default) the layers are
    adjusted so that their composite equals the input."""
    return Decomposer.open(layers=layers, **options)(image)


def decompose_file(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    layers: LayerCount = 4,
    **options: Any,
) -> LayerStack:
    """Read ``input_path``, decompose it and write the result atomically, as
    ``layerctl decompose IN -o OUT`` does (``fmt``, ``force``, ``preview`` as its flags)."""
    from layerctl import batch

    job = batch.Job(Path(input_path), Path(output_path))
    return batch.single(job, configure(layers=layers, **options))
