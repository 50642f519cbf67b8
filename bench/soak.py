"""Soak: many images through the classic backend; leaks, or kills and reruns.

Usage: python bench/soak.py [--images 200] [--size 160] [--json]
Decomposes synthetic flat graphics one after another through the batch path (read,
decompose, write PSD / ORA / PNG stack in turn) and prints resident memory (RSS) and
open file descriptors at the start, after the first image (imports and caches warm)
and at the end. With --json, one line with the same numbers.

Usage: python bench/soak.py --kills 10 [--images 30] [--every 5] [--seed 0]
                           [--workers 2] [--format psd|ora|png]
Runs ``layerctl decompose IN -o OUT --workers 2`` and, a random 0.5–1.5 × ``--every``
seconds after its first worker starts, sends it SIGKILL, SIGTERM or SIGINT (seeded);
then reruns the same command, killing again, until ``--kills`` kills are spent and a
run exits 0. It checks that the outputs equal a clean run's (layer names, pixels and
metadata: ORA zips differ in their members' timestamps), and that no process of any
run and no temporary is left. Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from PIL import Image, ImageDraw

from layerctl import batch, formats
from layerctl.decomposer import Decomposer

SUFFIXES = [".psd", ".ora", ""]  # a PNG stack is a folder


def make_image(path: Path, seed: int, size: int) -> None:
    """A flat graphic: a plain background with 2–4 rectangles and discs, different per seed."""
    rng = np.random.default_rng(seed)
    width, height = size, size * 3 // 4
    image = Image.new("RGB", (width, height), tuple(int(c) for c in rng.integers(170, 256, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 5))):
        x0, y0 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
        x1 = x0 + int(rng.integers(width // 6, width // 2))
        y1 = y0 + int(rng.integers(height // 6, height // 2))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x1, y1), fill=tuple(int(c) for c in rng.integers(0, 150, 3)))
    image.save(path)


def sample(process: psutil.Process) -> dict[str, float]:
    gc.collect()
    return {"rss_mb": process.memory_info().rss / 2**20, "fds": process.num_fds()}


def soak(images: int, size: int, folder: Path) -> dict[str, object]:
    """Run ``images`` jobs in this process; the samples at start, after one and at the end."""
    process = psutil.Process()
    decomposer = Decomposer.open("classic", layers=4)
    start = sample(process)
    samples = []
    for index in range(images):
        source = folder / f"in{index}.png"
        make_image(source, index, size)
        output = folder / f"out{index}{SUFFIXES[index % len(SUFFIXES)]}"
        result = batch.attempt(batch.Job(source, output), decomposer)
        if result.status != "ok":
            raise SystemExit(f"{source}: {result.error}")
        source.unlink()  # keep the disk small; the outputs go too
        shutil.rmtree(output) if output.is_dir() else output.unlink()
        samples.append(sample(process))
    return {"images": images, "start": start, "warm": samples[0], "end": samples[-1]}


SIGNALS = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT]
# How a killed run exits: layerctl maps SIGTERM and SIGINT to 143 and 130; -2 is a
# SIGINT that came before layerctl's own handling.
STOPPED = {-signal.SIGKILL, 128 + signal.SIGTERM, 128 + signal.SIGINT, -signal.SIGINT}


def kill_soak(
    images: int, size: int, kills: int, every: float, seed: int, folder: Path, extra: list[str]
) -> dict[str, Any]:
    """A clean run, then runs of the same command into another folder, killed until
    ``kills`` are spent and one exits 0; the runs and what the checks found. ``extra``:
    more options for ``layerctl decompose`` (``--workers 2``)."""
    inputs = folder / "in"
    inputs.mkdir()
    for index in range(images):
        make_image(inputs / f"in{index:03d}.png", index, size)

    def command(out: Path) -> list[str]:
        args = ["decompose", str(inputs), "-o", str(out), "-b", "classic"]
        return [sys.executable, "-m", "layerctl", *args, *extra]

    clean = run_once(command(folder / "clean"), None, 0.0, folder / "clean")
    if clean["rc"] != 0:
        raise SystemExit(f"the clean run failed: {clean['stderr']}")
    rng = random.Random(seed)
    runs = []
    while True:
        sig, delay = rng.choice(SIGNALS), rng.uniform(0.5 * every, 1.5 * every)
        spent = sum(run["signal"] is not None for run in runs)
        runs.append(
            run_once(command(folder / "out"), sig if spent < kills else None, delay, folder / "out")
        )
        if runs[-1]["rc"] not in STOPPED:  # done (0), or failed: a run not killed ends
            break
    equal, identical = compare(folder / "clean", folder / "out")
    return {
        "images": images,
        "options": extra,
        "clean_s": clean["seconds"],
        "runs": runs,
        "kills": {s.name: sum(r["signal"] == s.name for r in runs) for s in SIGNALS},
        "outputs": len(outputs(folder / "out")),
        "equal": equal,
        "byte_identical": identical,
        "survivors": [p for run in [clean, *runs] for p in run["survivors"]],
        "temporaries": hidden(folder / "out"),
        "ok": runs[-1]["rc"] == 0
        and equal == images
        and not any(run["survivors"] or run["temporaries"] for run in [clean, *runs]),
    }


def run_once(
    command: list[str], sig: signal.Signals | None, delay: float, out: Path
) -> dict[str, Any]:
    """Run ``command``; send ``sig`` ``delay`` s after its first worker appears, if it still
    runs. Every process of its tree is tracked, and must be gone within 30 s of its end."""
    start = time.monotonic()
    with tempfile.TemporaryFile("w+") as stderr:  # a pipe could fill up and stall the run
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        tree, worker_at, sent, writing = watch(proc, sig, delay, out)
        ended = time.monotonic()
        stderr.seek(0)
        last = stderr.read().strip().splitlines()[-1:]
    left = list(tree)
    while left and time.monotonic() < ended + 30:
        left = [p for p in left if running(p)]
        time.sleep(0.02)
    return {
        "signal": sig.name if sent else None,
        "after_s": round(sent - worker_at, 2) if sent else None,
        "rc": proc.returncode,
        "seconds": round(ended - start, 2),
        "exit_s": round(ended - sent, 2) if sent else None,  # signal to the parent's end
        "tree_gone_s": round(time.monotonic() - ended, 2),  # parent's end to its tree's
        "processes": len(tree) + 1,
        "writing": writing,  # temporaries present when the signal was sent
        "survivors": [cmdline(p) for p in left],
        "done": len(outputs(out)),
        "temporaries": hidden(out),
        "stderr": last,
    }


def watch(
    proc: subprocess.Popen, sig: signal.Signals | None, delay: float, out: Path
) -> tuple[list[psutil.Process], float | None, float | None, int]:
    """Until ``proc`` ends: (every process below it, when its first worker appeared, when
    ``sig`` was sent, how many outputs were being written then). The tree is sampled
    every 20 ms, and once more right before the signal."""
    parent = psutil.Process(proc.pid)
    tree: dict[int, psutil.Process] = {}
    worker_at = sent = None
    writing = 0
    while proc.poll() is None:
        with contextlib.suppress(psutil.Error):
            tree |= {child.pid: child for child in parent.children(recursive=True)}
        if worker_at is None and any("spawn_main" in cmdline(p) for p in tree.values()):
            worker_at = time.monotonic()
        if sig is not None and sent is None and worker_at and time.monotonic() > worker_at + delay:
            writing = len(hidden(out))
            proc.send_signal(sig)
            sent = time.monotonic()
        time.sleep(0.02)
    return list(tree.values()), worker_at, sent, writing


def cmdline(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def running(process: psutil.Process) -> bool:
    """Alive and not a zombie: an orphan's exit may wait for a busy init to reap it."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def outputs(folder: Path) -> list[Path]:
    """The finished outputs in ``folder`` (hidden entries are not)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def hidden(folder: Path) -> list[str]:
    """What no finished output is: imageio's temporaries (``.NAME.HOST.PID.*.tmp``) and
    the ``.NAME.old`` of a replaced folder."""
    return sorted(p.name for p in folder.rglob(".*")) if folder.is_dir() else []


def compare(clean: Path, out: Path) -> tuple[int, int]:
    """(outputs whose layers equal the clean run's, outputs equal byte for byte)."""
    names = [p.name for p in outputs(clean)]
    if names != [p.name for p in outputs(out)]:
        return 0, 0
    equal = identical = 0
    for name in names:
        a, b = formats.read(clean / name), formats.read(out / name)
        left, right = list(a.walk()), list(b.walk())
        equal += (
            a.metadata == b.metadata
            and [x.name for x in left] == [y.name for y in right]
            and all(np.array_equal(x.pixels, y.pixels) for x, y in zip(left, right, strict=True))
        )
        identical += same_bytes(clean / name, out / name)
    return equal, identical


def same_bytes(a: Path, b: Path) -> bool:
    """Files, or folders (PNG stacks) file by file."""
    if a.is_file():
        return b.is_file() and a.read_bytes() == b.read_bytes()
    names = sorted(p.relative_to(a) for p in a.rglob("*"))
    return names == sorted(p.relative_to(b) for p in b.rglob("*")) and all(
        same_bytes(a / name, b / name) for name in names if (a / name).is_file()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, help="default 200; 30 with --kills")
    parser.add_argument("--size", type=int, default=160, help="width in pixels (height 3/4)")
    parser.add_argument("--json", action="store_true", help="one JSON line instead of a table")
    parser.add_argument("--kills", type=int, default=0, help="kill a --workers batch, rerun it")
    parser.add_argument(
        "--every", type=float, default=5.0, help="mean s from a run's first worker to its kill"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--format", default="psd", choices=["psd", "ora", "png"])
    parser.add_argument("--seed", type=int, default=0, help="of the signals and delays")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="layerctl-soak-") as folder:
        if args.kills:
            extra = ["--workers", str(args.workers), "--format", args.format]
            report = kill_soak(
                args.images or 30, args.size, args.kills, args.every, args.seed, Path(folder), extra
            )
        else:
            report = soak(args.images or 200, args.size, Path(folder))
    if args.json:
        print(json.dumps(report))
    elif args.kills:
        print_kills(report, args.size)
    else:
        print(f"{report['images']} images of {args.size}x{args.size * 3 // 4}, classic backend")
        for name in ["start", "warm", "end"]:
            numbers = report[name]
            print(f"{name:>6}: RSS {numbers['rss_mb']:7.1f} MB   open fds {numbers['fds']:3d}")
    if not report.get("ok", True):
        raise SystemExit(1)


def print_kills(report: dict[str, Any], size: int) -> None:
    print(
        f"{report['images']} images of {size}x{size * 3 // 4}, classic backend, "
        f"{' '.join(report['options'])}; clean run {report['clean_s']:.1f} s"
    )
    print("run  signal   after s  writing  exit  to exit s  tree gone s  outputs  temporaries")
    for number, run in enumerate(report["runs"], 1):
        after = f"{run['after_s']:7.2f}" if run["signal"] else "      -"
        to_exit = f"{run['exit_s']:9.2f}" if run["signal"] else "        -"
        print(
            f"{number:3d}  {run['signal'] or '-':7s} {after}  {run['writing']:7d}  {run['rc']:4d}"
            f"  {to_exit}"
            f"  {run['tree_gone_s']:11.2f}  {run['done']:7d}  {len(run['temporaries']):11d}"
        )
    print(
        f"outputs {report['outputs']}, equal to the clean run's {report['equal']} "
        f"(byte for byte {report['byte_identical']}); processes left {len(report['survivors'])}, "
        f"temporaries left {len(report['temporaries'])}: {'ok' if report['ok'] else 'FAILED'}"
    )


if __name__ == "__main__":
    main()
