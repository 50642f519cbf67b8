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

from pathlib import Path
from typing import Any

from layerctl import console
from layerctl.errors import MissingWeights, UsageError
from layerctl.outputs import atomic_output

TYPES = ("Q8_0", "Q4_0")  # what `convert --type` writes; diffusers reads many more
ARCH = "qwen_image"  # general.architecture, as the community Qwen-Image GGUFs name it


def convert(folder: Path, out: Path, qtype: str, force: bool = False) -> dict[str, Any]:
    """Quantize ``folder``'s transformer (a checkpoint or its transformer/ folder) to
    ``out``; return a summary (tensors quantized / kept, bytes before and after)."""
    import gguf
    import torch

    if qtype not in TYPES:
        raise UsageError(f"--type must be one of {', '.join(TYPES)}, not {qtype!r}")
    source = folder / "transformer" if (folder / "transformer").is_dir() else folder
    if not (source / "config.json").is_file():
        raise MissingWeights(
            f"{folder} holds no diffusers transformer (no transformer/config.json)",
            hint="give the Qwen-Image-Layered checkpoint folder",
        )
    kind = getattr(gguf.GGMLQuantizationType, qtype)
    block, _ = gguf.GGML_QUANT_SIZES[kind]
    linears, state = _linear_weights(source), _state(source)
    summary = {"quantized": 0, "kept": 0, "bytes_in": 0, "bytes_out": 0}
    with atomic_output(out, force=force) as tmp:
        writer = gguf.GGUFWriter(str(tmp), arch=ARCH)
        writer.add_file_type(gguf.LlamaFileType[f"MOSTLY_{qtype}"].value)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        for name, tensor in state.items():
            data = tensor.to(torch.float32).numpy()
            summary["bytes_in"] += tensor.numel() * tensor.element_size()
            if name in linears and data.ndim == 2 and data.shape[-1] % block == 0:
                data = gguf.quants.quantize(data, kind)
                writer.add_tensor(name, data, raw_dtype=kind)
                summary["quantized"] += 1
            else:
                writer.add_tensor(name, data)
                summary["kept"] += 1
            summary["bytes_out"] += data.nbytes
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
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


def _state(source: Path) -> dict[str, Any]:
    """Every tensor of the folder's safetensors (checked first: one line if damaged)."""
    from safetensors.torch import load_file

    from layerctl.weights import check

    problems = [p for p in check(source.parent) if p.path.startswith(source.name + "/")]
    if problems:
        raise MissingWeights(f"cannot convert {source}: {problems[0]}")
    files = sorted(source.glob("*.safetensors"))
    if not files:
        raise MissingWeights(f"{source} has no *.safetensors weights")
    state: dict[str, Any] = {}
    for path in files:
        state.update(load_file(path))
    return state
