"""`layerctl doctor` and the memory rule behind `--offload auto`."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.util import find_spec

import numpy as np
import pytest

from layerctl.backends.qwen import memory

GB = 10**9
FULL = memory.Footprint.published()


@pytest.mark.parametrize(
    ("card_gb", "resolution", "mode"),
    [
        (141, 1024, "none"),  # H200: everything resident
        (80, 640, "none"),  # H100: 58 GB of weights + activations fit
        (56, 640, "model"),  # one 41 GB model at a time
        (24, 640, "group"),  # RTX 4090: block streaming
        (24, 1024, "group"),
        (16, 640, "group"),
        (8, 1024, "sequential"),  # nothing fits: the leanest mode, with a warning
    ],
)
def test_auto_picks_the_fastest_mode_that_fits(card_gb: int, resolution: int, mode: str) -> None:
    total = card_gb * GB
    choice = memory.choose(int(total * 0.97), total, FULL, resolution, 4, host_free=200 * GB)
    assert choice.mode == mode
    if "nothing fits" not in choice.reason:
        assert choice.need <= choice.budget


def test_auto_keeps_a_margin_instead_of_filling_the_card() -> None:
    """The 4090 report: the reference sits at 23.9 of 24 GB and crawls. A mode whose need
    lands inside the margin is not chosen."""
    fp = memory.Footprint(text_encoder=0, transformer=20 * GB, vae=0, group=GB, sequential=GB)
    free = memory.need("none", fp, 640, 4) + GB // 2  # fits, but only just
    choice = memory.choose(free, 24 * GB, fp, 640, 4)
    assert (choice.mode, choice.vae_tiling) != ("none", False)  # tiled or streamed instead
    assert free - choice.need >= memory.margin(24 * GB)


def test_offloading_needs_host_memory_for_the_weights() -> None:
    choice = memory.choose(40 * GB, 48 * GB, FULL, 640, 4, host_free=16 * GB)
    assert choice.mode == "sequential"
    assert "nothing fits" in choice.reason


def test_needs_shrink_from_none_to_sequential() -> None:
    modes = ("none", "model", "group", "sequential")
    needs = [memory.need(m, FULL, 1024, 4, vae_tiling=True) for m in modes]
    assert needs == sorted(needs, reverse=True)
    assert needs[-1] < 16 * GB < needs[1]


def test_vae_tiling_only_when_nothing_fits_without_it() -> None:
    """Measured: decoding 4 layers at 1024 in one batch takes ~18 GB by itself."""
    card = 24 * GB
    at_640 = memory.choose(int(card * 0.97), card, FULL, 640, 4)
    at_1024 = memory.choose(int(card * 0.97), card, FULL, 1024, 4)
    assert (at_640.mode, at_640.vae_tiling) == ("group", False)
    assert (at_1024.mode, at_1024.vae_tiling) == ("group", True)
    assert "VAE tiling on" in at_1024.reason


def test_sequential_only_when_nothing_else_fits_even_tiled() -> None:
    """A 24 GiB card at 1024: group with a tiled decode, not leaf-by-leaf streaming
    (which would also fit whole, but copies every leaf every step: far slower)."""
    card = 24 * 2**30
    choice = memory.choose(int(card * 0.95), card, FULL, 1024, 4)
    assert memory.need("sequential", FULL, 1024, 4) <= choice.budget  # it would fit
    assert (choice.mode, choice.vae_tiling) == ("group", True)


def test_footprint_of_a_folder_reads_safetensors_headers(tmp_path) -> None:
    """Sizes per tensor from the headers alone: the totals, and what streaming keeps."""
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    tensors = {
        "transformer": {"img_in.weight": 100, "blocks.0.w": 400, "blocks.1.w": 400},
        "text_encoder": {"embed.weight": 300, "model.layers.0.w": 200},
        "vae": {"decoder.w": 48},
    }
    for name, sizes in tensors.items():
        (tmp_path / name).mkdir()
        arrays = {k: np.zeros(n // 4, np.float32) for k, n in sizes.items()}
        safetensors_numpy.save_file(arrays, tmp_path / name / "model.safetensors")
    fp = memory.Footprint.of_folder(tmp_path)
    assert (fp.transformer, fp.text_encoder, fp.vae) == (900, 500, 48)
    assert fp.group == max(100 + 2 * 400, 300 + 2 * 200)
    assert fp.sequential == 2 * 400


def test_resolve_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown offload mode"):
        memory.resolve("swap", "cpu", FULL)


def test_doctor_without_weights(cli) -> None:
    result = cli("doctor")
    assert result.code == 0, result.stderr
    assert "weights       not found" in result.stdout
    if find_spec("huggingface_hub"):
        assert "layerctl weights pull qwen-image-layered" in result.stdout
    else:  # the registry needs it: that is the first thing to fix
        assert "needs huggingface_hub" in result.stdout
    assert "qwen 640      " in result.stdout


def test_doctor_json(cli) -> None:
    """The documented shape (commands/doctor.py), for the one planner installed: qwen."""
    result = cli("doctor", "--json", "--device", "cpu", "-q")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"python", "host_available_gb", "torchvision", "weights", "plans"}
    assert report["weights"]["found"] is False
    assert set(report["plans"]) == {"qwen"}
    plan = report["plans"]["qwen"]
    assert set(plan) == {"device", "model_gb", "placements"}
    assert plan["device"]["name"] == "cpu"
    assert plan["model_gb"]["source"].startswith("published")
    assert set(plan["model_gb"]) == {"source", "text_encoder", "transformer", "vae"}
    assert set(plan["placements"]) == {"640", "1024"}
    for placement in plan["placements"].values():
        assert set(placement) == {"mode", "need_gb", "reason"}
        assert placement["mode"] == "none" and placement["need_gb"] is None


def test_doctor_plans_a_cuda_card_from_its_free_memory(monkeypatch) -> None:
    """On a CUDA card the placements are memory.choose's picks for its free memory."""
    monkeypatch.setattr(memory, "host_available", lambda: 200 * GB)
    card = {"name": "cuda", "torch": "x", "free_bytes": 23 * GB, "total_bytes": 24 * GB}
    plan = memory.plan(card, None, 4)
    assert plan.model_source.startswith("published")
    assert plan.placements[640].mode == "group" and plan.placements[640].need_bytes > 0
    assert plan.placements[1024].mode == memory.choose(23 * GB, 24 * GB, FULL, 1024, 4).mode


def test_doctor_asks_backends_through_the_capability() -> None:
    from layerctl.backends import capabilities

    assert set(capabilities.backends_with(capabilities.MemoryPlanner)) == {"qwen"}
    assert set(capabilities.backends_with(capabilities.Captioner)) == {"qwen"}


@pytest.mark.slow
def test_doctor_finds_and_sizes_a_checkpoint(cli, tiny_qwen) -> None:
    result = cli("doctor", "--json", "--weights", tiny_qwen)
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["weights"] == {"found": True, "path": str(tiny_qwen), "problems": []}
    model = report["plans"]["qwen"]["model_gb"]
    assert model["source"] == "weights folder"
    assert model["transformer"] < 0.1


def test_help_and_doctor_module_do_not_import_torch() -> None:
    code = (
        "import sys; from layerctl.cli import app; import layerctl.commands.doctor; "
        "heavy = {'torch', 'diffusers', 'onnxruntime', 'cv2'} & set(sys.modules); "
        "sys.exit(str(sorted(heavy)) if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_place_auto_off_cuda_keeps_everything_on_the_device() -> None:
    torch = pytest.importorskip("torch")
    modules = {"transformer": torch.nn.Linear(4, 4), "vae": torch.nn.Linear(4, 4)}
    assert memory.place(modules, "auto", "cpu") == "none"
    assert all(p.device.type == "cpu" for m in modules.values() for p in m.parameters())


def test_device_memory_accepts_cuda_without_an_index(monkeypatch):
    """torch's per-process cap wants a device index; plain "cuda" must not crash auto."""
    torch = pytest.importorskip("torch")
    from layerctl.backends.qwen import memory

    def needs_index(name, value):
        def call(device):
            if not isinstance(device, int):
                raise ValueError(f"{name} got {device!r}, not an index")
            return value

        return call

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "mem_get_info", needs_index("mem_get_info", (60e9, 80e9)))
    monkeypatch.setattr(
        torch.cuda, "get_per_process_memory_fraction", needs_index("fraction", 0.3), raising=False
    )
    monkeypatch.setattr(torch.cuda, "memory_reserved", needs_index("reserved", 4e9))
    free, total = memory.device_memory("cuda")
    assert total == int(80e9 * 0.3) and free == int(80e9 * 0.3 - 4e9)


def test_a_q4_transformer_stays_on_a_16_gib_card_with_the_text_encoder_on_the_host() -> None:
    """bench/quantized_plan.py's table: Q4_0 at 640 keeps the transformer resident (the
    VAE decode tiled), where bf16 and Q8_0 must stream it block by block."""
    total = 16 * 2**30
    picks = {
        fmt: memory.choose(int(total * 0.95), total, memory.Footprint.for_format(fmt), 640, 4)
        for fmt in ("bf16", "Q8_0", "Q4_0")
    }
    assert picks["Q4_0"].mode == "encoder-cpu" and picks["Q4_0"].vae_tiling
    assert picks["bf16"].mode == picks["Q8_0"].mode == "group"
    assert memory.need("encoder-cpu", memory.Footprint.for_format("Q4_0"), 640, 4, True) < (
        memory.need("none", memory.Footprint.for_format("bf16"), 640, 4, True) / 3
    )


def test_a_gguf_transformer_counts_at_its_quantized_size(tiny_qwen, tmp_path) -> None:
    pytest.importorskip("gguf")
    from layerctl.backends.layered import quantize
    from layerctl.weights import Sources

    gguf_file = tmp_path / "t.gguf"
    quantize.convert(tiny_qwen, gguf_file, "Q4_0")
    sizes = memory.transformer_sizes(gguf_file)
    folder = memory.Footprint.of_folder(tiny_qwen)
    quantized = memory.Footprint.of_sources(Sources(tiny_qwen, gguf_file))
    names = set()
    for shard in (tiny_qwen / "transformer").glob("*.safetensors"):
        names |= set(memory.tensor_sizes(shard)[0])
    assert set(sizes) == names
    assert quantized.text_encoder == folder.text_encoder
    assert quantized.transformer < folder.transformer / 2  # float32 folder vs Q4_0 + bf16
