"""Outputs are all or nothing: full disks, read-only folders, Ctrl-C, hostile layer names.

Every write goes through ``outputs.atomic_output`` (temporary beside the target, fsync,
rename, fsync of the folder). These tests drive the real CLI and check what is on disk
afterwards: the complete new output, or the old one untouched and no temporary left.
A full disk and a read-only folder are real tmpfs mounts where the tests run as root;
elsewhere the full disk is simulated (fsync raising ENOSPC) and the read-only folder is
a chmod. A batch killed by Ctrl-C resuming is tested in test_batch.py.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from optional import writable
from PIL import Image
from stripes_backend import register

from layerctl import formats, outputs
from layerctl.errors import OutputExists
from layerctl.formats import pngstack, psd
from layerctl.stack import Layer, LayerStack

STRIPES = ["-b", "stripes", "-n", "3"]
OUTPUTS = writable(
    {
        "psd": "out.psd",
        "ora": "out.ora",
        "png": "out",
        "pptx": "out.pptx",
        "svg": "out.svg",
    }
)
SUFFIX = {fmt: name.removeprefix("out") for fmt, name in OUTPUTS.items()}


@pytest.fixture(autouse=True)
def _stripes(monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch)


@pytest.fixture
def noise(tmp_path: Path) -> Path:
    """A 200×200 noise image: incompressible, so every format's output is over 300 KB."""
    pixels = np.random.default_rng(3).integers(0, 256, (200, 200, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    path = tmp_path / "noise.png"
    Image.fromarray(pixels).save(path)
    return path


@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[bool]:
    """Mount a tmpfs at ``where`` when allowed (root); yields whether it is mounted."""
    where.mkdir()
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
        ).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", str(where)], check=True)


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.code == 1, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file of an output (a file or a PNG-stack folder) by relative path."""
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    return {str(p.relative_to(path.parent)): p.read_bytes() for p in files if p.is_file()}


@pytest.mark.parametrize("fmt", OUTPUTS)
def test_full_disk_is_one_line_and_leaves_nothing(cli, noise: Path, tmp_path: Path, fmt: str):
    with tmpfs(tmp_path / "disk", "size=200k") as mounted:
        if not mounted:
            pytest.skip("mounting a tmpfs needs root; test_enospc_… simulates a full disk")
        out = tmp_path / "disk" / OUTPUTS[fmt]
        result = cli("decompose", noise, "-o", out, *STRIPES)
        assert_one_line_error(result, "No space left on device")
        assert listing(tmp_path / "disk") == []


@pytest.mark.parametrize("fmt", OUTPUTS)
def test_enospc_on_flush_keeps_the_old_output(
    cli, noise: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
):
    """A disk full when flushing (as NFS and quotas report it): --force keeps the old result."""
    out = tmp_path / OUTPUTS[fmt]
    assert cli("decompose", noise, "-o", out, *STRIPES).code == 0
    before, names = snapshot(out), listing(tmp_path)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    result = cli("decompose", noise, "-o", out, *STRIPES, "--seed", "9", "--force")
    assert_one_line_error(result, "No space left on device", str(out))
    assert snapshot(out) == before and listing(tmp_path) == names


@contextlib.contextmanager
def read_only_folder(where: Path) -> Iterator[None]:
    """A real read-only mount as root (root ignores permissions), else a chmod 555 folder."""
    with tmpfs(where, "ro,size=64k") as mounted:
        if not mounted:
            if os.geteuid() == 0:
                pytest.skip("root, but cannot mount a read-only tmpfs")
            where.chmod(0o555)
        try:
            yield
        finally:
            if not mounted:
                where.chmod(0o755)


@pytest.mark.parametrize(
    "command",
    [
        ["decompose", "{noise}", "-o", "{ro}/out.psd", *STRIPES],
        ["decompose", "{noise}", "-o", "{ro}/stack", *STRIPES],
        ["decompose", "{noise}", "-o", "{ro}/sub/out.ora", *STRIPES],
        ["compose", "{result}", "-o", "{ro}/flat.png"],
        ["preview", "{result}", "-o", "{ro}/sheet.png"],
    ],
    ids=["psd", "png-stack", "new-subfolder", "compose", "preview"],
)
def test_read_only_folder_is_one_line_and_writes_nothing(
    cli, noise: Path, tmp_path: Path, command: list[str]
):
    result_path = tmp_path / "result.psd"
    assert cli("decompose", noise, "-o", result_path, *STRIPES).code == 0
    ro = tmp_path / "ro"
    with read_only_folder(ro):
        args = [a.format(noise=noise, ro=ro, result=result_path) for a in command]
        result = cli(*args)
        assert_one_line_error(result, str(ro))
        assert listing(ro) == []


@pytest.mark.parametrize("fmt", OUTPUTS)
def test_outputs_are_flushed_before_they_appear(
    cli, noise: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
):
    """Every file of the output was fsynced under a temporary name in the same folder,
    then renamed into place, then the folder itself was fsynced."""
    events: list[tuple[str, str]] = []
    real_fsync, real_publish = os.fsync, outputs._rename_noreplace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def publish(src: Path, dst: Path) -> None:
        events.append(("rename", str(Path(src).absolute())))
        real_publish(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(outputs, "_rename_noreplace", publish)
    out = tmp_path / OUTPUTS[fmt]
    assert cli("decompose", noise, "-o", out, *STRIPES).code == 0
    renames = [path for kind, path in events if kind == "rename"]
    assert len(renames) == 1 and Path(renames[0]).parent == tmp_path
    temporary = renames[0]
    flushed = {path for kind, path in events[: events.index(("rename", temporary))]}
    files = [out] if out.is_file() else [out, *out.rglob("*")]
    for file in files:
        assert temporary + str(file)[len(str(out)) :] in flushed, file
    assert events[-1] == ("fsync", str(tmp_path))


def test_ctrl_c_inside_a_write_keeps_the_old_output(
    cli, noise: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    out = tmp_path / "out.psd"
    assert cli("decompose", noise, "-o", out, *STRIPES).code == 0
    before = snapshot(out)

    def interrupted(stack: LayerStack, path: Path) -> None:
        path.write_bytes(b"8BPS half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(psd, "write", interrupted)
    result = cli("decompose", noise, "-o", out, *STRIPES, "--seed", "9", "--force")
    # Typer 0.29 turns KeyboardInterrupt into a silent exit 130 (the shell shows ^C).
    assert result.code == 130 and "Traceback" not in result.stderr
    assert snapshot(out) == before
    assert listing(tmp_path) == ["noise.png", "out.psd"]


@pytest.mark.parametrize("fmt", ["psd", "png"])
def test_a_killed_writers_temporary_is_swept_by_the_next_write(
    cli, noise: Path, tmp_path: Path, fmt: str
):
    """SIGKILL leaves the temporary (no clean-up runs); the next write of that output
    removes it when its process is gone — not a live writer's, not another host's."""
    out = tmp_path / OUTPUTS[fmt]
    gone = _dead_pid()
    host = outputs._host()
    left = {
        "dead": tmp_path / f".{out.name}.{host}.{gone}.abcd1234.tmp",
        "live": tmp_path / f".{out.name}.{host}.{os.getppid()}.efgh5678.tmp",
        "elsewhere": tmp_path / f".{out.name}.other-host.{gone}.ijkl9012.tmp",
    }
    for path in left.values():
        if fmt == "png":
            (path / "layers").mkdir(parents=True)
        else:
            path.write_bytes(b"8BPS half a file")
    assert cli("decompose", noise, "-o", out, *STRIPES).code == 0
    assert not left["dead"].exists()
    assert left["live"].exists() and left["elsewhere"].exists()
    assert formats.read(out).composite().shape == (200, 200, 4)


def _dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_psd_refuses_a_canvas_wider_than_psd_allows(cli, tmp_path: Path):
    """psd-tools would write a PSB under the .psd name, which it then cannot read back."""
    wide = tmp_path / "wide.png"
    row = np.zeros((1, 30_001, 3), np.uint8)
    row[0, 100:200] = 255
    Image.fromarray(row).save(wide)
    result = cli("decompose", wide, "-o", tmp_path / "wide.psd", *STRIPES)
    assert_one_line_error(result, "30000 px", ".ora")
    assert listing(tmp_path) == ["wide.png"]
    assert cli("decompose", wide, "-o", tmp_path / "wide.ora", *STRIPES).code == 0


HOSTILE_NAMES = [
    "../../escape",
    "/etc/passwd",
    "..",
    ".",
    "",
    "CON",
    "nul.txt",
    "LPT9.png",
    "a\x00b",
    "x" * 300,
    "🎨" * 100,  # 400 bytes of UTF-8: over NAME_MAX unless cut by bytes
    "名前" * 100,
    "trailing. ",
    "a/b",
    "a_b",  # the same file name as "a/b" once sanitised
]


def _named_stack() -> LayerStack:
    layers = []
    for index, name in enumerate(HOSTILE_NAMES):
        pixels = np.zeros((6, 20, 4), np.uint8)
        pixels[index % 6, index, :] = (255, 0, 0, 255)
        layers.append(Layer(name, pixels))
    group = Layer.group("../group", [Layer("../../child", layers[0].pixels.copy())])
    return LayerStack([*layers, group])


@pytest.mark.parametrize("fmt", OUTPUTS)
def test_hostile_layer_names_stay_inside_the_output(tmp_path: Path, fmt: str):
    """No name escapes the output, breaks a file system's limits or clashes with another."""
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    out = work / OUTPUTS[fmt]
    stack = _named_stack()
    formats.write(stack, out)
    inside = [p for p in tmp_path.rglob("*") if p not in (work, work.parent)]
    assert all(p == out or out in p.parents for p in inside)
    if fmt == "png":
        files = [p for p in out.rglob("*.png") if p.name != "composite.png"]
        assert len(files) == len(list(stack.walk()))  # a file per layer and group: no clash
        assert all(len(p.name.encode()) <= 255 for p in out.rglob("*"))
    back = [layer.name for layer in formats.read(out).walk()]
    expected = [layer.name for layer in stack.walk()]
    if fmt in {"ora", "pptx", "svg"}:  # XML cannot hold NUL: it becomes U+FFFD
        expected = [name.replace("\x00", "\ufffd") for name in expected]
    if fmt == "psd":  # Photoshop's limit
        expected = [name[: psd.MAX_NAME] for name in expected]
    assert back == expected


def test_safe_names_fit_every_file_system() -> None:
    for name in HOSTILE_NAMES:
        safe = pngstack.safe_name(name)
        assert safe not in {"", ".", ".."} and "/" not in safe and "\x00" not in safe
        assert len(safe.encode()) <= pngstack.MAX_NAME_BYTES


# -- --force replaces only what layerctl wrote ------------------------------------------


def _user_folder(folder: Path) -> None:
    (folder / "Documents").mkdir(parents=True)
    (folder / "Documents" / "thesis.txt").write_text("years of work")


@pytest.mark.parametrize(
    "case", ["folder-holding-input", "dir.psd", "compose-onto-folder", "dot", "stack-plus-file"]
)
def test_force_refuses_what_layerctl_did_not_write(
    cli, noise: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
):
    """Until now `decompose d/in.png -o d --force` left d/ holding only the PNG stack."""
    work = tmp_path / "work"
    work.mkdir()
    if case == "folder-holding-input":
        _user_folder(work / "d")
        (work / "d" / "in.png").write_bytes(noise.read_bytes())
        args = ["decompose", work / "d" / "in.png", "-o", work / "d", *STRIPES]
    elif case == "dir.psd":
        _user_folder(work / "dir.psd")
        args = ["decompose", noise, "-o", work / "dir.psd", *STRIPES]
    elif case == "compose-onto-folder":
        _user_folder(work / "flat.png")
        assert cli("decompose", noise, "-o", tmp_path / "r.psd", *STRIPES).code == 0
        args = ["compose", tmp_path / "r.psd", "-o", work / "flat.png"]
    elif case == "dot":
        _user_folder(work)
        monkeypatch.chdir(work)
        args = ["decompose", noise, "-o", ".", "--format", "png", *STRIPES]
    else:  # a PNG stack someone added a file to
        assert cli("decompose", noise, "-o", work / "stack", *STRIPES).code == 0
        (work / "stack" / "notes.txt").write_text("mine")
        args = ["decompose", noise, "-o", work / "stack", *STRIPES]
    before = {p: p.read_bytes() for p in work.rglob("*") if p.is_file()}
    result = cli(*args, "--force")
    assert_one_line_error(result, "refusing to replace")
    assert {p: p.read_bytes() for p in work.rglob("*") if p.is_file()} == before


def test_force_replaces_a_stack_and_a_file_layerctl_wrote(cli, noise: Path, tmp_path: Path):
    for out in (tmp_path / "stack", tmp_path / "out.psd"):
        assert cli("decompose", noise, "-o", out, *STRIPES).code == 0
        before = snapshot(out)
        assert cli("decompose", noise, "-o", out, *STRIPES, "--seed", "9", "--force").code == 0
        assert snapshot(out) != before and formats.read(out).metadata["seed"] != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noise.png", "out.psd", "stack"]
    # ...but not a stack that holds the input, even when every file in it is listed
    layer = tmp_path / "stack" / "00-Background.png"
    result = cli("decompose", layer, "-o", tmp_path / "stack", *STRIPES, "--force")
    assert_one_line_error(result, "holds the input")
    assert layer.is_file()


def test_force_replaces_a_plain_file_and_never_a_symlink(tmp_path: Path):
    plain, link = tmp_path / "plain.bin", tmp_path / "link.bin"
    plain.write_bytes(b"old")
    link.symlink_to(plain)
    with outputs.atomic_output(plain, force=True) as tmp:
        tmp.write_bytes(b"new")
    assert plain.read_bytes() == b"new"
    with (
        pytest.raises(OutputExists, match="symbolic link"),
        outputs.atomic_output(link, force=True) as tmp,
    ):
        tmp.write_bytes(b"new")
    assert link.is_symlink()


def test_atomic_output_leaves_nothing_on_failure(tmp_path: Path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError), outputs.atomic_output(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


# -- exclusive publication -------------------------------------------------------------


@pytest.fixture(params=["renameat2", "fallback"])
def publish_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test once with renameat2 and once with link+unlink / mkdir+rename."""
    if request.param == "fallback":
        monkeypatch.setattr(outputs, "_renameat2_function", lambda: None)
    elif outputs._renameat2_function() is None:
        pytest.skip("no renameat2 here")
    return request.param


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_racing_writers_one_wins_the_others_fail(tmp_path: Path, publish_mode: str, kind: str):
    """Both checked that race.psd was free; both publish at once: one wins, none replaces."""
    import threading

    target = tmp_path / "race.psd"
    writers = 6
    gate = threading.Barrier(writers)
    outcome: list[str] = []

    def write(number: int) -> None:
        try:
            with outputs.atomic_output(target) as tmp:
                if kind == "folder":
                    tmp.mkdir()
                    (tmp / "manifest.json").write_text(str(number))
                else:
                    tmp.write_text(str(number))
                gate.wait()  # every writer is past its check, none has published
            outcome.append("ok")
        except OutputExists as exc:
            outcome.append("exists" if "already exists" in str(exc) else str(exc))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcome) == ["exists"] * (writers - 1) + ["ok"]
    assert [p.name for p in tmp_path.iterdir()] == ["race.psd"]  # no temporaries left


def test_an_empty_folder_that_appears_is_not_replaced(tmp_path: Path, publish_mode: str):
    """rename(2) would silently replace an empty folder with ours."""
    target = tmp_path / "stack"
    with pytest.raises(OutputExists), outputs.atomic_output(target) as tmp:
        tmp.mkdir()
        (tmp / "manifest.json").write_text("{}")
        target.mkdir()  # someone else's, made after the check
    assert target.is_dir() and list(target.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == ["stack"]


def test_force_puts_back_what_changed_after_the_check(
    tmp_path: Path, publish_mode: str, monkeypatch: pytest.MonkeyPatch
):
    """The old output is checked again once swapped out; a changed one is put back."""
    from layerctl.formats import pngstack

    target = tmp_path / "stack"
    stack = LayerStack([Layer("a", np.full((4, 4, 4), 255, np.uint8))])
    formats.write(stack, target)
    with (
        pytest.raises(OutputExists, match="did not write"),
        outputs.atomic_output(target, force=True) as tmp,
    ):
        pngstack.write(stack, tmp)
        (target / "thesis.txt").write_text("added after the check")
    assert (target / "thesis.txt").read_text() == "added after the check"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stack"]


def test_two_decompose_processes_race_for_one_output(noise: Path, tmp_path: Path):
    """Two `layerctl decompose a.png -o race.psd` at once: exactly one writes."""
    import sys

    # 1 s per image: both have passed the early check before either publishes.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent), "STRIPES_DELAY": "1"}
    code = (
        "import sys, stripes_backend, pytest\n"
        "stripes_backend.register(pytest.MonkeyPatch())\n"
        "from layerctl.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    args = ["decompose", str(noise), "-o", str(tmp_path / "race.psd"), *STRIPES]
    procs = [
        subprocess.Popen([sys.executable, "-c", code, *args], env=env, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), p.stderr.read().decode()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 1], results
    assert "already exists" in next(err for code, err in results if code == 1)
    assert formats.read(tmp_path / "race.psd").composite().shape == (200, 200, 4)


# -- file names that are not UTF-8 -------------------------------------------------------

BYTE_NAME = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")  # Latin-1 bytes, as Linux keeps


@pytest.mark.skipif(os.name == "nt", reason="byte file names are a POSIX thing")
@pytest.mark.parametrize("fmt", OUTPUTS)
def test_names_that_are_not_utf8_work_everywhere(cli, noise: Path, tmp_path: Path, fmt: str):
    """Once every writer failed: "internal error: UnicodeEncodeError … surrogates not
    allowed". The files keep their real names; what people read says U+FFFD."""
    import json

    root = tmp_path / BYTE_NAME
    root.mkdir()
    (root / f"{BYTE_NAME}.png").write_bytes(noise.read_bytes())
    single = tmp_path / ("one " + BYTE_NAME + SUFFIX[fmt])
    result = cli("decompose", root / f"{BYTE_NAME}.png", "-o", single, "--preview", *STRIPES)
    assert result.code == 0, result.stderr
    assert "caf\ufffd \ufffd" in result.stderr  # messages are readable
    source = formats.read(single).metadata["source"]
    assert source["path"].endswith("caf\ufffd \ufffd.png")
    out, report = tmp_path / f"out {BYTE_NAME}", tmp_path / f"{BYTE_NAME}.html"
    args = ["--format", fmt, "--preview", "--report", report, "--json", *STRIPES]
    result = cli("decompose", root, "-o", out, *args)
    assert result.code == 0, result.stderr
    record = json.loads(result.stdout)  # valid UTF-8 JSON: no lone surrogates
    assert record["status"] == "ok" and record["input"].endswith("caf\ufffd \ufffd.png")
    written = out / (BYTE_NAME + SUFFIX[fmt])
    assert formats.read(written).composite().shape == (200, 200, 4)
    assert Path(f"{written}.preview.png").is_file()
    assert "caf\ufffd \ufffd" in report.read_text(encoding="utf-8")
    assert cli("decompose", root, "-o", out, *args).code == 0  # resumes: nothing to redo
    assert cli("compose", written, "-o", tmp_path / f"{BYTE_NAME}.png").code == 0
    assert cli("info", written, "--json").code == 0


def test_a_batch_onto_a_full_disk_names_each_input_and_leaves_nothing(
    cli, noise: Path, tmp_path: Path
):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a.png", "b.png"):
        (inputs / name).write_bytes(noise.read_bytes())
    with tmpfs(tmp_path / "disk", "size=200k") as mounted:
        if not mounted:
            pytest.skip("mounting a tmpfs needs root")
        result = cli("decompose", inputs, "-o", tmp_path / "disk" / "out", *STRIPES, "--json")
        assert result.code == 3
        for line, name in zip(result.stdout.splitlines(), ("a.png", "b.png"), strict=True):
            assert f"{inputs / name}: " in line and "No space left on device" in line
        assert listing(tmp_path / "disk") == []  # no temporary, no claim, no empty folder


def test_force_refuses_a_stack_with_a_symlink_in_it(tmp_path: Path):
    """Replacing it is safe, but a link is nothing layerctl writes: the folder was changed."""
    target = tmp_path / "stack"
    stack = LayerStack([Layer("a", np.full((4, 4, 4), 255, np.uint8))])
    formats.write(stack, target)
    (tmp_path / "elsewhere.png").write_bytes((target / "composite.png").read_bytes())
    (target / "composite.png").unlink()
    (target / "composite.png").symlink_to(tmp_path / "elsewhere.png")
    with pytest.raises(OutputExists, match="did not write"):
        formats.write(stack, target, force=True)
    assert (tmp_path / "elsewhere.png").is_file() and (target / "composite.png").is_symlink()
