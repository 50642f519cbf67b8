"""Model weights: the registry of known checkpoints, finding them, fetching them, checking them.

A checkpoint is a diffusers-format folder (``model_index.json`` plus one folder per
component). It is found by ``--weights PATH|NAME``, then ``$LAYERCTL_WEIGHTS``, then the
default registry name looked up in the Hugging Face cache — without a network call
(``local_files_only``). ``--weights`` may instead be one transformer file (bf16 or
ComfyUI fp8 safetensors, or a GGUF), the other components then coming from ``--base``
(:func:`sources`). No torch here: the checks read JSON, safetensors headers and GGUF
magic only, so ``layerctl weights verify`` and the ONNX path work without the torch extra.
"""

from __future__ import annotations

import functools
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from layerctl.digests import file_sha256
from layerctl.errors import MissingWeights, UsageError

DEFAULT = "qwen-image-layered"
BASE = "qwen-image-layered-base"  # the default checkpoint less its transformer's weights
ENV = "LAYERCTL_WEIGHTS"
KINDS = ("pipeline", "base", "transformer", "vae")  # what a registry entry holds
SINGLE_FILE_SUFFIXES = (".safetensors", ".gguf")  # a transformer or VAE given as one file
GGUF_MAGIC = b"GGUF"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
MAX_HEADER = 100 * 2**20  # a safetensors header larger than this is not a header


def pull_hint(name: str = DEFAULT) -> str:
    return f"fetch it with `layerctl weights pull {name}`"


@dataclass(frozen=True)
class FileSpec:
    path: str  # relative, with "/" separators
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Checkpoint:
    """One entry of weights/registry.toml."""

    name: str
    repo: str
    revision: str
    backend: str
    summary: str
    files: tuple[FileSpec, ...]
    kind: str = "pipeline"  # one of KINDS: a folder (pipeline, base) or one file

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.path.split("/")[0] for f in self.files if "/" in f.path))

    @property
    def single_file(self) -> bool:
        return self.kind in ("transformer", "vae")

    def allow_patterns(self) -> list[str]:
        """What ``pull`` downloads: the pipeline's folders, not the model card's images; a
        base skips the transformer's weights (its config is kept: it shapes a single file);
        a single-file entry is its one file (a glob where its exact name is not known)."""
        if self.single_file:
            return [f.path for f in self.files]
        folders = [f"{c}/*" for c in self.components if self.kind != "base" or c != "transformer"]
        extra = ["transformer/config.json"] if self.kind == "base" else []
        return ["model_index.json", *folders, *extra]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a checkpoint folder."""

    path: str
    what: str
    refused: bool = False  # present but unsafe to load (pickle), not missing or damaged

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


@functools.cache
def registry() -> dict[str, Checkpoint]:
    """name -> checkpoint, from the registry.toml installed with the package."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    text = resources.files("layerctl.registry").joinpath("registry.toml").read_text("utf-8")
    entries = tomllib.loads(text)["checkpoints"]
    return {
        name: Checkpoint(
            name=name,
            repo=entry["repo"],
            revision=entry["revision"],
            backend=entry["backend"],
            summary=entry["summary"],
            files=tuple(FileSpec(path, **spec) for path, spec in entry["files"].items()),
            kind=entry.get("kind", "pipeline"),
        )
        for name, entry in entries.items()
    }


def checkpoint(name: str) -> Checkpoint:
    known = registry()
    if name not in known:
        raise UsageError(f"unknown checkpoint {name!r}", hint=f"known: {', '.join(sorted(known))}")
    return known[name]


def locate(weights: str | None = None) -> Path:
    """The checkpoint folder: ``weights`` (a path or registry name), else $LAYERCTL_WEIGHTS,
    else the default checkpoint in the Hugging Face cache. Never touches the network."""
    source, ref = ("--weights", weights) if weights else ("$" + ENV, os.environ.get(ENV))
    if not ref:
        return cached(checkpoint(DEFAULT))
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    if ref in registry() and not registry()[ref].single_file:
        return cached(registry()[ref])
    if path.exists() or ref in registry():
        raise MissingWeights(f"{source} {ref} is a file, not a checkpoint folder")
    raise MissingWeights(
        f"{source} {ref!r} is neither a folder nor a known checkpoint",
        hint=f"known: {', '.join(sorted(registry()))}; see `layerctl weights list`",
    )


@dataclass(frozen=True)
class Sources:
    """Where each part of the model comes from: a diffusers folder, with the transformer
    (and the VAE) optionally replaced by single files."""

    base: Path
    transformer: Path | None = None  # .safetensors (bf16, ComfyUI fp8) or .gguf
    vae: Path | None = None  # a single VAE file (diffusers or ComfyUI/Wan key layout)

    @property
    def transformer_format(self) -> str:
        """``folder``, ``gguf`` or ``safetensors``: what :mod:`layered.load` reads."""
        if self.transformer is None:
            return "folder"
        return "gguf" if self.transformer.suffix == ".gguf" else "safetensors"


def sources(weights: str | None = None, base: str | None = None) -> Sources:
    """Resolve ``--weights`` (a folder, a registry name, or one transformer file) and, for
    a single file, ``--base NAME|DIR[,VAE]`` (the other components; a VAE file or VAE
    registry name after the comma). Checks nothing inside them (``require_sources``)."""
    label, ref = ("--weights", weights) if weights else ("$" + ENV, os.environ.get(ENV))
    if not ref:
        ref = DEFAULT
    path = Path(ref).expanduser()
    if path.is_dir() or (ref in registry() and not registry()[ref].single_file):
        if base:
            raise UsageError(
                f"--base is for a single-file --weights; {ref} is a whole checkpoint",
                hint="drop --base, or give the transformer file as --weights",
            )
        return Sources(path if path.is_dir() else cached(registry()[ref]))
    if ref in registry():
        ckpt = registry()[ref]
        if ckpt.kind != "transformer":
            raise UsageError(f"{label} {ref} is a {ckpt.kind} file, not a transformer")
        path = cached_file(ckpt)
    elif not path.exists():
        raise MissingWeights(
            f"{label} {ref!r} is neither a folder nor a known checkpoint (nor a file)",
            hint=f"known: {', '.join(sorted(registry()))}; see `layerctl weights list`",
        )
    elif path.suffix not in SINGLE_FILE_SUFFIXES:
        raise MissingWeights(
            f"{label} {ref} is not a checkpoint folder, .safetensors or .gguf file",
            hint="only safetensors and GGUF are loaded, never pickle",
        )
    folder_ref, _, vae_ref = (base or "").partition(",")
    if not folder_ref:
        raise UsageError(
            f"{label} {ref} is a single transformer file: the text encoder, VAE, tokenizer, "
            "processor and scheduler come from --base",
            hint=f"add --base {BASE} (fetch it with `layerctl weights pull {BASE}`) "
            "or --base DIR, a Qwen-Image-Layered folder",
        )
    return Sources(_base_folder(folder_ref), path, _vae_file(vae_ref) if vae_ref else None)


def _base_folder(ref: str) -> Path:
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    if ref in registry() and not registry()[ref].single_file:
        return cached(registry()[ref])
    raise MissingWeights(
        f"--base {ref!r} is neither a folder nor a known checkpoint",
        hint=f"fetch one with `layerctl weights pull {BASE}`",
    )


def _vae_file(ref: str) -> Path:
    if ref in registry() and registry()[ref].kind == "vae":
        return cached_file(registry()[ref])
    path = Path(ref).expanduser()
    if not path.is_file() or path.suffix != ".safetensors":
        raise MissingWeights(
            f"--base …,{ref}: no VAE .safetensors file there",
            hint="e.g. qwen_image_layered_vae.safetensors: "
            "`layerctl weights pull qwen-image-layered-comfy-vae`",
        )
    return path


# What a --base folder must hold for a single-file transformer, and what each part is.
BASE_PARTS = {
    "transformer/config.json": "the transformer's config, which shapes the single file",
    "text_encoder/": "the text encoder (Qwen2.5-VL)",
    "tokenizer/": "the tokenizer",
    "processor/": "the image processor",
    "scheduler/scheduler_config.json": "the scheduler config",
    "vae/": "the VAE (its config.json only, with a VAE file)",
}


def source_problems(found: Sources) -> list[Problem]:
    """Everything missing or damaged in ``found`` (empty: loadable). A folder checkpoint
    is :func:`check`; for a single file, the file itself and the parts of the base folder
    the pipeline needs (the VAE's config only, when a VAE file is given)."""
    if found.transformer is None:
        return check(found.base)
    problems = single_file_problems(found.transformer)
    if found.vae is not None:
        problems += single_file_problems(found.vae)
    root = found.base
    for part, what in BASE_PARTS.items():
        path = root / part
        if not (path.is_dir() if part.endswith("/") else path.is_file()):
            problems.append(Problem(f"{root.name}/{part}", f"missing ({what})"))
    for name in ("text_encoder", "vae"):
        if not (root / name).is_dir():
            continue  # reported above
        if not (root / name / "config.json").is_file():
            problems.append(Problem(f"{root.name}/{name}/config.json", "missing"))
        elif name == "text_encoder" or found.vae is None:  # a VAE file brings its weights
            problems += [
                Problem(f"{root.name}/{p.path}", p.what, p.refused)
                for p in _check_weights(root, root / name)
            ]
    return _dedupe(problems)


def require_sources(found: Sources) -> None:
    """Raise MissingWeights naming the first missing or damaged part and how to get it."""
    if found.transformer is None:
        require_complete(found.base)
        return
    problems = source_problems(found)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        base_part = problems[0].path.startswith(found.base.name + "/")
        raise MissingWeights(
            f"cannot load {found.transformer.name}: {problems[0]}{more}",
            hint=f"--base needs a Qwen-Image-Layered folder: `layerctl weights pull {BASE}`"
            if base_part
            else "fetch the file again (`layerctl weights pull NAME` for a registry entry)",
        )


def single_file_problems(path: Path) -> list[Problem]:
    """A transformer or VAE file: there, safetensors or GGUF, and as long as its header says
    (safetensors; a GGUF is checked for its magic only, its reader checks the rest)."""
    if not path.is_file():
        return [Problem(str(path), "missing")]
    if path.suffix == ".gguf":
        with path.open("rb") as f:
            if f.read(4) != GGUF_MAGIC:
                return [Problem(str(path), "not a GGUF file (no GGUF magic)")]
        return []
    if path.suffix != ".safetensors":
        return [Problem(str(path), "not .safetensors or .gguf", refused=True)]
    _, problem = tensor_sizes(path)
    return [Problem(str(path), problem)] if problem else []


def cached(ckpt: Checkpoint) -> Path:
    """The checkpoint's snapshot in the Hugging Face cache, found offline."""
    hub = _hub()
    try:
        folder = hub.snapshot_download(ckpt.repo, revision=ckpt.revision, local_files_only=True)
    except (hub.errors.LocalEntryNotFoundError, FileNotFoundError):
        raise MissingWeights(f"{ckpt.name} is not downloaded", hint=pull_hint(ckpt.name)) from None
    return Path(folder)


def cached_file(ckpt: Checkpoint) -> Path:
    """A single-file entry's file in its cached snapshot (its glob matched to one file)."""
    pattern = ckpt.files[0].path
    matches = _matches(cached(ckpt), pattern)
    if len(matches) != 1:
        what = "is not downloaded" if not matches else f"matches {len(matches)} files ({pattern})"
        raise MissingWeights(f"{ckpt.name} {what}", hint=pull_hint(ckpt.name))
    return matches[0]


def find_cached(ckpt: Checkpoint) -> Path | None:
    try:
        return cached_file(ckpt) if ckpt.single_file else cached(ckpt)
    except MissingWeights:
        return None


def pull(name: str, local_dir: Path | None = None, progress: bool = True) -> Path:
    """Download (or resume) a checkpoint into the HF cache or ``local_dir``; return its folder."""
    ckpt = checkpoint(name)
    hub = _hub()
    if not progress:
        hub.utils.disable_progress_bars()
    try:
        folder = hub.snapshot_download(
            ckpt.repo,
            revision=ckpt.revision,
            allow_patterns=ckpt.allow_patterns(),
            local_dir=local_dir,
        )
    except (hub.errors.OfflineModeIsEnabled, hub.errors.LocalEntryNotFoundError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}
        raise MissingWeights(
            f"cannot download {ckpt.repo}: {_first_line(exc)}",
            hint="unset HF_HUB_OFFLINE to allow downloads"
            if offline
            else "check the network connection",
        ) from None
    except hub.errors.HfHubHTTPError as exc:
        raise MissingWeights(
            f"cannot download {ckpt.repo}: {_first_line(exc)}",
            hint="gated repos need `hf auth login`; rerun to resume",
        ) from None
    return Path(folder)


def _hub():
    try:
        import huggingface_hub
        import huggingface_hub.errors
        import huggingface_hub.utils
    except ModuleNotFoundError:
        raise MissingWeights(
            "finding and fetching registry checkpoints needs huggingface_hub",
            hint="pip install 'layerctl[torch]', or give a checkpoint folder instead of a name",
        ) from None
    return huggingface_hub


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ---- checking a folder -------------------------------------------------------------


def check(root: Path, spec: Checkpoint | None = None, hashes: bool = False) -> list[Problem]:
    """Everything wrong with the checkpoint folder ``root`` (empty: complete and consistent).

    Checks: model_index.json names components that exist; every file ``spec`` lists is
    there with its size (and sha256 when ``hashes``); every JSON file parses; every
    model component has safetensors weights (pickle files are refused); every shard index
    points at existing shards whose headers hold exactly the tensors the index assigns
    them; every safetensors file is as long as its header says (catches truncation).
    """
    if not root.is_dir():
        return [Problem(str(root), "not a folder")]
    if spec is not None and spec.single_file:
        problems = list(_check_listed(root, spec, hashes))
        for path in _matches(root, spec.files[0].path):
            problems += single_file_problems(path)
        return _dedupe(problems)
    problems = list(_check_index(root))
    if spec is not None:
        problems += _check_listed(root, spec, hashes)
    for path in _files(root, ".json"):
        try:
            json.loads(path.read_text("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(Problem(_rel(path, root), f"does not parse: {exc}"))
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if (folder / "config.json").is_file():
            problems += _check_weights(root, folder)
    return _dedupe(problems)


def require_complete(root: Path) -> None:
    """Raise MissingWeights naming the first problem of ``root`` and how to fix it."""
    if not root.is_dir():
        raise MissingWeights(f"no checkpoint folder at {root}", hint=pull_hint())
    problems = check(root)
    if problems:
        first = next((p for p in problems if p.refused), problems[0])
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        if first.refused:
            raise MissingWeights(
                f"refusing to load {root}: {first}{more}",
                hint="only safetensors are loaded, never pickle; " + pull_hint(),
            )
        raise MissingWeights(
            f"incomplete checkpoint {root}: {first}{more}",
            hint=f"{pull_hint()}, or see `layerctl weights verify {root}`",
        )


def _check_index(root: Path) -> Iterator[Problem]:
    index_path = root / "model_index.json"
    if not index_path.is_file():
        yield Problem("model_index.json", "missing")
        return
    try:
        index = json.loads(index_path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return  # reported with the other JSON files
    for name, value in index.items():
        declared = isinstance(value, list) and value and value[0] is not None
        if not name.startswith("_") and declared and not (root / name).is_dir():
            yield Problem(f"{name}/", "missing component")


def _check_listed(root: Path, spec: Checkpoint, hashes: bool) -> Iterator[Problem]:
    for file in spec.files:
        found = _matches(root, file.path)
        if not found:
            yield Problem(file.path, "missing")
        for path in found:
            rel = _rel(path, root)
            if file.size is not None and path.stat().st_size != file.size:
                yield Problem(rel, f"{path.stat().st_size} bytes, expected {file.size}")
            elif hashes and file.sha256 and file_sha256(path) != file.sha256.lower():
                yield Problem(rel, "sha256 differs from the registry")


def _matches(root: Path, pattern: str) -> list[Path]:
    """The files ``pattern`` names under ``root`` (a glob where the registry has one)."""
    if "*" not in pattern:
        return [root / pattern] if (root / pattern).is_file() else []
    return sorted(p for p in root.glob(pattern) if p.is_file())


def _check_weights(root: Path, folder: Path) -> Iterator[Problem]:
    """A model component: safetensors only, shards consistent with their index and headers."""
    indexed: set[Path] = set()
    for index_path in sorted(folder.glob("*.safetensors.index.json")):
        try:
            weight_map: dict[str, str] = json.loads(index_path.read_text("utf-8"))["weight_map"]
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
            yield Problem(_rel(index_path, root), "not a shard index (no weight_map)")
            continue
        by_shard: dict[str, set[str]] = {}
        for tensor, shard in weight_map.items():
            by_shard.setdefault(shard, set()).add(tensor)
        for shard, tensors in sorted(by_shard.items()):
            path = folder / shard
            indexed.add(path)
            if not path.is_file():
                yield Problem(_rel(path, root), "missing (listed in the shard index)")
                continue
            sizes, problem = tensor_sizes(path)
            if problem:
                yield Problem(_rel(path, root), problem)
            elif set(sizes) != tensors:
                yield Problem(
                    _rel(path, root), "holds other tensors than its index says (swapped file?)"
                )
    singles = [p for p in sorted(folder.glob("*.safetensors")) if p not in indexed]
    for path in singles:
        _, problem = tensor_sizes(path)
        if problem:
            yield Problem(_rel(path, root), problem)
    if not indexed and not singles:
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            yield Problem(f"{folder.name}/", f"pickle weights only ({', '.join(pickles)})", True)
        else:
            yield Problem(f"{folder.name}/", "no weights (*.safetensors)")


def tensor_counts(path: Path) -> dict[str, int]:
    """{tensor name: elements} from a safetensors header ({} if unreadable)."""
    header, _ = _header(path)
    counts = {}
    for name, spec in header.items():
        count = 1
        for dim in spec.get("shape", []):
            count *= int(dim)
        counts[name] = count
    return counts


def tensor_sizes(path: Path) -> tuple[dict[str, int], str | None]:
    """({tensor name: bytes}, problem) from a safetensors header; the file must be as long
    as it says.

    Format: 8-byte little-endian header length, a JSON header of
    ``name -> {dtype, shape, data_offsets: [begin, end]}``, then the data
    (https://github.com/huggingface/safetensors#format).
    """
    header, problem = _header(path)
    if problem:
        return {}, problem
    return {k: end - begin for k, (begin, end) in _offsets(header).items()}, None


def _offsets(header: dict) -> dict[str, tuple[int, int]]:
    return {k: (int(v["data_offsets"][0]), int(v["data_offsets"][1])) for k, v in header.items()}


def _header(path: Path) -> tuple[dict, str | None]:
    """(the safetensors header less __metadata__, problem): the file must be as long as
    the header says."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return {}, f"truncated: {size} bytes"
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_HEADER, size - 8):
            return {}, "not a safetensors file (bad header length)"
        try:
            header = json.loads(f.read(length))
            if not isinstance(header, dict):
                raise TypeError("header is not an object")
            header = {k: v for k, v in header.items() if k != "__metadata__"}
            offsets = _offsets(header)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError):
            # ValueError covers bad UTF-8, bad JSON and non-numeric offsets.
            return {}, "not a safetensors file (unreadable header)"
    expected = 8 + length + max((end for _, end in offsets.values()), default=0)
    if size != expected:
        return {}, f"truncated or padded: {size} bytes, its header says {expected}"
    return header, None


def _files(root: Path, suffix: str) -> list[Path]:
    """Files under ``root`` ending in ``suffix``, skipping hidden folders (.cache of local_dir)."""
    return sorted(
        p
        for p in root.rglob(f"*{suffix}")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _dedupe(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))
