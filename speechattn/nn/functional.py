"""Elementwise functions computed another way where PyTorch's own CPU kernel is slow.

>>> x = torch.linspace(-5, 5, 11)
>>> bool((tanh(x) - torch.tanh(x)).abs().max() < 1e-6)
True
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["tanh"]


class _SigmoidTanh(torch.autograd.Function):
    """``2 * sigmoid(2x) - 1`` in one buffer; the gradient ``1 - y**2`` from the output."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        y = x * 2
        y.sigmoid_().mul_(2).sub_(1)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return grad - grad * y * y


def tanh(x: Tensor) -> Tensor:
    """``tanh(x)`` as ``2 * sigmoid(2x) - 1`` on CPU: the same function (float32 results within
    about 2e-7 of ``torch.tanh``'s), through PyTorch's sigmoid kernel, which on CPU is several times
    faster than its tanh kernel (``benchmarks/peers.py --stages tanh`` prints both). Elsewhere
    ``torch.tanh``. Used where a tanh over (B, T, A) dominates a step: the additive attention
    energies."""
    if x.device.type != "cpu":
        return torch.tanh(x)
    return _SigmoidTanh.apply(x)
