"""Write a diffusers transformer folder as one GGUF file that diffusers reads back.

``layerctl weights convert``: for people who have the 41 GB folder and a small card. The
quantisation is the ``gguf`` package's own (``gguf.quants.quantize``, llama.cpp's block
formats), applied as city96's ComfyUI-GGUF converter does for image transformers: the
2-D weights of linear layers are quantized (rows of whole 32-weight blocks), everything
else (biases, norms, embeddings) is stored as F32. Tensor names are diffusers' own, the
names ``QwenImageTransformer2DModel.from_single_file`` maps one to one; diffusers'
``GGUFQuantizationConfig`` replaces each quantized linear with one that dequantizes its
weight as it runs. The file is written beside the target and published atomically.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from layerctl import console
from layerctl.errors import MissingWeights, UsageError
from layerctl.outputs import atomic_output

TYPES = ("Q8_0", "Q4_0")  # what `convert --type` writes; diffusers reads many more
ARCH = "qwen_image"  # general.architecture, as the community Qwen-Image GGUFs name it


def convert(folder: Path, out: Path, qtype: str, force: bool = False) -> dict[str, Any]:
    """Quantize ``folder``'s transformer (a checkpoint or its transformer/ folder) to
    ``out``; return a summary (tensors quantized / kept, bytes before and after).

    Two passes over the safetensors, so that one tensor at a time is in memory (the full
    transformer is 41 GB): the tensors' infos from the headers, then each tensor read,
    quantized and written in that order.
    """
    import gguf
    import numpy as np

    if qtype not in TYPES:
        raise UsageError(f"--type must be one of {', '.join(TYPES)}, not {qtype!r}")
    source = folder / "transformer" if (folder / "transformer").is_dir() else folder
    if not (source / "config.json").is_file():
        raise MissingWeights(
            f"{folder} holds no diffusers transformer (no transformer/config.json)",
            hint="give the Qwen-Image-Layered checkpoint folder",
        )
    kind = getattr(gguf.GGMLQuantizationType, qtype)
    block, type_size = gguf.GGML_QUANT_SIZES[kind]
    linears, shapes = _linear_weights(source), _shapes(source)
    quantized = {
        name for name, (shape, _) in shapes.items()
        if name in linears and len(shape) == 2 and shape[-1] % block == 0
    }  # fmt: skip
    summary = {"quantized": len(quantized), "kept": len(shapes) - len(quantized)}
    summary |= {"bytes_in": sum(n for _, n in shapes.values()), "bytes_out": 0}
    with atomic_output(out, force=force) as tmp:
        writer = gguf.GGUFWriter(str(tmp), arch=ARCH)
        writer.add_file_type(gguf.LlamaFileType[f"MOSTLY_{qtype}"].value)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        for name, (shape, _) in shapes.items():
            if name in quantized:
                stored = (shape[0], shape[1] // block * type_size)
                writer.add_tensor_info(name, stored, np.dtype(np.uint8), math.prod(stored), kind)
            else:
                writer.add_tensor_info(name, shape, np.dtype(np.float32), 4 * math.prod(shape))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for name, data in _tensors(source):
            if name in quantized:
                data = gguf.quants.quantize(data, kind)
            writer.write_tensor_data(data)
            summary["bytes_out"] += data.nbytes
        writer.close()
    console.info(
        f"{out}: {summary['quantized']} tensors in {qtype}, {summary['kept']} kept in F32, "
        f"{summary['bytes_in'] / 1e9:.2f} GB -> {summary['bytes_out'] / 1e9:.2f} GB"
    )
    return summary


def _linear_weights(source: Path) -> set[str]:
    """Names of the linear layers' weights, from the model built on the meta device: the
    only tensors diffusers' GGUF loader dequantizes on the fly (an embedding must not be)."""
    import torch
    from accelerate import init_empty_weights
    from diffusers import QwenImageTransformer2DModel

    with init_empty_weights():
        model = QwenImageTransformer2DModel.from_config(
            QwenImageTransformer2DModel.load_config(source, local_files_only=True)
        )
    return {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}


def _shapes(source: Path) -> dict[str, tuple[tuple[int, ...], int]]:
    """{name: (shape, bytes)} of the folder's tensors, from the safetensors headers (the
    folder checked first: a damaged one is one line)."""
    from safetensors import safe_open

    from layerctl.weights import check, tensor_sizes

    problems = [p for p in check(source.parent) if p.path.startswith(source.name + "/")]
    if problems:
        raise MissingWeights(f"cannot convert {source}: {problems[0]}")
    files = sorted(source.glob("*.safetensors"))
    if not files:
        raise MissingWeights(f"{source} has no *.safetensors weights")
    shapes = {}
    for path in files:
        sizes = tensor_sizes(path)[0]
        with safe_open(path, framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                shapes[name] = (tuple(f.get_slice(name).get_shape()), sizes[name])
    return shapes


def _tensors(source: Path) -> Iterator[tuple[str, Any]]:
    """Each tensor as float32 numpy, in :func:`_shapes`' order (the order of the infos
    written before them), one at a time."""
    import torch
    from safetensors import safe_open

    for path in sorted(source.glob("*.safetensors")):
        with safe_open(path, framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                yield name, f.get_tensor(name).to(torch.float32).numpy()
