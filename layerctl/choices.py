"""Every closed set of values an option takes, as enums: ``--help`` lists them, the shell
completes them, and a value outside them is a usage error before any work.

Imports nothing: the CLI reads these at start-up. Backends' option schemas
(layerctl/backends/model_options.py) type their fields with the same enums.
"""

from __future__ import annotations

from enum import Enum


class Choice(str, Enum):
    """A str enum that prints and formats as its value (``f"{Device.cpu}"`` is ``cpu``)."""

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__


class Format(Choice):
    psd = "psd"
    ora = "ora"
    png = "png"  # a PNG-stack folder
    pptx = "pptx"
    svg = "svg"


class OutputSize(Choice):
    input = "input"  # the layers at the input's size (refined)
    model = "model"  # as the backend made them


class Device(Choice):
    auto = "auto"
    cuda = "cuda"
    mps = "mps"
    cpu = "cpu"


class Dtype(Choice):
    auto = "auto"
    bfloat16 = "bfloat16"
    float16 = "float16"
    float32 = "float32"


class Offload(Choice):
    auto = "auto"  # the fastest placement that fits (qwen/memory.py)
    none = "none"
    model = "model"
    encoder_cpu = "encoder-cpu"  # transformer + VAE resident, the text encoder on the CPU
    group = "group"
    sequential = "sequential"


class Resolution(Choice):
    """The model's trained buckets (the working size's long side is about this)."""

    r640 = "640"
    r1024 = "1024"


class CaptionLang(Choice):
    en = "en"
    zh = "zh"


class Quantize(Choice):
    fp8 = "fp8"  # float8 matrix products on Ada/Hopper GPUs (qwen, approximate)


def plain(value: object) -> object:
    """A choice as its plain value (Resolution as an int): what schemas and files hold."""
    if isinstance(value, Resolution):
        return int(value.value)
    return value.value if isinstance(value, Enum) else value
