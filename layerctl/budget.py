"""The memory plan: what one image or result will cost, checked before it is decoded.

A cost is bytes: the pixels a file declares in its header times a per-pixel figure,
plus fixed bytes. Each backend states its own (``peak_bytes_per_pixel`` and
``peak_fixed_bytes`` in backends/base.py, measured by bench/memory_per_pixel.py);
reading a result costs :data:`READ_BYTES_PER_LAYER_PIXEL` per canvas pixel and layer
plus :data:`READ_WORKING_BYTES_PER_PIXEL` for compositing. What this process may use is
the smallest of: memory available without swapping (``MemAvailable``, else psutil), the
address space left under ``RLIMIT_AS``, the cgroup's limit minus its usage, and
``--max-memory``. Over it, the image fails alone with one line that says both numbers,
instead of the kernel's OOM killer ending the whole batch without a word.

Light at import (no numpy): the CLI parses ``--max-memory`` with it at start-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from layerctl.errors import BadInput, LayerctlError

# A result reader keeps every layer as a full-canvas RGBA uint8 array (stack.py).
READ_BYTES_PER_LAYER_PIXEL = 4
# ...and composites them in float32 (stack.composite: the premultiplied colour and
# alpha, one layer's colour and alpha, their products): ~12 float32 per pixel at once.
READ_WORKING_BYTES_PER_PIXEL = 48
# The core around a model backend (qwen, onnx), whose layers arrive at the model's
# resolution: resize them to the input size, refine.make_lossless, write. Measured by
# `python bench/memory_per_pixel.py --model [--layers 8]` (bench/RESULTS.md): slope
# 62-65 B/px; intercept 191 MB at 4 layers, 361 MB at 8 (~42 MB a layer at 1024 px).
# Update these numbers when a bench run says otherwise.
MODEL_CORE_BYTES_PER_PIXEL = 80
MODEL_CORE_BYTES_PER_LAYER = 48 << 20
CORE_FIXED_BYTES = 64 << 20  # every backend's intercept is at most this, layers aside
# Backends that do not state their cost (third-party ones) are planned with the larger
# of the built-in figures.
UNSTATED = {
    "peak_bytes_per_pixel": 130,
    "peak_bytes_per_layer_pixel": 4,
    "peak_bytes_per_layer": MODEL_CORE_BYTES_PER_LAYER,
    "peak_fixed_bytes": CORE_FIXED_BYTES,
}

_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_SIZE = re.compile(r"^\s*(\d{1,20}(?:\.\d{0,20})?(?:e\d{1,2})?)\s*([kmgt]?)(i?)b?\s*$", re.I)
MAX_BYTES = 10**18  # 1 EB: more than any machine; bigger numbers are typos


@dataclass(frozen=True)
class Cost:
    """Bytes one image costs at its peak: ``pixels * per_pixel + fixed``."""

    per_pixel: int
    fixed: int = 0

    def of(self, pixels: int) -> int:
        return pixels * self.per_pixel + self.fixed

    @classmethod
    def of_backend(cls, backend: type, layers: int) -> Cost:
        """A backend class's stated cost for ``layers`` layers (backends/base.py); one
        that states none is planned with UNSTATED."""
        stated = {name: getattr(backend, name, value) for name, value in UNSTATED.items()}
        return cls(
            stated["peak_bytes_per_pixel"] + stated["peak_bytes_per_layer_pixel"] * layers,
            stated["peak_fixed_bytes"] + stated["peak_bytes_per_layer"] * layers,
        )


# Decoding alone: Pillow's image (up to 8 B/px for 16-bit RGBA), the EXIF-rotated copy
# and the RGBA uint8 array (imageio.read_image); what `caption` and `--original` pay.
DECODE = Cost(16)


@dataclass(frozen=True)
class Allowance:
    """The most bytes one image may take, and which limit set it (for the message)."""

    bytes: int
    source: str


def parse_size(text: str) -> int:
    """``4G``, ``512M``, ``1.5GiB``, ``4000000000`` or ``1e10`` as a number of bytes
    (or pixels); ValueError with a short message for anything else."""
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"{short_text(text)!r} is not a size such as 4G, 512M or 1e10")
    number, unit, binary = match.groups()
    unit = unit.lower()
    scale = 1024 ** ("kmgt".index(unit) + 1) if binary and unit else _UNITS[unit]
    value = int(float(number) * scale)
    if not 1 <= value <= MAX_BYTES:
        raise ValueError(f"{short_text(text)!r} is out of range (1 to 1e18)")
    return value


def short_text(text: object, limit: int = 24) -> str:
    """``text`` cut to ``limit`` characters: a 400-digit value is not echoed back whole."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def human_bytes(count: int) -> str:
    """``1.2 GB``, ``640 MB``, ``12 KB``: three significant digits at most."""
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} bytes"


def human_pixels(count: int) -> str:
    """``12.3 MP`` from a megapixel up, else ``4096 pixels`` (never "0 MP")."""
    if count >= 10**15:
        return "over 10^15 pixels"
    if count >= 10**9:
        return f"{count / 1e6:.0f} MP"
    return f"{count / 1e6:.3g} MP" if count >= 10**6 else f"{count} pixels"


def dimensions(width: int, height: int) -> str:
    """``WxH`` for the message, with a side too long to print shown as ``huge``."""
    return "x".join(str(side) if abs(side) < 10**12 else "huge" for side in (width, height))


def allowance(max_memory: int | None = None, share: int = 1) -> Allowance | None:
    """The tightest limit on this process's memory now; None when none is known.

    ``share``: processes that draw on the same memory at once (``--workers N``); each
    gets its part of the machine's and the cgroup's (RLIMIT_AS is per process already).
    """
    shared = f" / {share} workers" if share > 1 else ""
    host, group = host_available(), cgroup_left()
    limits = [
        (None if host is None else host // share, "available memory" + shared),
        (address_space_left(), "ulimit -v"),
        (None if group is None else group // share, "the cgroup's limit" + shared),
        (max_memory, "--max-memory"),
    ]
    known = [(value, source) for value, source in limits if value is not None]
    if not known:
        return None
    value, source = min(known, key=lambda item: item[0])
    return Allowance(max(value, 0), source)


def check(
    where: object,
    need: int,
    max_memory: int | None = None,
    what: str = "",
    error: type[LayerctlError] = BadInput,
    share: int = 1,
) -> None:
    """``error`` unless ``need`` bytes fit the allowance: one line with both numbers."""
    limit = allowance(max_memory, share)
    if limit is None or need <= limit.bytes:
        return
    fix = {
        "--max-memory": "raise --max-memory",
        "ulimit -v": "raise ulimit -v",
        "the cgroup's limit": "raise the container's memory limit",
        "available memory": "close other programs to free memory",
    }.get(limit.source, "use fewer --workers")
    raise error(
        f"{where}: {what}needs {human_bytes(need)} of memory, "
        f"{human_bytes(limit.bytes)} is allowed ({limit.source})",
        hint=fix,
    )


def host_available() -> int | None:
    """Host memory available without swapping (Linux /proc/meminfo), else psutil's."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def address_space_left() -> int | None:
    """RLIMIT_AS minus the address space in use (``ulimit -v``, ``prlimit --as``)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    return soft - (_status_bytes("VmSize") or 0)


def _status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def cgroup_left() -> int | None:
    """This process's cgroup memory limit minus its usage (v2, else v1), if limited."""
    found = []
    for limit_file, usage_file in _cgroup_files():
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and limit < 1 << 60:  # v1 writes "no limit" as ~2^63
            found.append(limit - (usage or 0))
    return min(found, default=None)


def _cgroup_files() -> list[tuple[Path, Path]]:
    """(limit, usage) file pairs for this process's cgroup and the mount's root."""
    root = Path("/sys/fs/cgroup")
    pairs = []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        path = path.lstrip("/")
        if controllers == "":  # v2: one unified hierarchy
            for folder in {root / path, root}:
                pairs.append((folder / "memory.max", folder / "memory.current"))
        elif "memory" in controllers.split(","):
            for folder in {root / "memory" / path, root / "memory"}:
                pairs.append((folder / "memory.limit_in_bytes", folder / "memory.usage_in_bytes"))
    return pairs


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):  # missing, or v2's "max"
        return None
