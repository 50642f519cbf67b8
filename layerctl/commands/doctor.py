"""``layerctl doctor``: what this machine can run, and how each backend that plans its
memory (``capabilities.MemoryPlanner``: qwen) would place its model here.

``--json`` prints one object (sizes in GB, 10⁹ bytes, one decimal; null where unknown)::

    {"python": "3.12.3",
     "host_available_gb": 30.1,
     "torchvision": null,
     "weights": {"found": false, "path": null, "problems": ["…"]},
     "plans": {"qwen": {
         "device": {"name": "cuda", "torch": "2.13.0", "note": "…",
                    "model": "…", "capability": "9.0", "free_gb": 80.1, "total_gb": 85.0},
         "model_gb": {"source": "weights folder", "text_encoder": 16.6,
                      "transformer": 40.9, "vae": 0.3},
         "placements": {"640": {"mode": "none", "need_gb": 48.0, "reason": "…"},
                        "1024": {…}},
         "formats": {"Q4_0": {"640": {"mode": "encoder-cpu", …}, "1024": {…}}, …}}}}

``torchvision`` is null unless an installed torchvision fails to import (the usual
wheel built for another torch), which breaks every diffusers model: then what to do.
``device`` has ``note`` only where something is missing, ``model``/``capability``/``free_gb``
/``total_gb`` only for a CUDA card; ``need_gb`` is null off CUDA; ``formats`` (what auto
would pick with the released transformer as bf16, fp8mixed, Q8_0, Q4_K_M, Q4_0) only for
a CUDA card. Exit 0 whatever it finds
(missing weights are a finding, not a failure); ``-q`` silences messages on stderr.
"""

from __future__ import annotations

import json
import platform
from typing import Any

import typer

from layerctl.options import Base, Device, Json, Quiet, Weights

GB = 10**9


def doctor(
    weights: Weights = None,
    base: Base = None,
    device: Device = "auto",
    layers: int = typer.Option(4, "--layers", "-n", min=1, max=64, help="Layers to plan for."),
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Check the device, memory and weights, and show what --offload auto would pick."""
    from layerctl import console

    console.state.quiet = quiet or console.state.quiet
    report = check(weights, device, layers, base)
    typer.echo(json.dumps(report, indent=2) if json_out else _text(report))


def check(weights: str | None, device: str, layers: int, base: str | None = None) -> dict[str, Any]:
    """The report ``--json`` prints (the shape is in the module docstring)."""
    from layerctl.backends import base as backends
    from layerctl.backends import capabilities
    from layerctl.budget import host_available

    values = {"weights": weights, "device": device, "base": base}
    planners = capabilities.backends_with(capabilities.MemoryPlanner)
    plans = {
        name: _plan(cls.memory_plan(backends.settings_for(cls, values), layers))
        for name, cls in planners.items()
    }
    return {
        "python": platform.python_version(),
        "host_available_gb": _gb(host_available()),
        "torchvision": _torchvision(),
        "weights": _weights(weights, base),
        "plans": plans,
    }


def _torchvision() -> str | None:
    """Why an installed torchvision breaks the torch backends (None: it does not)."""
    from layerctl.backends.layered import torch_stack

    return torch_stack.torchvision_problem()


def _weights(ref: str | None, base: str | None) -> dict[str, Any]:
    from layerctl import weights
    from layerctl.errors import LayerctlError

    try:
        found = weights.sources(ref, base)
    except LayerctlError as exc:
        return {"found": False, "path": None, "problems": [str(exc)]}
    problems = [str(p) for p in weights.source_problems(found)]
    path = found.base if found.transformer is None else found.transformer
    return {"found": True, "path": str(path), "problems": problems}


def _plan(plan: Any) -> dict[str, Any]:
    device = {k: v for k, v in plan.device.items() if not k.endswith("_bytes")}
    if "total_bytes" in plan.device:
        device.update(
            free_gb=_gb(plan.device["free_bytes"]), total_gb=_gb(plan.device["total_bytes"])
        )
    model = {"source": plan.model_source, **{k: _gb(v) for k, v in plan.model_bytes.items()}}
    report = {"device": device, "model_gb": model, "placements": _placements(plan.placements)}
    if plan.by_format:
        report["formats"] = {fmt: _placements(p) for fmt, p in plan.by_format.items()}
    return report


def _placements(placements: dict[int, Any]) -> dict[str, Any]:
    return {
        str(resolution): {"mode": p.mode, "need_gb": _gb(p.need_bytes), "reason": p.reason}
        for resolution, p in placements.items()
    }


def _gb(n: int | None) -> float | None:
    return None if n is None else round(n / GB, 1)


def _text(report: dict[str, Any]) -> str:
    lines = [f"python        {report['python']}"]
    host = report["host_available_gb"]
    lines.append(f"host memory   {host if host is not None else '?'} GB available")
    if report["torchvision"]:
        lines.append(f"torchvision   BROKEN: {report['torchvision']}")
    w = report["weights"]
    if w["found"]:
        state = "complete" if not w["problems"] else f"INCOMPLETE: {w['problems'][0]}"
        lines.append(f"weights       {w['path']} ({state})")
    else:
        lines.append(f"weights       not found: {w['problems'][0]}")
    for name, plan in report["plans"].items():
        dev = plan["device"]
        where = f"{dev['name']}, torch {dev.get('torch') or 'not installed'}"
        if "model" in dev:
            where += (
                f" — {dev['model']} (compute {dev['capability']}),"
                f" {dev['free_gb']} GB free of {dev['total_gb']} GB"
            )
        if "note" in dev:
            where += f" ({dev['note']})"
        lines.append(f"{name + ' device':<14}{where}")
        m = plan["model_gb"]
        sizes = ", ".join(f"{k.replace('_', ' ')} {v} GB" for k, v in m.items() if k != "source")
        lines.append(f"{name + ' model':<14}{sizes} ({m['source']})")
        for resolution, p in plan["placements"].items():
            lines.append(f"{name + ' ' + resolution:<14}{p['mode']} ({p['reason']})")
        for fmt, by_bucket in plan.get("formats", {}).items():
            cells = [f"{r}: {p['mode']} ({p['need_gb']} GB)" for r, p in by_bucket.items()]
            lines.append(f"{name + ' ' + fmt:<14}" + ", ".join(cells))
    return "\n".join(lines)
