"""What tests need from the optional extras, so that the suite passes with `.[classic,dev]`
alone: PPTX is written by python-pptx (the pptx extra); reading it needs nothing."""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

import pytest

PPTX = find_spec("pptx") is not None
needs_pptx = pytest.mark.skipif(not PPTX, reason="writing PPTX needs python-pptx (the pptx extra)")


def writable(kinds: dict[str, Any]) -> dict[str, Any]:
    """``kinds`` (format -> output name) less PPTX where it cannot be written."""
    return {kind: name for kind, name in kinds.items() if PPTX or kind != "pptx"}


def pptx_marked(values: list[Any]) -> list[Any]:
    """``values`` for parametrize, those that name a PPTX marked ``needs_pptx``."""
    marked = []
    for value in values:
        if "pptx" not in str(value):
            marked.append(value)
        elif isinstance(value, tuple):
            marked.append(pytest.param(*value, marks=needs_pptx))
        else:
            marked.append(pytest.param(value, marks=needs_pptx))
    return marked
