"""Our qwen backend against diffusers' QwenImageLayeredPipeline on one checkpoint folder.

    python bench/qwen_tiny.py [--weights DIR] [--steps 4] [--layers 2] [--device cpu]

Without ``--weights`` it builds the tests' tiny random checkpoint in a temporary folder.
Each engine runs in its own fresh process (so peak RSS is its own): load, one warm-up
decomposition, then ``--repeat`` timed ones with the same image, prompt, seed and
settings. Prints load time, the best end-to-end wall time, the best per-run median time
per sampling step (cond + uncond) and peak RSS, then the ratio diffusers / ours. The best
of several runs, because a shared machine's load varies the rest by several times.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENGINES = ("ours", "diffusers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, help="checkpoint folder (default: tiny, built)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is shown")
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2 (step times are taken between steps)")
    if args.worker:
        print(json.dumps(_measure(args.worker, args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights or _tiny(Path(tmp) / "tiny-qwen")
        rows = {engine: _run_worker(engine, weights, args) for engine in ENGINES}
    _print_table(rows, args)


def _tiny(folder: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from tiny_qwen import build_tiny_checkpoint

    return build_tiny_checkpoint(folder)


def _run_worker(engine: str, weights: Path, args: argparse.Namespace) -> dict:
    command = [
        sys.executable, __file__, "--worker", engine, "--weights", str(weights),
        "--steps", str(args.steps), "--layers", str(args.layers), "--device", args.device,
        "--repeat", str(args.repeat),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{engine} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure(engine: str, args: argparse.Namespace) -> dict:
    """Load, warm up, then time one decomposition; step times from the step callback."""
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (480, 640, 4), dtype=np.uint8)
    image[..., 3] = 255
    marks: list[float] = []

    def mark() -> None:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        marks.append(time.perf_counter())

    start = time.perf_counter()
    run = _ours(args, mark) if engine == "ours" else _diffusers(args, mark)
    load = time.perf_counter() - start
    run(image)  # warm-up
    walls, step_medians = [], []
    for _ in range(args.repeat):
        marks.clear()
        mark()
        run(image)
        walls.append(time.perf_counter() - marks[0])
        # marks: start, then the end of each step; the first interval also holds the
        # once-per-image work (prompt embeddings, condition latents), so it is left out.
        steps = [b - a for a, b in itertools.pairwise(marks[1:])][: args.steps - 1]
        step_medians.append(statistics.median(steps))
    return {
        "load_s": load,
        "wall_s": min(walls),
        "step_ms": 1000 * min(step_medians),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _ours(args: argparse.Namespace, mark):
    from layerctl.backends.model_options import QwenRequest, QwenSettings
    from layerctl.backends.qwen import QwenBackend

    backend = QwenBackend(QwenSettings(weights=str(args.weights), device=args.device))
    request = QwenRequest(
        layers=args.layers, seed=1, prompt="shapes", steps=args.steps, cfg_normalize=True
    )
    return lambda image: backend.decompose(image, request, callback=lambda i, x: mark())


def _diffusers(args: argparse.Namespace, mark):
    import torch
    from diffusers import QwenImageLayeredPipeline
    from PIL import Image

    dtype = torch.float32 if args.device == "cpu" else torch.bfloat16
    pipe = QwenImageLayeredPipeline.from_pretrained(args.weights, processor=None, torch_dtype=dtype)
    pipe.to(args.device)
    pipe.set_progress_bar_config(disable=True)

    def step_end(pipe, i, t, kwargs):
        mark()
        return kwargs

    def run(image):
        return pipe(
            image=Image.fromarray(image, "RGBA"),
            prompt="shapes",
            negative_prompt=" ",
            layers=args.layers,
            num_inference_steps=args.steps,
            cfg_normalize=True,
            generator=torch.Generator().manual_seed(1),
            callback_on_step_end=step_end,
        )

    return run


def _print_table(rows: dict[str, dict], args: argparse.Namespace) -> None:
    print(f"qwen backend vs diffusers: {args.layers} layers, {args.steps} steps, {args.device}")
    print(f"{'':12}{'load s':>10}{'wall s':>10}{'step ms':>10}{'peak RSS MB':>14}")
    for engine, row in rows.items():
        print(
            f"{engine:12}{row['load_s']:10.2f}{row['wall_s']:10.2f}"
            f"{row['step_ms']:10.1f}{row['peak_rss_mb']:14.0f}"
        )
    ours, ref = rows["ours"], rows["diffusers"]
    print(
        f"{'ref / ours':12}{ref['load_s'] / ours['load_s']:10.2f}"
        f"{ref['wall_s'] / ours['wall_s']:10.2f}{ref['step_ms'] / ours['step_ms']:10.2f}"
        f"{ref['peak_rss_mb'] / ours['peak_rss_mb']:14.2f}"
    )


if __name__ == "__main__":
    main()
