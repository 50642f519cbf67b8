"""Layer3D RoPE angle tables in numpy: the graph inputs that replace diffusers' complex RoPE.

Same positions as diffusers 0.42.1 ``QwenEmbedLayer3DRope`` (``scale_rope=True``): every
token gets (frame, row, column) indices, one frequency band per axis; generated frames are
0..layers, the condition image is frame −1, rows and columns are centred
(−⌈h/2⌉ … ⌊h/2⌋−1), and text tokens follow the largest image index on all three axes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

THETA = 10000.0


def tables(
    axes_dim: Sequence[int], frames: int, grid_h: int, grid_w: int, text_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(img_cos, img_sin, txt_cos, txt_sin), float32, (tokens, head_dim/2) each.

    ``frames`` generated frames (layers + 1) of ``grid_h × grid_w`` packed tokens, then one
    condition frame of the same size, then ``text_len`` text tokens.
    """
    frame_idx = np.concatenate([np.arange(frames), [-1]])
    rows = np.arange(grid_h) - (grid_h - grid_h // 2)
    cols = np.arange(grid_w) - (grid_w - grid_w // 2)
    f, r, c = np.meshgrid(frame_idx, rows, cols, indexing="ij")
    img = _angles(axes_dim, [f.reshape(-1), r.reshape(-1), c.reshape(-1)])
    start = max(grid_h // 2, grid_w // 2, frames)
    text_pos = np.arange(start, start + text_len)
    txt = _angles(axes_dim, [text_pos] * 3)
    return (
        np.cos(img).astype(np.float32),
        np.sin(img).astype(np.float32),
        *(
            np.cos(txt).astype(np.float32),
            np.sin(txt).astype(np.float32),
        ),
    )


def _angles(axes_dim: Sequence[int], positions: list[np.ndarray]) -> np.ndarray:
    """position × θ^(−2i/d) per axis, in float32 as ``rope_params`` computes them."""
    bands = []
    for dim, pos in zip(axes_dim, positions, strict=True):
        inv = (1.0 / np.power(THETA, np.arange(0, dim, 2, dtype=np.float64) / dim)).astype(
            np.float32
        )
        bands.append(pos.astype(np.float32)[:, None] * inv[None, :])
    return np.concatenate(bands, axis=1).astype(np.float64)
