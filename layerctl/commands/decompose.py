"""``layerctl decompose``: images in (files, folders, globs, ``-``), layered files out.

One FILE argument is the single-image mode: ``-o`` names the output and any failure is
the command's error. Anything else is a batch: ``-o`` names a folder, finished outputs
are skipped, failures are recorded and the exit code is 3 when any input failed.
The work itself lives in layerctl.batch and layerctl.decomposer.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from layerctl import console
from layerctl.errors import LayerctlError, Stopped, Terminated, UsageError
from layerctl.options import (
    BATCH,
    LAYERS,
    OUTPUT,
    Backend,
    Base,
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
    Lora,
    Lossless,
    MaxLayers,
    MaxMemory,
    MaxPixels,
    NegativePrompt,
    Offload,
    OutputSize,
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
    from layerctl.decomposer import Options

EXAMPLES = """\
[bold]Examples[/]

  layerctl decompose poster.png -o poster.psd

  layerctl decompose designs/ -o layered/ -n auto --json

  layerctl decompose photo.jpg -b qwen --steps 30 --offload group
"""


def decompose(
    ctx: typer.Context,
    inputs: Annotated[
        list[str],
        typer.Argument(
            metavar="INPUT...",
            help="Images (PNG, JPEG, WebP, TIFF, …), folders, globs, or - to read paths "
            "from stdin.",
            show_default=False,
        ),
    ],
    backend: Backend = "auto",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="One input: the result (.psd, .ora, .pptx, .svg or a folder). Several: the "
            "output folder (default: beside each input).",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    fmt: Format = None,
    output_size: OutputSize = "input",
    preview: Annotated[
        bool,
        typer.Option("--preview", help="Also write <output>.preview.png.", rich_help_panel=OUTPUT),
    ] = False,
    force: Force = False,
    layers: Layers = "4",
    max_layers: MaxLayers = 8,
    seed: Seed = 0,
    lossless: Lossless = True,
    recursive: Annotated[
        int,
        typer.Option(
            "--recursive",
            metavar="DEPTH",
            help="Split the layers again, this deep.",
            rich_help_panel=LAYERS,
        ),
    ] = 0,
    split_layers: Annotated[
        str | None,
        typer.Option(
            "--split-layers",
            metavar="I,J",
            help="Only these layers, e.g. 1,3.",
            rich_help_panel=LAYERS,
        ),
    ] = None,
    min_coverage: Annotated[
        float,
        typer.Option(
            "--min-coverage",
            metavar="F",
            help="Skip layers covering less (0-1).",
            rich_help_panel=LAYERS,
        ),
    ] = 0.01,
    split_background: Annotated[
        bool,
        typer.Option("--split-background", help="Layer 0 too.", rich_help_panel=LAYERS),
    ] = False,
    recursive_dirs: Annotated[
        bool,
        typer.Option(
            "--recursive-dirs", help="Walk subfolders; outputs mirror them.", rich_help_panel=BATCH
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            metavar="N",
            help="Processes, one GPU each if any; 0: auto.",
            rich_help_panel=BATCH,
        ),
    ] = 1,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray", metavar="ADDRESS", help="On a Ray cluster (or local).", rich_help_panel=BATCH
        ),
    ] = None,
    fail_fast: Annotated[
        bool,
        typer.Option("--fail-fast", help="Stop at the first failure.", rich_help_panel=BATCH),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report", metavar="HTML", help="Write an HTML report here.", rich_help_panel=BATCH
        ),
    ] = None,
    weights: Weights = None,
    base: Base = None,
    prompt: Prompt = None,
    negative_prompt: NegativePrompt = " ",
    steps: Steps = 50,
    cfg: Cfg = 4.0,
    cfg_normalize: CfgNormalize = True,
    resolution: Resolution = "640",
    caption_lang: CaptionLang = "en",
    providers: Providers = None,
    lora: Lora = None,
    device: Device = "auto",
    dtype: Dtype = "auto",
    offload: Offload = "auto",
    vae_tiling: VaeTiling = False,
    compile: Compile = False,
    quantize: Quantize = None,
    step_cache: StepCache = 0.0,
    cfg_truncate: CfgTruncate = 0.0,
    max_pixels: MaxPixels = None,
    max_memory: MaxMemory = None,
    json_out: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Split images into stacks of RGBA layers.

    One FILE: -o names the result.

    Folders, globs, several files or - (paths on stdin): a batch into -o OUTDIR.

    Defaults come from LAYERCTL_<OPTION> or layerctl.toml (see README).

    A value there for an option the backend does not take is ignored.
    """
    from layerctl import batch

    console.state.quiet, console.state.debug = quiet, debug or console.state.debug
    options = build_options(ctx)  # every option checked: usage errors before any work
    if workers < 0:
        raise UsageError(f"--workers {workers}: must be 0 (one per GPU or core) or more")
    if batch.is_batch(inputs):
        if report is not None:
            from layerctl.report import check_writable

            check_writable(report, force)
        sources = batch.collect(inputs, recursive_dirs, _stdin(inputs), exclude=output)
        jobs = batch.plan(sources, output, options.fmt or "psd")
        _run_batch(jobs, options, workers, ray, fail_fast, json_out, report)
    elif report is not None:
        raise UsageError("--report is for batches", hint="give a folder, a glob or several inputs")
    else:
        _run_one(Path(inputs[0]), output, options, json_out)


def build_options(ctx: typer.Context) -> Options:
    """decomposer.Options from a command's parsed parameters, checked.

    The backend gets the values of its own options that were given (flag, environment,
    layerctl.toml); a flag for an option it does not take is a usage error naming the
    backends that take it, while an environment or file value for one is ignored.
    """
    import inspect

    from layerctl.backends import base
    from layerctl.decomposer import configure

    params = ctx.params
    core = [  # the decomposition's own options, as configure names them
        p.name
        for p in inspect.signature(configure).parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.name not in {"strict", "label"}
    ]
    flags = {p.name: p.opts[0] for p in ctx.command.params if p.opts}
    sources = {name: ctx.get_parameter_source(name) for name in ctx.params}
    given = {k: s.name for k, s in sources.items() if s is not None and s.name != "DEFAULT"}
    backend_options = {
        name: params[name] for name in base.takers() if name in given and name in params
    }
    strict = {k for k, source in given.items() if source == "COMMANDLINE"}
    return configure(
        params["backend"],
        **{k: params[k] for k in core if k in params},
        strict=strict & set(backend_options),
        label=lambda key: flags.get(key, key),
        **backend_options,
    )


def _run_one(input: Path, output: Path | None, options: Options, json_out: bool) -> None:
    from layerctl import batch

    job = batch.Job(input, output or input.with_suffix(batch.output_suffix(options.fmt or "psd")))
    start = time.perf_counter()
    try:
        with console.status(f"decomposing {input.name}"):
            stack = batch.single(job, options)
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
    # The chosen backend's own schemas: every setting listed is one it takes.
    settings["settings"] = options.settings.model_dump(mode="json")
    request = options.request.model_dump(mode="json")
    del request["layers"]  # set per image; the run's choice is options.layers
    settings["request"] = request
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
