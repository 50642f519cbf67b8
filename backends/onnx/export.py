"""``layerctl export onnx``: a Qwen-Image-Layered checkpoint -> ONNX graphs + manifest (torch).

Four graphs (:mod:`.graphs`) are exported with the dynamo exporter and external data
(protobuf stops at 2 GB; the real transformer is ~41 GB in bfloat16), traced at one small
size with every size-like axis declared dynamic — batch, layers (through the token count),
latent height and width, text length — so one export serves every bucket and layer
count. The exporter silently freezes an axis it could not keep symbolic, so each input
axis is checked afterwards. Then every graph runs in ONNX Runtime and in torch on inputs
made from a sample image at another size; the manifest is written only when all agree
within tolerance, and the folder appears atomically (a failed export leaves nothing).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from layerctl import __version__, console
from layerctl.backends.layered import flow
from layerctl.backends.onnx import manifest, rope
from layerctl.errors import LayerctlError, UsageError
from layerctl.noise import torch_randn

DTYPES = ("float32", "float16")
TOLERANCE = {"float32": 1e-3, "float16": 5e-2}  # max |ORT − torch| / max(1, max |torch|)
TRACE = {"batch": 2, "layers": 1, "height": 64, "width": 96, "text": 7}
CHECK = {"layers": 2, "height": 80, "width": 48, "prompt": "a red disc above a blue bar"}


class ExportMismatch(LayerctlError):
    """The exported graphs do not reproduce torch: the folder is not written."""


@dataclass
class GraphSpec:
    """One graph: the module, trace inputs with their dynamic axes, output names."""

    name: str
    module: Any  # torch.nn.Module
    inputs: dict[str, Any]  # name -> trace tensor
    dynamic: dict[str, dict[int, str]]  # input name -> {axis: dimension name}
    outputs: list[str]

    @property
    def file(self) -> str:
        return f"{self.name}.onnx"


def export_onnx(
    weights: str | None,
    output: Path,
    *,
    dtype: str = "float32",
    opset: int | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Export the checkpoint ``weights`` (folder or registry name) into the folder ``output``.

    Returns the manifest. Raises :class:`ExportMismatch` (and writes nothing) when ONNX
    Runtime's results differ from torch's by more than the dtype's tolerance.
    """
    if dtype not in DTYPES:
        raise UsageError(f"--dtype must be {' or '.join(DTYPES)}, not {dtype!r}")
    import torch

    from layerctl import weights as registry
    from layerctl.backends.layered import load
    from layerctl.outputs import atomic_output

    folder = registry.locate(weights)
    console.info(f"loading {folder} ({dtype})")
    parts = load.load(
        folder, getattr(torch, dtype), ("transformer", "vae", "text_encoder", "tokenizer")
    )
    start = time.perf_counter()
    with atomic_output(output, force=force) as tmp:
        tmp.mkdir()
        specs = _specs(parts, getattr(torch, dtype))
        for spec in specs:
            console.info(f"exporting {spec.name}")
            _export(spec, tmp, opset)
        _check_symbolic(tmp, specs)
        parts.tokenizer.save_pretrained(tmp / "tokenizer")
        (tmp / "scheduler").mkdir()
        shutil.copy(folder / "scheduler" / "scheduler_config.json", tmp / "scheduler")
        export_seconds = time.perf_counter() - start
        diffs = _verify(tmp, specs)
        worst = max(diffs, key=diffs.get)
        console.info(f"largest ONNX Runtime vs torch difference: {diffs[worst]:.2e} ({worst})")
        if diffs[worst] > TOLERANCE[dtype]:
            raise ExportMismatch(
                f"{worst} differs from torch by {diffs[worst]:.2e} "
                f"(tolerance {TOLERANCE[dtype]:.0e}); nothing written",
                hint="report this with `layerctl export onnx --debug` output",
            )
        record = _manifest(tmp, parts, folder, dtype, specs, diffs, export_seconds)
        manifest.write(tmp, record)
    return manifest.read(output)


def _specs(parts: Any, dtype: Any) -> list[GraphSpec]:
    """The four graphs with their inputs at TRACE sizes (batch 2: a batch of 1 gets frozen)."""
    import torch

    from layerctl.backends.onnx import graphs

    b, t = TRACE["batch"], TRACE["text"]
    lh, lw = TRACE["height"] // 8, TRACE["width"] // 8
    vae_in = parts.vae.config.input_channels
    z_dim = parts.vae.config.z_dim
    tr_cfg = parts.transformer.config
    gen = torch.Generator().manual_seed(0)

    def randn(*shape: int, kind: Any = dtype) -> Any:
        return torch.randn(shape, generator=gen).to(kind)

    frames = TRACE["layers"] + 1
    tables = [
        torch.from_numpy(a) for a in rope.tables(tr_cfg.axes_dims_rope, frames, lh // 2, lw // 2, t)
    ]
    tokens = (frames + 1) * (lh // 2) * (lw // 2)
    text_mask = torch.ones(b, t, dtype=torch.long)
    text_mask[1, t - 2 :] = 0
    ids = torch.randint(0, len(parts.tokenizer), (b, t), generator=gen)
    specs = [
        GraphSpec(
            "text_encoder",
            graphs.TextEncoderGraph(parts.text_encoder).eval(),
            {"input_ids": ids, "attention_mask": text_mask},
            {"input_ids": {0: "batch", 1: "text"}, "attention_mask": {0: "batch", 1: "text"}},
            ["hidden_states"],
        ),
        GraphSpec(
            "vae_encoder",
            graphs.VaeEncoderGraph(parts.vae).eval(),
            {"image": randn(b, vae_in, 1, TRACE["height"], TRACE["width"]).clamp(-1, 1)},
            {"image": {0: "batch", 3: "height", 4: "width"}},
            ["latents"],
        ),
        GraphSpec(
            "vae_decoder",
            graphs.VaeDecoderGraph(parts.vae).eval(),
            {"latents": randn(b, z_dim, 1, lh, lw)},
            {"latents": {0: "batch", 3: "height", 4: "width"}},
            ["image"],
        ),
        GraphSpec(
            "transformer",
            graphs.TransformerGraph(parts.transformer).eval(),
            {
                "tokens": randn(b, tokens, tr_cfg.in_channels),
                "text": randn(b, t, tr_cfg.joint_attention_dim),
                "text_mask": text_mask,
                "timestep": torch.full((b,), 0.5),
                **dict(zip(("img_cos", "img_sin", "txt_cos", "txt_sin"), tables, strict=True)),
            },
            {
                "tokens": {0: "batch", 1: "tokens"},
                "text": {0: "batch", 1: "text"},
                "text_mask": {0: "batch", 1: "text"},
                "timestep": {0: "batch"},
                "img_cos": {0: "tokens"},
                "img_sin": {0: "tokens"},
                "txt_cos": {0: "text"},
                "txt_sin": {0: "text"},
            },
            ["velocity"],
        ),
    ]
    return specs


def _export(spec: GraphSpec, folder: Path, opset: int | None) -> None:
    import torch

    dims: dict[str, Any] = {}
    dynamic = {
        name: {axis: dims.setdefault(dim, torch.export.Dim(dim)) for axis, dim in axes.items()}
        for name, axes in spec.dynamic.items()
    }
    with torch.inference_mode(False), torch.no_grad():
        program = torch.onnx.export(
            spec.module,
            tuple(spec.inputs.values()),
            input_names=list(spec.inputs),
            output_names=spec.outputs,
            dynamic_shapes=dynamic,
            opset_version=opset,
            dynamo=True,
            external_data=True,
            optimize=True,
            verbose=False,
        )
    program.save(str(folder / spec.file), external_data=True)


def _check_symbolic(folder: Path, specs: list[GraphSpec]) -> None:
    """Every axis declared dynamic must be a named dimension in the graph, not a number."""
    import onnx

    frozen = []
    for spec in specs:
        graph = onnx.load(str(folder / spec.file), load_external_data=False).graph
        for value in graph.input:
            dims = value.type.tensor_type.shape.dim
            for axis, name in spec.dynamic.get(value.name, {}).items():
                if not dims[axis].dim_param:
                    frozen.append(
                        f"{spec.name}.{value.name}[{axis}] ({name}) = {dims[axis].dim_value}"
                    )
    if frozen:
        raise ExportMismatch(
            f"the exporter froze dynamic dimensions: {', '.join(frozen)}; nothing written",
            hint="this torch/onnxscript version cannot export a size-independent graph",
        )


def _verify(folder: Path, specs: list[GraphSpec]) -> dict[str, float]:
    """Largest relative difference ORT vs torch per graph, on inputs at CHECK sizes
    made from a sample image and prompt (different sizes and batch from the trace)."""
    import torch

    from layerctl.backends.onnx import runtime

    by_name = {s.name: s for s in specs}
    for spec in specs:
        spec.module.float()  # the reference is float32 whatever the export dtype
    sessions = runtime.Sessions(folder, providers=runtime.choose_providers())
    diffs = {}

    def compare(name: str, inputs: dict[str, Any]) -> Any:
        with torch.no_grad():
            expected = by_name[name].module(*inputs.values())
        got = sessions.run(name, {k: v.numpy() for k, v in inputs.items()})
        ref = expected.numpy()
        diffs[name] = float(
            np.abs(got.astype(np.float32) - ref).max() / max(1.0, np.abs(ref).max())
        )
        return expected

    image = torch.from_numpy(_sample_image(CHECK["height"], CHECK["width"]))
    z = compare("vae_encoder", {"image": image})
    compare("vae_decoder", {"latents": torch.cat([z, -z, 0.5 * z])})
    tokenizer = runtime.Tokenizer(folder / "tokenizer")
    texts = []
    for prompt in (CHECK["prompt"], " "):
        ids = torch.from_numpy(tokenizer.ids(flow.PROMPT_TEMPLATE.format(prompt)))[None]
        hidden = compare("text_encoder", {"input_ids": ids, "attention_mask": torch.ones_like(ids)})
        texts.append(hidden[:, flow.DROP_TOKENS :].numpy())
    text, mask = runtime.text_batch(texts)
    layers, lh, lw = CHECK["layers"], CHECK["height"] // 8, CHECK["width"] // 8
    noise = torch_randn(flow.noise_shape(layers, lh, lw), 0)
    cond = z.permute(0, 2, 1, 3, 4).numpy()
    tokens = np.concatenate([flow.pack(noise), flow.pack(cond)], axis=1)
    axes = by_name["transformer"].module.model.config.axes_dims_rope
    tables = rope.tables(axes, layers + 1, lh // 2, lw // 2, text.shape[1])
    inputs = {
        "tokens": np.repeat(tokens, 2, axis=0),
        "text": text,
        "text_mask": mask,
        "timestep": np.full(2, 0.5, np.float32),
        **dict(zip(("img_cos", "img_sin", "txt_cos", "txt_sin"), tables, strict=True)),
    }
    compare(
        "transformer", {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items()}
    )
    return diffs


def _sample_image(height: int, width: int) -> np.ndarray:
    """A flat RGBA graphic (background, disc, bar, transparent corner) as (1, 4, 1, H, W)
    in [-1, 1], the VAE's input layout."""
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    rgba = np.empty((height, width, 4), np.float32)
    rgba[...] = (0.94, 0.92, 0.86, 1.0)
    rgba[(x - 0.35) ** 2 + (y - 0.35) ** 2 < 0.06] = (0.8, 0.15, 0.15, 1.0)
    rgba[(x > 0.4) & (x < 0.9) & (y > 0.6) & (y < 0.75)] = (0.1, 0.3, 0.75, 1.0)
    rgba[(x > 0.85) & (y < 0.15), 3] = 0.0
    return (rgba * 2 - 1).transpose(2, 0, 1)[None, :, None].copy()


def _manifest(
    folder: Path,
    parts: Any,
    source: Path,
    dtype: str,
    specs: list[GraphSpec],
    diffs: dict[str, float],
    export_seconds: float,
) -> dict[str, Any]:
    import onnx

    graphs = {}
    for spec in specs:
        model = onnx.load(str(folder / spec.file), load_external_data=False)
        graphs[spec.name] = {
            "file": spec.file,
            "inputs": [_value_info(v) for v in model.graph.input],
            "outputs": [_value_info(v) for v in model.graph.output],
            "opset": max(o.version for o in model.opset_import if o.domain in {"", "ai.onnx"}),
        }
    vae = parts.vae.config
    tr = parts.transformer.config
    return {
        "model": "Qwen-Image-Layered",
        "source": str(source.resolve()),
        "dtype": dtype,
        "versions": _versions(),
        "config": {
            "axes_dims_rope": list(tr.axes_dims_rope),
            "in_channels": tr.in_channels,
            "text_hidden": tr.joint_attention_dim,
            "z_dim": vae.z_dim,
            "latents_mean": list(vae.latents_mean),
            "latents_std": list(vae.latents_std),
        },
        "graphs": graphs,
        "verification": {
            "max_relative_difference": diffs,
            "tolerance": TOLERANCE[dtype],
            "check_sizes": CHECK,
        },
        "export_seconds": round(export_seconds, 1),
    }


def _value_info(value: Any) -> dict[str, Any]:
    import onnx

    tensor = value.type.tensor_type
    return {
        "name": value.name,
        "dtype": onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name,
        "shape": [d.dim_param or d.dim_value for d in tensor.shape.dim],
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"layerctl": __version__}
    names = ("torch", "onnx", "onnxscript", "onnxruntime", "onnxruntime-gpu", "diffusers")
    for name in (*names, "transformers"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out
