"""bench/classic_speed.py on a tiny poster: the CLI runs, and its numbers are read back."""

from __future__ import annotations

import bench_scripts


def test_the_speed_bench_times_and_profiles_one_cli_run(tmp_path):
    bench = bench_scripts.load("classic_speed")
    image = bench.poster((96, 72), tmp_path / "poster.png")
    wall, cpu, peak_mb = bench.run_once(image, tmp_path / "out.psd")
    assert (tmp_path / "out.psd").stat().st_size > 0
    assert wall > 0 and cpu > 0 and peak_mb > 20  # an interpreter with numpy is at least that
    shares = bench.profile_once(image, tmp_path / "out.psd", tmp_path / "run.prof")
    assert 0 < shares["make_lossless"] < 1 and 0 < shares["backend"] < 1
    assert 0 < shares["write"] < 1 and shares["total_s"] > 0


def test_the_speed_bench_poster_can_stand_on_a_photograph(tmp_path):
    import numpy as np
    import pytest
    from PIL import Image

    pytest.importorskip("skimage")
    bench = bench_scripts.load("classic_speed")
    flat, photo = (
        np.asarray(Image.open(bench.poster((96, 72), tmp_path / f"{g}.png", g)))
        for g in ("flat", "photo")
    )
    assert flat.shape == photo.shape == (72, 96, 4)
    assert len(np.unique(photo[0].reshape(-1, 4), axis=0)) > len(
        np.unique(flat[0].reshape(-1, 4), axis=0)
    )
