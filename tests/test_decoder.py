"""Tests for speechattn/nn/decoder.py: step core, teacher forcing, state selection."""

import pytest
import torch

from speechattn.nn.attention import ATTENTION, AttentionConfig
from speechattn.nn.decoder import AttentionDecoder, DecoderConfig
from speechattn.nn.encoder import lengths_to_mask


def make(kind="location", num_layers=2, post_attention_layers=0) -> AttentionDecoder:
    torch.manual_seed(0)
    attention = AttentionConfig(kind=kind, attention_dim=5, location_channels=2, location_kernel=3)
    config = DecoderConfig(
        hidden_dim=6, num_layers=num_layers, post_attention_layers=post_attention_layers,
        attention=attention,
    )
    return AttentionDecoder(config, input_dim=3, memory_dim=6).eval()


@pytest.mark.parametrize("kind", sorted(ATTENTION))
def test_teacher_forcing_shapes_and_batch_equivalence(kind):
    decoder = make(kind)
    memory = torch.randn(3, 8, 6)
    lengths = torch.tensor([8, 5, 2])
    inputs = torch.randn(3, 4, 3)
    outputs, weights = decoder(inputs, memory, lengths)
    assert outputs.shape == (3, 4, decoder.output_dim) and weights.shape == (3, 4, 8)
    for b, length in enumerate(lengths.tolist()):
        alone_out, alone_w = decoder(inputs[b : b + 1], memory[b : b + 1, :length], lengths[b : b + 1])
        torch.testing.assert_close(outputs[b : b + 1], alone_out, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(weights[b : b + 1, :, :length], alone_w, atol=1e-6, rtol=1e-5)
        assert torch.all(weights[b, :, length:] == 0)


@pytest.mark.parametrize("post", [0, 2])
def test_step_loop_equals_forward_and_state_select_reorders(post):
    decoder = make(post_attention_layers=post)
    memory = torch.randn(2, 5, 6)
    lengths = torch.tensor([5, 3])
    mask = lengths_to_mask(lengths, 5)
    inputs = torch.randn(2, 3, 3)
    outputs, _ = decoder(inputs, memory, lengths)
    state = decoder.initial_state(memory)
    for u in range(3):
        step = decoder.step(inputs[:, u], memory, mask, state)
        torch.testing.assert_close(step.output, outputs[:, u])
        state = step.state
    assert state.hidden.shape == (2 + post, 2, 6)
    swapped = state.select(torch.tensor([1, 0]))
    torch.testing.assert_close(swapped.hidden[:, 0], state.hidden[:, 1])
    torch.testing.assert_close(swapped.attention.cumulative[1], state.attention.cumulative[0])


def test_gradients_flow_to_memory_and_inputs():
    decoder = make().train()
    memory = torch.randn(2, 5, 6, requires_grad=True)
    inputs = torch.randn(2, 3, 3, requires_grad=True)
    outputs, _ = decoder(inputs, memory, torch.tensor([5, 4]))
    outputs.pow(2).sum().backward()
    assert memory.grad.abs().sum() > 0 and inputs.grad.abs().sum() > 0
    assert torch.all(memory.grad[1, 4] == 0)  # padded frame gets no gradient


def test_post_attention_cells_see_the_current_context():
    # Without them the output's hidden half is computed before this step's attention, so it cannot
    # depend on the memory frame attended now; with them it does.
    memory = torch.randn(1, 4, 6)
    changed = memory.clone()
    changed[0, 3] += 5.0  # only reachable through this step's context (first step attends at 0..3)
    inputs, mask = torch.randn(1, 3), torch.ones(1, 4, dtype=torch.bool)
    for post, depends in ((0, False), (1, True)):
        decoder = make(post_attention_layers=post)
        a = decoder.step(inputs, memory, mask, decoder.initial_state(memory)).output[:, :6]
        b = decoder.step(inputs, changed, mask, decoder.initial_state(changed)).output[:, :6]
        assert torch.allclose(a, b) is not depends


def test_state_select_carries_an_attention_position():
    decoder = make("gmm")
    memory = torch.randn(2, 5, 6)
    state = decoder.step(torch.randn(2, 3), memory, torch.ones(2, 5, dtype=torch.bool),
                         decoder.initial_state(memory)).state
    repeated = state.select(torch.tensor([1, 1, 0]))
    assert repeated.attention.position.shape == (3, state.attention.position.shape[1])
    torch.testing.assert_close(repeated.attention.position[2], state.attention.position[0])
    assert decoder.initial_state(memory).attention.position is not None
    assert make("location").initial_state(memory).attention.position is None


def test_one_loop_for_teacher_forcing_and_own_outputs():
    """forward embeds raw inputs itself (at once when nothing is fed back); with feedback=1 every
    step after the first takes ``own(previous output)``, with 0 none does."""
    decoder = make()
    torch.manual_seed(1)
    memory, lengths = torch.randn(2, 5, 6), torch.tensor([5, 3])
    table = torch.nn.Embedding(7, 3)
    tokens = torch.tensor([[1, 2, 3, 4], [5, 6, 1, 2]])
    forced, _ = decoder(table(tokens), memory, lengths)
    raw, _ = decoder(tokens, memory, lengths, embed=table)
    torch.testing.assert_close(raw, forced)
    always_zero = lambda output: torch.zeros(output.shape[0], dtype=torch.long)  # noqa: E731
    fed, _ = decoder(tokens, memory, lengths, embed=table, own=always_zero, feedback=1.0)
    zeros = tokens.clone()
    zeros[:, 1:] = 0  # what own feeds from the second step on
    torch.testing.assert_close(fed, decoder(table(zeros), memory, lengths)[0])
    with pytest.raises(ValueError, match="feedback > 0 needs own"):
        decoder(tokens, memory, lengths, embed=table, feedback=0.5)
