"""Auto-captions: the reference's prompts and processor inputs, the cache, the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from qwen_reference import (
    portrait,
    portrait_at_working_size,
    reference_pipeline,
    reference_processor,
    short_caption_copy,
)

from layerctl.backends.layered import caption
from layerctl.errors import UsageError


def test_cached_computes_once_per_key(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return "a red disc"

    assert caption.cached("k", compute) == "a red disc"
    assert caption.cached("k", compute) == "a red disc"
    assert len(calls) == 1
    assert json.loads(caption.cache_file().read_text()) == {"k": "a red disc"}
    assert caption.cache_file().is_relative_to(Path(os.environ["XDG_CACHE_HOME"]))


def test_a_broken_cache_is_recomputed(tmp_path):
    caption.cache_file().parent.mkdir(parents=True)
    caption.cache_file().write_text("{not json")
    assert caption.cached("k", lambda: "again") == "again"
    assert json.loads(caption.cache_file().read_text()) == {"k": "again"}


def test_cache_key_depends_on_content_language_model_and_size():
    pixels = portrait()
    other = pixels.copy()
    other[0, 0, 0] ^= 1
    key = caption.cache_key(pixels, "en", "m", (512, 768))
    assert key == caption.cache_key(pixels.copy(), "en", "m", (512, 768))
    variants = [
        caption.cache_key(other, "en", "m", (512, 768)),
        caption.cache_key(pixels, "zh", "m", (512, 768)),
        caption.cache_key(pixels, "en", "n", (512, 768)),
        caption.cache_key(pixels, "en", "m", (768, 768)),
    ]
    assert key not in variants


def test_importing_creates_no_folder(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code = "import layerctl.backends.layered.caption, layerctl.cli"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    assert not (tmp_path / "cache").exists()


def test_unknown_language_is_a_usage_error():
    with pytest.raises(UsageError, match="en or zh"):
        caption.caption_prompt("fr")


@pytest.mark.torch
def test_prompts_are_the_references(tiny_qwen):
    from layerctl.backends.layered import flow

    pipe = reference_pipeline(tiny_qwen)
    assert {
        "en": pipe.image_caption_prompt_en,
        "zh": pipe.image_caption_prompt_cn,
    } == caption.PROMPTS
    assert pipe.prompt_template_encode == flow.PROMPT_TEMPLATE
    assert pipe.prompt_template_encode_start_idx == flow.DROP_TOKENS


@pytest.mark.torch
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_inputs_equal_the_vl_processors(tiny_qwen, lang):
    """Our tokenizer + image processor give what Qwen2VLProcessor gives the reference."""
    torch = pytest.importorskip("torch")
    from layerctl.backends.layered import load

    parts = load.load(tiny_qwen, torch.float32, ("tokenizer", "image_processor"))
    image = portrait_at_working_size()
    ours = caption.caption_inputs(image, lang, parts.tokenizer, parts.image_processor)
    expected = reference_processor(tiny_qwen)(
        text=caption.PROMPTS[lang], images=image, padding=True, return_tensors="pt"
    )
    assert set(ours) == set(expected)
    for name, value in expected.items():
        torch.testing.assert_close(ours[name], value, rtol=0, atol=0, msg=name)


@pytest.fixture(scope="module")
def short_caption_qwen(tiny_qwen: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return short_caption_copy(tiny_qwen, tmp_path_factory.mktemp("short-caption") / "qwen")


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_caption_command_prints_the_references_caption(cli, short_caption_qwen, tmp_path, lang):
    image = tmp_path / "portrait.png"
    Image.fromarray(portrait(), "RGBA").save(image)
    weights = ["--weights", short_caption_qwen, "--caption-lang", lang]
    result = cli("caption", image, *weights)
    assert result.code == 0, result.stderr
    pipe = reference_pipeline(short_caption_qwen)
    expected = pipe.get_image_caption(
        portrait_at_working_size(), use_en_prompt=lang == "en", device="cpu"
    )
    assert result.stdout == expected + "\n"
    assert expected.strip(), "the tiny model should say something"
    assert list(json.loads(caption.cache_file().read_text()).values()) == [expected]


def test_caption_command_without_weights_says_how_to_get_them(cli, tmp_path):
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(image)
    result = cli("caption", image, "--weights", tmp_path / "nowhere")
    assert result.code == 1
    torch_extra = all(find_spec(name) for name in ("torch", "diffusers", "transformers"))
    fix = "nowhere" if torch_extra else "pip install 'layerctl[torch]'"  # the first thing missing
    assert fix in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_caption_command_refuses_a_backend_that_cannot_caption(cli, tmp_path):
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(image)
    result = cli("caption", image, "--backend", "classic")
    assert result.code == 2
    assert "cannot caption" in result.stderr and "qwen" in result.stderr
