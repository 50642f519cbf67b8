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
    assert [r["status"] for r in _records(result.stdout)] == ["failed"] + ["not tried"] * 5
    assert not (tmp_path / "out").exists()
    assert "1 of 6 inputs failed, 5 not tried" in result.stderr
    assert "not tried" in result.stderr.split("failed:")[0]  # a row of the summary table


def test_an_output_path_does_not_depend_on_the_other_inputs(cli, stripes, tmp_path, monkeypatch):
    """Adding an input from another folder must not move the others' outputs (the
    image would be redone and a resume would not find it)."""
    monkeypatch.chdir(tmp_path)
    _image(tmp_path / "designs" / "d00.png", 0)
    _image(tmp_path / "other" / "x.png", 1)
    _image(tmp_path / "more" / "d00.png", 2)
    out = tmp_path / "eo3"

    def run(*lines: str, extra: tuple[str, ...] = ()):
        monkeypatch.setattr(sys, "stdin", io.StringIO("".join(f"{line}\n" for line in lines)))
        return cli("decompose", "-", *extra, "-o", out, "--json", *STRIPES)

    assert run("designs/d00.png").code == 0
    assert sorted(p.name for p in out.iterdir()) == ["d00.psd"]
    again = run("designs/d00.png", "other/x.png")
    assert again.code == 0
    assert _statuses(_records(again.stdout)) == {"d00.png": "skipped", "x.png": "ok"}
    assert sorted(p.name for p in out.iterdir()) == ["d00.psd", "x.psd"]
    # a plain FILE argument is named the same way; a folder mirrors below itself
    assert cli("decompose", "other/x.png", "designs", "-o", out, *STRIPES).code == 0
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.psd")) == ["d00.psd", "x.psd"]
    clash = run("designs/d00.png", "more/d00.png")
    assert clash.code == 2 and "would both be written to" in clash.stderr


def test_single_input_failure_prints_its_json_record(cli, stripes, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n corrupt")
    result = cli("decompose", bad, "--json", *STRIPES)
    assert result.code == 1
    (record,) = _records(result.stdout)
    assert record["status"] == "failed" and record["input"] == str(bad)
    assert "corrupt" in record["error"] and record["output"] == str(tmp_path / "bad.psd")
    _image(tmp_path / "ok.png", 0)
    (tmp_path / "ok.psd").write_bytes(b"not ours")
    exists = cli("decompose", tmp_path / "ok.png", "--json", *STRIPES)
    assert exists.code == 1 and _records(exists.stdout)[0]["status"] == "failed"


def test_report_shows_wall_time_and_only_the_settings_given(cli, stripes, folder, tmp_path):
    from layerctl import report as reports

    report = tmp_path / "report.html"
    result = cli("decompose", folder, "-o", tmp_path / "out", "--report", report, *STRIPES)
    assert result.code == 3
    text = report.read_text()
    assert "seed=0" in text and "steps=" not in text and "device=" not in text
    wall = float(result.stderr.rsplit(" in ", 1)[1].split()[0])
    figures = reports.summary([{"seconds": 5.0}, {"seconds": 5.0}], seconds=wall)
    assert figures["total seconds"] == round(wall, 1)
    shown = float(text.split("<dt>total seconds</dt><dd>")[1].split("<")[0])
    assert abs(shown - wall) <= 0.2  # the run's clock, not the records' sum


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
    assert (piped / "a" / "manifest.json").is_file()  # stdin lines: by file name
    assert (piped / "b" / "manifest.json").is_file()


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


# -- resume means complete ----------------------------------------------------------------


def test_only_a_whole_result_of_this_input_counts_as_done(cli, stripes, tmp_path):
    """A 0-byte, cut-off or foreign output is not skipped: it fails without --force
    (naming the input) and is redone with it."""
    root = tmp_path / "in"
    for i, name in enumerate("abcd"):
        _image(root / f"{name}.png", i)
    out = tmp_path / "out"
    assert cli("decompose", root, "-o", out, *STRIPES).code == 0
    (out / "a.psd").write_bytes(b"")
    whole = (out / "b.psd").read_bytes()
    (out / "b.psd").write_bytes(whole[: len(whole) - 10])
    (out / "c.psd").write_bytes((out / "d.psd").read_bytes())  # d's result, not c's
    result = cli("decompose", root, "-o", out, "--json", *STRIPES)
    assert result.code == 3
    records = {Path(r["input"]).name: r for r in _records(result.stdout)}
    assert {name: r["status"] for name, r in records.items()} == {
        "a.png": "failed",
        "b.png": "failed",
        "c.png": "failed",
        "d.png": "skipped",
    }
    for name in "abc":
        error = records[f"{name}.png"]["error"]
        assert (
            error.startswith(str(root / f"{name}.png")) and "not a whole layerctl result" in error
        )
    forced = cli("decompose", root, "-o", out, "--json", "--force", *STRIPES)
    assert forced.code == 0
    for name in "abcd":
        composite = formats.read(out / f"{name}.psd").composite()
        assert np.array_equal(composite, np.asarray(Image.open(root / f"{name}.png")))


def test_previews_and_results_are_never_taken_for_inputs(cli, stripes, tmp_path):
    """With outputs beside the inputs, reruns once took the sheets as new inputs:
    2, then 4, then 6 jobs."""
    root = tmp_path / "in"
    _image(root / "a.png", 0)
    _image(root / "b.png", 1)
    for args in ([root], [f"{root}/*"], [root, "--format", "png"], [f"{root}/**/*.png"]):
        for _ in range(3):
            result = cli("decompose", *args, "--preview", "--json", *STRIPES)
            assert result.code == 0, result.stderr
            assert sorted(_statuses(_records(result.stdout))) == ["a.png", "b.png"], args
    assert (root / "a.psd.preview.png").is_file() and (root / "a" / "manifest.json").is_file()


def test_a_missing_preview_is_added_without_decomposing_again(cli, stripes, tmp_path, monkeypatch):
    root = tmp_path / "in"
    _image(root / "a.png", 0)
    _image(root / "b.png", 1)
    out = tmp_path / "out"
    assert cli("decompose", root, "-o", out, "--preview", *STRIPES).code == 0
    (out / "a.psd.preview.png").unlink()
    stamp = (out / "a.psd").stat().st_mtime_ns
    from layerctl.decomposer import Decomposer

    def no_decomposing(*args, **kwargs):
        raise AssertionError("decomposed again")

    monkeypatch.setattr(Decomposer, "__call__", no_decomposing)
    result = cli("decompose", root, "-o", out, "--preview", "--json", *STRIPES)
    assert result.code == 0, result.stderr
    assert _statuses(_records(result.stdout)) == {"a.png": "ok", "b.png": "skipped"}
    assert (out / "a.psd.preview.png").is_file() and (out / "a.psd").stat().st_mtime_ns == stamp


def test_a_named_psd_whose_output_is_itself_is_the_input(cli, stripes, tmp_path):
    _image(tmp_path / "a.png", 0)
    _image(tmp_path / "b.png", 1)
    assert cli("decompose", tmp_path / "a.png", *STRIPES).code == 0
    result = cli("decompose", tmp_path / "a.psd", tmp_path / "b.png", "--json", *STRIPES)
    assert result.code == 3
    records = {Path(r["input"]).name: r for r in _records(result.stdout)}
    assert records["a.psd"]["status"] == "failed" and "is the input" in records["a.psd"]["error"]
    assert records["b.png"]["status"] == "ok"


def test_a_rerun_rewrites_its_own_report(cli, stripes, tmp_path):
    root = tmp_path / "in"
    _image(root / "a.png", 0)
    report = tmp_path / "report.html"
    assert cli("decompose", root, "-o", tmp_path / "out", "--report", report, *STRIPES).code == 0
    report.write_text(report.read_text().replace("</h1>", "</h1><!-- first -->"))
    rerun = cli("decompose", root, "-o", tmp_path / "out", "--report", report, *STRIPES)
    assert rerun.code == 0, rerun.stderr
    assert "<!-- first -->" not in report.read_text() and "skipped" in report.read_text()


def test_every_failure_line_names_its_input(cli, stripes, tmp_path, monkeypatch):
    root = tmp_path / "in"
    _image(root / "a.png", 0)
    _image(root / "b.png", 1)
    out = tmp_path / "out"
    (out / "b.psd").mkdir(parents=True)  # a write error
    stripes_backend = sys.modules["stripes_backend"]
    real = stripes_backend.StripesBackend.decompose

    def crash(self, image, request):
        if image.shape[1] == 32 and image[5, 3, 0] == 200:  # a.png only
            raise RuntimeError("boom")
        return real(self, image, request)

    monkeypatch.setattr(stripes_backend.StripesBackend, "decompose", crash)
    result = cli("decompose", root, "-o", out, "--json", *STRIPES)
    records = {Path(r["input"]).name: r for r in _records(result.stdout)}
    assert records["a.png"]["error"] == f"{root / 'a.png'}: internal error: RuntimeError: boom"
    assert records["b.png"]["error"].startswith(f"{root / 'b.png'}: ")
    assert f"failed: {root / 'a.png'}: internal error" in result.stderr


# -- concurrent runs split the work -----------------------------------------------------


def test_an_output_claimed_by_a_live_run_is_skipped_a_stale_claim_taken(stripes, tmp_path):
    from layerctl import batch, outputs
    from layerctl.decomposer import Decomposer

    _image(tmp_path / "a.png", 0)
    job = batch.Job(tmp_path / "a.png", tmp_path / "out" / "a.psd")
    lock = tmp_path / "out" / ".a.psd.lock"
    lock.parent.mkdir()
    options = Decomposer.open("stripes", layers=3)
    lock.write_text(f"{outputs._host()} {os.getppid()}\n")  # alive
    result = batch.attempt(job, options)
    assert (result.status, result.error) == ("skipped", "being written by another run")
    assert not job.output.exists() and lock.exists()
    gone = subprocess.Popen(["true"])
    gone.wait()
    lock.write_text(f"{outputs._host()} {gone.pid}\n")  # SIGKILLed
    assert batch.attempt(job, options).status == "ok"
    assert sorted(p.name for p in lock.parent.iterdir()) == ["a.psd"]


def test_two_batches_over_one_folder_split_the_work(tmp_path):
    """No false "already exists" failures and no input done twice."""
    root = tmp_path / "in"
    for i in range(6):
        _image(root / f"img{i}.png", i)
    env = {**_slow_stripes_plugin(tmp_path / "plugins"), "STRIPES_DELAY": "0.3"}
    command = [
        sys.executable,
        "-m",
        "layerctl",
        "decompose",
        str(root),
        "-o",
        str(tmp_path / "out"),
    ]
    procs = [
        subprocess.Popen([*command, *STRIPES, "--json"], stdout=subprocess.PIPE, env=env, text=True)
        for _ in range(2)
    ]
    runs = [_records(p.communicate(timeout=120)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    done = sorted(Path(r["input"]).name for run in runs for r in run if r["status"] == "ok")
    assert done == [f"img{i}.png" for i in range(6)]  # each exactly once
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"img{i}.psd" for i in range(6)]


def test_a_canvas_too_wide_for_psd_fails_before_decomposing(cli, stripes, tmp_path, monkeypatch):
    """Over 30 000 px a side a PSD cannot hold it: fail before the backend runs; a .psb
    (version 2) or an ORA holds it."""
    from stripes_backend import StripesBackend

    wide = tmp_path / "wide.png"
    Image.new("RGB", (30_001, 2), (200, 40, 40)).save(wide)
    calls = []
    real = StripesBackend.decompose
    monkeypatch.setattr(
        StripesBackend, "decompose", lambda self, *a: calls.append(1) or real(self, *a)
    )
    result = cli("decompose", wide, "-o", tmp_path / "wide.psd", *STRIPES)
    assert result.code == 1 and "PSD holds at most 30000 px" in result.stderr
    assert ".psb" in result.stderr and calls == []
    assert not (tmp_path / "wide.psd").exists()
    assert cli("decompose", wide, "-o", tmp_path / "wide.psb", *STRIPES).code == 0
    assert (tmp_path / "wide.psb").read_bytes()[:6] == b"8BPS\0\2" and calls == [1]


def test_a_16_bit_grey_png_leaves_no_python_warnings_on_stderr(tmp_path):
    """In a real process (pytest would capture warnings in-process), every warning shown."""
    grey = np.full((60, 80), 9000, np.uint16)
    grey[10:40, 20:60] = 52000
    grey = (grey + np.arange(80, dtype=np.uint16) * 60).astype(np.uint16)
    Image.fromarray(grey).save(tmp_path / "g16.png")
    done = subprocess.run(
        [sys.executable, "-W", "always", "-m", "layerctl", "decompose", "g16.png", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "LAYERCTL_BACKEND": "classic"},
    )
    assert done.returncode == 0, done.stderr
    assert all(line.startswith("warning: g16.png: ") for line in done.stderr.splitlines())
