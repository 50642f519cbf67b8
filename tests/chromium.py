"""Headless Chromium for tests: the report's checks and SVG renders share one way to run it."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# As the issue says; each run also gets a fresh --user-data-dir.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs the chromium package")


def run_chromium(tmp_path: Path, *args: str) -> str:
    """Chromium's stdout for ``args``, with a profile of its own under ``tmp_path``."""
    profile = Path(tmp_path) / f"profile-{time.monotonic_ns()}"
    done = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
