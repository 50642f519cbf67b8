"""``layerctl decompose``: images in (files, folders, globs, ``-``), layered files out.

One FILE argument is the single-image mode: ``-o`` names the output and any failure is
the command's error. Anything else is a batch: ``-o`` names a folder, finished outputs
are skipped, failures are recorded and the exit code is 3 when any input failed.
The work itself lives in layerctl.batch, layerctl.pipeline and layerctl.recursion.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from layerctl import console
from layerctl.backends.base import BackendSettings, DecomposeRequest
from layerctl.errors import LayerctlError, Stopped, Terminated, UsageError
from layerctl.options import (
    Backend,
    CaptionLang,
    Cfg,
    CfgNormalize,
    CfgTruncate,
    Compile,
    Debug,
    Device,
    Dtype,
    Force,
    Format,
    Json,
    Layers,
    Lossless,
    MaxLayers,
    MaxMemory,
    MaxPixels,
    NegativePrompt,
    Offload,
    Prompt,
    Providers,
    Quantize,
    Quiet,
    Resolution,
    Seed,
    StepCache,
    Steps,
    VaeTiling,
    Weights,
)
from layerctl.outputs import json_text

if TYPE_CHECKING:
    from layerctl.batch import Job, Result
    from layerctl.pipeline import Options

_DEFAULTS = DecomposeRequest()


def decompose(
    ctx: typer.Context,
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Images (PNG, JPEG, WebP, TIFF, …), folders, globs, or - to read paths "
            "from stdin.",
            show_default=False,
        ),
    ],
    layers: Layers = "4",
    max_layers: MaxLayers = 8,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="One input: the result (.psd, .ora or a folder). Several: the output folder "
            "(default: beside each input).",
        ),
    ] = None,
    fmt: Format = None,
    recursive_dirs: Annotated[
        bool, typer.Option("--recursive-dirs", help="Walk subfolders; outputs mirror them.")
    ] = False,
    recursive: Annotated[
        int, typer.Option("--recursive", min=0, help="Split the layers again, this deep.")
    ] = 0,
    split_layers: Annotated[
        str | None,
        typer.Option("--split-layers", help="With --recursive: only these layers, e.g. 1,3."),
    ] = None,
    min_coverage: Annotated[
        float,
        typer.Option(
            "--min-coverage", min=0.0, max=1.0, help="With --recursive: skip smaller layers."
        ),
    ] = 0.01,
    split_background: Annotated[
        bool, typer.Option("--split-background", help="With --recursive: split layer 0 too.")
    ] = False,
    backend: Backend = "auto",
    seed: Seed = _DEFAULTS.seed,
    prompt: Prompt = None,
    negative_prompt: NegativePrompt = _DEFAULTS.negative_prompt,
    steps: Steps = _DEFAULTS.steps,
    cfg: Cfg = _DEFAULTS.cfg,
    cfg_normalize: CfgNormalize = _DEFAULTS.cfg_normalize,
    resolution: Resolution = _DEFAULTS.resolution,
    caption_lang: CaptionLang = _DEFAULTS.caption_lang,
    weights: Weights = None,
    device: Device = "auto",
    dtype: Dtype = "auto",
    offload: Offload = "auto",
    vae_tiling: VaeTiling = False,
    providers: Providers = None,
    compile: Compile = False,
    quantize: Quantize = None,
    step_cache: StepCache = _DEFAULTS.step_cache,
    cfg_truncate: CfgTruncate = _DEFAULTS.cfg_truncate,
    output_size: Annotated[
        str, typer.Option("--output-size", help="input (default) or model resolution.")
    ] = "input",
    lossless: Lossless = True,
    max_pixels: MaxPixels = None,
    max_memory: MaxMemory = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", min=0, help="Worker processes, each on its own GPU if any; 0: auto."
        ),
    ] = 1,
    ray: Annotated[
        str | None,
        typer.Option("--ray", metavar="local|auto|ADDRESS", help="Run the batch on a Ray cluster."),
    ] = None,
    force: Force = False,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop a batch at the first failure.")
    ] = False,
    preview: Annotated[
        bool, typer.Option("--preview", help="Also write <output>.preview.png, a contact sheet.")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Batch: write a self-contained HTML report here."),
    ] = None,
    json_out: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Split images into stacks of RGBA layers.

    One FILE: -o names the result.

    Folders, globs, several files or - (paths on stdin): a batch into -o OUTDIR.

    Any option's default can be set as LAYERCTL_<OPTION> or in layerctl.toml.
    """
    from layerctl import batch, recursion

    console.state.quiet, console.state.debug = quiet, debug or console.state.debug
    options = build_options(
        ctx.params,
        recursion=recursion.Plan(
            recursive, recursion.parse_indices(split_layers), min_coverage, split_background
        ),
    )
    if batch.is_batch(inputs):
        if report is not None:
            from layerctl.report import check_writable

            check_writable(report, force)
        sources = batch.collect(inputs, recursive_dirs, _stdin(inputs), exclude=output)
        jobs = batch.plan(sources, output, fmt or "psd")
        _run_batch(jobs, options, workers, ray, fail_fast, json_out, report)
    elif report is not None:
        raise UsageError("--report is for batches", hint="give a folder, a glob or several inputs")
    else:
        _run_one(Path(inputs[0]), output, options, json_out)


def build_options(params: Mapping[str, Any], **overrides: Any) -> Options:
    """pipeline.Options from a command's parsed parameters (``ctx.params``).

    Each value goes where its name says (DecomposeRequest, BackendSettings or Options),
    so a command shares an option by declaring it, not by passing it on by hand.
    """
    from layerctl.pipeline import Options

    values = {**params, **overrides}

    def pick(cls: type, skip: set[str] = frozenset()) -> dict[str, Any]:
        return {
            f.name: values[f.name] for f in fields(cls) if f.name in values and f.name not in skip
        }

    settings = pick(BackendSettings)
    settings["providers"] = tuple(p for p in (settings.get("providers") or "").split(",") if p)
    return Options(
        request=DecomposeRequest(**pick(DecomposeRequest, skip={"layers"})),
        settings=BackendSettings(**settings),
        **pick(Options, skip={"request", "settings"}),
    )


def _run_one(input: Path, output: Path | None, options: Options, json_out: bool) -> None:
    from layerctl import batch, formats
    from layerctl.outputs import check_writable
    from layerctl.preview import preview_path

    job = batch.Job(input, output or input.with_suffix(batch.output_suffix(options.fmt or "psd")))
    formats.format_for(job.output, options.fmt)  # usage errors before any work
    start = time.perf_counter()
    try:
        check_writable(job.output, options.force, [input])
        if options.preview:
            check_writable(preview_path(job.output), options.force, [input])
        with console.status(f"decomposing {input.name}"):
            stack = batch.process(job, options)
    except Exception as exc:  # --json: this input's record, as in a batch; then the error
        if not isinstance(exc, UsageError):
            message = str(exc) if isinstance(exc, LayerctlError) else type(exc).__name__
            _emit(batch.failed(job, message, time.perf_counter() - start), json_out)
        raise
    result = batch.Result.done(job, stack, time.perf_counter() - start)
    _emit(result, json_out)
    count = console.counted(len(stack.leaves()), "layer")
    console.info(f"wrote {job.output} ({count}, {result.seconds:.1f} s)")


def _run_batch(
    jobs: list[Job],
    options: Options,
    workers: int,
    ray: str | None,
    fail_fast: bool,
    json_out: bool,
    report: Path | None,
) -> None:
    from layerctl import batch, progress
    from layerctl import workers as pool
    from layerctl.errors import BatchFailed

    start = time.perf_counter()
    todo, results = batch.pending(jobs, options)
    bar = progress.Progress(len(jobs))
    # Ray's core worker logs to stderr from C++, whatever its Python logging level.
    ray_logs = console.native_stderr_silenced() if ray is not None else contextlib.nullcontext()
    with bar.shown(), ray_logs:
        for result in results:
            bar.finished(result)
            _emit(result, json_out)
        if ray is not None:
            stream = pool.run_ray(todo, options, ray, workers)
        elif (count := pool.worker_count(workers, options)) > 1 and len(todo) > 1:
            options = replace(options, memory_share=count)  # each its part of the memory
            stream = pool.run_processes(todo, options, count, on_start=bar.started)
        else:
            stream = batch.run_local(todo, options, on_start=bar.started)
        try:
            for result in stream:
                results.append(result)
                bar.finished(result)
                _emit(result, json_out)
                if fail_fast and result.status == "failed":
                    break
        except (KeyboardInterrupt, Terminated) as exc:  # finished outputs whole, others unmoved
            progress.summary(results, time.perf_counter() - start)
            raise Stopped(isinstance(exc, Terminated)) from None
        finally:
            stream.close()
        for result in batch.not_tried(jobs, results):
            results.append(result)
            _emit(result, json_out)
    progress.summary(results, time.perf_counter() - start)
    if report is not None:
        _write_report(report, results, options, time.perf_counter() - start)
    failed = sum(result.status == "failed" for result in results)
    if failed:
        untried = sum(result.status == "not tried" for result in results)
        more = f", {untried} not tried" if untried else ""
        raise BatchFailed(
            f"{failed} of {console.counted(len(jobs), 'input')} failed{more}",
            hint="see the errors above",
        )


def _write_report(path: Path, results: list[Result], options: Options, seconds: float) -> None:
    from dataclasses import asdict

    from layerctl import report
    from layerctl.preview import preview_path

    records = [result.record() for result in results]
    if options.preview:  # the report links each thumbnail to its contact sheet
        records = [{**r, "preview": str(preview_path(Path(r["output"])))} for r in records]
    settings = {k: v for k, v in asdict(options).items() if k not in {"force", "preview"}}
    # The backend's own options only as given: with each backend's options checked, a
    # value given is one it uses, and defaults of options it ignores are noise.
    for group, defaults in (("request", DecomposeRequest()), ("settings", BackendSettings())):
        given = {k: v for k, v in settings[group].items() if getattr(defaults, k) != v}
        settings[group] = {k: v for k, v in given.items() if k != "layers"}  # options.layers
    settings["request"]["seed"] = options.request.seed  # every backend draws from it
    report.write(records, path, force=True, settings=settings, seconds=seconds)
    console.info(f"wrote {path}")


def _emit(result: Result, json_out: bool) -> None:
    for note in result.notes:
        console.warn(f"{result.input}: {note}")
    if json_out:
        typer.echo(json_text(result.record(), indent=None))
        sys.stdout.flush()


def _stdin(inputs: list[str]) -> list[str]:
    return sys.stdin.read().splitlines() if "-" in inputs else []
