"""The additive attention's energies, computed another way where PyTorch's own CPU kernel is slow.

>>> hidden, weight = torch.randn(3, 5, 8), torch.randn(1, 8)
>>> expected = torch.tanh(hidden) @ weight[0]
>>> bool((tanh_energies(hidden.clone(), weight) - expected).abs().max() < 1e-5)
True
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["tanh_energies"]


def tanh_energies(hidden: Tensor, weight: Tensor) -> Tensor:
    """``tanh(hidden) @ weight[0]``: (..., A), (1, A) -> (...), the energies ``v . tanh(h)`` of
    additive attention.

    ``hidden`` must be a fresh tensor that nothing else reads: on CPU it is overwritten. There the
    identity ``v . tanh(h) = 2 v . sigmoid(2h) - sum(v)`` turns the (..., A) work into two in-place
    passes (scale, sigmoid) before the product, through PyTorch's sigmoid kernel, which on CPU is
    several times faster than its tanh kernel (``benchmarks/peers.py --stages tanh`` prints both).
    Autograd follows it: the scale keeps nothing, the sigmoid keeps its output, which the product
    also keeps. Elsewhere ``torch.tanh``.
    """
    vector = weight.reshape(-1)  # (A,)
    if hidden.device.type != "cpu":
        return torch.tanh(hidden) @ vector
    hidden.mul_(2).sigmoid_()
    return hidden @ (2 * vector) - vector.sum()
