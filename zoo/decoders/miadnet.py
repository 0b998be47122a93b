"""MIADNet: FC-4DFS's Multi-level Identity-Aware Displacement Network (Sec. 3.3, Fig. 4).

- **Landmark decomposition embedding** (Eq. 8): ``z_t = MLP_m(Delta L_t) + lambda * MLP_n(L_0)``
  with a learnable ``lambda``; without it (ablation ``s2d+mesh-n``) ``z_t`` is S2D's linear layer.
- **Identity extractor**: spiral convolutions over the neutral mesh ``M_0`` (its deviation from the
  mean neutral plus the mean neutral's position), one per level with down-sampling in between,
  giving identity features ``F_en^i`` at every resolution.
- **Identity-aware mesh generator**: S2D's spiral decoder; after up-sampling to level ``i`` it reads
  the identity features of that level by cross-attention (Eq. 9,
  ``softmax(F_de W_q (F_en^i W_k)^T / sqrt(d)) F_en^i``) and combines them through a skip
  connection (concatenation before the level's spiral convolution). Global attention costs
  ``V_i^2`` per frame, so levels with more than ``attention_max_vertices`` (128) vertices (all but
  FLAME's two coarsest) read ``F_en^i`` directly through the skip connection
  (``fine_attention="none"``, the default) or attend over each vertex's spiral neighbourhood
  (``"local"``: 2-3x slower to train, no better on ``synthetic``); raise
  ``attention_max_vertices`` to attend globally everywhere. Without the identity path (ablation
  ``s2d+lm-n``) the generator is S2D's.
- Output ``Delta M_t`` is added to ``M_0``; L1 loss on displacements; Adam 1e-3, decay 0.99/epoch,
  batch 128, 300 epochs at the ``paper`` budget.

The concatenation ``conv([x, c])`` is computed as ``conv_x(x) + conv_c(c)`` (the same linear map),
so a direct skip is convolved once per identity in the batch rather than once per frame.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from fc4dfs.plugins.errors import ComponentError
from fc4dfs.zoo.decoders.common import (HIERARCHY_DEFAULTS, PAPER, FrameSet, SpiralEncoder,
                                        SpiralMeshDecoder, level_filters)
from fc4dfs.zoo.mesh.hierarchy import MeshHierarchy
from fc4dfs.zoo.mesh.layers import Resample, SpiralConv
from fc4dfs.zoo.products import Linear


class CrossAttention(nn.Module):
    """Eq. 9: decoder features query the identity features of the same level (values unprojected)."""

    def __init__(self, query_dim: int, identity_dim: int) -> None:
        super().__init__()
        self.q = Linear(query_dim, identity_dim, bias=False)
        self.k = Linear(identity_dim, identity_dim, bias=False)

    def keys(self, feats: torch.Tensor) -> torch.Tensor:
        """Keys of identity features ``[I, V, e]`` (computed once per identity)."""
        return self.k(feats)

    def forward(self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """``x`` [N, V, f]; ``keys`` / ``values`` [N, V, e], or [1, V, e] for all N -> [N, V, e]."""
        q = self.q(x)
        if keys.shape[0] == 1:  # one identity: the frames' queries form one sequence over the same keys
            return torch.nn.functional.scaled_dot_product_attention(
                q.reshape(1, 1, -1, q.shape[-1]), keys.unsqueeze(1), values.unsqueeze(1)).view_as(q)
        return torch.nn.functional.scaled_dot_product_attention(
            q.unsqueeze(1), keys.unsqueeze(1), values.unsqueeze(1)).squeeze(1)


class EmbeddingMLP(nn.Module):
    """An MLP of Eq. 8: ``Linear(x) + Linear(ELU(Linear(x)))``, the second branch starting at zero.

    With ``linear=False`` only the two-layer branch remains (``MLP_n``). The linear path makes
    ``MLP_m`` start as S2D's linear layer, so the non-linear part only adds what the data needs.
    """

    def __init__(self, in_features: int, hidden: int, out_features: int, linear: bool = True) -> None:
        super().__init__()
        self.linear = Linear(in_features, out_features) if linear else None
        self.mlp = nn.Sequential(Linear(in_features, hidden), nn.ELU(), Linear(hidden, out_features))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mlp(x)
        return y if self.linear is None else y + self.linear(x)


class LocalCrossAttention(nn.Module):
    """Eq. 9 restricted to each vertex's spiral neighbourhood (the fine levels).

    Vertex ``v``'s decoder feature queries the identity features at ``spiral[v]`` only, so the cost
    is ``V * S`` instead of ``V^2``; padded spiral entries are masked out.
    """

    def __init__(self, query_dim: int, identity_dim: int, spiral: torch.Tensor) -> None:
        super().__init__()
        self.q = Linear(query_dim, identity_dim, bias=False)
        self.k = Linear(identity_dim, identity_dim, bias=False)
        spiral = torch.as_tensor(spiral, dtype=torch.long)
        self.register_buffer("spiral", spiral, persistent=False)
        self.register_buffer("pad", spiral == spiral.shape[0], persistent=False)
        self.scale = 1.0 / math.sqrt(identity_dim)

    def _gather(self, feats: torch.Tensor) -> torch.Tensor:
        padded = torch.nn.functional.pad(feats, (0, 0, 0, 1))
        return padded[:, self.spiral]  # [I, V, S, e]

    def keys(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Neighbourhood keys and values ``[I, V, S, e]`` of identity features ``[I, V, e]``."""
        return self._gather(self.k(feats)), self._gather(feats)

    def forward(self, x: torch.Tensor, keys: tuple[torch.Tensor, torch.Tensor], ident: torch.Tensor) -> torch.Tensor:
        q = self.q(x) * self.scale  # [N, V, e]
        k, v = keys
        out = torch.empty_like(q)
        for u in torch.unique(ident).tolist():
            rows = (ident == u).nonzero().squeeze(1)
            scores = (q[rows].unsqueeze(2) * k[u].unsqueeze(0)).sum(-1).masked_fill(self.pad, float("-inf"))
            w = torch.softmax(scores, dim=-1)
            out[rows] = (w.unsqueeze(-1) * v[u].unsqueeze(0)).sum(2)
        return out


class MIADNet(nn.Module):
    """The network; see the module docstring.

    ``modes[i]`` says how level ``i`` reads the identity features: ``"global"`` (Eq. 9 over all
    vertices of the level), ``"local"`` (:class:`LocalCrossAttention`) or ``"skip"`` (the features
    themselves). The identity branches start at zero (last layer of ``MLP_n``, the skip
    convolutions), so training starts from S2D's function and learns the identity corrections.
    """

    def __init__(self, hierarchy: MeshHierarchy, num_landmarks: int, filters: list[int], identity_filters: list[int],
                 hidden: int, landmark_decomposition: bool, identity_mesh: bool, attention_max_vertices: int,
                 fine_attention: str, template: torch.Tensor, template_scale: float) -> None:
        super().__init__()
        n = hierarchy.num_levels
        self.n_levels, self.sizes = n, hierarchy.sizes
        self.filters = level_filters(filters, n)  # coarse -> fine
        self.decomposition, self.identity = bool(landmark_decomposition), bool(identity_mesh)
        width = self.sizes[-1] * self.filters[0]
        lm = num_landmarks * 3
        if self.decomposition:
            self.mlp_m = EmbeddingMLP(lm, hidden, width, linear=True)
            self.mlp_n = EmbeddingMLP(lm, hidden, width, linear=False)
            self.lam = nn.Parameter(torch.tensor(1.0))
        else:
            self.fc = Linear(lm, width)
        self.up = nn.ModuleList(Resample(u) for u in hierarchy.up)
        # decoder step k works at level n-2-k and maps filters[k] -> filters[k+1]
        self.convs = nn.ModuleList(
            SpiralConv(self.filters[k], self.filters[k + 1], hierarchy.spirals[n - 2 - k]) for k in range(n - 1))
        self.out = SpiralConv(self.filters[-1], 3, hierarchy.spirals[0])
        self.act = nn.ELU(inplace=True)  # on fresh sums and convolution outputs
        if not self.identity:
            return
        self.register_buffer("template", (template - template.mean(0)) / template_scale, persistent=False)
        self.encoder = SpiralEncoder(hierarchy, 6, identity_filters)
        e = self.encoder.filters
        fine = {"local": "local", "none": "skip"}[fine_attention]
        self.modes = ["global" if self.sizes[i] <= attention_max_vertices else fine for i in range(n)]
        # the decoder features that query level i: filters[0] at the coarsest, filters[k] after step k's up-sampling
        query_dim = {n - 1: self.filters[0], **{n - 2 - k: self.filters[k] for k in range(n - 1)}}
        self.attn = nn.ModuleDict()
        for i in range(n):
            if self.modes[i] == "global":
                self.attn[str(i)] = CrossAttention(query_dim[i], e[i])
            elif self.modes[i] == "local":
                self.attn[str(i)] = LocalCrossAttention(query_dim[i], e[i], torch.as_tensor(hierarchy.spirals[i]))
        self.coarse_c = Linear(e[n - 1], self.filters[0], bias=False)
        nn.init.zeros_(self.coarse_c.weight)
        self.conv_c = nn.ModuleList(
            SpiralConv(e[n - 2 - k], self.filters[k + 1], hierarchy.spirals[n - 2 - k]) for k in range(n - 1))
        for conv in self.conv_c:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def embed(self, dl: torch.Tensor, l0: torch.Tensor, ident: torch.Tensor) -> torch.Tensor:
        """Eq. 8 (or S2D's linear layer) -> coarsest-level features ``[N, V_c, f0]``."""
        d = dl.reshape(dl.shape[0], -1)
        if self.decomposition:
            z = self.mlp_m(d) + self.lam * self.mlp_n(l0.reshape(l0.shape[0], -1))[ident]
        else:
            z = self.fc(d)
        return z.view(d.shape[0], self.sizes[-1], self.filters[0])

    def _skip(self, level: int, x: torch.Tensor, feats: list[torch.Tensor], keys: dict[int, Any],
              ident: torch.Tensor, project: nn.Module) -> torch.Tensor:
        """``project`` applied to level ``level``'s identity context for decoder features ``x``."""
        mode = self.modes[level]
        if mode == "skip":  # per identity, then broadcast to its frames
            ctx = project(feats[level])
            return ctx if ctx.shape[0] == 1 else ctx[ident]
        if mode == "global":
            k, f = keys[level], feats[level]
            ctx = self.attn[str(level)](x, *((k, f) if k.shape[0] == 1 else (k[ident], f[ident])))
        else:
            ctx = self.attn[str(level)](x, keys[level], ident)
        return project(ctx)

    def forward(self, dl: torch.Tensor, l0: torch.Tensor, m0: torch.Tensor, ident: torch.Tensor) -> torch.Tensor:
        x = self.embed(dl, l0, ident)
        n = self.n_levels
        if not self.identity:
            for k in range(n - 1):
                x = self.act(self.convs[k](self.up[n - 2 - k](x)))
            return self.out(x)
        tmpl = self.template.unsqueeze(0).expand(m0.shape[0], -1, -1)
        feats = self.encoder(torch.cat([m0, tmpl], dim=-1))  # one pass per identity in the batch
        keys = {i: self.attn[str(i)].keys(feats[i]) for i in range(n) if self.modes[i] != "skip"}
        x = self.act(x + self._skip(n - 1, x, feats, keys, ident, self.coarse_c))
        for k in range(n - 1):
            i = n - 2 - k
            x = self.up[i](x)
            y = self.convs[k](x)
            x = self.act(y.add_(self._skip(i, x, feats, keys, ident, self.conv_c[k])))
        return self.out(x)


class MIADNetDecoder(SpiralMeshDecoder):
    """FC-4DFS's multi-level identity-aware displacement network (and its Table 2 ablations)."""

    name: ClassVar[str] = "miadnet"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = ("MIADNet (FC-4DFS): landmark decomposition embedding + multi-level identity "
                                  "features of the neutral mesh read by cross-attention in an S2D-style decoder")
    output: ClassVar[str] = "displacement"
    defaults: ClassVar[dict[str, Any]] = {
        "landmark_decomposition": True,
        "identity_mesh": True,
        "filters": [128, 64, 32, 32, 16],
        "identity_filters": [16, 32, 64, 128, 128],
        "hidden": 256,
        "attention_max_vertices": 128,
        "fine_attention": "none",
        "loss_weights": "uniform",
        **HIERARCHY_DEFAULTS,
    }
    budgets: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"epochs": 2, "batch_size": 16, "lr": 1e-3, "lr_decay": 0.99, "weight_decay": 5e-5,
                  "max_frames": 128},
        "quick": {"epochs": 5, "batch_size": 16, "lr": 2e-3, "lr_decay": 0.9, "weight_decay": 5e-5,
                  "max_frames": 800},
        "paper": {**PAPER, "batch_size": 128, "weight_decay": 5e-5},
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for key in ("landmark_decomposition", "identity_mesh"):
            if not isinstance(self.options[key], bool):
                raise ComponentError(f"miadnet option {key} must be true or false, got {self.options[key]!r}")
        if int(self.options["attention_max_vertices"]) < 0:
            raise ComponentError("miadnet option attention_max_vertices must be >= 0")
        if self.options["fine_attention"] not in ("local", "none"):
            raise ComponentError(f"miadnet option fine_attention must be 'local' or 'none', "
                                 f"got {self.options['fine_attention']!r}")

    def arch(self, fs: FrameSet) -> dict[str, Any]:
        o = self.options
        return {**super().arch(fs), "filters": [int(f) for f in o["filters"]],
                "identity_filters": [int(f) for f in o["identity_filters"]], "hidden": int(o["hidden"]),
                "landmark_decomposition": o["landmark_decomposition"], "identity_mesh": o["identity_mesh"],
                "attention_max_vertices": int(o["attention_max_vertices"]), "fine_attention": o["fine_attention"]}

    def build_network(self, hierarchy: MeshHierarchy, arch: dict[str, Any]) -> nn.Module:
        assert self.norm is not None
        return MIADNet(hierarchy, arch["num_landmarks"], arch["filters"], arch["identity_filters"], arch["hidden"],
                       arch["landmark_decomposition"], arch["identity_mesh"], arch["attention_max_vertices"],
                       arch["fine_attention"], self.norm.stat("neutral_mean").cpu(), max(float(self.norm.stat("extent")), 1e-3))

