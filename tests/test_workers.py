"""--workers and --ray write the same files and report the same results as the plain run."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from layerctl import formats, workers
from layerctl.decomposer import configure

ARGS = ["-b", "classic", "-n", "3", "--json", "--seed", "3"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four small flat graphics, one in a subfolder."""
    pytest.importorskip("cv2")
    root = tmp_path_factory.mktemp("workers") / "in"
    for i in range(4):
        image = Image.new("RGB", (48, 32), (240, 236, 220))
        draw = ImageDraw.Draw(image)
        draw.ellipse((4 + 3 * i, 4, 22 + 3 * i, 22), fill=(200, 40, 40))
        draw.rectangle((24, 14, 44, 26), fill=(30, 80, 190))
        path = root / ("sub" if i == 3 else "") / f"img{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
    return root


def _run(cli, folder: Path, out: Path, *extra: str) -> dict[str, dict]:
    result = cli("decompose", folder, "--recursive-dirs", "-o", out, *ARGS, *extra)
    assert result.code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    return {r["input"]: {**r, "seconds": None} for r in records}


def _same_files(a: Path, b: Path) -> None:
    names = sorted(p.relative_to(a) for p in a.rglob("*.psd"))
    assert names == sorted(p.relative_to(b) for p in b.rglob("*.psd")) and len(names) == 4
    for name in names:
        left, right = formats.read(a / name), formats.read(b / name)
        assert [la.name for la in left.walk()] == [la.name for la in right.walk()]
        for x, y in zip(left.walk(), right.walk(), strict=True):
            assert np.array_equal(x.pixels, y.pixels), name


def test_two_local_workers_match_the_plain_run(cli, folder, tmp_path):
    expected = _run(cli, folder, tmp_path / "plain")
    got = _run(cli, folder, tmp_path / "two", "--workers", "2")
    assert {k: {**v, "output": Path(v["output"]).name} for k, v in got.items()} == {
        k: {**v, "output": Path(v["output"]).name} for k, v in expected.items()
    }
    _same_files(tmp_path / "plain", tmp_path / "two")


@pytest.mark.slow
def test_ray_local_mode_matches_the_plain_run(cli, folder, tmp_path):
    pytest.importorskip("ray.data")
    expected = _run(cli, folder, tmp_path / "plain")
    got = _run(cli, folder, tmp_path / "ray", "--ray", "local", "--workers", "2")
    assert {k: {**v, "output": Path(v["output"]).name} for k, v in got.items()} == {
        k: {**v, "output": Path(v["output"]).name} for k, v in expected.items()
    }
    _same_files(tmp_path / "plain", tmp_path / "ray")


def test_a_killed_worker_is_replaced_and_its_job_run_again(cli, folder, tmp_path):
    psutil = pytest.importorskip("psutil")
    killed = []

    def kill_first_worker() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for child in psutil.Process().children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if "spawn_main" in " ".join(child.cmdline()):
                        child.kill()
                        killed.append(child.pid)
                        return
            time.sleep(0.01)

    expected = _run(cli, folder, tmp_path / "plain")
    killer = threading.Thread(target=kill_first_worker)
    killer.start()
    records = _run(cli, folder, tmp_path / "out", "--workers", "2")
    killer.join()
    assert killed  # a worker died mid-batch …
    assert {r["status"] for r in records.values()} == {"ok"}  # … and every input still finished
    assert records.keys() == expected.keys()
    _same_files(tmp_path / "plain", tmp_path / "out")


def test_gpu_pinning_follows_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    options = configure("classic")
    assert workers.visible_gpus(options) == ["2", "5"]
    assert workers.worker_count(0, options) == 2
    assert workers.worker_count(3, options) == 3
    from layerctl.backends.model_options import QwenSettings

    on_cpu = dataclasses.replace(options, settings=QwenSettings(device="cpu"))
    assert workers.visible_gpus(on_cpu) == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert workers.visible_gpus(options) == []


def test_an_unreachable_ray_cluster_is_a_one_line_error(cli, folder, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    result = cli("decompose", folder, "-o", tmp_path / "out", "--ray", "auto", "-b", "classic")
    assert result.code == 1
    assert "cannot reach a Ray cluster" in result.stderr and "--ray local" in result.stderr
    assert not (tmp_path / "out").exists()


def test_workers_end_with_their_parent_even_after_sigkill(tmp_path):
    """SIGKILL gives the parent no clean-up: the workers (and multiprocessing's resource
    tracker) must notice alone, and a job cut short must leave no temporary."""
    psutil = pytest.importorskip("psutil")
    inputs = tmp_path / "in"
    for i in range(6):  # larger than the module's: each job runs long enough to be cut
        image = Image.new("RGB", (320, 240), (240, 236, 220))
        ImageDraw.Draw(image).ellipse((20 + 30 * i, 20, 200, 200), fill=(200, 40, 40))
        inputs.mkdir(exist_ok=True)
        image.save(inputs / f"img{i}.png")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "layerctl", "decompose", str(inputs), "-o", str(out)]
    command += ["-b", "classic", "--workers", "2"]
    parent = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tree: dict[int, Any] = {}
    deadline = time.monotonic() + 120
    while not (out.exists() and any(out.iterdir())) and time.monotonic() < deadline:
        with contextlib.suppress(psutil.Error):  # jobs run once the first file appears
            tree |= {c.pid: c for c in psutil.Process(parent.pid).children(recursive=True)}
        time.sleep(0.02)
    assert parent.poll() is None, "the batch ended before it could be killed"
    tree |= {c.pid: c for c in psutil.Process(parent.pid).children(recursive=True)}
    assert len(tree) == 3  # two workers and the resource tracker
    parent.kill()
    parent.wait()

    left = list(tree.values())
    deadline = time.monotonic() + 15
    while left and time.monotonic() < deadline:
        left = [p for p in left if _running(psutil, p)]
        time.sleep(0.05)
    assert not left, [p.cmdline() for p in left]
    assert not list(out.glob(".*"))  # the jobs cut short removed their temporaries

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"img{i}.psd" for i in range(6)]


def _running(psutil, process) -> bool:
    """Alive and not a zombie (an orphan's exit may wait for a busy init to reap it)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
