"""Float32 matrix products on CPU through oneDNN where torch has it (about twice MKL's on AVX-512 AMD CPUs).

MKL runs its AVX2 code on AMD processors (~105 GFLOP/s on one core of the EPYC this was measured on);
oneDNN's float32 GEMM, the kernel torch's Inductor uses on CPU, reaches ~225 GFLOP/s there at float32
rounding. :func:`product` is the one place the models choose it; :func:`linear` and :class:`Linear`
put it behind autograd (the weight and input gradients use the usual products).
"""
from __future__ import annotations

import os

import torch
from torch import nn
from torch.nn import functional as F


#: set to 0 to use torch's default product (MKL) everywhere: slower on AMD CPUs, ~70-160 MiB less resident
ONEDNN_ENV = "FC4DFS_ONEDNN"


def _onednn_linear():
    """oneDNN's fused product + bias (``torch.ops.mkldnn._linear_pointwise``, Inductor's CPU kernel), or
    None where this torch build lacks it or ``FC4DFS_ONEDNN=0``."""
    if os.environ.get(ONEDNN_ENV, "1") == "0":
        return None
    try:
        return torch.ops.mkldnn._linear_pointwise if torch.backends.mkldnn.is_available() else None
    except (AttributeError, RuntimeError):
        return None


_LINEAR = _onednn_linear()


def product(x: torch.Tensor, weight: torch.Tensor, weight_t: torch.Tensor, bias: torch.Tensor | None = None,
             out: torch.Tensor | None = None) -> torch.Tensor:
    """``x @ weight (+ bias)`` on CPU, into ``out`` if given; ``weight_t`` is ``weight.t()`` contiguous.

    float32 goes through oneDNN where torch has it: on AVX-512 CPUs its sgemm is about twice
    MKL's for these shapes (MKL takes its AVX2 path on AMD), at float32 rounding. Other dtypes,
    or without oneDNN: ``torch.addmm`` / ``torch.mm``.
    """
    if _LINEAR is not None and x.dtype == torch.float32:
        y = _LINEAR(x, weight_t, bias, "none", [], "")
        return y if out is None else out.copy_(y)
    if bias is None:
        return torch.mm(x, weight, out=out) if out is not None else torch.mm(x, weight)
    return torch.addmm(bias, x, weight, out=out) if out is not None else torch.addmm(bias, x, weight)


class _LinearCPU(torch.autograd.Function):
    """``x @ W^T + b`` with the forward product from :func:`product`; the usual gradients."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor,  # type: ignore[override]
                bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return product(x, weight.t(), weight, bias)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = grad_out.mm(weight) if need_x else None
        grad_w = grad_out.t().mm(x) if need_w else None
        grad_b = grad_out.sum(0) if ctx.has_bias and need_b else None
        return grad_x, grad_w, grad_b


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, initialisation and state-dict keys) whose float32 CPU product
    is :func:`product` (oneDNN where torch has it, about twice MKL's here)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x.reshape(-1, self.in_features), self.weight, self.bias).view(*x.shape[:-1], self.out_features)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` for ``x`` ``[N, in]``, ``weight`` ``[out, in]``: ``[N, out]``, with the
    float32 CPU product of :func:`product` (and its usual gradients)."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or _LINEAR is None:
        return F.linear(x, weight, bias)
    return _LinearCPU.apply(x.contiguous(), weight, bias)
