"""Real layered files from public repositories, as ground truth nobody tuned on.

The files stay out of this repository. ``bench/real_files.json`` records where each
came from (repository, commit, path, sha256), whether it was kept and why not; the
files themselves are read from the snapshots the ``fetch`` tool brings to
``/work/.mirror/<owner>+<name>/repo`` ($LAYERCTL_BENCH_MIRRORS), and their ground truth
is cached in ``~/.cache/layerctl-bench/real`` ($LAYERCTL_BENCH_CACHE).

Ground truth of one file: the visible leaf layers as full-canvas straight-alpha RGBA
uint8, bottom first — for PSD each leaf rendered alone by psd-tools (its mask, clipped
layers and group opacity folded in), for OpenRaster layerctl's own reader — with empty
layers dropped. The input is the file's own composite: the PSD's merged image (psd-tools'
render when the file stores none) or the ORA's ``mergedimage.png``. A file is kept only
when the extracted layers, composited "over", reproduce that composite (PSNR of the
premultiplied RGBA >= ``MIN_PSNR``): a look that depends on blend modes, adjustment
layers or effects cannot be ground truth for a stack of normal layers. Files over
``MAX_MEGAPIXELS``, with more than ``MAX_LAYERS`` or fewer than 2 layers, or smaller than
``MIN_SIDE`` a side are skipped; a file whose bytes or composite repeat an earlier one
is a duplicate.

The test files of psd-tools and ag-psd are the held-out family ``heldout``: only
``--heldout`` builds or lists them, and files equal to one of them (pytoshop, for one,
ships copies of psd-tools' files) are left out of the ``real`` family.

    python bench/real_files.py discover          # rescan the mirrors, rewrite the list
    python bench/real_files.py build [--heldout]  # (re)build the cache from the list
    python bench/real_files.py list [--heldout]   # kept and rejected files, with reasons
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

MANIFEST = Path(__file__).with_name("real_files.json")
FAMILIES = ("real",)
HELDOUT_FAMILIES = ("heldout",)
# Held-out repositories come first, so a copy elsewhere is found to be a duplicate of them.
SOURCES: dict[str, bool] = {  # repository -> held out
    "psd-tools/psd-tools": True,
    "Agamnentzar/ag-psd": True,
    "oov/psd": False,
    "chinedufn/psd": False,
    "webtoon/psd": False,
    "mdboom/pytoshop": False,
    "layervault/psd.rb": False,
    "meltingice/psd.js": False,
    "haraldk/TwelveMonkeys": False,
    "mypaint/mypaint": False,
    "python-pillow/Pillow": False,
    "KDE/kimageformats": False,
    "AcademySoftwareFoundation/OpenImageIO-images": False,
    "dlemstra/Magick.NET": False,
    "EmilDohne/PhotoshopAPI": False,
    "aspose-psd/Aspose.PSD-for-.NET": False,
    "aspose-psd/Aspose.PSD-for-Java": False,
}
SUFFIXES = (".psd", ".psb", ".ora")
MIN_PSNR = 30.0  # dB, premultiplied RGBA of the layers' composite vs the file's own
MAX_MEGAPIXELS = 4.0
MAX_LAYERS = 30
MIN_SIDE = 32
MIN_SHOWN = 0.01  # share of a layer's alpha that must show for it to count
NEAR = 2.0  # mean grey difference (0..255) of two thumbnails that makes a file a repeat
EXTRACTOR = 1  # bump when extraction changes: cached truth of an older one is rebuilt


class Sample(NamedTuple):
    """One bench item: ``image`` is the input, ``layers`` the truth (bottom first)."""

    image: np.ndarray
    layers: list[np.ndarray]
    names: list[str]
    source: str


class Rejected(Exception):
    """A file that cannot be ground truth; the message says why."""


class MissingMirror(SystemExit):
    """A repository's snapshot is not on this machine."""


# --- where the files are ------------------------------------------------------------
def mirror(repo: str) -> Path:
    """The git directory of ``repo``'s snapshot, or MissingMirror saying to fetch it."""
    root = Path(os.environ.get("LAYERCTL_BENCH_MIRRORS", "/work/.mirror"))
    path = root / repo.replace("/", "+") / "repo"
    if not (path / "HEAD").is_file():
        raise MissingMirror(
            f"no snapshot of {repo} at {path}: fetch github:{repo} first (the fetch tool)"
        )
    return path


def cache_dir() -> Path:
    caches = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    default = caches / "layerctl-bench" / "real"
    return Path(os.environ.get("LAYERCTL_BENCH_CACHE", default))


def _git(repo: str, *args: str) -> bytes:
    return subprocess.run(
        ["git", "--git-dir", str(mirror(repo)), *args], capture_output=True, check=True
    ).stdout


def read_source(record: dict[str, Any]) -> bytes:
    """The bytes of a listed file, checked against its recorded sha256."""
    try:
        data = _git(record["repo"], "show", f"{record['commit']}:{record['path']}")
    except subprocess.CalledProcessError:
        raise MissingMirror(
            f"{record['repo']}'s snapshot lacks commit {record['commit'][:12]} "
            f"({record['path']}): fetch github:{record['repo']} again, then run discover"
        ) from None
    if hashlib.sha256(data).hexdigest() != record["sha256"]:
        raise MissingMirror(f"{record['repo']}:{record['path']}: sha256 differs from the list")
    return data


def listed_files(repo: str) -> tuple[str, list[str]]:
    """(HEAD commit, paths of layered files) of a snapshot."""
    commit = _git(repo, "rev-parse", "HEAD").decode().strip()
    names = _git(repo, "ls-tree", "-r", "--name-only", "-z", commit).decode().split("\0")
    return commit, sorted(n for n in names if n.lower().endswith(SUFFIXES))


# --- ground truth -----------------------------------------------------------------------
def extract(data: bytes, suffix: str) -> tuple[np.ndarray, list[np.ndarray], list[str]]:
    """(file's composite, visible non-empty leaf layers, their names), or Rejected."""
    image, leaves, uses = _ora(data) if suffix.lower() == ".ora" else _psd(data)
    kept = [(name, px) for name, px in _shown(leaves)]
    if len(kept) < 2:
        raise Rejected(f"{len(kept)} visible non-empty layer(s)")
    layers = [px for _, px in kept]
    score = psnr(_layers_composite(layers), image)
    if score < MIN_PSNR:
        why = f"; it uses {', '.join(uses)}" if uses else ""
        raise Rejected(f"layers do not reproduce the composite ({score:.1f} dB{why})")
    return image, layers, [name for name, _ in kept]


def _shown(leaves: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    """Leaves that show in the composite: empty layers and ones the layers above hide
    (under ``MIN_SHOWN`` of their alpha reaches the composite) are left out, since no
    decomposition of the composite could recover them."""
    cover = np.ones(leaves[0][1].shape[:2], np.float32) if leaves else None
    shown = []
    for name, pixels in reversed(leaves):
        alpha = pixels[..., 3].astype(np.float32) / 255.0
        total = float(alpha.sum())
        if total > 0 and float((alpha * cover).sum()) >= MIN_SHOWN * total:
            shown.append((name, pixels))
        cover *= 1.0 - alpha
    return shown[::-1]


def _layers_composite(layers: list[np.ndarray]) -> np.ndarray:
    from layerctl.stack import composite

    return composite(layers)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of two straight-alpha RGBA images, compared premultiplied."""
    if a.shape != b.shape:
        return 0.0

    def premultiplied(x: np.ndarray) -> np.ndarray:
        alpha = x[..., 3:].astype(np.float64)
        return np.concatenate([x[..., :3] * alpha / 255.0, alpha], axis=-1)

    mse = float(np.mean((premultiplied(a) - premultiplied(b)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def _check_canvas(width: int, height: int, leaves: int) -> None:
    if width * height > MAX_MEGAPIXELS * 1e6:
        raise Rejected(f"{width}x{height} is over {MAX_MEGAPIXELS:g} MP")
    if min(width, height) < MIN_SIDE:
        raise Rejected(f"{width}x{height} is under {MIN_SIDE} px a side")
    if leaves > MAX_LAYERS:
        raise Rejected(f"{leaves} visible layers, over {MAX_LAYERS}")


def _psd(data: bytes) -> tuple[np.ndarray, list[tuple[str, np.ndarray]], list[str]]:
    """The merged image, each visible leaf rendered alone by psd-tools, and what else the
    look depends on (named in a rejection)."""
    from layerctl.imageio import open_psd, to_rgba

    try:
        psd = open_psd(data)
        width, height = psd.size
        leaves = [
            node
            for node in psd.descendants()
            if not node.is_group() and node.is_visible() and not node.clipping
        ]
        _check_canvas(width, height, len(leaves))
        merged = psd.topil(apply_icc=False) if psd.has_preview() else None
        image = to_rgba(merged if merged is not None else psd.composite(apply_icc=False))
        out = []
        for node in leaves:
            rendered = node.composite(viewport=(0, 0, width, height), apply_icc=False)
            if rendered is None:
                continue
            pixels = to_rgba(rendered).copy()
            opacity = np.prod([g.opacity / 255 for g in _ancestors(node)])
            if opacity < 1:
                pixels[..., 3] = np.rint(pixels[..., 3] * opacity).astype(np.uint8)
            out.append((node.name.rstrip("\x00"), _cleared(pixels)))
        uses = _psd_features(psd)
    except Rejected:
        raise
    except Exception as exc:  # psd-tools raises many types on files it cannot render
        raise Rejected(f"psd-tools cannot read it ({type(exc).__name__}: {exc})"[:200]) from None
    return image, out, uses


def _psd_features(psd: Any) -> list[str]:
    """What a stack of normal layers cannot show: blend modes, adjustments, effects, …"""
    from psd_tools.constants import BlendMode, ColorMode

    found = set()
    for node in psd.descendants():
        if not node.is_visible():
            continue
        if node.blend_mode not in {BlendMode.NORMAL, BlendMode.PASS_THROUGH}:
            found.add(f"blend mode {node.blend_mode.name.lower()}")
        if node.kind == "adjustment":
            found.add("adjustment layers")
        if node.has_effects():
            found.add("layer effects")
        if node.clipping:
            found.add("clipping masks")
    if psd.color_mode not in {ColorMode.RGB, ColorMode.GRAYSCALE}:
        found.add(f"{psd.color_mode.name} colour")
    return sorted(found)


def _ancestors(node: Any) -> Iterator[Any]:
    parent = node.parent
    while parent is not None and parent.parent is not None:  # the document has no parent
        yield parent
        parent = parent.parent


def _ora(data: bytes) -> tuple[np.ndarray, list[tuple[str, np.ndarray]], list[str]]:
    """mergedimage.png and the visible leaves as layerctl's OpenRaster reader sees them."""
    import tempfile

    from PIL import Image

    from layerctl.errors import LayerctlError
    from layerctl.formats import ora
    from layerctl.imageio import to_rgba

    with tempfile.NamedTemporaryFile(suffix=".ora") as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            with zipfile.ZipFile(tmp.name) as archive:
                merged = archive.read("mergedimage.png")
            with Image.open(io.BytesIO(merged)) as png:
                image = to_rgba(png)
            stack = ora.read(Path(tmp.name))
        except KeyError:
            raise Rejected("no mergedimage.png") from None
        except (LayerctlError, zipfile.BadZipFile) as exc:
            raise Rejected(str(exc).replace(tmp.name, "<file>")[:200]) from None
    width, height = stack.size
    leaves = [(layer.name, _cleared(layer.pixels)) for layer in _visible_leaves(stack.layers)]
    _check_canvas(width, height, len(leaves))
    if image.shape[:2] != (height, width):
        raise Rejected("mergedimage.png is not the canvas size")
    return image, leaves, []  # composite-op is not read: the check finds it


def _visible_leaves(layers: list[Any]) -> Iterator[Any]:
    for layer in layers:
        if layer.visible:
            yield from _visible_leaves(layer.children) if layer.is_group else [layer]


def _cleared(pixels: np.ndarray) -> np.ndarray:
    from layerctl.formats.canvas import clear_transparent

    return clear_transparent(pixels)


# --- the list and the cache -------------------------------------------------------------
def discover() -> list[dict[str, Any]]:
    """Scan every source's snapshot; one record per layered file, kept or with a reason."""
    records: list[dict[str, Any]] = []
    seen_bytes: dict[str, str] = {}
    seen_looks: list[tuple[tuple[int, ...], np.ndarray, str]] = []
    for repo, heldout in SOURCES.items():
        commit, paths = listed_files(repo)
        for path in paths:
            where = f"{repo}:{path}"
            try:
                data = _git(repo, "show", f"{commit}:{path}")
            except subprocess.CalledProcessError:
                print(f"skip {where}: not in the snapshot (snapshots lack files of 4 MiB+)")
                continue
            sha = hashlib.sha256(data).hexdigest()
            record = {"repo": repo, "commit": commit, "path": path, "sha256": sha}
            record["family"] = HELDOUT_FAMILIES[0] if heldout else FAMILIES[0]
            try:
                if sha in seen_bytes:
                    raise Rejected(f"same bytes as {seen_bytes[sha]}")
                seen_bytes[sha] = where
                image, layers, names = extract(data, Path(path).suffix)
                look = _look(image)
                for shape, other, there in seen_looks:
                    if shape == image.shape and np.abs(look - other).mean() < NEAR:
                        raise Rejected(f"looks like {there}")
                seen_looks.append((image.shape, look, where))
            except Rejected as why:
                record.update(kept=False, reason=str(why))
            else:
                height, width = image.shape[:2]
                record.update(kept=True, size=[width, height], layers=len(layers))
                _save(record, image, layers, names)
            records.append(record)
            print(f"{'kept' if record['kept'] else 'skip'} {where} {record.get('reason', '')}")
    return records


def _look(image: np.ndarray) -> np.ndarray:
    """A 24×24 grey thumbnail over white: one design saved twice (8/16 bit, grey,
    PSD/PSB, another compression) looks the same and counts once."""
    from PIL import Image

    flat = Image.alpha_composite(Image.new("RGBA", image.shape[1::-1], "white"),
                                 Image.fromarray(image, "RGBA"))  # fmt: skip
    return np.asarray(flat.convert("L").resize((24, 24), Image.Resampling.BOX), np.float32)


def load_manifest() -> list[dict[str, Any]]:
    return json.loads(MANIFEST.read_text())["files"]


def write_manifest(records: list[dict[str, Any]]) -> None:
    note = "Written by `python bench/real_files.py discover`; the files stay in their repos."
    MANIFEST.write_text(json.dumps({"note": note, "files": records}, indent=1) + "\n")


def kept(family: str) -> list[dict[str, Any]]:
    """The kept records of one family, in a fixed order."""
    if family not in FAMILIES + HELDOUT_FAMILIES:
        raise ValueError(f"unknown family {family!r}")
    return [r for r in load_manifest() if r["kept"] and r["family"] == family]


def _cached(record: dict[str, Any]) -> Path:
    return cache_dir() / f"{record['sha256'][:24]}-v{EXTRACTOR}.npz"


def _save(record: dict[str, Any], image: np.ndarray, layers: list, names: list[str]) -> None:
    path = _cached(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, image=image, layers=np.stack(layers), names=np.array(names))
    tmp.replace(path)


def build(family: str) -> int:
    """Extract every kept file of ``family`` that is not cached yet; returns the count."""
    for record in kept(family):
        if not _cached(record).is_file():
            image, layers, names = extract(read_source(record), Path(record["path"]).suffix)
            _save(record, image, layers, names)
    return len(kept(family))


def count(family: str) -> int:
    return len(kept(family))


def sample(family: str, seed: int) -> Sample:
    """The ``seed``-th kept file of ``family`` (wrapping), built into the cache if needed."""
    records = kept(family)
    record = records[seed % len(records)]
    path = _cached(record)
    if not path.is_file():
        image, layers, names = extract(read_source(record), Path(record["path"]).suffix)
        _save(record, image, layers, names)
    with np.load(path) as npz:
        return Sample(
            npz["image"],
            list(npz["layers"]),
            [str(n) for n in npz["names"]],
            f"{record['repo']}:{record['path']}@{record['commit'][:12]}",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("discover", "build", "list"))
    parser.add_argument("--heldout", action="store_true", help="the held-out family instead")
    args = parser.parse_args()
    family = HELDOUT_FAMILIES[0] if args.heldout else FAMILIES[0]
    if args.action == "discover":
        write_manifest(discover())
    elif args.action == "build":
        print(f"{build(family)} {family} files in {cache_dir()}")
    else:
        records = [r for r in load_manifest() if r["family"] == family]
        for r in records:
            what = f"{r['size'][0]}x{r['size'][1]}, {r['layers']} layers" if r["kept"] else ""
            print(f"{'kept' if r['kept'] else 'skip'} {r['repo']}:{r['path']} {what}"
                  f"{r.get('reason', '')}")  # fmt: skip
    if args.action != "build":
        records = [r for r in load_manifest() if r["family"] == family]
        print(f"{family}: {sum(r['kept'] for r in records)} kept of {len(records)} files")


if __name__ == "__main__":
    sys.exit(main())
