"""Writing outputs: atomic, exclusive, and --force replaces only what layerctl wrote.

Every output is written under a temporary name beside its target, flushed, then
published with a rename that never replaces what it did not check:
``renameat2(RENAME_NOREPLACE)`` on Linux, else ``link`` + ``unlink`` for files and
``mkdir`` + ``rename`` for folders. With ``--force`` an existing output is replaced only
when it is a regular file or a folder layerctl wrote (its manifest.json names every file
in it), and never when it is or holds an input; the old one is swapped out with
``RENAME_EXCHANGE`` and checked again before it is dropped. Batches take a per-output
claim (``.NAME.lock``) so that concurrent runs over one folder split the work.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import glob
import importlib
import json
import os
import re
import secrets
import shutil
import socket
import stat
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from layerctl.errors import OutputError, OutputExists, UsageError

# Folders layerctl writes carry a manifest.json naming their files; by its "format",
# the module whose ``listed_files(manifest)`` says which. Nothing else is a folder --force
# may replace.
_FOLDER_FORMATS = {
    "layerctl-pngstack": "layerctl.formats.pngstack",
    "layerctl-onnx": "layerctl.backends.onnx.manifest",
}
_MANIFEST = "manifest.json"
_MAX_MANIFEST_BYTES = 64 << 20
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2
_AT_FDCWD = -100
_HALF_WRITTEN_SECONDS = 60  # a claim still unreadable after this was left by a killed run


def readable(text: str) -> str:
    """``text`` with the surrogate escapes of undecodable file-name bytes as U+FFFD.

    Paths on Linux are bytes; Python keeps the non-UTF-8 ones as lone surrogates,
    which no UTF-8 text (JSON, XML, HTML, PSD names) can hold. The file keeps its
    real name; what people read gets this form.
    """
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def json_text(value: Any, indent: int | None = 2) -> str:
    """JSON for our files: UTF-8 as is, undecodable file-name bytes readable (U+FFFD)."""
    return readable(json.dumps(value, indent=indent, ensure_ascii=False, default=str))


def check_writable(
    target: str | os.PathLike[str], force: bool, inputs: Sequence[Path] = ()
) -> None:
    """Fail early, before any work, unless ``target`` may be written.

    It may when it does not exist, or with ``force`` when it is a regular file or a
    folder layerctl wrote; never when it is, or holds, one of ``inputs``.
    """
    target = Path(target)
    for source in inputs:
        if _same(target, source):
            raise UsageError(f"{target} is the input", hint="choose another output path")
    if not os.path.lexists(target):
        return
    if not force:
        raise _exists(target)
    why = _refusal(target, inputs)
    if why is not None:
        raise _refused(target, why)


def _exists(target: Path) -> OutputExists:
    return OutputExists(f"{target} already exists", hint="pass --force to overwrite it")


def _refused(target: Path, why: str) -> OutputExists:
    return OutputExists(f"refusing to replace {target}: {why}", hint="choose another output path")


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(os.path.abspath(a)) == Path(os.path.abspath(b))


def _refusal(target: Path, inputs: Sequence[Path] = ()) -> str | None:
    """Why --force must not replace ``target`` (None: it may)."""
    info = os.lstat(target)
    if stat.S_ISREG(info.st_mode):
        return None
    if stat.S_ISLNK(info.st_mode):
        return "it is a symbolic link"
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a regular file"
    here = Path(os.path.realpath(target))
    if here == Path(os.path.realpath(os.getcwd())) or here in Path.cwd().resolve().parents:
        return "it is the current folder or holds it"
    for source in inputs:
        if here in Path(os.path.realpath(source)).parents:
            return f"it holds the input {source}"
    if not _written_by_layerctl(target):
        return "it is a folder that layerctl did not write"
    return None


def _written_by_layerctl(folder: Path) -> bool:
    """Whether ``folder`` holds a layerctl manifest and only the files it names."""
    manifest_path = folder / _MANIFEST
    try:
        info = os.lstat(manifest_path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_MANIFEST_BYTES:
            return False
        manifest = json.loads(manifest_path.read_bytes())
        kind = _FOLDER_FORMATS.get(manifest.get("format")) if isinstance(manifest, dict) else None
        if kind is None:
            return False
        listed = importlib.import_module(kind).listed_files(manifest) | {_MANIFEST}
    except (OSError, ValueError, RecursionError, TypeError, AttributeError):
        return False
    allowed_dirs = {p for name in listed for p in Path(name).parents if str(p) != "."}
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath).relative_to(folder)
        for name in dirnames:
            path = folder / here / name
            if path.is_symlink() or (here / name) not in allowed_dirs:
                return False
        for name in filenames:
            if (here / name).as_posix() not in listed or (folder / here / name).is_symlink():
                return False
    return True


@contextlib.contextmanager
def atomic_output(
    target: str | os.PathLike[str], force: bool = False, inputs: Sequence[Path] = ()
) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success publish it there.

    Works for files and folders alike (a PNG stack is a folder). The temporary is
    fsynced and published, then the folder holding it is fsynced, so readers see either
    the old output or the whole new one, also after a power cut; on any failure
    (including Ctrl-C) it is removed and ``target`` is untouched. Without ``force`` the
    publication fails if anything appeared at ``target`` meanwhile.
    """
    target = Path(os.path.abspath(target)) if Path(target).name in {"", ".", ".."} else Path(target)
    check_writable(target, force, inputs)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        _sweep_abandoned(parent, _stem(target))
        tmp = _temporary(target)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # writable here?
        tmp.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write to {parent}: {exc.strerror or exc}") from None
    try:
        yield tmp
        _fsync(tmp)
        _publish(tmp, target, force, inputs)
        _fsync_one(parent)  # the rename itself
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        _remove(tmp)


def _stem(target: Path) -> str:
    """At most 100 bytes of the name, so temporaries fit NAME_MAX (255 bytes)."""
    return os.fsdecode(os.fsencode(target.name)[:100])


def _temporary(target: Path) -> Path:
    """A fresh name ``.NAME.HOST.PID.RANDOM.tmp`` beside ``target``, not yet created:
    one left by a killed writer can be swept by the next write of that output."""
    return target.parent / f".{_stem(target)}.{_host()}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def _publish(tmp: Path, target: Path, force: bool, inputs: Sequence[Path]) -> None:
    """Move ``tmp`` to ``target``; replace an existing one only with ``force``, once checked."""
    try:
        _rename_noreplace(tmp, target)
        return
    except FileExistsError:
        if not force:
            raise _exists(target) from None
    why = _refusal(target, inputs)
    if why is not None:
        raise _refused(target, why)
    if _exchange(tmp, target):
        old = tmp  # the old output now lies at the temporary's name, removed by the caller
    else:
        old = _temporary(target)
        os.rename(target, old)  # ``old`` is a fresh name: this replaces nothing
    why = _refusal(old)
    if why is not None:  # it changed since the check: put it back
        if old is tmp:
            _exchange(tmp, target)
        else:
            _rename_noreplace(old, target)
        raise _refused(target, why)
    if old is not tmp:
        try:
            _rename_noreplace(tmp, target)
        finally:
            _remove(old)


def _rename_noreplace(src: Path, dst: Path) -> None:
    """rename(2) that fails with FileExistsError instead of replacing ``dst``."""
    if _renameat2(src, dst, _RENAME_NOREPLACE):
        return
    if src.is_dir() and not src.is_symlink():
        os.mkdir(dst)  # exclusive: FileExistsError if taken. The rename replaces only it.
        try:
            os.rename(src, dst)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.rmdir(dst)
            if exc.errno in {errno.ENOTEMPTY, errno.EEXIST}:  # filled meanwhile
                raise FileExistsError(errno.EEXIST, "File exists", str(dst)) from None
            raise
        return
    try:
        os.link(src, dst)  # exclusive: FileExistsError if taken
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links (FAT, some network mounts)
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "File exists", str(dst)) from None
        os.rename(src, dst)
        return
    os.unlink(src)


def _exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` atomically; False where the system cannot."""
    return _renameat2(a, b, _RENAME_EXCHANGE)


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """Linux renameat2(2); False when the kernel, libc or file system lacks it."""
    call = _renameat2_function()
    if call is None:
        return False
    if call(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP}:
        return False
    raise OSError(code, os.strerror(code), str(src), None, str(dst))


@functools.cache
def _renameat2_function() -> Any:
    if sys.platform != "linux":
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2  # glibc 2.28+, musl 1.2.2+
    except (OSError, AttributeError):
        return None
    path, fd = ctypes.c_char_p, ctypes.c_int
    function.argtypes = [fd, path, fd, path, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


@contextlib.contextmanager
def claim(output: Path) -> Iterator[bool]:
    """Hold ``.NAME.lock`` beside ``output`` while writing it; yields False when a live
    process (of this host, or any process of another host) holds it already.

    The lock holds ``HOST PID``; one whose process of this host is gone (SIGKILL, the
    OOM killer) is stale and taken over.
    """
    lock = _lock(output)
    mine = f"{_host()} {os.getpid()}\n"
    created = [p for p in [output.parent, *output.parent.parents] if not p.exists()]
    try:
        for again in (True, True, False):
            output.parent.mkdir(parents=True, exist_ok=True)
            try:
                held = _take(lock, mine) or (_drop_stale(lock) and _take(lock, mine))
                break
            except FileNotFoundError:  # another job's clean-up removed the folder just now
                if not again:
                    raise
    except OSError as exc:
        raise OutputError(f"cannot write to {output.parent}: {exc.strerror or exc}") from None
    try:
        yield held
    finally:
        if held:
            with contextlib.suppress(OSError):
                if lock.read_text() == mine:
                    lock.unlink()
        for folder in created:  # deepest first; a failed job leaves no empty folders
            with contextlib.suppress(OSError):
                folder.rmdir()


def drop_stale_claim(output: Path) -> None:
    """Remove the claim on a finished ``output`` left by a killed run (after its rename)."""
    with contextlib.suppress(OSError):
        _drop_stale(_lock(output))


def _lock(output: Path) -> Path:
    return output.parent / f".{_stem(output)}.lock"


def _take(lock: Path, content: str) -> bool:
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, content.encode())
    except OSError:  # a full disk: leave no empty lock behind
        lock.unlink()
        raise
    finally:
        os.close(fd)
    return True


def _drop_stale(lock: Path) -> bool:
    """Remove ``lock`` if its process of this host is gone; whether it was removed.

    It is renamed aside first, so that of two runs finding it stale only one removes
    it, and a fresh lock taken meanwhile is put back, not removed.
    """
    if not _stale(lock):
        return False
    aside = _temporary(lock)
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return True  # another run removed it: try to take it
    if _stale(aside):
        _remove(aside)
        return True
    with contextlib.suppress(OSError):
        _rename_noreplace(aside, lock)
    _remove(aside)
    return False


def _stale(lock: Path) -> bool:
    try:
        text = lock.read_text()
        age = time.time() - lock.stat().st_mtime
    except OSError:  # gone
        return False
    try:
        host, pid = text.split()
    except ValueError:  # half written by a run taking it just now, or by one killed then
        return age > _HALF_WRITTEN_SECONDS
    return host == _host() and pid.isdigit() and not _alive(int(pid))


def _sweep_abandoned(parent: Path, stem: str) -> None:
    """Remove temporaries for the same output left by a process of this host that is
    gone: SIGKILL and the OOM killer end a writer before its clean-up runs. Another
    host's, or a live process's, are left alone."""
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there
        return
    prefix = f".{stem}.{_host()}."
    for path in parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = path.name[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            _remove(path)


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there: assume alive
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


@functools.cache
def _host() -> str:
    """This machine's name, safe inside a file name."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32] or "host"


def _fsync(path: Path) -> None:
    """Flush a file, or a folder with every file and folder in it, to the disk."""
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        _fsync_one(p)


def _fsync_one(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
