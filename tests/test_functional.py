"""Tests for speechattn/nn/functional.py: tanh through sigmoid, values and gradient."""

import torch

from speechattn.nn.functional import tanh


def test_tanh_matches_torch_over_the_whole_range():
    x = torch.cat(
        [
            torch.linspace(-60, 60, 20001),
            torch.tensor([0.0, 1e-30, -1e-30, float("inf"), -float("inf")]),
        ]
    )
    assert torch.allclose(tanh(x), torch.tanh(x), rtol=0, atol=3e-7)
    assert tanh(torch.tensor([float("inf"), -float("inf")])).tolist() == [1.0, -1.0]


def test_tanh_gradient_is_one_minus_the_square():
    x = torch.randn(4, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(tanh, (x,))
    grad = torch.randn(4, 7, dtype=torch.float64)
    tanh(x).backward(grad)
    assert torch.allclose(x.grad, grad * (1 - torch.tanh(x.detach()) ** 2))


def test_tanh_leaves_its_input_alone():
    x = torch.randn(3, 5)
    before = x.clone()
    tanh(x)
    assert torch.equal(x, before)
