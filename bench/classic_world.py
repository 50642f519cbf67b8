"""Score a backend on every bench family against the trivial answer and the targets.

    python bench/classic_world.py [--per-family 4] [--families synthetic,real] [--auto]
        [--backend classic] [--max-megapixels M] [--real-limit N] [--heldout] [--jobs N]
        [--json out.json] [--sheet out.png [--worst K]]

Families: ``synthetic/<category>`` (bench/synthetic.py) and ``designs/<family>``
(bench/designs.py, when present), ``--per-family`` seeds each; ``real``
(bench/real_files.py: every kept file, or the first ``--real-limit``) and, only with
``--heldout``, ``heldout`` — never look at those scores while tuning. ``--families``
takes family names or the group names ``synthetic``, ``designs``, ``real``, ``heldout``.
The sheet shows, per family, the ``--worst`` samples: the truth's layers, then ours.

Each sample's input is decomposed as the CLI does (``layerctl.decomposer.Decomposer``: the
backend, then ``make_lossless``) into as many layers as its truth has, or the ``-n
auto`` count with ``--auto``; colour under alpha 0 is cleared as files store it. Scores
are ``layerctl.evaluate``'s soft IoU and RGB L1 at merge levels 0 and 5, on every k-th
pixel, at most ``--score-megapixels`` of them (1 MP; 0 scores them all). The floor is
the trivial answer: the input as one layer plus empty layers up to the truth's count.
A family is flagged when the backend is worse than that floor on either metric, and
when it misses the targets (generated families: IoU >= 0.85, L1 <= 0.06; real files:
>= 0.85, <= 0.08). s/MP is CPU seconds per megapixel of decompose + lossless, one
thread per process.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

BENCH = Path(__file__).resolve().parent
TARGETS = {"generated": (0.85, 0.06), "real": (0.85, 0.08)}  # (min IoU, max L1) at level 0
GROUPS = ("synthetic", "designs", "real", "heldout")


def single_core() -> None:
    """Pin BLAS/OpenMP to one thread; must run before numpy is first imported."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


# --- where samples come from --------------------------------------------------------
def _bench_module(name: str) -> Any:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def _synthetic() -> Any:
    """bench/synthetic.py behind the ``FAMILIES`` / ``sample(family, seed)`` interface."""
    synthetic = _bench_module("synthetic")
    real_files = _bench_module("real_files")

    def sample(family: str, seed: int) -> Any:
        from layerctl.stack import composite

        layers = synthetic.design(family, seed)
        names = [f"{family} {i}" for i in range(len(layers))]
        return real_files.Sample(composite(layers), layers, names, f"synthetic {family} {seed}")

    return SimpleNamespace(FAMILIES=synthetic.CATEGORIES, sample=sample)


def source(group: str) -> Any | None:
    """The module (or stand-in) that serves ``group``'s families; None when absent."""
    if group == "synthetic":
        return _synthetic()
    if group == "designs":
        try:
            return _bench_module("designs")
        except ModuleNotFoundError:
            return None
    real_files = _bench_module("real_files")
    return SimpleNamespace(
        FAMILIES=real_files.FAMILIES if group == "real" else real_files.HELDOUT_FAMILIES,
        sample=real_files.sample,
        count=real_files.count,
    )


def plan(args: argparse.Namespace) -> list[tuple[str, str, int]]:
    """(group, family, seed) of every sample to run, in table order."""
    wanted = set(args.families.split(",")) if args.families else None
    groups = [g for g in GROUPS if g != "heldout" or args.heldout]
    jobs = []
    for group in groups:
        module = source(group)
        if module is None:
            print(f"bench/{group}.py not found: its families are skipped", file=sys.stderr)
            continue
        for family in module.FAMILIES:
            name = family if group in {"real", "heldout"} else f"{group}/{family}"
            if wanted and not wanted & {group, name}:
                continue
            if hasattr(module, "count"):
                seeds = range(module.count(family))[: args.real_limit]
            else:
                seeds = range(args.seed, args.seed + args.per_family)
            jobs += [(group, family, seed) for seed in seeds]
    return jobs


# --- one sample ---------------------------------------------------------------------
def trivial(image: Any, count: int) -> list[Any]:
    """The floor: the input as one background layer, then empty layers up to ``count``."""
    import numpy as np

    return [image, *(np.zeros_like(image) for _ in range(count - 1))]


def scores(layers: list[Any], truth: list[Any], merges: int = 5) -> dict[str, float]:
    """Soft IoU and RGB L1 at merge levels 0 and ``merges`` (a sample that stops early
    keeps its last)."""
    from layerctl.evaluate import evaluate_layers

    levels = evaluate_layers(layers, truth, merges)
    first, last = levels[0], levels[-1]
    return {
        "iou0": first["alpha_iou"],
        "l1_0": first["rgb_l1"],
        "iou5": last["alpha_iou"],
        "l1_5": last["rgb_l1"],
    }


def shrink(layers: list[Any], megapixels: float) -> list[Any]:
    """Every k-th pixel each way, so at most ``megapixels`` are left (0: all of them).

    Scoring a 4 MP stack, merges and all, costs more than decomposing it. A regular
    sample keeps the area means IoU and L1 are, and keeps disjoint layers disjoint: a
    box filter would spread alpha across neighbours, change the occlusion groups and
    with them the scores (0.76 -> 0.46 IoU on one real file; sampled: 0.76).
    """
    height, width = layers[0].shape[:2]
    step = math.ceil(math.sqrt(width * height / (megapixels * 1e6))) if megapixels else 1
    return layers if step <= 1 else [layer[::step, ::step] for layer in layers]


def decompose(image: Any, layers: int | str, backend: str) -> tuple[list[Any], int, float]:
    """(layers as the CLI writes them, layer count asked, CPU seconds)."""
    from layerctl.decomposer import Decomposer
    from layerctl.digests import pixels_sha256
    from layerctl.formats.canvas import clear_transparent
    from layerctl.imageio import InputImage

    decomposer = Decomposer.open(backend, layers=layers)
    asked = decomposer.layer_count(image)
    source = InputImage(image, Path("<bench>"), pixels_sha256(image))
    start = time.process_time()
    stack = decomposer(source)
    seconds = time.process_time() - start
    return [clear_transparent(layer.pixels) for layer in stack.leaves()], asked, seconds


def draw(group: str, family: str, seed: int, max_megapixels: float | None) -> Any:
    """One sample; generators that take ``max_megapixels`` (bench/designs.py) get it."""
    module = source(group)
    if max_megapixels and "max_megapixels" in inspect.signature(module.sample).parameters:
        return module.sample(family, seed, max_megapixels=max_megapixels)
    return module.sample(family, seed)


@dataclass(frozen=True)
class Settings:
    """How every sample is run; picklable for the worker processes."""

    backend: str = "classic"
    auto: bool = False  # the -n auto count instead of the truth's
    max_megapixels: float | None = None  # cap on generated sizes (bench/designs.py)
    score_megapixels: float = 1.0  # score every k-th pixel, this many at most; 0: all


def run_one(job: tuple[str, str, int], settings: Settings) -> dict[str, Any]:
    """Decompose and score one sample; the record the table and --json are made of."""
    group, family, seed = job
    sample = draw(group, family, seed, settings.max_megapixels)
    image, truth = sample.image, list(sample.layers)
    count = "auto" if settings.auto else len(truth)
    ours, asked, seconds = decompose(image, count, settings.backend)
    height, width = image.shape[:2]
    megapixels = width * height / 1e6
    small = settings.score_megapixels
    truth = shrink(truth, small)
    floor = scores(shrink(trivial(image, len(truth)), small), truth, merges=0)
    return {
        "group": group,
        "family": family if group in {"real", "heldout"} else f"{group}/{family}",
        "seed": seed,
        "source": sample.source,
        "size": [width, height],
        "truth_layers": len(truth),
        "asked_layers": asked,
        "layers": len(ours),
        **scores(shrink(ours, small), truth),
        "trivial_iou0": floor["iou0"],
        "trivial_l1_0": floor["l1_0"],
        "s_per_mp": seconds / megapixels,
    }


def _warm(backend: str) -> None:
    """Load the backend and pay its lazy imports once per process, outside the timings."""
    import numpy as np

    single_core()
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass
    image = np.zeros((64, 64, 4), np.uint8)
    image[..., 3] = 255
    image[16:48, 16:48, 0] = 255
    decompose(image, 2, backend)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    jobs = [job for job in plan(args) if _fits(job, args.max_megapixels)]
    for group in {g for g, _, _ in jobs if g in {"real", "heldout"}}:
        _bench_module("real_files").build(group)  # before workers read the cache at once
    settings = Settings(args.backend, args.auto, args.max_megapixels, args.score_megapixels)
    records: list[dict[str, Any]] = []
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, initializer=_warm, initargs=(args.backend,)) as pool:
            futures = [pool.submit(run_one, job, settings) for job in jobs]
            for future in futures:
                records.append(_progress(future.result(), len(records), len(jobs)))
    else:
        _warm(args.backend)
        for job in jobs:
            records.append(_progress(run_one(job, settings), len(records), len(jobs)))
    return records


def _fits(job: tuple[str, str, int], max_megapixels: float | None) -> bool:
    """Skip samples over ``max_megapixels`` (only real files vary in size enough to matter)."""
    group, family, seed = job
    if max_megapixels is None or group not in {"real", "heldout"}:
        return True
    record = _bench_module("real_files").kept(family)[seed]
    return record["size"][0] * record["size"][1] / 1e6 <= max_megapixels


def _progress(record: dict[str, Any], done: int, total: int) -> dict[str, Any]:
    print(
        f"[{done + 1}/{total}] {record['family']} {record['seed']}: IoU {record['iou0']:.3f} "
        f"L1 {record['l1_0']:.3f} (trivial {record['trivial_iou0']:.3f} "
        f"{record['trivial_l1_0']:.3f}) {record['s_per_mp']:.1f} s/MP",
        file=sys.stderr,
    )
    return record


# --- report -------------------------------------------------------------------------
def summary(records: list[dict[str, Any]]) -> dict[str, float]:
    """Means over the samples of one table row."""
    import numpy as np

    keys = ("iou0", "l1_0", "iou5", "l1_5", "trivial_iou0", "trivial_l1_0", "s_per_mp")
    row = {k: float(np.mean([r[k] for r in records])) for k in keys}
    row["n"] = len(records)
    row["count_within_1"] = float(
        # the layers the result holds: a backend that never pads may return fewer
        np.mean([abs(r["layers"] - r["truth_layers"]) <= 1 for r in records])
    )
    return row


def flags(row: dict[str, float], kind: str) -> str:
    """Why a row fails: worse than the trivial answer, or short of the target."""
    iou_min, l1_max = TARGETS[kind]
    out = []
    if row["iou0"] < row["trivial_iou0"]:
        out.append("IoU<trivial")
    if row["l1_0"] > row["trivial_l1_0"]:
        out.append("L1>trivial")
    if row["iou0"] < iou_min or row["l1_0"] > l1_max:
        out.append(f"target({iou_min}/{l1_max})")
    return " ".join(out)


def rows(records: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, float], str]]:
    """(label, means, flags) per family, then the generated families together and real."""
    families: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        families.setdefault(r["family"], []).append(r)
    for family, items in families.items():
        kind = "real" if items[0]["group"] in {"real", "heldout"} else "generated"
        row = summary(items)
        yield family, row, flags(row, kind)
    generated = [r for r in records if r["group"] in {"synthetic", "designs"}]
    if generated:
        row = summary(generated)
        yield "ALL generated", row, flags(row, "generated")
    for group in ("real", "heldout"):
        items = [r for r in records if r["group"] == group]
        if items:
            row = summary(items)
            yield f"ALL {group}", row, flags(row, "real")


def report(records: list[dict[str, Any]], auto: bool) -> list[dict[str, Any]]:
    head = (
        f"{'family':<30} {'n':>4} {'IoU@0':>6} {'L1@0':>6} {'IoU@5':>6} {'L1@5':>6} "
        f"{'trvIoU':>6} {'trvL1':>6} {'s/MP':>6}" + (f" {'n±1':>5}" if auto else "") + "  flags"
    )
    print(head)
    table = []
    for label, row, why in rows(records):
        if label.startswith("ALL"):
            print("-" * len(head))
        print(
            f"{label:<30} {row['n']:>4} {row['iou0']:6.3f} {row['l1_0']:6.3f} "
            f"{row['iou5']:6.3f} {row['l1_5']:6.3f} {row['trivial_iou0']:6.3f} "
            f"{row['trivial_l1_0']:6.3f} {row['s_per_mp']:6.2f}"
            + (f" {row['count_within_1']:5.0%}" if auto else "")
            + f"  {why}"
        )
        table.append({"row": label, **row, "flags": why})
    return table


# --- contact sheets -----------------------------------------------------------------
def sheets(records: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """For each family's ``--worst`` samples (by LayerD cost at level 0): truth's sheet, ours."""
    from layerctl.preview import contact_sheet
    from layerctl.stack import Layer, LayerStack

    classic_quality = _bench_module("classic_quality")
    families: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        families.setdefault(r["family"], []).append(r)
    worst = []
    for items in families.values():
        worst += sorted(items, key=lambda r: r["iou0"] - r["l1_0"])[: args.worst]
    pictures = []
    for r in worst:
        sample = draw(r["group"], r["family"].split("/")[-1], r["seed"], args.max_megapixels)
        ours, _, _ = decompose(sample.image, r["asked_layers"], args.backend)
        pairs = zip(sample.names, sample.layers, strict=True)
        truth = LayerStack([Layer(name, px) for name, px in pairs])
        mine = LayerStack([Layer(f"{i}", px) for i, px in enumerate(ours)])
        where = f"{r['family']} #{r['seed']} ({r['source']})"
        pictures.append(contact_sheet(truth, None, f"TRUTH {where}")[0])
        score = f"IoU {r['iou0']:.3f} L1 {r['l1_0']:.3f}"
        pictures.append(contact_sheet(mine, sample.image, f"OURS {where}: {score}")[0])
    classic_quality._save_sheets(pictures, args.sheet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-family", type=int, default=4, help="seeds per generated family")
    parser.add_argument("--seed", type=int, default=0, help="first seed of generated families")
    parser.add_argument("--real-limit", type=int, help="at most this many real files")
    parser.add_argument("--families", help="comma-separated family or group names")
    parser.add_argument("--backend", default="classic")
    parser.add_argument("--auto", action="store_true", help="the -n auto count, not the truth's")
    parser.add_argument(
        "--max-megapixels", type=float, help="skip larger real files; cap generated sizes"
    )
    parser.add_argument("--heldout", action="store_true", help="also the held-out real files")
    parser.add_argument(
        "--score-megapixels", type=float, default=1.0, help="sampled MP to score; 0: all"
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--json", type=Path, help="write per-sample records here")
    parser.add_argument("--sheet", type=Path, help="contact sheets of each family's worst")
    parser.add_argument("--worst", type=int, default=1, help="samples per family on the sheet")
    args = parser.parse_args()
    single_core()
    started = time.monotonic()
    records = run(args)
    if not records:
        raise SystemExit("no samples: check --families")
    table = report(records, args.auto)
    print(f"{len(records)} samples in {time.monotonic() - started:.0f} s wall, {args.jobs} job(s)")
    if args.json:
        args.json.write_text(json.dumps({"rows": table, "samples": records}, indent=1) + "\n")
    if args.sheet:
        sheets(records, args)


if __name__ == "__main__":
    main()
