"""The reference side of the qwen tests: diffusers' pipeline on a tiny checkpoint folder,
and a copy of that folder whose captions end after a few tokens."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image


def reference_pipeline(folder: Path):
    """diffusers' QwenImageLayeredPipeline on ``folder``. Its Qwen2VLProcessor is built
    without the video half (which needs torchvision), so the reference's own captioning
    code runs unchanged."""
    from diffusers import QwenImageLayeredPipeline

    return QwenImageLayeredPipeline.from_pretrained(folder, processor=reference_processor(folder))


def reference_processor(folder: Path):
    from transformers import Qwen2Tokenizer, Qwen2VLImageProcessorPil, Qwen2VLProcessor

    class ImageOnlyProcessor(Qwen2VLProcessor):
        def check_argument_for_proper_class(self, argument_name, argument):
            return None

    return ImageOnlyProcessor(
        image_processor=Qwen2VLImageProcessorPil.from_pretrained(folder / "processor"),
        tokenizer=Qwen2Tokenizer.from_pretrained(folder / "tokenizer"),
    )


def portrait() -> np.ndarray:
    """64×96 opaque gradient with a dark square: the captioned test image."""
    y, x = np.mgrid[0:96, 0:64]
    pixels = np.stack([x * 4, y * 2, 255 - x * 2, np.full_like(x, 255)], axis=-1)
    pixels[30:60, 10:40, :3] = 20
    return pixels.astype(np.uint8)


def portrait_at_working_size() -> Image.Image:
    from layerctl.backends.layered import flow

    pixels = portrait()
    size = flow.working_size(pixels.shape[1], pixels.shape[0], 640)
    return Image.fromarray(pixels, "RGBA").resize(size, Image.Resampling.LANCZOS)


def short_caption_copy(tiny: Path, folder: Path) -> Path:
    """``tiny`` (linked, not copied) with captions of :func:`portrait` cut short.

    A random model never emits its end token, so the reference would generate all 512
    tokens (minutes on CI). Here the 4th token it generates for the portrait, in each
    caption language, is made an end token too; generation stays the reference's greedy
    ``generate``, just shorter.
    """
    shutil.copytree(tiny, folder, copy_function=lambda src, dst: Path(dst).symlink_to(src))
    config_path = folder / "text_encoder" / "generation_config.json"
    config = json.loads(config_path.read_text())
    config["eos_token_id"] = [*config["eos_token_id"], *_early_tokens(tiny)]
    config_path.unlink()  # a link into the shared fixture: replace it, never write through
    config_path.write_text(json.dumps(config))
    return folder


def _early_tokens(folder: Path) -> list[int]:
    import torch

    from layerctl.backends.layered import caption, load

    parts = load.load(folder, torch.float32, ("text_encoder", "tokenizer", "image_processor"))
    image = portrait_at_working_size()
    tokens = []
    for lang in caption.PROMPTS:
        inputs = caption.caption_inputs(image, lang, parts.tokenizer, parts.image_processor)
        with torch.inference_mode():
            ids = parts.text_encoder.generate(**inputs, max_new_tokens=4)
        tokens.append(int(ids[0, -1]))
    return tokens
