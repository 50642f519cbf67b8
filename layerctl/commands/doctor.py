"""``layerctl doctor``: what this machine can run, and how the qwen backend would place itself.

Prints the device and its free memory, the host's memory, the weights it finds, and the
mode ``--offload auto`` would pick at each resolution bucket (the rule is in
``layerctl.backends.qwen.memory``). torch is imported only when the command runs.
"""

from __future__ import annotations

import importlib.util
import json
import platform
from typing import Any

import typer

from layerctl.options import Device, Json, Weights

BUCKETS = (640, 1024)
GB = 10**9


def doctor(
    weights: Weights = None,
    device: Device = "auto",
    layers: int = typer.Option(4, "--layers", "-n", min=1, max=64, help="Layers to plan for."),
    json_out: Json = False,
) -> None:
    """Check the device, memory and weights, and show what --offload auto would pick."""
    from layerctl.backends.qwen import memory

    report: dict[str, Any] = {"python": platform.python_version()}
    report["device"] = _device(device)
    report["host_available_gb"] = _gb(memory.host_available())
    report["weights"] = _weights(weights)
    if report["weights"]["found"] and not report["weights"]["problems"]:
        from pathlib import Path

        footprint = memory.Footprint.of_folder(Path(report["weights"]["path"]))
        report["model_gb"] = {"source": "weights folder"}
    else:
        footprint = memory.Footprint.published()
        report["model_gb"] = {"source": "published sizes (bf16)"}
    report["model_gb"].update(
        text_encoder=_gb(footprint.text_encoder),
        transformer=_gb(footprint.transformer),
        vae=_gb(footprint.vae),
    )
    report["offload_auto"] = _plans(report["device"], footprint, layers)
    if json_out:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(_text(report))


def _device(requested: str) -> dict[str, Any]:
    """The device auto would use (cuda, then mps, then cpu) or the requested one."""
    if importlib.util.find_spec("torch") is None:
        return {
            "name": "cpu",
            "torch": None,
            "note": "torch missing: pip install 'layerctl[torch]'",
        }
    import torch

    from layerctl.backends.qwen import memory

    if requested == "auto":
        if torch.cuda.is_available():
            requested = "cuda"
        elif torch.backends.mps.is_available():
            requested = "mps"
        else:
            requested = "cpu"
    info: dict[str, Any] = {"name": requested, "torch": torch.__version__}
    dev = torch.device(requested)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return {**info, "note": "CUDA requested but torch sees no CUDA device"}
        props = torch.cuda.get_device_properties(dev)
        free, total = memory.device_memory(dev)
        info.update(
            model=props.name,
            capability=f"{props.major}.{props.minor}",
            free_gb=_gb(free),
            total_gb=_gb(total),
            free_bytes=free,
            total_bytes=total,
        )
    return info


def _weights(ref: str | None) -> dict[str, Any]:
    from layerctl import weights
    from layerctl.errors import LayerctlError

    try:
        root = weights.locate(ref)
    except LayerctlError as exc:
        return {"found": False, "path": None, "problems": [str(exc)]}
    problems = [str(p) for p in weights.check(root)]
    return {"found": True, "path": str(root), "problems": problems}


def _plans(device: dict[str, Any], footprint: Any, layers: int) -> dict[str, Any]:
    from layerctl.backends.qwen import memory

    plans = {}
    for resolution in BUCKETS:
        if "free_bytes" in device:
            choice = memory.choose(
                device["free_bytes"],
                device["total_bytes"],
                footprint,
                resolution,
                layers,
                memory.host_available(),
            )
            plans[str(resolution)] = {
                "mode": choice.mode,
                "need_gb": _gb(choice.need),
                "reason": choice.reason,
            }
        else:
            plans[str(resolution)] = {
                "mode": "none",
                "reason": _host_fit(footprint, resolution, layers),
            }
    return plans


def _host_fit(footprint: Any, resolution: int, layers: int) -> str:
    """Off CUDA the models run from host memory in float32: say whether they fit."""
    from layerctl.backends.qwen import memory

    need = 2 * footprint.total + memory.working_bytes(resolution, layers)
    host = memory.host_available()
    fits = "" if host is None or host >= need else f", {_gb(host)} GB available: too little"
    return f"not a CUDA device; float32 needs ~{_gb(need)} GB of host memory{fits}"


def _gb(n: int | None) -> float | None:
    return None if n is None else round(n / GB, 1)


def _text(report: dict[str, Any]) -> str:
    dev = report["device"]
    lines = [f"python        {report['python']}, torch {dev.get('torch') or 'not installed'}"]
    where = dev["name"]
    if "model" in dev:
        where += (
            f" — {dev['model']} (compute {dev['capability']}),"
            f" {dev['free_gb']} GB free of {dev['total_gb']} GB"
        )
    if "note" in dev:
        where += f" ({dev['note']})"
    lines.append(f"device        {where}")
    host = report["host_available_gb"]
    lines.append(f"host memory   {host if host is not None else '?'} GB available")
    w = report["weights"]
    if w["found"]:
        state = "complete" if not w["problems"] else f"INCOMPLETE: {w['problems'][0]}"
        lines.append(f"weights       {w['path']} ({state})")
    else:
        lines.append(f"weights       not found: {w['problems'][0]}")
    m = report["model_gb"]
    lines.append(
        f"model         text encoder {m['text_encoder']} GB, transformer {m['transformer']} GB,"
        f" VAE {m['vae']} GB ({m['source']})"
    )
    for resolution, plan in report["offload_auto"].items():
        lines.append(f"offload auto  {resolution}: {plan['mode']} ({plan['reason']})")
    return "\n".join(lines)
