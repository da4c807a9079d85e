"""Tests for speechattn/nn/functional.py: the additive energies through sigmoid, values and
gradient."""

import torch

from speechattn.nn.functional import tanh_energies


def test_energies_match_tanh_over_the_whole_range():
    x = torch.cat(
        [
            torch.linspace(-60, 60, 20001),
            torch.tensor([0.0, 1e-30, -1e-30, float("inf"), -float("inf")]),
        ]
    ).view(-1, 1)
    weight = torch.ones(1, 1)
    assert torch.allclose(tanh_energies(x.clone(), weight), torch.tanh(x[:, 0]), rtol=0, atol=3e-7)
    saturated = tanh_energies(torch.tensor([[float("inf")], [-float("inf")]]), weight)
    assert saturated.tolist() == [1.0, -1.0]
    hidden, weight = torch.randn(4, 9, 16) * 3, torch.randn(1, 16)
    torch.testing.assert_close(tanh_energies(hidden.clone(), weight), torch.tanh(hidden) @ weight[0])


def test_energies_gradient_is_that_of_tanh():
    """Through the in-place scale and sigmoid, for both the argument and the weight."""
    torch.manual_seed(0)
    hidden = torch.randn(3, 5, 6, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(1, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h, w: tanh_energies(h * 1.0, w), (hidden, weight))
    grad = torch.randn(3, 5, dtype=torch.float64)
    tanh_energies(hidden * 1.0, weight).backward(grad)
    ours = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None
    (torch.tanh(hidden) @ weight[0]).backward(grad)
    torch.testing.assert_close(ours[0], hidden.grad)
    torch.testing.assert_close(ours[1], weight.grad)


def test_energies_overwrite_the_fresh_argument_and_leave_the_weight_alone():
    """On CPU the argument is used as the work buffer (the contract: a fresh tensor)."""
    hidden, weight = torch.randn(2, 3, 4), torch.randn(1, 4)
    before = weight.clone()
    fresh = hidden.clone()
    tanh_energies(fresh, weight)
    assert torch.equal(weight, before)
    assert not torch.equal(fresh, hidden)
