"""The backend contract and the registry that finds backends through entry points.

A backend turns one RGBA image and a :class:`DecomposeRequest` into a list of RGBA
layers, bottom first. It never reads or writes files; the core does that. Backends are
found through the ``layerctl.backends`` entry-point group, so a third-party package can
add one the same way the built-ins are added. Loading a backend class must stay cheap:
heavy imports (torch, onnxruntime) happen inside ``available()`` checks by spec lookup
only, and for real in ``__init__`` / ``decompose``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from layerctl.budget import Cost
from layerctl.errors import BackendUnavailable, UsageError

if TYPE_CHECKING:
    import numpy as np

ENTRY_POINT_GROUP = "layerctl.backends"
AUTO_ORDER = ("qwen", "onnx", "classic")  # what --backend auto tries, best first


@dataclass(frozen=True)
class DecomposeRequest:
    """What to decompose into; backends ignore the fields that do not apply to them.

    Defaults are the official Qwen-Image-Layered settings (640 bucket, 50 steps, true
    CFG 4.0 with negative prompt " ", cfg_normalize on, English auto-caption).
    """

    layers: int = 4
    seed: int = 0
    prompt: str | None = None
    negative_prompt: str = " "
    steps: int = 50
    cfg: float = 4.0
    cfg_normalize: bool = True
    resolution: int = 640
    caption_lang: str = "en"
    quantize: str | None = None  # "fp8": float8 GEMMs (qwen, approximate)
    step_cache: float = 0.0  # First Block Cache threshold, 0 = off (qwen, approximate)
    cfg_truncate: float = 0.0  # cond only once sigma < this, 0 = off (qwen, approximate)

    def with_(self, **changes: Any) -> DecomposeRequest:
        return replace(self, **changes)


@dataclass(frozen=True)
class BackendSettings:
    """How to load a backend: chosen once per process, shared by every image."""

    weights: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    offload: str = "auto"  # the fastest placement that fits (memory.choose)
    vae_tiling: bool = False
    providers: tuple[str, ...] = ()
    compile: bool = False  # torch.compile of the transformer blocks (qwen)


ROLES = ("Background", "Text", "Shape", "Shadow", "Overlay")  # what a layer holds (README)


class Layers(list):
    """What ``decompose`` may return instead of a plain list: the layers (bottom first),
    each one's role where the backend knows it (one of ROLES), and notes worth telling
    the user. A backend that finds fewer layers than asked returns fewer: the count
    asked for is an upper bound, never filled up with empty layers."""

    def __init__(
        self,
        layers: Iterable[np.ndarray] = (),
        roles: Sequence[str] = (),
        notes: Sequence[str] = (),
    ) -> None:
        super().__init__(layers)
        self.roles = list(roles)
        self.notes = list(notes)


@runtime_checkable
class Backend(Protocol):
    name: ClassVar[str]
    summary: ClassVar[str]
    extra: ClassVar[str | None]  # the pip extra that provides its dependencies
    # Host memory one image takes at its peak, read image and written result included:
    # pixels x (peak_bytes_per_pixel + layers x peak_bytes_per_layer_pixel) +
    # peak_fixed_bytes + layers x peak_bytes_per_layer. layerctl.budget checks it before
    # decoding; bench/memory_per_pixel.py measures it. A model's own weights and
    # activations are not in it: they are planned when it loads (backends/qwen/memory.py).
    peak_bytes_per_pixel: ClassVar[int]
    peak_bytes_per_layer_pixel: ClassVar[int]
    peak_fixed_bytes: ClassVar[int]
    peak_bytes_per_layer: ClassVar[int]

    @classmethod
    def available(cls, settings: BackendSettings) -> tuple[bool, str]:
        """(usable here, why not and how to fix it). Must not import heavy libraries."""
        ...

    def __init__(self, settings: BackendSettings) -> None: ...

    def decompose(self, image: np.ndarray, request: DecomposeRequest) -> list[np.ndarray]:
        """RGBA uint8 (H, W, 4) in; RGBA uint8 layers out, bottom first (a list, or
        :class:`Layers` to say what each one is)."""
        ...


@functools.cache
def registered() -> dict[str, Any]:
    """name -> entry point, for every installed backend (not yet imported)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def backend_class(name: str) -> type[Backend]:
    eps = registered()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise UsageError(f"unknown backend {name!r}", hint=f"installed: {known}")
    return eps[name].load()


def resolve(name: str, settings: BackendSettings) -> type[Backend]:
    """The backend class for ``name``; ``auto`` picks the best one usable here."""
    if name != "auto":
        cls = backend_class(name)
        ok, why = cls.available(settings)
        if not ok:
            raise BackendUnavailable(f"backend {name!r} cannot run here: {why}")
        return cls
    for candidate in AUTO_ORDER:
        if candidate in registered():
            cls = backend_class(candidate)
            if cls.available(settings)[0]:
                return cls
    raise BackendUnavailable("no backend can run here", hint="run `layerctl backends`")


def peak_cost(name: str, settings: BackendSettings, layers: int) -> Cost:
    """Host memory one image of ``layers`` layers takes with backend ``name``."""
    return Cost.of_backend(resolve(name, settings), layers)


@functools.cache
def load(name: str, settings: BackendSettings) -> Backend:
    """One loaded backend per (name, settings) per process: models load once."""
    return resolve(name, settings)(settings)
