"""Batches: expand DIR / GLOB / FILE / ``-`` into jobs, skip finished work, record results.

An input's output path depends on that input alone, never on the others in the batch:
one found in a folder or by a glob mirrors its place below that folder or the glob's
fixed part (``OUTDIR / src.relative_to(root)``); a file named on the command line or on
stdin is written by its file name (two such names that clash are a usage error).
An input counts as done only when its output is a whole layerctl result of this very
input (its recorded sha256) and its requested preview exists; a result missing only its
preview gets the preview, and anything else at the output path fails unless ``force``.
Each job claims its output first (``outputs.claim``), so concurrent runs over one folder
split the work. A failing input becomes a ``failed`` result while the batch goes on.
layerctl's own outputs (results, previews) are never collected as inputs.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layerctl.decomposer import Options
from layerctl.errors import LayerctlError, OutputExists, UsageError
from layerctl.stack import Layer, LayerStack

if TYPE_CHECKING:
    from layerctl.decomposer import Decomposer

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
OUTPUT_SUFFIX = {"psd": ".psd", "ora": ".ora", "pptx": ".pptx", "svg": ".svg", "png": ""}
GLOB_CHARS = set("*?[")
OUR_SUFFIXES = {".psd", ".psb", ".ora", ".pptx", ".svg"}


@dataclass(frozen=True)
class Source:
    path: Path
    root: Path  # the output mirrors path.relative_to(root)


@dataclass(frozen=True)
class Job:
    input: Path
    output: Path


@dataclass
class Result:
    """What happened to one input; ``record()`` is its ``--json`` line."""

    input: Path
    output: Path
    status: str  # ok | skipped | failed | not tried (after --fail-fast stopped the batch)
    error: str | None = None
    seconds: float = 0.0
    backend: str | None = None
    layers: list[dict[str, Any]] = field(default_factory=list)
    layers_requested: int | None = None  # what the backend was asked for: an upper bound
    notes: list[str] = field(default_factory=list)  # worth telling the user

    @classmethod
    def done(cls, job: Job, stack: LayerStack, seconds: float) -> Result:
        meta = stack.metadata
        return cls(
            job.input,
            job.output,
            "ok",
            None,
            seconds,
            meta.get("backend"),
            layer_records(stack.layers),
            meta.get("parameters", {}).get("layers"),
            list(meta.get("notes", [])),
        )

    def record(self) -> dict[str, Any]:
        return {
            "input": str(self.input),
            "output": str(self.output),
            "status": self.status,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "backend": self.backend,
            "layers_requested": self.layers_requested,
            "layers": self.layers,
            "notes": self.notes,
        }


def layer_records(layers: Sequence[Layer]) -> list[dict[str, Any]]:
    """name / bbox / coverage per layer, bottom first; groups carry their ``children``."""
    records = []
    for layer in layers:
        record: dict[str, Any] = {
            "name": layer.name,
            "bbox": layer.bbox(),
            "coverage": round(layer.coverage(), 6),
        }
        if layer.is_group:
            record["children"] = layer_records(layer.children)
        records.append(record)
    return records


def is_batch(args: Sequence[str]) -> bool:
    """More than one input, or one that names several (a folder, a glob, ``-``)."""
    if len(args) != 1:
        return True
    arg = args[0]
    return arg == "-" or Path(arg).is_dir() or (_is_glob(arg) and not Path(arg).exists())


def collect(
    args: Sequence[str],
    recursive_dirs: bool = False,
    stdin: Iterable[str] = (),
    exclude: Path | None = None,
) -> list[Source]:
    """The inputs named by ``args``, in order, each once. ``exclude``: the output folder."""
    sources: list[Source] = []
    for arg in args:
        if arg == "-":
            paths = [Path(line.strip()) for line in stdin if line.strip()]
            sources += [Source(p, p.parent) for p in paths]  # by name, as a FILE argument
        elif Path(arg).is_dir():
            sources += _walk(Path(arg), recursive_dirs, exclude)
        elif _is_glob(arg) and not Path(arg).exists():
            found = sorted(Path(p) for p in glob.glob(arg, recursive=True) if Path(p).is_file())
            if not found:
                raise UsageError(f"no files match {arg!r}")
            root = _glob_root(arg)
            sources += [Source(p, root) for p in found if not _is_our_output(p, root)]
        else:
            path = Path(arg)
            sources.append(Source(path, path.parent))
    seen: set[Path] = set()
    unique = []
    for source in sources:
        key = source.path.absolute()
        if key not in seen:
            seen.add(key)
            unique.append(source)
    if not unique:
        raise UsageError(f"no images found in {' '.join(args)}", hint="check the paths")
    return unique


def _is_glob(arg: str) -> bool:
    return bool(GLOB_CHARS & set(arg))


def _glob_root(pattern: str) -> Path:
    """The folder above the first part of ``pattern`` that holds a wildcard."""
    parts = Path(pattern).parts
    fixed = parts[: next(i for i, p in enumerate(parts) if _is_glob(p))]
    return Path(*fixed) if fixed else Path(".")


def _walk(root: Path, recursive: bool, exclude: Path | None) -> list[Source]:
    """Images in ``root`` (and below it when ``recursive``), skipping hidden entries,
    the output folder and folders that are themselves results (PNG stacks)."""
    excluded = exclude.absolute() if exclude is not None else None
    if _is_result_folder(root):
        return []
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if recursive
            and not d.startswith(".")
            and (here / d).absolute() != excluded
            and not _is_result_folder(here / d)
        )
        found += [
            Source(here / name, root)
            for name in sorted(filenames)
            if not name.startswith(".")
            and Path(name).suffix.lower() in IMAGE_SUFFIXES
            and not _is_preview(here / name)
        ]
    return found


def _is_result_folder(path: Path) -> bool:
    from layerctl.formats.pngstack import MANIFEST

    return (path / MANIFEST).is_file()


def _is_our_output(path: Path, root: Path) -> bool:
    """A file layerctl wrote: a preview, a PSD / ORA / PPTX / SVG result, a file in a PNG
    stack."""
    if _is_preview(path):
        return True
    if path.suffix.lower() in OUR_SUFFIXES:
        from layerctl import formats

        try:
            return bool(formats.read_metadata(path))  # our provenance; {} from others
        except LayerctlError:
            return False
    top = root.absolute()
    above = [p for p in path.absolute().parents if p == top or top in p.parents]
    return any(_is_result_folder(p) for p in above)


def _is_preview(path: Path) -> bool:
    """``RESULT.preview.png`` beside its result, or one layerctl marked as its sheet."""
    from layerctl.preview import SUFFIX, is_preview

    return path.name.endswith(SUFFIX) and (
        os.path.lexists(str(path)[: -len(SUFFIX)]) or is_preview(path)
    )


def output_suffix(fmt: str) -> str:
    """``.psd``, ``.ora``, ``.pptx``, ``.svg`` or ``""`` (a PNG-stack folder); unknown
    formats are usage errors."""
    from layerctl.formats import format_for

    return OUTPUT_SUFFIX[format_for(Path(), fmt)]


def plan(sources: Sequence[Source], outdir: Path | None, fmt: str) -> list[Job]:
    """One job per source; its output under ``outdir`` (mirroring) or beside the input."""
    suffix = output_suffix(fmt)
    if outdir is not None and outdir.suffix.lower() in OUR_SUFFIXES:
        raise UsageError(
            f"-o {outdir}: a batch writes into a folder, not one file",
            hint="give a folder name; choose the file type with --format",
        )
    jobs: list[Job] = []
    claimed: dict[Path, Path] = {}
    for source in sources:
        name = source.path.stem + suffix
        if outdir is None:
            output = source.path.parent / name
        else:
            relative = source.path.absolute().relative_to(source.root.absolute())
            output = outdir / relative.parent / name
        key = output.absolute()
        if key in claimed:
            raise UsageError(
                f"{claimed[key]} and {source.path} would both be written to {output}",
                hint="rename one of them or decompose them in separate runs",
            )
        claimed[key] = source.path
        jobs.append(Job(source.path, output))
    return jobs


def single(job: Job, options: Options) -> LayerStack:
    """One input to its named output (``decompose IN -o OUT``, ``api.decompose_file``):
    the output's name and writability checked before the model loads, errors propagate."""
    from layerctl import formats
    from layerctl.decomposer import Decomposer
    from layerctl.outputs import check_writable
    from layerctl.preview import preview_path

    formats.format_for(job.output, options.fmt)
    check_writable(job.output, options.force, [job.input])
    if options.preview:
        check_writable(preview_path(job.output), options.force, [job.input])
    return process(job, Decomposer(options))


def process(job: Job, decomposer: Decomposer) -> LayerStack:
    """Read, decompose and write one job; errors propagate."""
    from layerctl import formats

    options = decomposer.options
    source = decomposer.read(job.input)
    if options.output_size == "input":  # a canvas the format cannot hold fails before work
        height, width = source.pixels.shape[:2]
        formats.check_canvas(job.output, options.fmt, (width, height))
    stack = decomposer(source)
    formats.write(stack, job.output, options.fmt, force=options.force, inputs=[job.input])
    if options.preview:
        _write_preview(job, stack, source.pixels, options)
    return stack


def add_preview(job: Job, options: Options) -> LayerStack:
    """Write the missing preview of a finished result, without decomposing again."""
    from layerctl import formats
    from layerctl.imageio import read_image

    stack = formats.read(job.output)
    _write_preview(job, stack, read_image(job.input, options.max_pixels).pixels, options)
    return stack


def _write_preview(job: Job, stack: LayerStack, original, options: Options) -> None:
    from layerctl.preview import preview_path, write_preview

    path = preview_path(job.output)
    write_preview(stack, path, original, force=options.force, inputs=[job.input])


def left_to_do(job: Job, options: Options) -> str | None:
    """What ``job`` still needs: "all", "preview", or None when it is done.

    Done means its output is a whole layerctl result of this input (the sha256 it
    records) and its requested preview is there. Raises when the output may not be
    written: it is the input, or something else is in its place and ``force`` is off.
    """
    from layerctl.outputs import check_writable
    from layerctl.preview import is_preview, preview_path

    preview = preview_path(job.output) if options.preview else None
    if not os.path.lexists(job.output) or options.force:
        check_writable(job.output, options.force, [job.input])
        if preview is not None:
            check_writable(preview, options.force, [job.input])
        return "all"
    check_writable(job.output, True, [job.input])  # "is the input" before "exists"
    if not _is_result_of(job, options):
        raise OutputExists(
            f"{job.output} exists but is not a whole layerctl result of {job.input}",
            hint="pass --force to redo it",
        )
    if preview is not None and not is_preview(preview, marked=False):  # also older sheets
        return "preview"
    return None


def _is_result_of(job: Job, options: Options) -> bool:
    """Whether ``job.output`` is a whole result of this input, by its header alone."""
    from layerctl import formats
    from layerctl.digests import file_sha256

    try:
        recorded = formats.read_metadata(job.output, formats.format_for(job.output, options.fmt))
        source = recorded.get("source")
        return isinstance(source, dict) and source.get("sha256") == file_sha256(job.input)
    except (LayerctlError, OSError):
        return False


def attempt(job: Job, decomposer: Decomposer) -> Result:
    """Claim, check and run one job, with failures recorded instead of raised (Ctrl-C
    still stops). A job another run is writing is skipped; one it finished meanwhile too."""
    from layerctl.outputs import claim

    options = decomposer.options
    start = time.perf_counter()
    try:
        with claim(job.output) as held:
            if not held:
                return Result(job.input, job.output, "skipped", "being written by another run")
            left = left_to_do(job, options)
            if left is None:
                return Result(job.input, job.output, "skipped")
            stack = process(job, decomposer) if left == "all" else add_preview(job, options)
    except LayerctlError as exc:
        return failed(job, str(exc), time.perf_counter() - start)
    except Exception as exc:  # a bug or a backend crash on one input must not end the batch
        from layerctl import console
        from layerctl.errors import out_of_memory

        if out_of_memory(exc):  # this input's failure only: its arrays are freed as we return
            message = "out of memory (the plan let it through: lower --max-memory)"
            return failed(job, message, time.perf_counter() - start)

        if console.state.debug:
            import traceback

            traceback.print_exception(exc)
        message = f"internal error: {type(exc).__name__}: {exc}"
        return failed(job, message, time.perf_counter() - start)
    return Result.done(job, stack, time.perf_counter() - start)


def failed(job: Job, message: str, seconds: float = 0.0) -> Result:
    """A ``failed`` result whose message names its input."""
    if not message.startswith(str(job.input)):
        message = f"{job.input}: {message}"
    return Result(job.input, job.output, "failed", message, seconds)


def not_tried(jobs: Sequence[Job], results: Sequence[Result]) -> list[Result]:
    """A ``not tried`` result for each job without a result (--fail-fast stopped early)."""
    tried = {result.input for result in results}
    return [Result(job.input, job.output, "not tried") for job in jobs if job.input not in tried]


def pending(jobs: Sequence[Job], options: Options) -> tuple[list[Job], list[Result]]:
    """(jobs to run, results of those already done or that cannot be written)."""
    from layerctl.outputs import drop_stale_claim

    todo, settled = [], []
    for job in jobs:
        try:
            left = left_to_do(job, options)
        except LayerctlError as exc:
            settled.append(failed(job, str(exc)))
            continue
        if left is None:
            drop_stale_claim(job.output)
            settled.append(Result(job.input, job.output, "skipped"))
        else:
            todo.append(job)
    return todo, settled


def run_local(jobs: Sequence[Job], options: Options, on_start=None) -> Iterator[Result]:
    """Run jobs one after another in this process (the backend loads once, at the first)."""
    from layerctl.decomposer import Decomposer

    decomposer = None
    for job in jobs:
        if on_start is not None:
            on_start(job.input)
        decomposer = decomposer or Decomposer(options)
        yield attempt(job, decomposer)
