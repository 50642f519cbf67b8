"""Whether the torch stack the model classes need imports here: torchvision in particular.

transformers and diffusers import torchvision whenever it is installed. One built for
another torch (the usual CUDA-wheel mismatch) fails on import with "operator
torchvision::nms does not exist", and every diffusers model class fails with it ("Failed
to import diffusers.models…"). ``find_spec`` cannot see that, so the import is tried in a
subprocess: the caller (``available()``, ``doctor``) imports nothing heavy and survives a
torchvision that crashes the interpreter. Once per process, and only where torchvision
is installed at all.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from importlib import metadata
from importlib.util import find_spec

TIMEOUT_S = 120  # importing torch cold from a slow disk; past it, assume it imports


@functools.cache
def torchvision_problem() -> str | None:
    """Why the installed torchvision does not import, with the fix (None: it imports, or
    it is not installed)."""
    if find_spec("torchvision") is None:
        return None
    try:
        done = subprocess.run(
            [sys.executable, "-c", "import torchvision"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None  # cannot tell: let the load itself say what is wrong
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    error = lines[-1] if lines else f"exit status {done.returncode}"
    return (
        f"torchvision{_version('torchvision')} does not import ({error}), which breaks "
        f"diffusers: it was built for another torch than{_version('torch')}; "
        "pip uninstall torchvision, or install the torchvision build for this torch "
        "(https://pytorch.org/get-started/locally/)"
    )


def _version(name: str) -> str:
    try:
        return " " + metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""
