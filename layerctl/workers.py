"""More than one process: ``--workers N`` on this machine, ``--ray ADDRESS`` on a cluster.

Both run the same ``batch.attempt`` on each job as the in-process loop, so they write the
same files and report the same results; each worker loads the backend once and keeps it
for every job it gets. Only paths and small result records cross process boundaries,
never decoded images (a Ray cluster therefore needs the paths on a shared file system).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from layerctl import batch
from layerctl.batch import Job, Result
from layerctl.decomposer import Decomposer, Options
from layerctl.errors import BackendUnavailable, Terminated

OnStart = Callable[[Path], None]
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_GRACE_S = 10.0  # for a worker's clean-up once its parent is gone


def visible_gpus(options: Options) -> list[str]:
    """CUDA device ids a worker may be pinned to (none when the run is on CPU)."""
    if _on_cpu(options):
        return []
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(listing.stdout.splitlines()) if line.startswith("GPU")]


def _on_cpu(options: Options) -> bool:
    """Whether the run asked for the CPU (``--device cpu``, for backends that take it)."""
    return getattr(options.settings, "device", None) == "cpu"


def worker_count(requested: int, options: Options) -> int:
    """``--workers 0`` means one per visible GPU, else one per CPU core."""
    if requested > 0:
        return requested
    return len(visible_gpus(options)) or os.cpu_count() or 1


def run_processes(
    jobs: Sequence[Job], options: Options, count: int, on_start: OnStart | None = None
) -> Iterator[Result]:
    """Run ``jobs`` on ``count`` local processes, worker i pinned to GPU i mod #GPUs.

    At most ``count`` jobs are in flight, so ``on_start`` fires when a job really starts
    and stopping early (``--fail-fast``, Ctrl-C) leaves no queue of work behind. When a
    worker dies, the pool is restarted and the jobs it held run once more.
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from layerctl import console

    context = multiprocessing.get_context("spawn")  # no inherited CUDA or threads
    slots = context.Queue()
    gpus = visible_gpus(options)

    def start() -> ProcessPoolExecutor:
        for slot in range(count):
            slots.put(slot)
        return ProcessPoolExecutor(
            count,
            mp_context=context,
            initializer=_init_worker,
            initargs=(slots, gpus, console.state.debug),
        )

    pool = start()
    queue = list(jobs)[::-1]
    running: dict[Future, Job] = {}
    retried: set[Job] = set()
    try:
        while queue or running:
            while queue and len(running) < count:
                job = queue.pop()
                if on_start is not None:
                    on_start(job.input)
                running[pool.submit(_attempt, job, options)] = job
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            if any(_died(future) for future in done):  # the pool is broken: all of it ends
                done = wait(running).done
                _abandon(pool)
                pool = start()
            for future in done:
                job = running.pop(future)
                if not _died(future):
                    yield future.result()
                elif job in retried:
                    message = "its worker process died twice (out of memory?)"
                    yield Result(job.input, job.output, "failed", message)
                else:  # maybe it was another job that took the worker down: once more
                    retried.add(job)
                    queue.append(job)
    except (KeyboardInterrupt, Terminated):  # Ctrl-C reaches the workers, SIGTERM this one
        for worker in _workers(pool):
            worker.terminate()  # each removes its unfinished output (_stop)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _abandon(pool: Any, timeout: float = 30) -> None:
    """Shut a broken pool down for good, killing every worker it still has, and wait
    until its clean-up is over.

    CPython 3.11's broken-pool clean-up terminates the workers it knows of, but a worker
    spawned by a ``submit`` racing with it is missed, and the pool's manager thread then
    waits for it forever — at interpreter exit too (seen here as a hung test run). Once
    we stop submitting, ``_processes`` is complete, so killing them all closes the race.
    The manager thread closes the old pool's pipes; letting it finish before the next
    pool spawns keeps the two pools' descriptors from being closed and opened at once
    (once, in a full test run, the new pool's spawn failed with "bad value(s) in
    fds_to_keep", a descriptor number seen twice).
    """
    workers = _workers(pool)
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        worker.kill()
    for worker in workers:
        worker.join(timeout)
    if manager is not None:
        manager.join(timeout)


def _workers(pool: Any) -> list[Any]:
    """The pool's worker processes (CPython keeps them in ``_processes``)."""
    return list((getattr(pool, "_processes", None) or {}).values())


def _died(future: Future) -> bool:
    """Whether the worker running ``future`` died (killed, out of memory, segfault)."""
    from concurrent.futures.process import BrokenProcessPool

    return isinstance(future.exception(), BrokenProcessPool)


def _init_worker(slots, gpus: list[str], debug: bool) -> None:
    """Runs first in each worker: tie its life to the parent's, then pick a GPU before
    anything imports torch."""
    from layerctl import console

    signal.signal(signal.SIGTERM, _stop)
    _die_with_parent()
    slot = slots.get()
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
    console.state.debug = debug


def _stop(signum: int, frame: Any) -> None:
    """SIGTERM ends a worker, from its parent stopping or at the parent's death: as
    SystemExit, so that a job's clean-ups run (no unfinished output is left). Later ones
    are ignored: the parent's death may arrive twice (PR_SET_PDEATHSIG, the watchdog),
    and a second SystemExit would cut the first one's clean-up short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(143)


def _attempt(job: Job, options: Options) -> Result:
    """``batch.attempt`` in a worker, which ends once a stopped job has cleaned up: the
    pool would catch the SystemExit and wait for more work, maybe from a dead parent."""
    try:
        return batch.attempt(job, Decomposer(options))  # the model: loaded once per worker
    except SystemExit as exc:
        sys.stderr.flush()
        os._exit(exc.code if isinstance(exc.code, int) else 1)


def _die_with_parent() -> None:
    """Make this worker end when its parent does, even when the parent is SIGKILLed and
    runs no clean-up of its own: else the workers outlive it, and so does multiprocessing's
    resource tracker, whose pipe they hold open.

    On Linux the kernel sends SIGTERM when the parent's thread that spawned us ends
    (``PR_SET_PDEATHSIG``; SIGTERM, not SIGKILL, so that a job in progress removes its
    temporary); the pool spawns its workers from ``submit``, in the thread that runs the
    whole batch. Everywhere, a watchdog thread waits on the pipe that multiprocessing
    keeps from the parent, which reaches EOF once the parent is gone. The check between
    the two catches a parent that died before the signal was armed.
    """
    import multiprocessing

    if sys.platform == "linux":
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    parent = multiprocessing.parent_process()
    if parent is None:  # not started by multiprocessing: nothing to watch
        return
    if not parent.is_alive():
        os._exit(143)  # no job started yet: nothing to clean up
    threading.Thread(target=_watch, args=(parent,), name="parent-watchdog", daemon=True).start()


def _watch(parent: Any) -> None:
    """Wait for the parent's end; then stop the main thread as SIGTERM does, and exit for
    good if that has not ended the process within ``_GRACE_S`` (a job stuck in native
    code; imageio sweeps the temporary it leaves on the next write of that output)."""
    parent.join()
    if hasattr(signal, "pthread_kill"):  # to the main thread: it interrupts a blocking read
        signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)
    else:
        import _thread

        _thread.interrupt_main(signal.SIGTERM)
    time.sleep(_GRACE_S)
    os._exit(143)


def run_ray(jobs: Sequence[Job], options: Options, address: str, count: int) -> Iterator[Result]:
    """Run ``jobs`` with Ray Data: an actor per GPU (or ``count`` CPU actors), paths in,
    result records out. ``address``: ``local`` starts Ray here, ``auto`` joins the
    cluster this machine belongs to, anything else is a cluster address."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise BackendUnavailable(
            "--ray needs Ray Data", hint="pip install 'layerctl[ray]'"
        ) from None
    if not jobs:
        return
    import logging

    from layerctl import console

    level = logging.DEBUG if console.state.debug else logging.ERROR
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(
                address=None if address == "local" else address,
                logging_level=level,
                log_to_driver=console.state.debug,
                include_dashboard=False,
            )
        except (ConnectionError, TimeoutError) as exc:
            raise BackendUnavailable(
                f"cannot reach a Ray cluster at {address!r}: {str(exc).splitlines()[0]}",
                hint="start one with `ray start --head`, or use --ray local",
            ) from None
    for name in ("ray", "ray.data"):  # our progress bar and summary say enough
        logging.getLogger(name).setLevel(level)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        gpus = 0 if _on_cpu(options) else int(ray.cluster_resources().get("GPU", 0))
        size = count if count > 1 else max(gpus, 1)
        items = [{"input": str(job.input), "output": str(job.output)} for job in jobs]
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            _RayDecomposer,
            fn_constructor_kwargs={"options": options},
            compute=ray.data.ActorPoolStrategy(size=size),
            num_gpus=1 if gpus else 0,
            batch_size=1,
        )
        for row in dataset.iter_rows():
            yield _from_row(row)
    finally:
        if started:
            ray.shutdown()


class _RayDecomposer:
    """A Ray Data actor: loads the backend once, then decomposes one path per call."""

    def __init__(self, options: Options) -> None:
        self.decomposer = Decomposer(options)  # the model, once per actor

    def __call__(self, rows: dict[str, Any]) -> dict[str, list[Any]]:
        import json

        results = [
            batch.attempt(Job(Path(i), Path(o)), self.decomposer)
            for i, o in zip(rows["input"], rows["output"], strict=True)
        ]
        return {
            "input": [str(r.input) for r in results],
            "output": [str(r.output) for r in results],
            "status": [r.status for r in results],
            "error": [r.error or "" for r in results],
            "seconds": [r.seconds for r in results],
            "backend": [r.backend or "" for r in results],
            "layers": [json.dumps(r.layers) for r in results],  # nested: keep Arrow out of it
            "layers_requested": [json.dumps(r.layers_requested) for r in results],
            "notes": [json.dumps(r.notes) for r in results],
        }


def _from_row(row: dict[str, Any]) -> Result:
    import json

    return Result(
        Path(row["input"]),
        Path(row["output"]),
        row["status"],
        row["error"] or None,
        float(row["seconds"]),
        row["backend"] or None,
        json.loads(row["layers"]),
        json.loads(row["layers_requested"]),
        json.loads(row["notes"]),
    )
