"""A tiny random Qwen-Image-Layered checkpoint in the hub's diffusers folder layout.

Every component is the real class (diffusers' ``QwenImageTransformer2DModel`` with Layer3D
RoPE, the 4-channel ``AutoencoderKLQwenImage``, transformers' ``Qwen2_5_VLForConditional
Generation``, a byte-level BPE ``Qwen2TokenizerFast``, ``Qwen2VLImageProcessor``) at toy
sizes, saved with ``save_pretrained`` so that the transformer and text encoder are sharded
safetensors with index files, as on the hub. Deterministic: the same seed gives the same
weights. The scheduler config and ``model_index.json`` follow Qwen/Qwen-Image-Layered.
"""

from __future__ import annotations

import json
from pathlib import Path

SEED = 1234
TEXT_HIDDEN = 64  # the text encoder's hidden size = the transformer's joint_attention_dim
SHARD = "500KB"  # small enough that transformer and text encoder come out sharded

# The Qwen2 special tokens the pipeline's templates and the VL processor use.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Qwen/Qwen-Image-Layered scheduler/scheduler_config.json: dynamic shifting with the
# *linear* time shift and no terminal stretch (shift_terminal false). Qwen-Image's own
# file has "exponential" and 0.02 (QWEN_IMAGE_SCHEDULER): the flow reads whichever the
# checkpoint holds, and tests/test_qwen_parity.py runs both.
SCHEDULER_CONFIG = {
    "_class_name": "FlowMatchEulerDiscreteScheduler",
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "invert_sigmas": False,
    "max_image_seq_len": 8192,
    "max_shift": 0.9,
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "shift_terminal": False,
    "stochastic_sampling": False,
    "time_shift_type": "linear",
    "use_beta_sigmas": False,
    "use_dynamic_shifting": True,
    "use_exponential_sigmas": False,
    "use_karras_sigmas": False,
}
QWEN_IMAGE_SCHEDULER = {
    **SCHEDULER_CONFIG,
    "time_shift_type": "exponential",
    "shift_terminal": 0.02,
}

# Qwen/Qwen-Image-Layered model_index.json: (library, class) per component.
MODEL_INDEX = {
    "_class_name": "QwenImageLayeredPipeline",
    "processor": ["transformers", "Qwen2VLProcessor"],
    "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
    "text_encoder": ["transformers", "Qwen2_5_VLForConditionalGeneration"],
    "tokenizer": ["transformers", "Qwen2Tokenizer"],
    "transformer": ["diffusers", "QwenImageTransformer2DModel"],
    "vae": ["diffusers", "AutoencoderKLQwenImage"],
}

_CORPUS = [
    "Describe the image by detailing the color, shape, size, texture, quantity, text, "
    "spatial relationships of the objects and background.",
    "You are a helpful assistant. You are a professional image annotator. Please write an "
    "image caption based on the input image.",
    "A red disc and a blue bar on a cream background, with the word hello in black.",
    "图像标注器 你是一个专业的图像标注器。请基于输入图像，撰写图注。",
]


def build_tiny_checkpoint(root: Path) -> Path:
    """Write a tiny random checkpoint under ``root``; return the folder."""
    import diffusers
    import torch

    root.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer()
    _save_tokenizer(tokenizer, root / "tokenizer", fast=False)
    _save_tokenizer(tokenizer, root / "processor", fast=True)
    _image_processor().save_pretrained(root / "processor")

    torch.manual_seed(SEED)
    _text_encoder(tokenizer).save_pretrained(
        root / "text_encoder", max_shard_size=SHARD, safe_serialization=True
    )
    torch.manual_seed(SEED + 1)
    _transformer(blocks=2).save_pretrained(
        root / "transformer", max_shard_size=SHARD, safe_serialization=True
    )
    torch.manual_seed(SEED + 2)
    diffusers.AutoencoderKLQwenImage(
        base_dim=8, num_res_blocks=1, input_channels=4
    ).save_pretrained(root / "vae", safe_serialization=True)
    diffusers.FlowMatchEulerDiscreteScheduler.from_config(SCHEDULER_CONFIG).save_pretrained(
        root / "scheduler"
    )
    index = {**MODEL_INDEX, "_diffusers_version": diffusers.__version__}
    (root / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    return root


def _transformer(blocks: int):
    """The tiny transformer: the released model's kind (layer3d RoPE, the extra t cond)."""
    import diffusers

    return diffusers.QwenImageTransformer2DModel(
        num_layers=blocks,
        attention_head_dim=32,
        num_attention_heads=2,
        joint_attention_dim=TEXT_HIDDEN,
        axes_dims_rope=(8, 12, 12),
        use_layer3d_rope=True,
        use_additional_t_cond=True,
    )


def _tokenizer():
    """A byte-level BPE trained in memory with Qwen2's pre-tokenizer, as a Qwen2Tokenizer."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS, trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    return Qwen2Tokenizer(
        vocab=model["vocab"],
        merges=[tuple(m) for m in model["merges"]],
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )


def _save_tokenizer(tokenizer, folder: Path, fast: bool) -> None:
    """As on the hub: vocab.json + merges.txt, and tokenizer.json only in processor/."""
    tokenizer.save_pretrained(folder)
    model = json.loads((folder / "tokenizer.json").read_text("utf-8"))["model"]
    (folder / "vocab.json").write_text(json.dumps(model["vocab"], ensure_ascii=False), "utf-8")
    merges = "".join(" ".join(pair) + "\n" for pair in model["merges"])
    (folder / "merges.txt").write_text("#version: 0.2\n" + merges, "utf-8")
    if not fast:
        (folder / "tokenizer.json").unlink()


def _image_processor():
    """The VL processor's image half; its video half needs torchvision, which does not import."""
    from transformers import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112)


def _text_encoder(tokenizer):
    """A 2-layer Qwen2.5-VL with a 2-block vision tower; vocab covers the tokenizer."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": TEXT_HIDDEN,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 4096,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1000000.0,
                "mrope_section": [4, 6, 6],
            },
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": TEXT_HIDDEN,
            "fullatt_block_indexes": [1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    return model


# Modules of every block the tiny LoRAs adapt: diffusers' names, and the flattened kohya /
# musubi-tuner names of the same modules (diffusers' converter restores the dots).
LORA_MODULES = ("attn.to_q", "attn.to_out.0", "attn.add_k_proj", "img_mlp.net.0.proj", "txt_mod.1")
LORA_RANK = 4


def build_lora(path: Path, layout: str, seed: int = 0, blocks: int = 2) -> Path:
    """A tiny random LoRA for the tiny transformer, saved as ``layout`` writes it:

    - ``peft``: diffusers/PEFT, ``transformer.<module>.lora_A.weight`` / ``lora_B.weight``
      (what ``save_lora_weights`` writes);
    - ``kohya``: kohya-ss / musubi-tuner, ``lora_unet_<module with _>.lora_down.weight`` /
      ``lora_up.weight`` / ``alpha`` (alpha = rank / 2, so the alpha scaling matters);
    - ``comfy``: the ComfyUI form, ``diffusion_model.<module>.lora_down/lora_up/alpha``.
    """
    import torch
    from safetensors.torch import save_file

    shapes = {
        name: module.weight.shape
        for name, module in _transformer(blocks).named_modules()
        if hasattr(module, "weight") and module.weight is not None
    }
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for block in range(blocks):
        for module in LORA_MODULES:
            name = f"transformer_blocks.{block}.{module}"
            out_features, in_features = shapes[name]
            down = torch.randn(LORA_RANK, in_features, generator=generator) * 0.3
            up = torch.randn(out_features, LORA_RANK, generator=generator) * 0.3
            alpha = torch.tensor(LORA_RANK / 2)
            if layout == "peft":
                tensors[f"transformer.{name}.lora_A.weight"] = down
                tensors[f"transformer.{name}.lora_B.weight"] = up
            elif layout in {"kohya", "comfy"}:
                flat = "lora_unet_" + name.replace(".", "_")
                key = flat if layout == "kohya" else "diffusion_model." + name
                tensors[f"{key}.lora_down.weight"] = down
                tensors[f"{key}.lora_up.weight"] = up
                tensors[f"{key}.alpha"] = alpha
            else:
                raise ValueError(f"unknown LoRA layout {layout!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path
