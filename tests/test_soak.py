"""A short soak through bench/soak.py: the classic backend leaks no file handles or memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("psutil")
SOAK = Path(__file__).parents[1] / "bench" / "soak.py"


@pytest.mark.slow
def test_thirty_images_leak_no_handles_and_little_memory() -> None:
    out = subprocess.run(
        [sys.executable, str(SOAK), "--images", "30", "--size", "320", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    report = json.loads(out.stdout.splitlines()[-1])
    warm, end = report["warm"], report["end"]
    assert report["images"] == 30
    assert end["fds"] <= warm["fds"], report
    # Generous (it stays within ±2 MB here): keeping each image's input and 4 layers
    # alive (320×240 RGBA, ~1.5 MB an image) would cross it.
    assert end["rss_mb"] - warm["rss_mb"] < 32, report
