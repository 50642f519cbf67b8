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
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from layerctl.budget import Cost
from layerctl.errors import BackendUnavailable, UsageError

if TYPE_CHECKING:
    import numpy as np
    from typing_extensions import Self

ENTRY_POINT_GROUP = "layerctl.backends"
AUTO_ORDER = ("qwen", "onnx", "classic")  # what --backend auto tries, best first


class Schema(BaseModel):
    """Options checked where they enter (typed, enums as their plain values), frozen so
    that ``load`` can cache on them, and closed: an unknown key is an error, as llm's
    per-model ``Options`` are."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    def with_(self, **changes: Any) -> Self:
        return self.model_copy(update=changes)


class DecomposeRequest(Schema):
    """What every backend means the same way, per image. A backend with options of its
    own subclasses it as its ``Request`` (layerctl/backends/model_options.py)."""

    layers: int = Field(4, ge=1)
    seed: int = 0

    def for_layer(self) -> Self:
        """The request for splitting one of the layers again (``--recursive``, ``split``)."""
        return self


class BackendSettings(Schema):
    """How to load a backend, chosen once per run and shared by every image. A backend
    with load-time options subclasses it as its ``Settings``."""


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
    Settings: ClassVar[type[BackendSettings]]  # its load-time options (base: none)
    Request: ClassVar[type[DecomposeRequest]]  # its per-image options (base: layers, seed)
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


def settings_type(cls: type) -> type[BackendSettings]:
    return getattr(cls, "Settings", BackendSettings)


def request_type(cls: type) -> type[DecomposeRequest]:
    return getattr(cls, "Request", DecomposeRequest)


SHARED = frozenset(DecomposeRequest.model_fields)  # what the core sets: layers, seed


def option_names(cls: type) -> set[str]:
    """The options backend ``cls`` takes besides the shared ones (layers, seed)."""
    return (set(settings_type(cls).model_fields) | set(request_type(cls).model_fields)) - SHARED


def takers() -> dict[str, list[str]]:
    """option -> the installed backends that take it (a plugin that fails to load: none)."""
    found: dict[str, list[str]] = {}
    for name in sorted(registered()):
        try:
            names = option_names(backend_class(name))
        except Exception:  # a broken third-party plugin must not break the others' runs
            continue
        for option in names:
            found.setdefault(option, []).append(name)
    return found


def build(
    schema: type[Schema], values: Mapping[str, Any], label: Callable[[str], str] = str
) -> Any:
    """``schema`` from ``values``, a bad value a one-line UsageError naming the option."""
    try:
        return schema(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = str(error["loc"][0]) if error["loc"] else ""
        given = values.get(key, error.get("input"))
        message = error["msg"].removeprefix("Value error, ")
        raise UsageError(f"{label(key)} {given!r}: {message}") from None


def configure(
    name: str,
    options: Mapping[str, Any],
    strict: Collection[str] = (),
    label: Callable[[str], str] = str,
) -> tuple[str, BackendSettings, DecomposeRequest]:
    """(backend, its settings, its request) for backend ``name`` from ``options``.

    ``auto`` picks the best backend usable with the options it takes. An option in
    ``strict`` (given on purpose: a flag, a keyword) that the backend does not take is a
    usage error naming the backends that do; any other it does not take is ignored (a
    config-file or environment value meant for another backend).
    """
    cls, settings = _resolve(name, options, label)
    taken = option_names(cls) | SHARED
    refused = sorted(set(strict) - taken)
    if refused:
        others = takers().get(refused[0], [])
        hint = f"it is for {' and '.join(others)}" if others else "no installed backend takes it"
        raise UsageError(
            f"{label(refused[0])} is not an option of the {cls.name} backend", hint=hint
        )
    values = {k: v for k, v in options.items() if k in request_type(cls).model_fields}
    return cls.name, settings, build(request_type(cls), values, label)


def _resolve(
    name: str, options: Mapping[str, Any], label: Callable[[str], str]
) -> tuple[type[Backend], BackendSettings]:
    """The backend class for ``name`` (``auto``: the best usable here) and its settings."""

    def usable(cls: type[Backend]) -> tuple[BackendSettings, bool, str]:
        settings = settings_for(cls, options, label)
        return (settings, *cls.available(settings))

    if name != "auto":
        cls = backend_class(name)
        settings, ok, why = usable(cls)
        if not ok:
            raise BackendUnavailable(f"backend {name!r} cannot run here: {why}")
        return cls, settings
    for candidate in AUTO_ORDER:
        if candidate in registered():
            cls = backend_class(candidate)
            settings, ok, _ = usable(cls)
            if ok:
                return cls, settings
    raise BackendUnavailable("no backend can run here", hint="run `layerctl backends`")


def settings_for(
    cls: type, values: Mapping[str, Any] | None = None, label: Callable[[str], str] = str
) -> BackendSettings:
    """Backend ``cls``'s settings from ``values``, those it does not take left out."""
    fields = settings_type(cls).model_fields
    taken = {k: v for k, v in (values or {}).items() if k in fields}
    return build(settings_type(cls), taken, label)


def resolve(name: str, settings: BackendSettings) -> type[Backend]:
    """The class of backend ``name`` (not ``auto``), checked usable with ``settings``."""
    cls = backend_class(name)
    ok, why = cls.available(settings)
    if not ok:
        raise BackendUnavailable(f"backend {name!r} cannot run here: {why}")
    return cls


def peak_cost(name: str, layers: int) -> Cost:
    """Host memory one image of ``layers`` layers takes with backend ``name``."""
    return Cost.of_backend(backend_class(name), layers)


@functools.cache
def load(name: str, settings: BackendSettings) -> Backend:
    """One loaded backend per (name, settings) per process: models load once."""
    return resolve(name, settings)(settings)
