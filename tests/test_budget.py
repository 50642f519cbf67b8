"""The memory plan (layerctl.budget): inputs and results that cannot fit fail alone,
with one line, before anything is decoded.

The cases that would take gigabytes run in a subprocess under ``prlimit --as`` (the
address-space limit is one of the plan's limits), so they cost the machine nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_hostile_inputs import jpeg_declaring, one_member_ora

from layerctl import budget
from layerctl.backends import base
from layerctl.errors import BadInput, BadResult
from layerctl.imageio import read_image

AS_LIMIT = 3 << 30  # the address space each CLI run gets under prlimit
SECONDS = 120

needs_prlimit = pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit")


def run_limited(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``layerctl ARGS`` under ``prlimit --as``: an OOM there is a MemoryError, not a kill."""
    return subprocess.run(
        ["prlimit", f"--as={AS_LIMIT}", sys.executable, "-m", "layerctl", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=SECONDS,
        env={**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"},
    )


# --- the plan's parts ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("4G", 4 * 10**9), ("512M", 512 * 10**6), ("1.5GiB", 3 << 29), ("1e10", 10**10), ("77", 77)],
)
def test_sizes_parse(text: str, value: int) -> None:
    assert budget.parse_size(text) == value


@pytest.mark.parametrize("text", ["", "4X", "-1", "0", "1" + "0" * 400, "1e99", "inf"])
def test_bad_sizes_are_one_short_line(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        budget.parse_size(text)
    assert len(str(caught.value)) < 80  # never the 400 digits back


def test_small_sizes_read_sensibly() -> None:
    assert budget.human_pixels(64 * 64) == "4096 pixels"  # not "0 MP"
    assert budget.human_pixels(12_345_678) == "12.3 MP"
    assert budget.human_pixels(4_290_250_000) == "4290 MP"
    assert budget.human_bytes(2_150_000_000) == "2.15 GB"
    assert budget.dimensions(10**400, 3) == "hugex3"


def test_the_tightest_limit_wins_and_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budget, "host_available", lambda: 8 * 10**9)
    monkeypatch.setattr(budget, "address_space_left", lambda: None)
    monkeypatch.setattr(budget, "cgroup_left", lambda: 6 * 10**9)
    assert budget.allowance() == budget.Allowance(6 * 10**9, "the cgroup's limit")
    assert budget.allowance(10**9) == budget.Allowance(10**9, "--max-memory")
    with pytest.raises(BadInput, match=r"x: needs 2 GB of memory, 1 GB is allowed \(--max-memory"):
        budget.check("x", 2 * 10**9, max_memory=10**9)
    budget.check("x", 10**9, max_memory=10**9)  # fits exactly
    # --workers 4: each process gets its part of the machine's and the cgroup's memory
    assert budget.allowance(share=4) == budget.Allowance(
        15 * 10**8, "the cgroup's limit / 4 workers"
    )
    with pytest.raises(BadInput, match=r"1.5 GB is allowed .* \(use fewer --workers\)"):
        budget.check("x", 2 * 10**9, share=4)


def test_cgroup_limits_v1_and_v2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    files = {"v2.max": "max\n", "v2.cur": "5", "v1.max": "9223372036854771712", "v1.cur": "5"}
    files |= {"tight.max": "1000", "tight.cur": "400"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    pairs = [(tmp_path / f"{k}.max", tmp_path / f"{k}.cur") for k in ("v2", "v1")]
    monkeypatch.setattr(budget, "_cgroup_files", lambda: pairs)
    assert budget.cgroup_left() is None  # "max" and v1's ~2^63 mean no limit
    tight = (tmp_path / "tight.max", tmp_path / "tight.cur")
    monkeypatch.setattr(budget, "_cgroup_files", lambda: [*pairs, tight])
    assert budget.cgroup_left() == 600


@needs_prlimit
def test_the_address_space_limit_is_seen() -> None:
    code = "from layerctl import budget; a = budget.allowance(); print(a.source, a.bytes)"
    result = subprocess.run(
        ["prlimit", f"--as={AS_LIMIT}", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    source, left = result.stdout.rsplit(" ", 1)
    assert source == "ulimit -v" and 0 < int(left) < AS_LIMIT


def test_every_backend_states_its_cost() -> None:
    for name in ("classic", "qwen", "onnx"):
        cls = base.backend_class(name)
        cost = budget.Cost.of_backend(cls, 4)
        assert cost.per_pixel >= 60 and cost.fixed > 0, name  # measured 62-124 B/px
        assert budget.Cost.of_backend(cls, 8).of(10**6) > cost.of(10**6)  # layers count


def test_an_image_over_the_plan_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.new("RGB", (64, 64)).save(path)
    with pytest.raises(BadInput) as caught:
        read_image(path, cost=budget.Cost(1000), max_memory=2 * 10**6)
    message = str(caught.value)
    assert "64x64 (4096 pixels) needs 4.1 MB of memory, 2 MB is allowed" in message
    with pytest.raises(BadInput, match=r"64x64 is 4096 pixels, over the 1000 pixels limit"):
        read_image(path, 1000)
    assert read_image(path, cost=budget.Cost(1000), max_memory=1000 * 4096).pixels.shape[0] == 64


# --- through the CLI, under prlimit ----------------------------------------------------


@needs_prlimit
def test_a_bomb_in_a_batch_fails_alone(tmp_path: Path) -> None:
    """A 292 KB all-black 10000x10000 PNG between two small images (issue 14)."""
    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(src / "a.png")
    Image.new("RGB", (10_000, 10_000)).save(src / "b.png")
    Image.new("RGB", (64, 48), (30, 30, 200)).save(src / "c.png")
    args = ["decompose", src, "-o", "out", "--backend", "classic", "--json"]
    result = run_limited(*args, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    records = {Path(r["input"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert [records[n]["status"] for n in ("a.png", "b.png", "c.png")] == ["ok", "failed", "ok"]
    error = records["b.png"]["error"]
    assert "10000x10000 (100 MP) needs" in error and "is allowed (ulimit -v)" in error, error
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.psd", "c.psd"]


@needs_prlimit
def test_max_pixels_raised_still_cannot_outgrow_memory(tmp_path: Path) -> None:
    """``--max-pixels 1e10`` with a 631-byte JPEG declaring 65500x65500: one line, exit 1."""
    (tmp_path / "bomb.jpg").write_bytes(jpeg_declaring(65_500, 65_500))
    args = ["decompose", "bomb.jpg", "--max-pixels", "1e10", "-o", "x.psd"]
    result = run_limited(*args, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and "65500x65500 (4290 MP) needs" in result.stderr
    assert not (tmp_path / "x.psd").exists()


def test_max_memory_comes_from_the_environment_too(tmp_path: Path, cli, monkeypatch) -> None:
    Image.new("RGB", (64, 48)).save(tmp_path / "a.png")
    monkeypatch.setenv("LAYERCTL_MAX_MEMORY", "1M")
    result = cli("decompose", str(tmp_path / "a.png"), "-o", str(tmp_path / "a.psd"))
    assert result.code == 1
    assert "1 MB is allowed (--max-memory) (raise --max-memory)" in result.stderr


def _opencv_out_of_memory() -> Exception:
    """The cv2.error OpenCV raises for an allocation it cannot make (no MemoryError)."""
    cv2 = pytest.importorskip("cv2")
    try:
        cv2.resize(np.zeros((1, 1), np.uint8), (10**6, 10**6))
    except cv2.error as exc:
        return exc
    raise AssertionError("OpenCV allocated a terabyte")


def _no_room_to_load() -> Exception:
    """The ImportError of a shared library the loader could not map (as under a small
    `prlimit --as`, when OpenCV loads lazily its bundled codecs)."""
    return ImportError("libavcodec-e863e0e1.so.63.1.102: failed to map segment from shared object")


@pytest.mark.parametrize("error", [MemoryError, _opencv_out_of_memory, _no_room_to_load])
def test_a_memory_error_is_one_inputs_failure(tmp_path: Path, monkeypatch, error) -> None:
    from layerctl import batch
    from layerctl.decomposer import Decomposer

    def exhausted(*args, **kwargs):
        raise error()

    monkeypatch.setattr(Decomposer, "__call__", exhausted)
    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    job = batch.Job(tmp_path / "a.png", tmp_path / "a.psd")
    result = batch.attempt(job, Decomposer.open("classic"))
    assert result.status == "failed" and result.error.endswith(
        "a.png: out of memory (the plan let it through: lower --max-memory)"
    )


@pytest.mark.parametrize("error", [_opencv_out_of_memory, _no_room_to_load])
def test_opencv_running_out_of_memory_is_one_line_saying_so(
    tmp_path: Path, cli, monkeypatch, error
):
    """Under `prlimit --as` the classic backend died in OpenCV's allocator, reported
    as "internal error: error: OpenCV(5.1.0) ... Insufficient memory", or under a
    smaller limit while loading OpenCV's libraries ("internal error: ImportError:
    ... failed to map segment from shared object")."""
    from layerctl.decomposer import Decomposer

    def exhausted(*args, **kwargs):
        raise error()

    monkeypatch.setattr(Decomposer, "__call__", exhausted)
    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    result = cli("decompose", str(tmp_path / "a.png"), "-o", str(tmp_path / "a.psd"))
    assert result.code == 1 and result.stderr.strip().endswith("out of memory")
    assert not (tmp_path / "a.psd").exists()


@needs_prlimit
@pytest.mark.parametrize("command", ["info", "preview"])
def test_a_tiny_ora_with_a_huge_canvas_fails_fast(tmp_path: Path, command: str) -> None:
    """525 bytes: a 10000x10000 canvas, 16 layers on one 1x1 PNG (issue 14: 257 s, 7.8 GB)."""
    (tmp_path / "x.ora").write_bytes(one_member_ora(10_000, 16))
    result = run_limited(command, "x.ora", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "16 layers of 10000x10000 needs" in result.stderr and result.stderr.count("\n") == 1


def test_repeated_members_are_decoded_once(tmp_path: Path, monkeypatch) -> None:
    from layerctl import formats
    from layerctl.formats import zipped  # the members of ORA and PPTX files

    decodes = []
    real = zipped.to_rgba
    monkeypatch.setattr(zipped, "to_rgba", lambda image: decodes.append(1) or real(image))
    (tmp_path / "x.ora").write_bytes(one_member_ora(8, 50))
    stack = formats.read(tmp_path / "x.ora")
    assert len(stack.layers) == 50 and len(decodes) == 1
    assert all(layer.pixels[0, 0, 3] == 255 for layer in stack.layers)
    assert len({id(layer.pixels) for layer in stack.layers}) == 50  # each owns its array


def test_too_many_layers_fail_before_decoding(tmp_path: Path) -> None:
    from layerctl import formats

    (tmp_path / "x.ora").write_bytes(one_member_ora(8, 100_000))
    with pytest.raises(BadResult, match="100000 layers, over the 8000 a result may have"):
        formats.read(tmp_path / "x.ora")


def test_a_sheet_of_a_tall_stack_is_cut_with_a_note() -> None:
    from layerctl import preview
    from layerctl.stack import Layer, LayerStack

    layers = [Layer(str(i), np.full((8, 8, 4), 255, np.uint8)) for i in range(500)]
    plan = preview.layout(LayerStack(layers), with_original=False)
    assert len(plan.layer_tiles()) == preview.MAX_LAYER_TILES
    assert "the first 100 of 500 layers and groups shown" in plan.header
    assert plan.size[0] * plan.size[1] < 25_000_000


def test_the_pixel_limit_message_tells_the_sizes_apart(tmp_path: Path) -> None:
    """Rounded alike ("1 MP, over the 1 MP limit") the sizes are given exactly."""
    path = tmp_path / "a.png"
    Image.new("RGB", (1001, 1000)).save(path)
    with pytest.raises(BadInput, match=r"1001x1000 is 1001000 pixels, over the 1000000 pixels"):
        read_image(path, 10**6)
    with pytest.raises(BadInput, match=r"1001x1000 is 1 MP, over the 500000 pixels limit"):
        read_image(path, 500_000)
