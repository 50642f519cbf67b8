"""``--lora``: LoRAs merged into the transformer once, when the backend loads.

diffusers does the work, the way ``QwenImageLayeredPipeline.load_lora_weights`` then
``set_adapters`` does it (diffusers 0.42.1, ``QwenImageLoraLoaderMixin``):
``lora_state_dict`` reads the file and converts the kohya / musubi-tuner layouts
(``lora_unet_…``, ``diffusion_model.…``, ``lora_down``/``lora_up``/``alpha``) to diffusers'
module names; ``load_lora_into_transformer`` injects PEFT layers; ``set_adapters`` gives
each its scale. Then ``fuse_lora`` merges them into the weights and ``unload_lora`` drops
the PEFT layers, so offloading, float8 and compile see a plain transformer and the steps
cost what they cost without a LoRA. Where diffusers only warns about keys that name no
module of the transformer (or silently drops keys of other models), this is an error.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from layerctl.backends.model_options import Lora
from layerctl.errors import UsageError

PREFIX = "transformer."  # lora_state_dict's keys: transformer.<module>.lora_A.weight, …


def apply(transformer: Any, loras: Sequence[Lora]) -> None:
    """Merge ``loras`` into ``transformer`` (on the host, before placement), in order."""
    if not loras:
        return
    from diffusers.loaders.lora_pipeline import (
        _LOW_CPU_MEM_USAGE_DEFAULT_LORA,
        QwenImageLoraLoaderMixin,
    )

    names = [f"lora{i}" for i in range(len(loras))]
    with warnings.catch_warnings():
        # peft warns about a second adapter in one model: that is what several --lora mean.
        warnings.filterwarnings("ignore", "Already found a `peft_config`", UserWarning)
        for name, lora in zip(names, loras, strict=True):
            with _one_line(f"--lora {lora.path}"):
                state, metadata = QwenImageLoraLoaderMixin.lora_state_dict(
                    lora.path, return_lora_metadata=True
                )
                _check_targets(state, transformer, lora)
                QwenImageLoraLoaderMixin.load_lora_into_transformer(
                    state,
                    transformer=transformer,
                    adapter_name=name,
                    metadata=metadata,
                    low_cpu_mem_usage=_LOW_CPU_MEM_USAGE_DEFAULT_LORA,
                )
    with _one_line("--lora: cannot merge into this transformer"):  # e.g. quantised weights
        transformer.set_adapters(names, [lora.scale for lora in loras])
        transformer.fuse_lora(adapter_names=names)
        transformer.unload_lora()


def _check_targets(state: dict[str, Any], transformer: Any, lora: Lora) -> None:
    """Every key must be a LoRA weight of a module the transformer has."""
    if not state:
        raise UsageError(f"--lora {lora.path}: no tensors in the file")
    not_lora = sorted(key for key in state if ".lora_" not in key)
    if not_lora:
        raise UsageError(f"--lora {lora.path}: {not_lora[0]} is not a LoRA weight")
    known = {PREFIX + name for name, _ in transformer.named_modules()}
    targets = {key.split(".lora_")[0] for key in state}  # transformer.<module>
    unknown = sorted(targets - known)
    if unknown:
        what = (
            "its keys match no module"
            if len(unknown) == len(targets)
            else f"{len(unknown)} of its {len(targets)} modules are not modules"
        )
        bare = PREFIX + unknown[0] in known  # transformer_blocks.0.attn.to_q.lora_A.weight
        raise UsageError(
            f"--lora {lora.path}: {what} of the Qwen-Image-Layered transformer "
            f"(e.g. {unknown[0].removeprefix(PREFIX)})",
            hint="its keys lack diffusers' `transformer.` prefix (diffusers would load nothing)"
            if bare
            else "is it a LoRA for another model?",
        )


@contextmanager
def _one_line(what: str) -> Iterator[None]:
    """diffusers' and peft's errors about a LoRA as a one-line usage error."""
    try:
        yield
    except UsageError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"{what}: {first}") from exc
