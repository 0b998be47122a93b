"""FC-LSTM: the frequency-controlled LSTM of FC-4DFS §3.2 (Eq. 2-7), and its ablations.

One step, from the previous output landmarks to the next (all in normalised displacement units):

    x_t      = FeatureNet(lm_{t-1}, neutral, label)
    freq_t   = Emb(PE(p_{t-1}), PE(p_t), PE(p_{t+1}))            # Eq. 5-7
    f_t, i_t = sigma(W_{f,i} . [h_{t-1}, x_t, freq_t] + b_{f,i})   # Eq. 2
    y~_t     = tanh(W_c . [h_{t-1}, x_t] + b_c)                     # Eq. 3
    o_t      = sigma(W_o . [h_{t-1}, x_t] + b_o)
    y_t      = f_t * y_{t-1} + i_t * y~_t;  h_t = o_t * tanh(y_t)   # Eq. 4
    lm_t     = lm_0 + Head(h_t)

With ``freq=False`` the cell is a standard LSTM (Eq. 1) without any position information: the
paper's "lstm" rows of Table 3 are this very code with that flag (see :mod:`.lstm`).

Intensity and timing conditioning (options ``intensity`` / ``timing``, off by default, so the
paper's FC-LSTM is the default and is unchanged by them) use Potamias et al.'s temporal signal
(§5.1) ``e_t = s * a_t * onehot(label)``: with ``intensity`` the label code of the feature network
is the one-hot scaled by the requested relative intensity ``s`` (1 = the label's typical apex); with
``timing`` the feature network also gets ``W_e e_t`` of the frame being produced, where ``a_t`` is
the phase amplitude (0 before the onset, rising to 1 at the apex, held, falling after the offset):

    x_t = FeatureNet(lm_{t-1}, neutral, s * onehot) + W_e (s * a_t * onehot)
"""
from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from fc4dfs.plugins.contracts import Option
from fc4dfs.plugins.errors import ComponentError
from fc4dfs.zoo.generators.common import (DisplacementGenerator, SequenceModel, positional_encoding,
                                          relative_positions)
from fc4dfs.zoo.products import linear


class FCLSTMCell(nn.Module):
    """The cell of Eq. 2-4; ``freq_size=0`` makes it the standard LSTM cell of Eq. 1.

    Gate rows are ordered ``[f, i, o, c]`` (the three sigmoid gates first). ``weight_freq`` holds
    the freq_t columns of ``W_f`` and ``W_i`` only: the candidate and the output gate do not see
    freq_t (Eq. 3).
    """

    def __init__(self, input_size: int, hidden_size: int, freq_size: int = 0) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.freq_size = freq_size
        self.weight_x = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_h = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.empty(4 * hidden_size))
        self.weight_freq = nn.Parameter(torch.empty(2 * hidden_size, freq_size)) if freq_size else None
        bound = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        with torch.no_grad():
            self.bias[:hidden_size].add_(1.0)  # forget gate starts open

    def freq_term(self, freq: torch.Tensor | None) -> torch.Tensor:
        """``b + [W_f^freq freq_t; W_i^freq freq_t; 0; 0]``: the part of the gates known before the step."""
        if self.weight_freq is None or freq is None:
            if freq is not None:
                raise ComponentError("this cell was built without frequency input (freq_size=0)")
            return self.bias
        return self.bias + F.pad(F.linear(freq, self.weight_freq), (0, 2 * self.hidden_size))

    def update(self, gates: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 4 from the gate pre-activations ``[B, 4H]``: returns ``(h_t, y_t)``."""
        hs = self.hidden_size
        sig = torch.sigmoid(gates[:, : 3 * hs])
        y = torch.addcmul(sig[:, :hs] * y, sig[:, hs: 2 * hs], torch.tanh(gates[:, 3 * hs:]))
        return sig[:, 2 * hs:] * torch.tanh(y), y

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor],
                freq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(h_t, y_t)`` from ``x_t`` ``[B, X]``, ``(h_{t-1}, y_{t-1})`` and ``freq_t`` ``[B, Fq]``."""
        gates = F.linear(x, self.weight_x, self.freq_term(freq)) + F.linear(state[0], self.weight_h)
        return self.update(gates, state[1])


class FCLSTMNet(SequenceModel):
    """Feature network + (FC-)LSTM cell + output head, run autoregressively from the neutral.

    The feature network is ``x_t = SiLU(W_prev lm_{t-1} + W_cond [neutral, label] + b)`` on
    normalised displacements; the head is ``lm_t = W_out h_t + b_out``. Because the head is linear,
    ``W_prev lm_{t-1}`` is computed as ``(W_prev W_out) h_{t-1} + W_prev b_out`` in one matrix
    product with the recurrent term, ``x_t`` and ``freq_t`` enter the gates by one product, and all
    outputs come from one product after the loop (same function, fewer operations per step; nothing
    of size ``T x B x 4H`` is materialised, so the cost per frame does not grow with ``T``).
    """

    def __init__(self, num_landmarks: int, num_labels: int, identity_dims: int, hidden: int, feat_dim: int,
                 freq: bool, pe_dim: int, freq_dim: int, pe_base: float, intensity: bool = False,
                 timing: bool = False) -> None:
        super().__init__()
        d = 3 * num_landmarks
        self.num_labels = num_labels
        self.freq = freq
        self.pe_dim, self.pe_base = pe_dim, pe_base
        self.feat_prev = nn.Linear(d, feat_dim, bias=False)
        self.feat_cond = nn.Linear(identity_dims + num_labels, feat_dim)
        self.emb = nn.Sequential(nn.Linear(3 * pe_dim, freq_dim), nn.SiLU(),
                                 nn.Linear(freq_dim, freq_dim), nn.Tanh()) if freq else None
        self.cell = FCLSTMCell(feat_dim, hidden, freq_dim if freq else 0)
        self.head = nn.Linear(hidden, d)
        # built last, so that without conditioning every other weight draws the same initial values
        self.intensity = intensity
        self.feat_signal = nn.Linear(num_labels, feat_dim, bias=False) if timing else None

    def frequency(self, lengths: torch.Tensor, fps: torch.Tensor, steps: int) -> torch.Tensor:
        """freq_t for t = 1 .. steps-1 (Eq. 7): ``[B, steps-1, freq_dim]``."""
        assert self.emb is not None
        pes = [positional_encoding(relative_positions(lengths, fps, steps - 1, offset=1 + k), self.pe_dim,
                                   self.pe_base) for k in (-1, 0, 1)]
        return self.emb(torch.cat(pes, dim=-1).to(self.head.weight.dtype))

    def forward(self, neutral_n: torch.Tensor, label_ids: torch.Tensor, lengths: torch.Tensor,
                fps: torch.Tensor, steps: int, intensity: torch.Tensor | None = None,
                amplitude: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, steps, 3L]``; ``intensity [B]`` / ``amplitude [B, steps]`` are required exactly when the
        net was built with intensity / timing conditioning."""
        b, fd, cell = neutral_n.shape[0], self.feat_prev.out_features, self.cell
        hs_, dt = cell.hidden_size, neutral_n.dtype
        onehot = F.one_hot(label_ids, self.num_labels).to(dt)
        if (intensity is not None) != self.intensity or (amplitude is not None) != (self.feat_signal is not None):
            raise ComponentError("FC-LSTM: intensity / amplitude inputs must match the conditioning it was built with")
        if intensity is not None:
            onehot = onehot * intensity.to(dt).unsqueeze(1)
        cond = self.feat_cond(torch.cat([neutral_n, onehot], dim=1))  # [B, F]
        signal = None
        if self.feat_signal is not None and amplitude is not None:
            # W_e e_t for the frame each step produces (frames 1 .. steps-1): [S, B, F]
            signal = amplitude[:, 1:steps].to(dt).t().unsqueeze(-1) * self.feat_signal(onehot).unsqueeze(0)
        fq = None
        if self.freq:
            fq = self.frequency(lengths, fps, steps).transpose(0, 1).contiguous()  # [S, B, Fq]
        # the candidate's rows doubled (exact in floating point): with tanh(a) = 2 sigmoid(2a) - 1 one
        # sigmoid serves all four gates, and tanh(y_t) is a sigmoid too (torch's tanh costs ~10x more)
        double = torch.ones(4 * hs_, 1, dtype=dt, device=neutral_n.device)
        double[3 * hs_:] = 2.0
        # all gates in one product per step: [h_{t-1}, x_t, freq_t] against [W_h, W_x, W_freq] with the bias
        # fused; freq_t reaches the f and i gates only (Eq. 2-3), so its weights are zero for o and c
        w_freq = [] if fq is None else [F.pad(cell.weight_freq, (0, 0, 0, 2 * hs_))]
        w_gates = torch.cat([cell.weight_h, cell.weight_x, *w_freq], dim=1) * double  # [4H, H + F (+ Fq)]
        b_gates = cell.bias * double[:, 0]
        width = w_gates.shape[1]

        # without autograd every step writes into the same few buffers: no allocation (and no fresh pages
        # to fault in) per frame, so the cost per frame does not grow with T
        reuse = not (torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters()))

        def buffer(width: int) -> torch.Tensor | None:
            return neutral_n.new_empty(b, width) if reuse else None

        inp, s_buf, h_buf = buffer(width), buffer(4 * hs_), buffer(hs_)
        c_buf, fy_buf, ty_buf = buffer(hs_), buffer(hs_), buffer(hs_)
        h_all = neutral_n.new_empty(b, max(steps, 2), hs_) if reuse else None  # h_0 = 0 below, then one per step
        if h_all is not None:
            h_all[:, 0] = 0.0
        h_list = [neutral_n.new_zeros(b, hs_)]

        def gates(h: torch.Tensor, pre_x: torch.Tensor, t: int) -> torch.Tensor:
            """Pre-activations ``[B, 4H]`` from ``h_{t-1}`` and ``x_t = SiLU(pre_x + W_e e_t)``."""
            if inp is None:
                x = F.silu(pre_x if signal is None else pre_x + signal[t])
                return linear(torch.cat([h, x, *([] if fq is None else [fq[t]])], dim=1), w_gates, b_gates)
            inp[:, :hs_] = h
            x = inp[:, hs_: hs_ + fd]
            x.copy_(pre_x)
            if signal is not None:
                x.add_(signal[t])
            F.silu(x, inplace=True)
            if fq is not None:
                inp[:, hs_ + fd:] = fq[t]
            return linear(inp, w_gates, b_gates)

        def update(g: torch.Tensor, y: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
            """:meth:`FCLSTMCell.update` (Eq. 4) from pre-activations with doubled candidate rows: h_t, y_t."""
            s = torch.sigmoid(g, out=s_buf)
            candidate = torch.mul(s[:, 3 * hs_:], 2.0, out=c_buf).sub_(1.0)
            y = torch.addcmul(torch.mul(s[:, :hs_], y, out=fy_buf), s[:, hs_: 2 * hs_], candidate,
                              out=y if reuse else None)
            tanh_y = torch.mul(torch.sigmoid(y + y), 2.0, out=ty_buf).sub_(1.0)
            h = torch.mul(s[:, 2 * hs_: 3 * hs_], tanh_y, out=h_buf)
            if h_all is not None:
                h_all[:, t] = h
            h_list.append(h)
            return h, y

        # step 1: lm_0 is the neutral (zero displacement) and h_0 = y_0 = 0
        zero = cond.new_zeros(b, hs_)
        h, y = update(gates(zero, cond, 0), zero.clone(), 1)
        if steps > 2:
            # W_prev lm_{t-1} + cond, with lm_{t-1} = W_out h_{t-1} + b_out folded into one [F, H] product
            w_prev = self.feat_prev.weight @ self.head.weight
            cond = cond + self.feat_prev(self.head.bias)
            for t in range(1, steps - 1):
                h, y = update(gates(h, linear(h, w_prev) + cond, t), y, t + 1)
        hs = h_all if h_all is not None else torch.stack(h_list, dim=1)  # [B, steps, H]
        out = linear(hs.reshape(-1, hs_), self.head.weight, self.head.bias).view(b, hs.shape[1], -1)
        out[:, 0] = 0.0  # frame 0 is the neutral itself
        return out


class FCLSTMGenerator(DisplacementGenerator):
    """FC-4DFS's frequency-controlled LSTM (§3.2); ``freq``/``temporal_alpha`` give Table 3's rows."""

    name: ClassVar[str] = "fc_lstm"
    version: ClassVar[str] = "2"
    description: ClassVar[str] = "Frequency-controlled LSTM with framerate-aware positional encoding (FC-4DFS)"
    controls: ClassVar[frozenset[str]] = frozenset({"intensity", "timing"})
    defaults: ClassVar[dict[str, Any]] = {
        **DisplacementGenerator.common_defaults,
        "freq": True,  # frequency information into the forget/input gates (Eq. 2, 5-7)
        "hidden": 128,
        "feat_dim": 64,
        "pe_dim": 32,  # d of Eq. 6
        "freq_dim": 32,
        "pe_base": 10000.0,
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for key in ("hidden", "feat_dim", "pe_dim", "freq_dim"):
            if key in self.options and int(self.options[key]) < 1:
                raise ComponentError(f"{self.name}: option {key} must be a positive integer, got {self.options[key]}")
        if int(self.options.get("pe_dim", 2)) % 2:
            raise ComponentError(f"{self.name}: option pe_dim must be even, got {self.options['pe_dim']}")

    @classmethod
    def declared_options(cls) -> dict[str, Option]:
        # declared but not in ``defaults``: unset, they stay out of the config (and store key) of the
        # unconditioned model, which is the paper's
        opts = super().declared_options()
        opts["intensity"] = Option("intensity", bool, False, "condition on the relative expression intensity "
                                   "(generate --intensity; Potamias et al.'s scaled label code)")
        opts["timing"] = Option("timing", bool, False, "condition on the onset/apex/offset phase amplitude per frame "
                                "(generate --timing; Potamias et al.'s temporal signal)")
        return opts

    def active_controls(self) -> frozenset[str]:
        """``intensity`` and/or ``timing`` when the options of those names are true."""
        return frozenset(c for c in self.controls if self.options.get(c, False))

    def build_model(self, num_landmarks: int, num_labels: int) -> FCLSTMNet:
        o = self.options
        return FCLSTMNet(num_landmarks, num_labels, self.identity_dims, int(o["hidden"]), int(o["feat_dim"]), bool(o.get("freq", False)),
                         int(o.get("pe_dim", 2)), int(o.get("freq_dim", 1)), float(o.get("pe_base", 10000.0)),
                         intensity=bool(o.get("intensity", False)), timing=bool(o.get("timing", False)))
