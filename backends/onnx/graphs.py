"""The four torch modules we export, each a thin adapter over the diffusers/transformers one.

What changes from the reference, and why:

* the transformer's RoPE: diffusers rotates with complex tensors (``torch.polar``,
  ``view_as_complex``) that no ONNX exporter handles, and derives the tables from Python
  ``img_shapes``. :class:`TransformerGraph` takes real ``cos``/``sin`` tables as inputs
  (made by :mod:`.rope` outside the graph) and rotates pairs with ``unflatten`` —
  the same numbers (``(a + ib)(c + is)``) with shapes the exporter keeps symbolic;
* the text mask is always given (all ones when nothing is padded);
* ``additional_t_cond`` is 0 (RGB-A condition image) as in the layered pipeline.

Needs torch; imported only by :mod:`.export`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """(B, S, H, D) rotated by angle tables (S, D/2): consecutive pairs are (real, imag),
    as ``apply_rotary_emb_qwen(use_real=False)`` reads them."""
    pairs = x.float().unflatten(-1, (-1, 2))
    re, im = pairs[..., 0], pairs[..., 1]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    out = torch.stack([re * c - im * s, re * s + im * c], dim=-1)
    return out.flatten(-2).to(x.dtype)


class RealRopeAttention:
    """``QwenDoubleStreamAttnProcessor2_0`` with real RoPE tables and an explicit mask."""

    def __call__(
        self,
        attn: nn.Module,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_hidden_states_mask: torch.Tensor,
        attention_mask: None = None,
        image_rotary_emb: tuple[tuple[torch.Tensor, ...], ...] = (),
    ) -> tuple[torch.Tensor, torch.Tensor]:
        (img_cos, img_sin), (txt_cos, txt_sin) = image_rotary_emb
        head_dim = attn.inner_dim // attn.heads
        seq_txt = encoder_hidden_states.shape[1]

        def heads(proj: nn.Module, x: torch.Tensor) -> torch.Tensor:
            return proj(x).unflatten(-1, (-1, head_dim))

        img_q, img_k, img_v = (heads(p, hidden_states) for p in (attn.to_q, attn.to_k, attn.to_v))
        txt_q, txt_k, txt_v = (
            heads(p, encoder_hidden_states)
            for p in (attn.add_q_proj, attn.add_k_proj, attn.add_v_proj)
        )
        img_q, img_k = attn.norm_q(img_q), attn.norm_k(img_k)
        txt_q, txt_k = attn.norm_added_q(txt_q), attn.norm_added_k(txt_k)
        img_q, img_k = rotate(img_q, img_cos, img_sin), rotate(img_k, img_cos, img_sin)
        txt_q, txt_k = rotate(txt_q, txt_cos, txt_sin), rotate(txt_k, txt_cos, txt_sin)

        q = torch.cat([txt_q, img_q], dim=1).transpose(1, 2)
        k = torch.cat([txt_k, img_k], dim=1).transpose(1, 2)
        v = torch.cat([txt_v, img_v], dim=1).transpose(1, 2)
        # An additive mask: a boolean one exports as Where + IsNaN over every score.
        text_bias = (encoder_hidden_states_mask.to(q.dtype) - 1) * torch.finfo(q.dtype).max
        image_bias = torch.zeros_like(hidden_states[..., 0], dtype=q.dtype)
        bias = torch.cat([text_bias, image_bias], dim=1)[:, None, None, :]
        joint = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        joint = joint.transpose(1, 2).flatten(2, 3).to(q.dtype)
        img_out = attn.to_out[0](joint[:, seq_txt:])
        txt_out = attn.to_add_out(joint[:, :seq_txt])
        return img_out, txt_out


class TransformerGraph(nn.Module):
    """``QwenImageTransformer2DModel.forward`` with RoPE tables as inputs.

    In: tokens (B, N, 64) — the noisy latents followed by the condition image's —,
    text (B, T, D), text_mask (B, T) int64, timestep (B,) on the 0..1 scale, and the
    cos/sin tables (N, head_dim/2) and (T, head_dim/2). Out: velocity (B, N, 64).
    """

    def __init__(self, transformer: nn.Module) -> None:
        super().__init__()
        if transformer.config.guidance_embeds or transformer.config.zero_cond_t:
            raise ValueError("only Qwen-Image-Layered transformers (no guidance, no zero_cond_t)")
        self.model = transformer
        transformer.set_attn_processor(RealRopeAttention())

    def forward(
        self,
        tokens: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        timestep: torch.Tensor,
        img_cos: torch.Tensor,
        img_sin: torch.Tensor,
        txt_cos: torch.Tensor,
        txt_sin: torch.Tensor,
    ) -> torch.Tensor:
        m = self.model
        hidden = m.img_in(tokens)
        timestep = timestep.to(hidden.dtype)
        text = m.txt_in(m.txt_norm(text))
        rgb = torch.zeros_like(timestep, dtype=torch.long)  # additional_t_cond: RGBA input
        temb = m.time_text_embed(timestep, hidden, rgb)
        rope = ((img_cos, img_sin), (txt_cos, txt_sin))
        for block in m.transformer_blocks:
            text, hidden = block(
                hidden_states=hidden,
                encoder_hidden_states=text,
                encoder_hidden_states_mask=text_mask,
                temb=temb,
                image_rotary_emb=rope,
            )
        return m.proj_out(m.norm_out(hidden, temb))


class VaeEncoderGraph(nn.Module):
    """Image (B, 4, 1, H, W) in [-1, 1] -> the posterior's mode (B, 16, 1, H/8, W/8)."""

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(image).latent_dist.mode()


class VaeDecoderGraph(nn.Module):
    """Latents (B, 16, 1, h, w), de-normalised -> image (B, 4, 1, 8h, 8w) in [-1, 1]."""

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latents, return_dict=False)[0]


class TextEncoderGraph(nn.Module):
    """Token ids and mask (B, T) -> the language model's last hidden state (B, T, D).

    Text-only positions are what ``get_rope_index`` gives without images: the running
    count of unmasked tokens, on all three M-RoPE axes.
    """

    def __init__(self, text_encoder: nn.Module) -> None:
        super().__init__()
        self.language_model = text_encoder.model.language_model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)
        out = self.language_model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions[None].expand(3, -1, -1),
            use_cache=False,
        )
        return out.last_hidden_state
