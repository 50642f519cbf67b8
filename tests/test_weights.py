"""``layerctl weights``: the registry, finding checkpoints offline, verifying folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from layerctl import weights
from layerctl.digests import file_sha256
from layerctl.errors import MissingWeights

REPO_FOLDER = "models--Qwen--Qwen-Image-Layered"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_registry_parses_and_names_every_component() -> None:
    ckpt = weights.checkpoint(weights.DEFAULT)
    assert ckpt.repo == "Qwen/Qwen-Image-Layered"
    assert ckpt.backend == "qwen"
    assert set(ckpt.components) == {
        "transformer",
        "vae",
        "text_encoder",
        "tokenizer",
        "processor",
        "scheduler",
    }
    for spec in ckpt.files:
        assert not spec.path.startswith("/") and ".." not in spec.path
        assert spec.size is None or spec.size > 0
        assert spec.sha256 is None or len(spec.sha256) == 64
    assert "model_index.json" in ckpt.allow_patterns()


def _populate(cache: Path) -> Path:
    """Lay out a downloaded snapshot the way huggingface_hub does (refs/main -> commit)."""
    repo = cache / REPO_FOLDER
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text(json.dumps({"_class_name": "X"}))
    return snapshot


def test_path_finds_the_snapshot_offline(cli, hf_cache: Path) -> None:
    snapshot = _populate(hf_cache)
    result = cli("weights", "path", "qwen-image-layered")
    assert result.code == 0, result.stderr
    assert Path(result.stdout.strip()) == snapshot
    listed = json.loads(cli("weights", "list", "--json").stdout)
    assert listed[0]["name"] == "qwen-image-layered"
    assert Path(listed[0]["path"]) == snapshot
    assert weights.locate(None) == snapshot


def test_list_shows_every_name_whole_at_80_columns(cli, hf_cache: Path, monkeypatch) -> None:
    """The names are what `pull` and `--weights` take: never cut to an ellipsis."""
    monkeypatch.setenv("COLUMNS", "80")
    shown = cli("weights", "list").stdout
    for row in json.loads(cli("weights", "list", "--json").stdout):
        assert row["name"] in shown


def test_path_when_not_downloaded_says_how_to_fetch(cli, hf_cache: Path) -> None:
    result = cli("weights", "path", "qwen-image-layered")
    assert result.code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "layerctl weights pull qwen-image-layered" in result.stderr


def test_unknown_name_is_a_usage_error(cli) -> None:
    result = cli("weights", "path", "no-such-model")
    assert result.code == 2
    assert "qwen-image-layered" in result.stderr  # the hint lists the known names


def test_locate_order_flag_then_env_then_cache(
    tmp_path: Path, hf_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = _populate(hf_cache)
    flag, env = tmp_path / "flag", tmp_path / "env"
    flag.mkdir()
    env.mkdir()
    assert weights.locate(None) == snapshot
    monkeypatch.setenv(weights.ENV, str(env))
    assert weights.locate(None) == env
    assert weights.locate(str(flag)) == flag
    assert weights.locate("qwen-image-layered") == snapshot
    with pytest.raises(MissingWeights, match="neither a folder nor a known checkpoint"):
        weights.locate(str(tmp_path / "missing"))


def test_pull_offline_fails_in_one_line(cli, hf_cache: Path) -> None:
    result = cli("weights", "pull", "qwen-image-layered", "--quiet")
    assert result.code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "HF_HUB_OFFLINE" in result.stderr


def test_verify_accepts_the_tiny_checkpoint(cli, tiny_qwen: Path) -> None:
    result = cli("weights", "verify", tiny_qwen)
    assert result.code == 0, result.stdout + result.stderr
    report = json.loads(cli("weights", "verify", tiny_qwen, "--json").stdout)
    assert report == {"name": None, "path": str(tiny_qwen), "ok": True, "problems": []}
    # the fixture has the hub's layout: it has every file the real registry entry lists
    assert weights.check(tiny_qwen, weights.checkpoint(weights.DEFAULT)) == []


def _shards(folder: Path) -> list[Path]:
    return sorted(folder.glob("*-of-*.safetensors"))


def _truncate(root: Path) -> str:
    shard = _shards(root / "transformer")[-1]
    shard.write_bytes(shard.read_bytes()[:-100])
    return shard.name


def _swap(root: Path) -> str:
    first, second = _shards(root / "text_encoder")[:2]
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b)
    second.write_bytes(a)
    return first.name


def _delete_shard(root: Path) -> str:
    shard = _shards(root / "transformer")[0]
    shard.unlink()
    return shard.name


def _delete_component(root: Path) -> str:
    shutil.rmtree(root / "vae")
    return "vae/"


def _break_config(root: Path) -> str:
    (root / "scheduler" / "scheduler_config.json").write_text('{"shift": ')
    return "scheduler_config.json"


def _pickle_only(root: Path) -> str:
    model = root / "vae" / "diffusion_pytorch_model.safetensors"
    model.rename(model.with_suffix(".bin"))
    return "pickle"


def _hostile_header(header: bytes):
    def damage(root: Path) -> str:
        shard = _shards(root / "transformer")[0]
        shard.write_bytes(len(header).to_bytes(8, "little") + header)
        return shard.name

    damage.__name__ = f"_hostile_header({header[:12]!r})"
    return damage


HOSTILE_HEADERS = [
    b"[1, 2, 3]",
    b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, "x"]}}',
    b"[" * 5000 + b"]" * 5000,
    b'{"w": 7}',
    b"\xff\xfe not utf-8",
]


@pytest.mark.parametrize(
    "damage",
    [_truncate, _swap, _delete_shard, _delete_component, _break_config, _pickle_only]
    + [_hostile_header(h) for h in HOSTILE_HEADERS],
)
def test_verify_catches_damage(cli, tiny_qwen: Path, tmp_path: Path, damage) -> None:
    root = tmp_path / "ckpt"
    shutil.copytree(tiny_qwen, root)
    named = damage(root)
    result = cli("weights", "verify", root)
    assert result.code == 1
    assert named in result.stdout
    assert len(result.stderr.strip().splitlines()) == 1
    assert "failed verification" in result.stderr


def test_registry_sizes_and_hashes_are_checked(tiny_qwen: Path) -> None:
    config = tiny_qwen / "vae" / "config.json"
    size = config.stat().st_size
    good = weights.FileSpec("vae/config.json", size=size, sha256=file_sha256(config))
    spec = weights.Checkpoint("tiny", "x/y", "main", "qwen", "", (good,))
    assert weights.check(tiny_qwen, spec, hashes=True) == []
    wrong_size = weights.FileSpec("vae/config.json", size=size + 1)
    wrong_hash = weights.FileSpec("vae/config.json", size=size, sha256="0" * 64)
    absent = weights.FileSpec("vae/missing.json")
    spec = weights.Checkpoint("tiny", "x/y", "main", "qwen", "", (wrong_size, absent))
    assert [p.what for p in weights.check(tiny_qwen, spec)] == [
        f"{size} bytes, expected {size + 1}",
        "missing",
    ]
    spec = weights.Checkpoint("tiny", "x/y", "main", "qwen", "", (wrong_hash,))
    assert weights.check(tiny_qwen, spec, hashes=False) == []
    assert [p.what for p in weights.check(tiny_qwen, spec, hashes=True)] == [
        "sha256 differs from the registry"
    ]
