"""End-to-end speed and peak memory of the weights-free path, against issue 13's targets.

    python bench/classic_speed.py [--sizes 1,3,12] [--repeat 3] [--profile] [--work DIR]
                                  [--ground flat|photo|text]

For each size, a seeded poster (``synthetic.design("poster", …)``: background, drop-
shadowed shape, icon, overlay, text) is written as a PNG, then decomposed by the CLI in
a fresh process per run — ``layerctl decompose in.png -n 4 -o out.psd --backend
classic`` — so reading, the backend, ``make_lossless`` and the PSD writer all count,
and so does start-up. Prints the median wall time per megapixel and the child's peak
RSS (``ru_maxrss`` from ``os.wait4``) beside the targets: 2 s/MP and
200 MB + 120 MB/MP. The child's CPU seconds are printed too: on a machine shared with
other jobs they move less than the wall time does. ``--profile`` adds one run under
cProfile per size and prints the share of read / backend / make_lossless / write in it.

The environment is used as it is: where OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set
(this machine sets them), they are printed, not changed.
"""

from __future__ import annotations

import argparse
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import design

SIZES = {1: (1152, 864), 3: (2048, 1536), 12: (4000, 3000)}  # MP -> (width, height), 4:3
TARGET_S_PER_MP = 2.0
TARGET_BASE_MB, TARGET_MB_PER_MP = 200.0, 120.0
# cProfile function keys (file suffix, name) for each stage of the path.
STAGES = {
    "read": ("layerctl/imageio.py", "read_image"),
    "backend": ("backends/classic/__init__.py", "decompose"),
    "make_lossless": ("layerctl/refine.py", "make_lossless"),
    "write": ("layerctl/formats/__init__.py", "write"),
}


def poster(size: tuple[int, int], path: Path, ground: str = "flat") -> Path:
    """The bench poster at ``size`` (width, height), written once per work folder;
    ``ground`` "photo": its elements on scikit-image's astronaut instead of its flat
    ground (the path that lifts designed elements off a photograph); "text": on a white
    page full of small words in two inks (thousands of glyph pieces to group)."""
    if not path.exists():
        from layerctl.stack import composite

        layers = design("poster", 1, size)
        if ground == "photo":
            from skimage import data

            photo = Image.fromarray(data.astronaut()).resize(size, Image.Resampling.BICUBIC)
            layers[0] = np.asarray(photo.convert("RGBA"))
        elif ground == "text":
            layers[0] = text_page(size)
        Image.fromarray(composite(layers), "RGBA").save(path)
    return path


def text_page(size: tuple[int, int]) -> np.ndarray:
    """A white page of seeded random words, 16 px high, one in five in red."""
    from PIL import ImageDraw, ImageFont

    rng = np.random.default_rng(0)
    font = ImageFont.load_default(size=16)
    page = Image.new("RGBA", size, (255, 255, 255, 255))
    pen = ImageDraw.Draw(page)
    for y in range(20, size[1] - 24, 22):
        x = 20.0
        while x < size[0] - 120:
            word = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), rng.integers(2, 9)))
            ink = (200, 40, 40) if rng.random() < 0.2 else (20, 20, 20)
            pen.text((x, y), word, font=font, fill=ink)
            x += pen.textlength(word + " ", font=font)
    return np.asarray(page)


def command(image: Path, out: Path) -> list[str]:
    return [
        *("-m", "layerctl", "decompose", str(image), "-n", "4", "-o", str(out)),
        *("--backend", "classic", "--force", "--quiet"),
    ]


def run_once(image: Path, out: Path) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MB) of one CLI run in a fresh process."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, *command(image, out)])
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"layerctl failed on {image} (exit {child.returncode})")
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024.0  # ru_maxrss is in KiB on Linux


def profile_once(image: Path, out: Path, stats_path: Path) -> dict[str, float]:
    """Share of the profiled total spent in each of STAGES (cumulative time)."""
    subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(stats_path), *command(image, out)],
        check=True,
    )
    profile = pstats.Stats(str(stats_path))
    stats, total = profile.stats, profile.total_tt
    shares = {}
    for stage, (suffix, name) in STAGES.items():
        hits = [
            ct
            for (file, _, func), (_, _, _, ct, _) in stats.items()
            if func == name and file.endswith(suffix)
        ]
        shares[stage] = max(hits, default=0.0) / total
    shares["total_s"] = total
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,3,12", help="megapixels, from 1, 3, 12")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also one cProfile run per size")
    parser.add_argument("--work", type=Path, help="keep posters and outputs here")
    parser.add_argument("--ground", choices=("flat", "photo", "text"), default="flat")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    blas = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")}
    print(f"environment as is: {blas or 'no OPENBLAS_* set'}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(
            f"| size | pixels | wall s/MP (median of {args.repeat}) | CPU s/MP | target "
            "| peak RSS MB | target MB | bytes/px over 200 MB | make_lossless share |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for mp in sizes:
            w, h = SIZES[mp]
            image = poster((w, h), work / f"poster-{args.ground}-{mp}mp.png", args.ground)
            megapixels = w * h / 1e6
            runs = [run_once(image, work / f"out-{mp}mp.psd") for _ in range(args.repeat)]
            wall, cpu, peak = (statistics.median(r[k] for r in runs) for k in range(3))
            share = "–"
            if args.profile:
                shares = profile_once(image, work / f"out-{mp}mp.psd", work / f"{mp}mp.prof")
                share = f"{shares['make_lossless']:.0%}"
                split = ", ".join(f"{k} {v:.0%}" for k, v in shares.items() if k != "total_s")
                print(f"  profile {mp} MP ({shares['total_s']:.1f} s under cProfile): {split}")
            per_px = max(peak - TARGET_BASE_MB, 0.0) * 1e6 / (w * h)
            target_mb = TARGET_BASE_MB + TARGET_MB_PER_MP * megapixels
            print(
                f"| {mp} MP | {w}x{h} | {wall / megapixels:.2f} | {cpu / megapixels:.2f} "
                f"| {TARGET_S_PER_MP:.1f} "
                f"| {peak:.0f} | {target_mb:.0f} | {per_px:.0f} | {share} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
