"""Weights are data, never code: no pickle, no remote code, safetensors only.

A static scan of the sources (every ``torch.load`` has ``weights_only=True``; nothing
passes ``trust_remote_code`` other than False; no ``pickle`` / ``joblib`` loads and no
``np.load(allow_pickle=True)``), and a tiny checkpoint with planted pickle files beside
its safetensors that must never be opened. That ``weights verify`` catches truncated and
swapped shards is tested in test_weights.py.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SOURCES = ["layerctl", "backends", "bench"]
UNPICKLERS = {("pickle", "load"), ("pickle", "loads"), ("joblib", "load"), ("dill", "load")}


def _dotted(node: ast.expr) -> tuple[str, ...]:
    """("torch", "load") for ``torch.load``; () for anything that is not a plain dotted name."""
    if isinstance(node, ast.Name):
        return (node.id,)
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return (*inner, node.attr) if inner else ()
    return ()


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_constant(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def unsafe_loads(source: str) -> list[str]:
    """Every call in ``source`` that could run code from a weights file, as "line: what"."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if name[-2:] == ("torch", "load") and not _is_constant(
            _keyword(node, "weights_only"), True
        ):
            found.append(f"{node.lineno}: torch.load without weights_only=True")
        if name[-2:] in UNPICKLERS:
            found.append(f"{node.lineno}: {'.'.join(name)}")
        if name[-1:] == ("load",) and _is_constant(_keyword(node, "allow_pickle"), True):
            found.append(f"{node.lineno}: load(allow_pickle=True)")
        remote = _keyword(node, "trust_remote_code")
        if remote is not None and not _is_constant(remote, False):
            found.append(f"{node.lineno}: trust_remote_code not False")
    return found


@pytest.mark.parametrize(
    "snippet",
    [
        "torch.load(path)",
        "torch.load(path, weights_only=False)",
        "torch.load(path, weights_only=flag)",
        "pickle.loads(data)",
        "np.load(path, allow_pickle=True)",
        "AutoModel.from_pretrained(path, trust_remote_code=True)",
        "AutoModel.from_pretrained(path, trust_remote_code=remote)",
    ],
)
def test_the_scan_flags_unsafe_loads(snippet: str) -> None:
    assert unsafe_loads(snippet)


def test_the_scan_accepts_safe_loads() -> None:
    safe = "torch.load(p, weights_only=True)\nM.from_pretrained(p, trust_remote_code=False)\n"
    assert unsafe_loads(safe + "np.load(p)\nsafetensors.torch.load_file(p)\n") == []


def test_no_source_file_loads_weights_unsafely() -> None:
    files = [p for folder in SOURCES for p in sorted((ROOT / folder).rglob("*.py"))]
    assert files
    problems = [
        f"{path.relative_to(ROOT)}:{problem}"
        for path in files
        for problem in unsafe_loads(path.read_text(encoding="utf-8"))
    ]
    assert problems == []


@pytest.mark.slow
def test_pickles_beside_the_safetensors_are_never_opened(
    tiny_qwen: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A planted .bin next to each model's safetensors: loading reads only the safetensors."""
    torch = pytest.importorskip("torch")
    from layerctl.backends.layered.load import MODELS, load

    root = tmp_path / "ckpt"
    shutil.copytree(tiny_qwen, root)
    planted = {
        "transformer": "diffusion_pytorch_model.bin",
        "vae": "diffusion_pytorch_model.bin",
        "text_encoder": "pytorch_model.bin",
    }
    for component in MODELS:
        torch.save({"weight": torch.zeros(1)}, root / component / planted[component])
    opened: list[str] = []

    def refuse(file, *args, **kwargs):
        opened.append(str(file))
        raise AssertionError(f"torch.load({file}) during a safetensors-only load")

    monkeypatch.setattr(torch, "load", refuse)
    loaded = load(root, torch.float32)
    assert opened == []
    assert all(getattr(loaded, component) is not None for component in MODELS)
