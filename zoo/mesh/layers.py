"""Torch layers on a fixed mesh hierarchy: spiral convolution and sparse re-sampling.

Features are batch-first ``[B, V, C]``. Spiral indices use ``V`` as the padding index; the layers
append one zero row so padded positions contribute nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from fc4dfs.zoo.products import product


#: floats of the gathered ``[rows, S * C]`` block processed at once on CPU with one thread (4 MB)
_CPU_BLOCK_FLOATS = 1 << 20
#: the same with several threads, per thread (8 MB): every block costs two parallel regions
#: (gather, product), and each region waits for its slowest thread
_CPU_BLOCK_FLOATS_PARALLEL = 1 << 21


def _block_floats() -> int:
    """Block size in floats: 4 MB on one thread (largely in L2); 8 MB per thread on several, so a
    layer issues a handful of parallel regions rather than dozens (each a barrier that a busy or
    descheduled core stalls)."""
    threads = torch.get_num_threads()
    return _CPU_BLOCK_FLOATS if threads <= 1 else _CPU_BLOCK_FLOATS_PARALLEL * threads


#: glibc ``mallopt`` parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


@functools.cache
def retain_freed_memory() -> bool:
    """Have glibc keep freed blocks (up to 64 MiB each, 128 MiB at the heap's top) for reuse.

    A FLAME-scale forward pass allocates and frees tens of MB per layer. By default glibc maps
    blocks above its (adaptive) threshold afresh and trims its heap, so the next call page-faults
    the same memory back in: up to ~10,000 faults and ~20 % of a 30-frame decode in system time.
    Process-wide, applied once (the first :class:`SpiralConv` forward pass on CPU); returns False where the C library
    has no ``mallopt`` (not glibc), which changes nothing else.
    """
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 64 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 128 << 20))


def _pad_rows(x: torch.Tensor, channels: int | None = None) -> torch.Tensor:
    """``[B, V, C]`` -> ``[B * (V + 1), channels]`` (default ``C``) with a zero row after each item and
    zero channels after the ``C`` of ``x`` (one copy, no fill pass over the copied part)."""
    b, v, c = x.shape
    channels = c if channels is None else channels
    xp = x.new_empty(b, v + 1, channels)
    xp[:, :v, :c] = x
    xp[:, :v, c:] = 0
    xp[:, v] = 0
    return xp.view(b * (v + 1), channels)


def _gather_rows(xp: torch.Tensor, index: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out = xp[index]`` for ``[N, C]`` rows. ``index_select`` copies row by row; rows of 16 bytes
    (float32 x 4) are gathered as single complex128 elements instead, about twice as fast."""
    if xp.shape[1] * xp.element_size() == 16:
        torch.index_select(xp.view(torch.complex128).view(-1), 0, index, out=out.view(torch.complex128).view(-1))
        return out
    return torch.index_select(xp, 0, index, out=out)


class _SpiralConvCPU(torch.autograd.Function):
    """Spiral convolution on CPU in row blocks: gather a block, multiply it, reuse the buffer.

    Materialising the whole ``[B * V, S * C]`` gather costs more in page faults and memory
    traffic than in arithmetic on CPU; blocks of a few MB stay in cache. The backward pass
    re-gathers each block instead of keeping it (memory stays O(block)).
    """

    @staticmethod
    def forward(ctx, xp: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,  # type: ignore[override]
                index: torch.Tensor, rows: int, block: int) -> torch.Tensor:
        sc, c = weight.shape[0], xp.shape[1]
        s = sc // c
        out = torch.empty(rows, weight.shape[1], dtype=xp.dtype, device=xp.device)
        buf = torch.empty(min(block, rows) * s, c, dtype=xp.dtype, device=xp.device)
        weight_t = weight.t().contiguous()
        for r0 in range(0, rows, block):
            r1 = min(rows, r0 + block)
            g = _gather_rows(xp, index[r0 * s:r1 * s], buf[:(r1 - r0) * s])
            product(g.view(r1 - r0, sc), weight, weight_t, bias, out[r0:r1])
        ctx.save_for_backward(xp, weight, index)
        ctx.rows, ctx.block = rows, block
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        xp, weight, index = ctx.saved_tensors
        rows, block = ctx.rows, ctx.block
        sc, c = weight.shape[0], xp.shape[1]
        s = sc // c
        grad_out = grad_out.contiguous()
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = torch.zeros_like(xp) if need_x else None
        grad_w = torch.zeros_like(weight) if need_w else None
        buf = torch.empty(min(block, rows) * s, c, dtype=xp.dtype, device=xp.device)
        gbuf = torch.empty(min(block, rows), sc, dtype=xp.dtype, device=xp.device)
        for r0 in range(0, rows, block):
            r1 = min(rows, r0 + block)
            n = r1 - r0
            go = grad_out[r0:r1]
            idx = index[r0 * s:r1 * s]
            if grad_w is not None:
                g = _gather_rows(xp, idx, buf[:n * s])
                grad_w.addmm_(g.view(n, sc).t(), go)
            if grad_x is not None:
                gg = product(go, weight.t(), weight, out=gbuf[:n])
                grad_x.index_add_(0, idx, gg.view(n * s, c))
        grad_b = grad_out.sum(0) if need_b else None
        return grad_x, grad_w, grad_b, None, None, None


class _SpiralConvCPUNarrow(torch.autograd.Function):
    """Spiral convolution on CPU for narrow outputs (``C_out`` << ``C_in``), e.g. the last layer.

    Multiplies first (``Z = x @ W'`` with ``W'`` ``[C, S * C_out]``) and then sums the spiral's
    ``S`` entries of ``Z`` with one fused ``embedding_bag``, so the per-vertex data moved is
    ``S * C_out`` instead of ``S * C_in``. Works on blocks of whole batch items.
    """

    @staticmethod
    def forward(ctx, xp: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,  # type: ignore[override]
                bag_index: torch.Tensor, items: int, v: int, s: int, block: int) -> torch.Tensor:
        c, out_c = xp.shape[1], weight.shape[1]
        w2 = weight.view(s, c, out_c).permute(1, 0, 2).reshape(c, s * out_c)
        w2_t = w2.t().contiguous()
        out = torch.empty(items * v, out_c, dtype=xp.dtype, device=xp.device)
        for i0 in range(0, items, block):
            n = min(block, items - i0)
            z = product(xp[i0 * (v + 1):(i0 + n) * (v + 1)], w2, w2_t).view(-1, out_c)
            out[i0 * v:(i0 + n) * v] = torch.nn.functional.embedding_bag(bag_index[:n * v], z, mode="sum")
        out += bias
        ctx.save_for_backward(xp, w2, bag_index)
        ctx.dims = (items, v, s, block)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        xp, w2, bag_index = ctx.saved_tensors
        items, v, s, block = ctx.dims
        c, out_c = xp.shape[1], w2.shape[1] // s
        grad_out = grad_out.contiguous()
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = torch.empty_like(xp) if need_x else None
        grad_w2 = torch.zeros_like(w2) if need_w else None
        for i0 in range(0, items, block):
            n = min(block, items - i0)
            gz = torch.zeros(n * (v + 1) * s, out_c, dtype=xp.dtype, device=xp.device)
            src = grad_out[i0 * v:(i0 + n) * v].unsqueeze(1).expand(n * v, s, out_c).reshape(n * v * s, out_c)
            gz.index_add_(0, bag_index[:n * v].reshape(-1), src)
            gz = gz.view(n * (v + 1), s * out_c)
            rows = slice(i0 * (v + 1), (i0 + n) * (v + 1))
            if grad_x is not None:
                product(gz, w2.t(), w2, out=grad_x[rows])
            if grad_w2 is not None:
                grad_w2.addmm_(xp[rows].t(), gz)
        grad_w = grad_w2.view(c, s, out_c).permute(1, 0, 2).reshape(s * c, out_c) if grad_w2 is not None else None
        grad_b = grad_out.sum(0) if need_b else None
        return grad_x, grad_w, grad_b, None, None, None, None, None


class SpiralConv(nn.Module):
    """Spiral convolution (Bouritsas et al. Eq. 3) as a row gather and one matrix product.

    ``out[b, v] = sum_j x[b, spiral[v, j]] @ W_j + bias`` with ``x`` ``[B, V, C]``. The gather
    runs over the flattened ``[B * (V + 1), C]`` rows (row ``V`` of each item is the zero padding)
    and the product is one ``[B * V, S * C] x [S * C, C_out]`` matmul; on CPU both run in cache-
    sized row blocks with a hand-written backward (see :class:`_SpiralConvCPU`; layers with a
    narrow output multiply first, see :class:`_SpiralConvCPUNarrow`).
    """

    def __init__(self, in_channels: int, out_channels: int, spiral: torch.Tensor | np.ndarray) -> None:
        super().__init__()
        spiral = torch.as_tensor(np.asarray(spiral), dtype=torch.long)
        if spiral.ndim != 2:
            raise ValueError(f"spiral indices must be [V, S], got {tuple(spiral.shape)}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.num_vertices, self.spiral_length = int(spiral.shape[0]), int(spiral.shape[1])
        if spiral.numel() and (spiral.min() < 0 or spiral.max() > self.num_vertices):
            raise ValueError(f"spiral indices must lie in [0, {self.num_vertices}] (the last is padding)")
        self.register_buffer("spiral", spiral.contiguous(), persistent=False)
        self.weight = nn.Parameter(torch.empty(self.spiral_length * self.in_channels, self.out_channels))
        self.bias = nn.Parameter(torch.zeros(self.out_channels))
        self._flat_cache: tuple[int, torch.device, torch.Tensor] | None = None
        self._bag_cache: tuple[int, torch.device, torch.Tensor] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform init with the variance of ``nn.Linear``'s kaiming-uniform default."""
        bound = 1.0 / math.sqrt(self.weight.shape[0])
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def _flat_index(self, batch: int, device: torch.device) -> torch.Tensor:
        cached = self._flat_cache
        if cached is not None and cached[0] == batch and cached[1] == device:
            return cached[2]
        offs = torch.arange(batch, device=device).mul_(self.num_vertices + 1).view(batch, 1)
        idx = (self.spiral.to(device).view(1, -1) + offs).view(-1)
        self._flat_cache = (batch, device, idx)
        return idx

    def _bag_index(self, items: int, device: torch.device) -> torch.Tensor:
        """``[items * V, S]`` rows of ``Z`` (``[items * (V + 1) * S, C_out]``) summed per output vertex."""
        cached = self._bag_cache
        if cached is not None and cached[0] == items and cached[1] == device:
            return cached[2]
        v, s = self.num_vertices, self.spiral_length
        sp = self.spiral.to(device).view(1, v, s)
        item = torch.arange(items, device=device).view(items, 1, 1) * (v + 1)
        idx = ((item + sp) * s + torch.arange(s, device=device).view(1, 1, s)).view(items * v, s)
        self._bag_cache = (items, device, idx)
        return idx

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, v, c = x.shape
        if v != self.num_vertices or c != self.in_channels:
            raise ValueError(f"SpiralConv expects [B, {self.num_vertices}, {self.in_channels}], got {tuple(x.shape)}")
        weight = self.weight
        if x.device.type == "cpu" and c < 4 and x.dtype == torch.float32:
            # zero channels up to 4: 16-byte rows gather twice as fast (see _gather_rows)
            xp = _pad_rows(x, 4)
            weight = nn.functional.pad(weight.view(self.spiral_length, c, -1), (0, 0, 0, 4 - c))
            weight, c = weight.view(self.spiral_length * 4, -1), 4
        else:
            xp = _pad_rows(x)
        idx = self._flat_index(b, x.device)
        rows = b * v
        if x.device.type == "cpu":
            retain_freed_memory()
        if x.device.type == "cpu" and 4 * self.out_channels <= c:
            block = max(1, _block_floats() // ((v + 1) * self.spiral_length * self.out_channels))
            out = _SpiralConvCPUNarrow.apply(xp, weight, self.bias, self._bag_index(min(block, b), x.device),
                                             b, v, self.spiral_length, block)
        elif x.device.type == "cpu":
            block = max(16, _block_floats() // (self.spiral_length * c))
            out = _SpiralConvCPU.apply(xp, weight, self.bias, idx, rows, block)
        else:
            g = xp.index_select(0, idx).view(rows, self.spiral_length * c)
            out = torch.addmm(self.bias, g, self.weight)
        return out.view(b, v, self.out_channels)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, V={self.num_vertices}, S={self.spiral_length}"


class NaiveSpiralConv(nn.Module):
    """Reference-style spiral convolution (benchmark baseline and test oracle only).

    As the public reference code does it: repeat the spiral per batch element, gather with a
    (batch, vertex) advanced index, apply ``nn.Linear`` and zero the dummy vertex with a mask.
    """

    def __init__(self, in_channels: int, out_channels: int, spiral: torch.Tensor | np.ndarray) -> None:
        super().__init__()
        spiral = torch.as_tensor(np.asarray(spiral), dtype=torch.long)
        self.num_vertices, self.spiral_length = int(spiral.shape[0]), int(spiral.shape[1])
        self.register_buffer("spiral", spiral, persistent=False)
        self.conv = nn.Linear(in_channels * self.spiral_length, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, v, c = x.shape
        x = torch.cat([x, x.new_zeros(b, 1, c)], 1)
        adj = self.spiral.unsqueeze(0).repeat(b, 1, 1).view(-1)
        batch_index = torch.arange(b, device=x.device).view(-1, 1).repeat(1, v * self.spiral_length).view(-1)
        g = x[batch_index, adj, :].view(b * v, self.spiral_length * c)
        out = self.conv(g).view(b, v, -1)
        mask = torch.ones(1, v, 1, device=x.device)
        return out * mask

    def load_from(self, fast: SpiralConv) -> "NaiveSpiralConv":
        """Copy the weights of a :class:`SpiralConv` (for equivalence tests)."""
        with torch.no_grad():
            self.conv.weight.copy_(fast.weight.t())
            self.conv.bias.copy_(fast.bias)
        return self


class _ResampleFn(torch.autograd.Function):
    """``y = M x`` as a weighted gather-sum; the backward applies ``M^T`` with ``k`` index_adds."""

    @staticmethod
    def forward(ctx, x2: torch.Tensor, index: torch.Tensor,  # type: ignore[override]
                weights: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(index, weights)
        ctx.rows = x2.shape[0]
        return torch.nn.functional.embedding_bag(index, x2, per_sample_weights=weights, mode="sum")

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        index, weights = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        grad = torch.zeros(ctx.rows, grad_out.shape[1], dtype=grad_out.dtype, device=grad_out.device)
        for j in range(index.shape[1]):
            grad.index_add_(0, index[:, j], grad_out * weights[:, j:j + 1])
        return grad, None, None


class Resample(nn.Module):
    """Apply a fixed sparse matrix ``M`` [n_out, n_in] to features ``[B, n_in, C]``.

    Stored as ``k`` (index, weight) pairs per output row (``k`` = most non-zeros in a row, padded
    with weight 0). A selection matrix (CoMA down-sampling) is one row gather; otherwise one fused
    weighted gather-sum (``embedding_bag``) over the flattened ``[B * n_in, C]`` rows.
    """

    def __init__(self, matrix: sp.spmatrix) -> None:
        super().__init__()
        m = sp.csr_matrix(matrix)
        m.sum_duplicates()
        n_out, n_in = m.shape
        nnz = np.diff(m.indptr)
        k = max(1, int(nnz.max()) if n_out else 1)
        idx = np.zeros((n_out, k), dtype=np.int64)
        w = np.zeros((n_out, k), dtype=np.float32)
        for r in range(n_out):
            lo, hi = m.indptr[r], m.indptr[r + 1]
            idx[r, :hi - lo] = m.indices[lo:hi]
            w[r, :hi - lo] = m.data[lo:hi]
        self.n_in, self.n_out, self.k = int(n_in), int(n_out), k
        self.selection = bool(k == 1 and np.all(w == 1.0))
        self.register_buffer("index", torch.from_numpy(idx), persistent=False)  # [n_out, k]
        self.register_buffer("weights", torch.from_numpy(w), persistent=False)  # [n_out, k]
        self._cache: tuple[int, torch.device, torch.Tensor, torch.Tensor] | None = None

    def _batched(self, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        c = self._cache
        if c is not None and c[0] == batch and c[1] == device:
            return c[2], c[3]
        offs = torch.arange(batch, device=device).mul_(self.n_in).view(batch, 1, 1)
        idx = (self.index.to(device).unsqueeze(0) + offs).view(batch * self.n_out, self.k)
        w = self.weights.to(device).unsqueeze(0).expand(batch, -1, -1).reshape(batch * self.n_out, self.k).contiguous()
        self._cache = (batch, device, idx, w)
        return idx, w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        if n != self.n_in:
            raise ValueError(f"Resample expects {self.n_in} vertices, got {n}")
        if self.selection:
            return x.index_select(1, self.index[:, 0])
        idx, w = self._batched(b, x.device)
        out = _ResampleFn.apply(x.reshape(b * n, c), idx, w.to(x.dtype))
        return out.view(b, self.n_out, c)

    def extra_repr(self) -> str:
        return f"{self.n_in} -> {self.n_out}, k={self.k}"
