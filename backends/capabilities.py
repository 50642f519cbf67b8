"""Optional backend capabilities: small Protocols that commands check on a backend instead
of importing a particular one (``layerctl caption``, ``layerctl doctor``).

A backend has a capability by having its method; the check works on the class, so it
costs no model load. Like :class:`~layerctl.backends.base.Backend`, nothing here imports a
heavy library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from layerctl.backends import base
from layerctl.errors import BackendUnavailable, UsageError

if TYPE_CHECKING:
    import numpy as np


@runtime_checkable
class Captioner(Protocol):
    """Describes an image in words: the prompt the backend gives itself when none is set."""

    def caption(self, image: np.ndarray, request: base.DecomposeRequest) -> str:
        """``image``: RGBA uint8; ``request`` gives the caption language and working size."""
        ...


@dataclass(frozen=True)
class Placement:
    """Where the model would live for one request size."""

    mode: str  # the placement chosen (qwen: an --offload mode), "none" off an accelerator
    reason: str
    need_bytes: int | None = None  # device bytes it needs, where planned on a device


@dataclass(frozen=True)
class MemoryPlan:
    """How a backend would place its model on this machine, worked out before loading."""

    device: dict[str, Any]  # name (cuda, mps, cpu), and what is known: model, free/total bytes
    model_bytes: dict[str, int]  # each component's weights
    model_source: str  # where the sizes come from (the weights folder, published sizes)
    placements: dict[int, Placement] = field(default_factory=dict)  # per resolution
    # per weights format (qwen: the transformer's), then per resolution
    by_format: dict[str, dict[int, Placement]] = field(default_factory=dict)


@runtime_checkable
class MemoryPlanner(Protocol):
    """Plans its model's memory from the settings alone (no load): ``layerctl doctor``."""

    @classmethod
    def memory_plan(cls, settings: base.BackendSettings, layers: int) -> MemoryPlan: ...


def backends_with(capability: type) -> dict[str, type]:
    """name -> backend class, for every installed backend that has ``capability``
    (``--backend auto`` order first)."""
    names = sorted(base.registered(), key=lambda n: (n not in base.AUTO_ORDER, _rank(n), n))
    classes = {name: base.backend_class(name) for name in names}
    return {name: cls for name, cls in classes.items() if isinstance(cls, capability)}


def resolve(name: str, values: Mapping[str, Any], capability: type, what: str) -> type:
    """The backend class ``name`` if it has ``capability``; ``auto``: the first usable one
    that has it, each checked with the ``values`` its settings take. ``what`` names the
    capability in messages ("caption")."""
    able = backends_with(capability)
    if name != "auto":
        if name in base.registered() and name not in able:
            raise UsageError(
                f"backend {name!r} cannot {what}",
                hint=f"backends that can: {', '.join(able) or 'none installed'}",
            )
        return base.resolve(name, base.settings_for(base.backend_class(name), values))
    if not able:
        raise BackendUnavailable(f"no installed backend can {what}")
    reasons = []
    for candidate, cls in able.items():
        ok, why = cls.available(base.settings_for(cls, values))
        if ok:
            return cls
        reasons.append(f"{candidate}: {why}")
    raise BackendUnavailable(f"no backend can {what} here ({'; '.join(reasons)})")


def _rank(name: str) -> int:
    return base.AUTO_ORDER.index(name) if name in base.AUTO_ORDER else 0
