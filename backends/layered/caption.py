"""Auto-captions: what Qwen-Image-Layered is prompted with when the user gives no prompt.

The reference (diffusers ``QwenImageLayeredPipeline.get_image_caption``) runs the
Qwen2.5-VL text encoder's ``generate`` on the working-size image with a fixed annotator
prompt. It goes through ``Qwen2VLProcessor``, whose video half imports torchvision; here
the image processor and tokenizer do the processor's work directly (same token ids,
pixel values and grid). Captions are cached by image content, so reruns and recursion
do not pay for generation twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from layerctl.errors import UsageError

MAX_NEW_TOKENS = 512  # as the reference
IMAGE_TOKEN = "<|image_pad|>"

# Copied verbatim from diffusers 0.42.1 QwenImageLayeredPipeline.__init__ (the line breaks
# inside the sentences are the reference's own).
CAPTION_PROMPT_EN = (
    "<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n"
    "# Image Annotator\n"
    "You are a professional\n"
    "image annotator. Please write an image caption based on the input image:\n"
    "1. Write the caption using natural,\n"
    "descriptive language without structured formats or rich text.\n"
    "2. Enrich caption details by including: \n"
    " - Object\n"
    "attributes, such as quantity, color, shape, size, material, state, position, "
    "actions, and so on\n"
    " - Vision Relations\n"
    "between objects, such as spatial relations, functional relations, possessive "
    "relations, attachment relations, action\n"
    "relations, comparative relations, causal relations, and so on\n"
    " - Environmental details, such as weather, lighting,\n"
    "colors, textures, atmosphere, and so on\n"
    " - Identify the text clearly visible in the image, without translation or\n"
    "explanation, and highlight it in the caption with quotation marks\n"
    "3. Maintain authenticity and accuracy:\n"
    " - Avoid\n"
    "generalizations\n"
    " - Describe all visible information in the image, while do not add information "
    "not explicitly shown in\n"
    "the image\n"
    "<|vision_start|><|image_pad|><|vision_end|><|im_end|>\n"
    "<|im_start|>assistant\n"
)
CAPTION_PROMPT_ZH = (
    "<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n"
    "# 图像标注器\n"
    "你是一个专业的图像标注器。请基于输入图像，撰写图注:\n"
    "1.\n"
    "使用自然、描述性的语言撰写图注，不要使用结构化形式或富文本形式。\n"
    "2. 通过加入以下内容，丰富图注细节：\n"
    " - 对象的属性：如数量、颜色、形状、大小、位置、材质、状态、动作等\n"
    " -\n"
    "对象间的视觉关系：如空间关系、功能关系、动作关系、从属关系、比较关系、因果关系等\n"
    " - 环境细节：例如天气、光照、颜色、纹理、气氛等\n"
    " - 文字内容：识别图像中清晰可见的文字，不做翻译和解释，用引号在图注中强调\n"
    "3.\n"
    "保持真实性与准确性：\n"
    " - 不要使用笼统的描述\n"
    " -\n"
    "描述图像中所有可见的信息，但不要加入没有在图像中出现的内容\n"
    "<|vision_start|><|image_pad|><|vision_end|><|im_end|>\n"
    "<|im_start|>assistant\n"
)
PROMPTS = {"en": CAPTION_PROMPT_EN, "zh": CAPTION_PROMPT_ZH}


def caption_prompt(lang: str) -> str:
    if lang not in PROMPTS:
        raise UsageError(f"--caption-lang must be en or zh, not {lang!r}")
    return PROMPTS[lang]


def caption_inputs(image: Any, lang: str, tokenizer: Any, processor: Any) -> dict[str, Any]:
    """What ``Qwen2VLProcessor(text=prompt, images=image)`` returns, without the processor.

    ``processor`` is the checkpoint's ``Qwen2VLImageProcessor(Pil)``; the prompt's single
    image placeholder becomes one token per merged vision patch.
    """
    vision = processor(images=[image], return_tensors="pt")
    grid = vision["image_grid_thw"]
    count = int(grid[0].prod()) // processor.merge_size**2
    text = caption_prompt(lang).replace(IMAGE_TOKEN, IMAGE_TOKEN * count, 1)
    tokens = tokenizer([text], padding=True, return_tensors="pt")
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    return {
        "input_ids": tokens["input_ids"],
        "attention_mask": tokens["attention_mask"],
        "mm_token_type_ids": (tokens["input_ids"] == image_token_id).long(),
        "pixel_values": vision["pixel_values"],
        "image_grid_thw": grid,
    }


def generate_caption(
    image: Any,
    lang: str,
    text_encoder: Any,
    tokenizer: Any,
    processor: Any,
    device: Any = None,
) -> str:
    """Caption a PIL image the way the reference does (greedy ``generate``, 512 new tokens);
    ``device`` is where the text encoder runs (default: where its weights are; with
    offloading they may sit on the host)."""
    import torch

    inputs = caption_inputs(image, lang, tokenizer, processor)
    inputs = {k: v.to(device or text_encoder.device) for k, v in inputs.items()}
    with torch.inference_mode():
        generated = text_encoder.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS)
    new_tokens = generated[:, inputs["input_ids"].shape[1] :]
    text = tokenizer.batch_decode(
        new_tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False
    )[0]
    return text.strip()


def cached(key: str, compute: Callable[[], str]) -> str:
    """The caption stored under ``key``, else ``compute()`` stored for next time.

    A small JSON file in the user cache folder; a broken or unwritable cache is ignored
    (captioning again is only slower).
    """
    path = cache_file()
    store = _read(path)
    if key in store:
        return store[key]
    value = compute()
    store[key] = value
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(store, ensure_ascii=False, indent=0), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass
    return value


def cache_key(pixels: Any, lang: str, model: str, size: tuple[int, int]) -> str:
    """Image content (its bytes and shape), caption language, model and working size."""
    digest = hashlib.sha256(pixels.tobytes())
    digest.update(repr((pixels.shape, lang, model, size)).encode())
    return digest.hexdigest()


def cache_file() -> Path:
    """``$XDG_CACHE_HOME/layerctl/captions.json`` (the platform's cache folder elsewhere)."""
    if os.environ.get("XDG_CACHE_HOME"):
        base = Path(os.environ["XDG_CACHE_HOME"])
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path.home() / ".cache"
    return base / "layerctl" / "captions.json"


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
