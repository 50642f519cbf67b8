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


def test_kills_and_reruns_lose_nothing_and_leave_nothing() -> None:
    """bench/soak.py --kills, small: SIGKILL, SIGTERM and SIGINT (seed 2) at a batch with
    --workers 2, rerun each time; the outputs equal a clean run's, nothing is left over.

    The kills come 0.2–0.6 s after a run's first worker starts: within its start-up on a
    fast machine (no run can finish that soon, so each kill is sent), within its first
    jobs on a slow one. tests/test_workers.py kills a batch in the middle of its jobs."""
    args = ["--kills", "3", "--seed", "2", "--images", "6", "--size", "96", "--every", "0.4"]
    out = subprocess.run(
        [sys.executable, str(SOAK), *args, "--json"], capture_output=True, text=True, timeout=600
    )
    report = json.loads(out.stdout.splitlines()[-1])
    assert report["kills"] == {"SIGKILL": 1, "SIGTERM": 1, "SIGINT": 1}, report
    assert [run["rc"] for run in report["runs"]] == [-9, 143, 130, 0], report
    assert report["outputs"] == report["equal"] == 6, report
    assert not report["survivors"], report
    assert not any(run["temporaries"] for run in report["runs"]), report
    assert report["ok"] and out.returncode == 0
