"""Registry entries and resolution for single-file weights (no model is loaded here).

``--weights FILE --base NAME|DIR[,VAE]``: which folder and files a run reads, what is
missing (one line, naming the file and how to get it), and the community repositories
``weights list / pull / verify / path`` know by name.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from layerctl import weights
from layerctl.errors import MissingWeights, UsageError


def _safetensors(path: Path, tensors: dict[str, int] | None = None) -> Path:
    """A valid safetensors file of float32 vectors (name -> length), written by hand."""
    tensors = tensors or {"img_in.weight": 4}
    header, offset = {}, 0
    for name, n in tensors.items():
        header[name] = {"dtype": "F32", "shape": [n], "data_offsets": [offset, offset + 4 * n]}
        offset += 4 * n
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(offset))
    return path


def test_every_community_entry_is_one_file_of_a_known_kind() -> None:
    single = [c for c in weights.registry().values() if c.single_file]
    assert {c.kind for c in single} == {"transformer", "vae"}
    repos = {c.repo for c in single}
    assert {"Comfy-Org/Qwen-Image-Layered_ComfyUI", "QuantStack/Qwen-Image-Layered-GGUF"} <= repos
    for ckpt in single:
        assert len(ckpt.files) == 1 and ckpt.allow_patterns() == [ckpt.files[0].path]
        assert ckpt.files[0].path.endswith((".safetensors", ".gguf"))
        assert ckpt.files[0].sha256 is None or len(ckpt.files[0].sha256) == 64
    base = weights.checkpoint(weights.BASE)
    assert base.repo == weights.checkpoint(weights.DEFAULT).repo
    assert "transformer/*" not in base.allow_patterns()
    assert "transformer/config.json" in base.allow_patterns()


def test_a_single_file_needs_base_and_says_how_to_get_one(tmp_path: Path) -> None:
    file = _safetensors(tmp_path / "t.safetensors")
    with pytest.raises(UsageError, match="--base") as err:
        weights.sources(str(file))
    assert "weights pull qwen-image-layered-base" in (err.value.hint or "")
    with pytest.raises(UsageError, match="single-file"):
        weights.sources(str(tmp_path), "other")
    pickle = tmp_path / "x.ckpt"
    pickle.touch()
    with pytest.raises(MissingWeights) as err:
        weights.sources(str(pickle))
    assert "never pickle" in (err.value.hint or "")


def test_sources_and_what_is_missing(tiny_qwen: Path, tmp_path: Path) -> None:
    file = _safetensors(tmp_path / "t.safetensors")
    vae = _safetensors(tmp_path / "vae.safetensors")
    found = weights.sources(str(file), f"{tiny_qwen},{vae}")
    assert (found.base, found.transformer, found.vae) == (tiny_qwen, file, vae)
    assert found.transformer_format == "safetensors"
    assert weights.source_problems(found) == []
    base = tmp_path / "base"
    base.mkdir()
    (base / "tokenizer").mkdir()
    problems = [str(p) for p in weights.source_problems(weights.Sources(base, file))]
    assert "base/text_encoder/: missing (the text encoder (Qwen2.5-VL))" in problems
    assert any("transformer/config.json" in p for p in problems)
    with pytest.raises(MissingWeights, match=r"cannot load t\.safetensors") as err:
        weights.require_sources(weights.Sources(base, file))
    assert "weights pull qwen-image-layered-base" in (err.value.hint or "")
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(file.read_bytes()[:-3])
    assert "truncated" in str(weights.single_file_problems(truncated)[0])
    bad_gguf = tmp_path / "x.gguf"
    bad_gguf.write_bytes(b"nope")
    assert "GGUF magic" in str(weights.single_file_problems(bad_gguf)[0])


def test_verify_a_single_file(cli, tmp_path: Path) -> None:
    file = _safetensors(tmp_path / "t.safetensors")
    assert cli("weights", "verify", file).code == 0
    file.write_bytes(file.read_bytes()[:-1])
    result = cli("weights", "verify", file)
    assert result.code == 1 and len(result.stderr.strip().splitlines()) == 1


def _snapshot(cache: Path, repo: str) -> Path:
    folder = cache / ("models--" + repo.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    return snapshot


def test_registry_names_resolve_to_cached_files(cli, hf_cache: Path, tmp_path: Path) -> None:
    name = "qwen-image-layered-quantstack-q4_0"
    result = cli("weights", "path", name)
    assert result.code == 1 and f"weights pull {name}" in result.stderr
    snapshot = _snapshot(hf_cache, "QuantStack/Qwen-Image-Layered-GGUF")
    gguf = snapshot / "Qwen_Image_Layered-Q4_0.gguf"  # matched by its quantisation
    gguf.write_bytes(b"GGUF" + bytes(12))
    result = cli("weights", "path", name)
    assert result.code == 0 and Path(result.stdout.strip()) == gguf
    found = weights.sources(name, str(tmp_path))
    assert found.transformer == gguf and found.transformer_format == "gguf"
    listed = {row["name"]: row for row in json.loads(cli("weights", "list", "--json").stdout)}
    assert listed[name]["path"] == str(gguf) and listed[name]["kind"] == "transformer"
    result = cli("weights", "pull", "qwen-image-layered-comfy-fp8mixed", "--quiet")
    assert result.code == 1 and len(result.stderr.strip().splitlines()) == 1


def test_base_is_a_qwen_setting_other_backends_refuse(tmp_path: Path) -> None:
    """Part of the qwen backend's settings, so the Decomposer, batches, workers and Ray
    (which all rebuild the backend from its settings) carry it."""
    from layerctl.backends import base

    settings = base.settings_for(base.backend_class("qwen"), {"base": "x", "weights": "y"})
    assert settings.base == "x"
    assert type(settings).model_validate(settings.model_dump()) == settings
    pytest.importorskip("cv2")
    with pytest.raises(UsageError, match="--base is not an option of the classic backend") as e:
        base.configure("classic", {"base": "x"}, strict={"base"}, label=lambda k: f"--{k}")
    assert e.value.hint == "it is for qwen"


def test_doctor_plans_every_format_on_a_cuda_card(monkeypatch: pytest.MonkeyPatch) -> None:
    from layerctl.backends.qwen import memory
    from layerctl.commands import doctor

    total = 16 * 2**30
    card = {"name": "cuda", "torch": "x", "model": "card", "capability": "8.9",
            "free_bytes": int(0.95 * total), "total_bytes": total}  # fmt: skip
    monkeypatch.setattr(memory, "host_available", lambda: None)
    plan = doctor._plan(memory.plan(card, None, 4))
    assert set(plan["formats"]) == set(memory.FORMATS)
    assert plan["formats"]["Q4_0"]["640"]["mode"] == "encoder-cpu"
    assert plan["formats"]["bf16"]["640"]["mode"] == "group"
    report = {"python": "3", "host_available_gb": None, "plans": {"qwen": plan},
              "torchvision": None, "weights": {"found": False, "problems": ["none"]}}  # fmt: skip
    assert "qwen Q4_0     640: encoder-cpu" in doctor._text(report)
