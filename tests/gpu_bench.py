"""bench/gpu_fullscale.py as a module, for the tests that run its code small."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

PATH = Path(__file__).resolve().parents[1] / "bench" / "gpu_fullscale.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_fullscale", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
