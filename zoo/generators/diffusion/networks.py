"""Bidirectional transformers of Zou et al. (Fig. 1): the noise approximator and the guidance networks.

Both take a landmark sequence ``x_t`` of shape ``[B, F, D]`` (``D = 3 L``, any ``F``) and the
diffusion step ``t`` (``[B]`` integers, 0 = clean); their input tokens are the sum of a step
embedding (TE), a sinusoidal positional encoding over frames (PE) and a linear feature
embedding of ``x_t`` (FE).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class BiTConfig:
    """Size of one bidirectional transformer."""

    feature_dim: int
    d_model: int = 128
    layers: int = 4
    heads: int = 4
    ff_dim: int = 256
    dropout: float = 0.0
    #: frames the feature embedding sees: 1 = a per-frame linear layer (Fig. 1), 3 = also its neighbours
    fe_kernel: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


def sinusoidal(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer sinusoidal encoding of (possibly fractional) positions: ``[..., dim]``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=positions.device) / half)
    ang = positions.float().unsqueeze(-1) * freqs
    enc = torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)
    if dim % 2:
        enc = torch.nn.functional.pad(enc, (0, 1))
    return enc


class _Embedding(nn.Module):
    """TE + PE + FE, shared by both transformers."""

    def __init__(self, cfg: BiTConfig) -> None:
        super().__init__()
        self.d_model = cfg.d_model
        self.feature = nn.Conv1d(cfg.feature_dim, cfg.d_model, cfg.fe_kernel, padding=cfg.fe_kernel // 2,
                                 padding_mode="replicate")
        self.step = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_model), nn.SiLU(), nn.Linear(cfg.d_model, cfg.d_model))

    def step_embedding(self, t: torch.Tensor) -> torch.Tensor:
        return self.step(sinusoidal(t, self.d_model))  # [B, d]

    def forward(self, x: torch.Tensor, t: torch.Tensor,
                cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``[B, F, d]`` and the step embedding ``[B, d]``; ``cond`` ``[B, d]`` joins every token."""
        frames = torch.arange(x.shape[1], device=x.device)
        te = self.step_embedding(t)
        shared = te if cond is None else te + cond
        tokens = (self.feature(x.transpose(1, 2)).transpose(1, 2) + sinusoidal(frames, self.d_model).unsqueeze(0)
                  + shared.unsqueeze(1))
        return tokens, te


class ConditionEmbedding(nn.Module):
    """Embedding ``[B, d]`` of a label, an intensity and a text feature, any of which may be absent
    (classifier-free guidance, Ho & Salimans 2022: the model learns ``eps(x_t | c)`` and ``eps(x_t | null)``).

    ``labels`` ``[B]`` long with ``-1`` = no label; ``intensity`` ``[B]`` float with NaN = not given;
    ``text`` ``[B, text_dim]`` sentence features with NaN rows = no text.
    """

    def __init__(self, d_model: int, num_labels: int, intensity: bool, text_dim: int = 0) -> None:
        super().__init__()
        self.num_labels = int(num_labels)
        self.label = nn.Embedding(self.num_labels + 1, d_model)  # row num_labels = "no label"
        self.intensity = (nn.Sequential(nn.Linear(1, d_model), nn.SiLU(), nn.Linear(d_model, d_model))
                          if intensity else None)
        self.no_intensity = nn.Parameter(torch.zeros(d_model)) if intensity else None
        self.text = nn.Linear(int(text_dim), d_model) if text_dim else None

    def forward(self, labels: torch.Tensor, intensity: torch.Tensor | None = None,
                text: torch.Tensor | None = None) -> torch.Tensor:
        out = self.label(torch.where(labels < 0, torch.full_like(labels, self.num_labels), labels))
        if self.text is not None and text is not None:
            given = torch.isfinite(text[:, :1])
            out = out + torch.where(given, self.text(torch.nan_to_num(text, nan=0.0).to(out.dtype)), 0.0)
        if self.intensity is not None:
            given = intensity if intensity is not None else torch.full(labels.shape, float("nan"), device=labels.device)
            known = torch.isfinite(given)
            emb = self.intensity(torch.nan_to_num(given, nan=0.0).unsqueeze(-1).to(out.dtype))
            out = out + torch.where(known.unsqueeze(-1), emb, self.no_intensity.expand_as(emb))
        return out


def _encoder(cfg: BiTConfig) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.heads, cfg.ff_dim, cfg.dropout, activation="gelu",
                                       batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, cfg.layers, norm=nn.LayerNorm(cfg.d_model), enable_nested_tensor=False)


class NoiseApproximator(nn.Module):
    """``eps_theta(x_t, t)``: a bidirectional transformer encoder over frames.

    Beyond Fig. 1, the output adds a step-gated per-feature skip ``gamma(t) * x_t``: the transformer's
    read-out has rank ``d_model`` per frame, smaller than ``3 L`` on a CPU budget, while at high noise
    the optimal eps-prediction is nearly ``x_t`` itself in every one of the ``3 L`` dimensions.
    """

    def __init__(self, cfg: BiTConfig, num_labels: int = 0, intensity: bool = False, text_dim: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = _Embedding(cfg)
        self.cond = ConditionEmbedding(cfg.d_model, num_labels, intensity, text_dim) if num_labels > 0 else None
        self.encoder = _encoder(cfg)
        self.out = nn.Linear(cfg.d_model, cfg.feature_dim)
        self.skip_gate = nn.Linear(cfg.d_model, cfg.feature_dim)
        nn.init.zeros_(self.skip_gate.weight)
        nn.init.zeros_(self.skip_gate.bias)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None,
                intensity: torch.Tensor | None = None, text: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, F, D]`` prediction (eps or x_0, as trained). ``labels``, ``intensity`` and ``text`` (see
        :class:`ConditionEmbedding`) need a model built with ``num_labels > 0``; None = unconditional."""
        cond = None
        if self.cond is not None:
            if labels is None:
                labels = torch.full((x_t.shape[0],), -1, dtype=torch.long, device=x_t.device)
            cond = self.cond(labels, intensity, text)
        tokens, te = self.embed(x_t, t, cond)
        return self.out(self.encoder(tokens)) + self.skip_gate(te).unsqueeze(1) * x_t


class GuidanceClassifier(nn.Module):
    """A guidance BiT: a bidirectional transformer with a learnable classification token.

    With ``out_dim`` = the number of labels it is ``p_phi(y | x_t, t)``'s logits (label control,
    Eq. 9); for text control (Eq. 10) the softmax is dropped and its ``out_dim`` output is a text
    feature vector compared by cosine with the encoder's features of the text.
    """

    def __init__(self, cfg: BiTConfig, out_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.out_dim = out_dim
        self.embed = _Embedding(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.d_model))
        nn.init.normal_(self.cls_token, std=0.02)
        self.encoder = _encoder(cfg)
        self.head = nn.Linear(cfg.d_model, out_dim)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``[B, out_dim]``: logits, or a text feature vector."""
        tokens, te = self.embed(x_t, t)
        cls = self.cls_token.expand(x_t.shape[0], -1, -1) + te.unsqueeze(1)
        h = self.encoder(torch.cat([cls, tokens], dim=1))
        return self.head(h[:, 0])
