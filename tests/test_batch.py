"""Batches: folders, globs and stdin in; mirrored outputs; failures recorded; resume."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from stripes_backend import register

from layerctl import formats
from layerctl.seeds import image_seed

TESTS = Path(__file__).parent
STRIPES = ["-b", "stripes", "-n", "3"]


@pytest.fixture
def stripes(monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch)


def _image(path: Path, shift: int) -> np.ndarray:
    """A small flat graphic, different for every ``shift``."""
    pixels = np.zeros((24, 32, 4), np.uint8)
    pixels[...] = (240, 236, 220, 255)
    pixels[4:16, 2 + shift : 14 + shift] = (200, 40, 40, 255)
    pixels[12:20, 16:30] = (30, 80, 190, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, "RGBA").convert("RGB" if path.suffix == ".jpg" else "RGBA").save(path)
    return pixels


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """in/ with five images and one corrupt file (a.png, the first in order)."""
    root = tmp_path / "in"
    for i in range(5):
        _image(root / f"img{i}.png", i)
    (root / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n corrupt")
    return root


def _records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def _statuses(records: list[dict]) -> dict[str, str]:
    return {Path(r["input"]).name: r["status"] for r in records}


def test_six_inputs_one_corrupt_then_rerun_skips(cli, stripes, folder, tmp_path):
    out = tmp_path / "out"
    result = cli("decompose", folder, "-o", out, "--json", *STRIPES)
    assert result.code == 3, result.stderr
    records = _records(result.stdout)
    assert len(records) == 6
    assert _statuses(records) == {"a.png": "failed"} | {f"img{i}.png": "ok" for i in range(5)}
    bad = next(r for r in records if r["status"] == "failed")
    assert "a.png" in bad["error"] and bad["layers"] == []
    good = next(r for r in records if r["status"] == "ok")
    assert set(good) == {
        "input",
        "output",
        "status",
        "error",
        "seconds",
        "backend",
        "layers_requested",
        "layers",
        "notes",
    }
    assert [la["name"] for la in good["layers"]] == ["Background", "Layer 1", "Layer 2"]
    assert sorted(p.name for p in out.iterdir()) == [f"img{i}.psd" for i in range(5)]
    assert "failed: " in result.stderr and "a.png" in result.stderr
    stamps = {p: p.stat().st_mtime_ns for p in out.iterdir()}

    rerun = cli("decompose", folder, "-o", out, "--json", *STRIPES)
    assert rerun.code == 3
    statuses = _statuses(_records(rerun.stdout))
    assert statuses == {"a.png": "failed"} | {f"img{i}.png": "skipped" for i in range(5)}
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == stamps

    forced = cli("decompose", folder, "-o", out, "--json", "--force", *STRIPES)
    assert list(_statuses(_records(forced.stdout)).values()).count("ok") == 5


def test_fail_fast_stops_at_the_first_failure(cli, stripes, folder, tmp_path):
    result = cli("decompose", folder, "-o", tmp_path / "out", "--json", "--fail-fast", *STRIPES)
    assert result.code == 3
    assert [r["status"] for r in _records(result.stdout)] == ["failed"]
    assert not (tmp_path / "out").exists()


def test_batch_equals_single_file_and_ignores_order(cli, stripes, folder, tmp_path):
    images = sorted(folder.glob("img*.png"))
    single = tmp_path / "single.psd"
    assert cli("decompose", images[2], "-o", single, "--seed", "5", *STRIPES).code == 0
    forward, backward = tmp_path / "f", tmp_path / "b"
    assert cli("decompose", *images, "-o", forward, "--seed", "5", *STRIPES).code == 0
    assert cli("decompose", *images[::-1], "-o", backward, "--seed", "5", *STRIPES).code == 0
    expected = [layer.pixels for layer in formats.read(single).layers]
    for out in (forward, backward):
        got = [layer.pixels for layer in formats.read(out / "img2.psd").layers]
        assert all(np.array_equal(a, b) for a, b in zip(expected, got, strict=True))
    other = tmp_path / "other.psd"
    assert cli("decompose", images[2], "-o", other, "--seed", "6", *STRIPES).code == 0
    changed = [layer.pixels for layer in formats.read(other).layers]
    assert not all(np.array_equal(a, b) for a, b in zip(expected, changed, strict=True))


def test_seed_depends_on_seed_and_content_only() -> None:
    assert image_seed(5, "aa") == image_seed(5, "aa")
    assert len({image_seed(5, "aa"), image_seed(5, "ab"), image_seed(6, "aa")}) == 3
    assert 0 <= image_seed(2**40, "ff") < 2**31


def test_folders_mirror_globs_and_stdin(cli, stripes, tmp_path, monkeypatch):
    root = tmp_path / "in"
    _image(root / "a.png", 0)
    _image(root / "sub" / "deep" / "b.jpg", 1)
    _image(root / ".hidden" / "c.png", 2)
    tree = tmp_path / "tree"
    assert cli("decompose", root, "-o", tree, "--recursive-dirs", *STRIPES).code == 0
    assert sorted(str(p.relative_to(tree)) for p in tree.rglob("*.psd")) == [
        "a.psd",
        "sub/deep/b.psd",
    ]
    flat = tmp_path / "flat"
    assert cli("decompose", root, "-o", flat, "--format", "ora", *STRIPES).code == 0
    assert sorted(p.name for p in flat.iterdir()) == ["a.ora"]
    glob_out = tmp_path / "glob"
    assert cli("decompose", f"{root}/**/*.jpg", "-o", glob_out, *STRIPES).code == 0
    assert (glob_out / "sub" / "deep" / "b.psd").is_file()
    monkeypatch.setattr(
        sys, "stdin", io.StringIO(f"{root / 'a.png'}\n\n{root / 'sub/deep/b.jpg'}\n")
    )
    piped = tmp_path / "piped"
    result = cli("decompose", "-", "-o", piped, "--format", "png", "--json", *STRIPES)
    assert result.code == 0 and len(_records(result.stdout)) == 2
    assert (piped / "a" / "manifest.json").is_file()
    assert (piped / "sub" / "deep" / "b" / "manifest.json").is_file()


def test_outputs_beside_inputs_are_not_taken_for_inputs(cli, stripes, tmp_path):
    root = tmp_path / "in"
    _image(root / "a.png", 0)
    args = [root, "--recursive-dirs", "--format", "png", "--json", *STRIPES]
    assert cli("decompose", *args).code == 0
    assert (root / "a" / "manifest.json").is_file()
    rerun = cli("decompose", *args)
    assert _statuses(_records(rerun.stdout)) == {"a.png": "skipped"}


def test_name_clashes_and_empty_globs_are_usage_errors(cli, stripes, tmp_path):
    _image(tmp_path / "in" / "a.png", 0)
    _image(tmp_path / "in" / "a.webp", 1)
    result = cli("decompose", tmp_path / "in", "-o", tmp_path / "out", *STRIPES)
    assert result.code == 2 and "a.psd" in result.stderr
    assert cli("decompose", f"{tmp_path}/*.tiff", *STRIPES).code == 2
    result = cli("decompose", tmp_path / "in", "-o", tmp_path / "out.psd", *STRIPES)
    assert result.code == 2 and "--format" in result.stderr
    assert not (tmp_path / "out").exists()


def test_auto_layer_count(cli, stripes, tmp_path, flat_design):
    path = tmp_path / "in.png"
    Image.fromarray(flat_design, "RGBA").save(path)
    result = cli("decompose", path, "-n", "auto", "-b", "stripes", "--json")
    assert result.code == 0
    assert len(_records(result.stdout)[0]["layers"]) == 3  # background, disc, bar
    result = cli(
        "decompose", path, "-n", "auto", "--max-layers", "2", "-b", "stripes", "--json", "-f"
    )
    assert len(_records(result.stdout)[0]["layers"]) == 2
    assert cli("decompose", path, "-n", "many").code == 2


def _slow_stripes_plugin(folder: Path) -> dict[str, str]:
    """An environment where ``--backend stripes`` is an installed plugin (a dist-info
    with an entry point, as a third-party backend ships) taking 0.5 s per image, in
    this process's children and in their worker processes alike."""
    dist = folder / "stripes_plugin-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: stripes-plugin\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(
        "[layerctl.backends]\nstripes = stripes_backend:StripesBackend\n"
    )
    path = os.pathsep.join([str(TESTS), str(folder)])
    return {**os.environ, "PYTHONPATH": path, "STRIPES_DELAY": "0.5"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "fmt", "workers"),
    [
        (signal.SIGINT, "psd", 1),
        (signal.SIGTERM, "png", 1),
        (signal.SIGTERM, "psd", 2),  # to the parent only: it stops its workers
        (signal.SIGKILL, "png", 1),
    ],
)
def test_killed_batch_resumes_without_corrupt_outputs(tmp_path, sig, fmt, workers):
    """Stopped mid-batch: finished outputs are whole, Ctrl-C and SIGTERM leave no
    temporaries, and the same command again does only what is left."""
    root = tmp_path / "in"
    sources = {f"img{i}": _image(root / f"img{i}.png", i) for i in range(6)}
    out = tmp_path / "out"
    args = [str(root), "-o", str(out), "--format", fmt, "--workers", str(workers), *STRIPES]
    env = _slow_stripes_plugin(tmp_path / "plugins")
    command = [sys.executable, "-m", "layerctl", "decompose", *args]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 60
    while len(list(out.glob("img*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    finished = sorted(p.name for p in out.glob("img*"))
    assert 2 <= len(finished) < 6
    if sig != signal.SIGKILL:
        assert proc.returncode == 128 + sig and b"to resume" in stderr
        assert b"Traceback" not in stderr
        assert sorted(p.name for p in out.iterdir()) == finished  # no temporaries left
    rerun = subprocess.run([*command, "--json"], capture_output=True, text=True, env=env)
    assert rerun.returncode == 0, rerun.stderr
    statuses = _statuses(_records(rerun.stdout))
    assert list(statuses.values()).count("skipped") == len(finished)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # SIGKILL's swept
    for name, pixels in sources.items():
        stack = formats.read(out / (name + (".psd" if fmt == "psd" else "")))
        assert np.abs(stack.composite().astype(int) - pixels).max() <= 1


def test_progress_bar_on_a_terminal_only(cli, stripes, folder, tmp_path, monkeypatch):
    from rich.console import Console

    from layerctl import console

    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=120)
    monkeypatch.setattr(console, "stderr", lambda: terminal)
    assert cli("decompose", folder, "-o", tmp_path / "out", *STRIPES).code == 3
    drawn = screen.getvalue()
    assert "6/6" in drawn and "img4.png" in drawn  # count and current file
    assert "failed: " in drawn  # the summary follows the bar
    screen.truncate(0)
    assert cli("decompose", folder, "-o", tmp_path / "out", "-q", *STRIPES).code == 3
    assert "6/6" not in screen.getvalue()  # --quiet: no bar and no summary
