"""A tiny deterministic backend for batch and recursion tests (test scaffolding only).

``decompose`` returns the image itself as the background plus ``layers - 1`` vertical
stripes of it on top, offset by the seed, so the composite is the input exactly and
a different seed gives different layers. ``register`` adds it to the real registry
under the name ``stripes`` for the current test.
"""

from __future__ import annotations

import functools
import os
import time
from typing import ClassVar

import numpy as np
import pytest

from layerctl.backends import base


class StripesBackend:
    name: ClassVar[str] = "stripes"
    summary: ClassVar[str] = "test stripes"
    extra: ClassVar[str | None] = None
    # Seconds per image, to interrupt a batch midway; from the environment so that
    # worker processes (tests/test_batch.py installs this as a plugin) slow down too.
    delay: ClassVar[float] = float(os.environ.get("STRIPES_DELAY", "0"))

    @classmethod
    def available(cls, settings: base.BackendSettings) -> tuple[bool, str]:
        return True, ""

    def __init__(self, settings: base.BackendSettings) -> None:
        self.settings = settings

    def decompose(self, image: np.ndarray, request: base.DecomposeRequest) -> list[np.ndarray]:
        time.sleep(self.delay)
        width = image.shape[1]
        stripe = (np.arange(width) + request.seed) % width * (request.layers - 1) // width
        layers = [image.copy()]
        for k in range(request.layers - 1):
            part = image.copy()
            part[..., 3] = np.where(stripe[None, :] == k, image[..., 3], 0)
            layers.append(part)
        return layers


class _EntryPoint:
    def __init__(self, cls: type) -> None:
        self.cls = cls

    def load(self) -> type:
        return self.cls


def register(monkeypatch: pytest.MonkeyPatch, cls: type = StripesBackend) -> None:
    """Make ``--backend stripes`` resolve to ``cls`` through the real registry."""
    installed = base.registered()
    monkeypatch.setattr(base, "registered", lambda: {**installed, "stripes": _EntryPoint(cls)})
    # A fresh cache of loaded backends for this test only.
    monkeypatch.setattr(base, "load", functools.cache(base.load.__wrapped__))
