"""Tests for speechattn/nn/attention.py: normalization, masking, batching, gradients, windows."""

import pytest
import torch

from speechattn.nn.attention import (
    ATTENTION,
    AttentionConfig,
    AttentionState,
    build_attention,
    initial_state,
    window_mask,
)
from speechattn.nn.encoder import lengths_to_mask

KINDS = sorted(ATTENTION)
DIM = 6


def make(kind: str, dtype=torch.float32, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    config = AttentionConfig(kind=kind, attention_dim=5, location_channels=3, location_kernel=3)
    for key, value in overrides.items():
        setattr(config, key, value)
    return build_attention(config, DIM, DIM).to(dtype)


def run_steps(attention, query_steps, memory, lengths):
    """Run several steps so the location features see non-trivial past weights."""
    mask = lengths_to_mask(lengths, memory.shape[1])
    state = attention.initial_state(memory)
    keys = attention.prepare(memory)
    contexts, weights = [], []
    for query in query_steps:
        context, w, state = attention(query, memory, mask, state, keys)
        contexts.append(context)
        weights.append(w)
    return torch.stack(contexts, 1), torch.stack(weights, 1), state


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch", [1, 4])
def test_weights_sum_to_one_and_padding_gets_exactly_zero(kind, batch):
    attention = make(kind)
    lengths = torch.tensor([7, 3, 5, 1][:batch])
    memory = torch.randn(batch, 7, DIM)
    queries = torch.randn(3, batch, DIM)
    _, weights, state = run_steps(attention, queries, memory, lengths)
    torch.testing.assert_close(weights.sum(-1), torch.ones(batch, 3))
    mask = lengths_to_mask(lengths, 7)
    assert torch.all(weights.masked_select(~mask.unsqueeze(1).expand_as(weights)) == 0.0)
    torch.testing.assert_close(state.cumulative, weights.sum(1))


@pytest.mark.parametrize("kind", KINDS)
def test_sequence_alone_equals_sequence_in_padded_batch(kind):
    attention = make(kind)
    lengths = torch.tensor([4, 7, 2, 6])
    memory = torch.randn(4, 7, DIM)
    queries = torch.randn(3, 4, DIM)
    contexts, weights, _ = run_steps(attention, queries, memory, lengths)
    for b, length in enumerate(lengths.tolist()):
        alone_c, alone_w, _ = run_steps(
            attention, queries[:, b : b + 1], memory[b : b + 1, :length], lengths[b : b + 1]
        )
        torch.testing.assert_close(contexts[b : b + 1], alone_c, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(weights[b : b + 1, :, :length], alone_w, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_grouped_queries_equal_the_repeated_memory(kind):
    """Beam search's seam: G query rows per memory row, the memory, mask and keys not repeated,
    give what the memory repeated G times gives, step after step (each row its own past)."""
    attention = make(kind)
    groups, lengths = 3, torch.tensor([7, 4])
    memory = torch.randn(2, 7, DIM)
    queries = torch.randn(4, 2 * groups, DIM) * 2
    repeated = memory.repeat_interleave(groups, dim=0)
    full_c, full_w, _ = run_steps(attention, queries, repeated, lengths.repeat_interleave(groups))
    mask, keys = lengths_to_mask(lengths, 7), attention.prepare(memory)
    state = attention.initial_state(repeated)  # (B G) rows, as beam search selects them
    for step, query in enumerate(queries):
        context, weights, state = attention(query, memory, mask, state, keys)
        torch.testing.assert_close(context, full_c[:, step], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(weights, full_w[:, step], atol=1e-6, rtol=1e-5)
    assert not torch.allclose(full_w[0], full_w[1])  # the rows of one memory row do differ
    five = AttentionState(torch.zeros(5, 7), torch.zeros(5, 7))
    with pytest.raises(ValueError, match="5 query rows for 2 memory rows"):
        attention(torch.randn(5, DIM), memory, mask, five, keys)


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck_double_precision(kind):
    attention = make(kind, dtype=torch.float64)
    memory = torch.randn(2, 5, DIM, dtype=torch.float64, requires_grad=True)
    query = torch.randn(2, DIM, dtype=torch.float64, requires_grad=True)
    mask = lengths_to_mask(torch.tensor([5, 3]), 5)
    previous = torch.softmax(torch.randn(2, 5, dtype=torch.float64), 1) * mask
    state = attention.initial_state(memory)._replace(weights=previous, cumulative=previous * 2)

    def fn(q, m):
        context, weights, _ = attention(q, m, mask, state)
        return context, weights

    assert torch.autograd.gradcheck(fn, (query, memory), eps=1e-6, atol=1e-5)


def test_location_attention_depends_on_previous_weights():
    attention = make("location")
    memory = torch.randn(1, 6, DIM)
    query = torch.randn(1, DIM)
    mask = torch.ones(1, 6, dtype=torch.bool)
    early = torch.zeros(1, 6)
    early[0, 0] = 1.0
    late = torch.zeros(1, 6)
    late[0, 5] = 1.0
    _, w_early, _ = attention(query, memory, mask, AttentionState(early, early))
    _, w_late, _ = attention(query, memory, mask, AttentionState(late, late))
    assert not torch.allclose(w_early, w_late)


def test_content_attentions_ignore_previous_weights():
    attention = make("additive")
    memory = torch.randn(1, 6, DIM)
    query = torch.randn(1, DIM)
    mask = torch.ones(1, 6, dtype=torch.bool)
    other = torch.softmax(torch.randn(1, 6), 1)
    _, w1, _ = attention(query, memory, mask, initial_state(memory))
    _, w2, _ = attention(query, memory, mask, AttentionState(other, other))
    torch.testing.assert_close(w1, w2)


def test_window_mask_exact_values():
    previous = torch.tensor([[0.0, 0.1, 0.7, 0.2, 0.0, 0.0, 0.0], [0.0] * 7])
    mask = lengths_to_mask(torch.tensor([7, 4]), 7)
    expected = torch.tensor(
        [[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0, 0]], dtype=torch.bool
    )  # focus 2 +-2 -> frames 0..4; all-zero weights: focus 0 -> frames 0..2
    assert torch.equal(window_mask(previous, mask, 2), expected)
    forward_only = torch.tensor([[0, 0, 1, 1, 1, 0, 0]], dtype=torch.bool)
    assert torch.equal(window_mask(previous[:1], mask[:1], 2, backward=0), forward_only)


@pytest.mark.parametrize("kind", KINDS)
def test_local_window_confines_weights(kind):
    attention = make(kind, window=1)
    memory = torch.randn(2, 9, DIM)
    mask = torch.ones(2, 9, dtype=torch.bool)
    previous = torch.zeros(2, 9)
    previous[0, 4] = 1.0
    previous[1, 8] = 1.0
    state = attention.initial_state(memory)._replace(weights=previous, cumulative=previous)
    _, weights, _ = attention(torch.randn(2, DIM), memory, mask, state)
    allowed = torch.zeros(2, 9, dtype=torch.bool)
    allowed[0, 3:6] = True
    allowed[1, 7:9] = True
    assert torch.all(weights[~allowed] == 0.0)
    torch.testing.assert_close(weights.sum(1), torch.ones(2))


def test_unknown_kind_and_bad_dims_raise_with_the_value():
    with pytest.raises(ValueError, match="'bahdanau'"):
        build_attention(AttentionConfig(kind="bahdanau"), 4, 4)
    with pytest.raises(ValueError, match="4 and 6"):
        build_attention(AttentionConfig(kind="dot"), 4, 6)
    with pytest.raises(ValueError, match="must be odd"):
        build_attention(AttentionConfig(kind="location", location_kernel=4), 4, 4)


def test_scaled_dot_is_dot_over_sqrt_dim():
    memory = torch.randn(2, 5, DIM)
    query = torch.randn(2, DIM)
    state = initial_state(memory)
    dot = make("dot").score(query, memory, state)
    scaled = make("scaled_dot").score(query, memory, state)
    torch.testing.assert_close(scaled, dot / DIM**0.5)


def test_luong_location_scores_positions_from_the_query_alone():
    attention = make("luong_location", max_frames=8)
    query = torch.randn(1, DIM)
    mask = torch.ones(1, 6, dtype=torch.bool)
    _, w1, _ = attention(query, torch.randn(1, 6, DIM), mask, AttentionState(*[torch.zeros(1, 6)] * 2))
    _, w2, _ = attention(query, torch.randn(1, 6, DIM), mask, AttentionState(*[torch.ones(1, 6)] * 2))
    torch.testing.assert_close(w1, w2)  # neither the memory nor the past weights move the scores
    expected = torch.softmax(attention.position_scores(query)[:, :6], 1)
    torch.testing.assert_close(w1, expected)
    with pytest.raises(ValueError, match="at most 8 frames, got a memory of 9"):
        attention(query, torch.randn(1, 9, DIM), torch.ones(1, 9, dtype=torch.bool),
                  AttentionState(*[torch.zeros(1, 9)] * 2))


def test_beta_binomial_prior_sums_to_one_and_only_moves_forward():
    from speechattn.nn.attention import beta_binomial

    prior = beta_binomial(11, 0.1, 0.9)
    assert prior.shape == (11,) and abs(prior.sum().item() - 1.0) < 1e-6
    assert prior[0] > 0.5 and torch.all(prior[1:] < prior[0])  # mostly stay, sometimes step on
    attention = make("dca")
    memory = torch.randn(1, 20, DIM)
    state = attention.initial_state(memory)._replace(weights=torch.eye(20)[7:8])
    prior_part = attention.score(torch.randn(1, DIM), memory, state)
    energy_bound = attention.energy.weight.abs().sum().item()  # |v . tanh(.)| <= |v|_1
    behind = prior_part[0, :7]  # frames behind the previous focus get only the floor
    torch.testing.assert_close(behind.max(), behind.min(), atol=2 * energy_bound, rtol=0)
    assert behind.max() < torch.log(torch.tensor(1e-6)) + energy_bound + 1e-4


def test_dca_focus_does_not_move_backwards():
    """Over 40 random queries from the initial state, the argmax never decreases: the causal prior
    costs any frame behind the previous weights about log(1e-6) nats, more than the untrained
    location term can make up."""
    torch.manual_seed(1)
    lengths = torch.tensor([30, 22, 9])
    _, weights, _ = run_steps(make("dca"), torch.randn(40, 3, DIM) * 3, torch.randn(3, 30, DIM), lengths)
    focus = weights.argmax(-1)  # (B, U)
    assert torch.all(focus[:, 1:] >= focus[:, :-1]), focus
    assert torch.all(focus[:, -1] > 0)  # and it does move


def test_gmm_means_only_move_forward():
    """By construction (mean += softplus); its argmax alone can step back when the mixture
    weights shift between components."""
    torch.manual_seed(1)
    attention = make("gmm")
    memory = torch.randn(3, 30, DIM)
    mask = lengths_to_mask(torch.tensor([30, 22, 9]), 30)
    state = attention.initial_state(memory)
    means = [state.position]
    for query in torch.randn(40, 3, DIM) * 3:
        _, _, state = attention(query, memory, mask, state)
        means.append(state.position)
    assert torch.all(torch.stack(means, 1).diff(dim=1) > 0)  # (B, U, K) steps


def test_dca_starts_on_frame_zero_and_gmm_needs_its_means():
    memory = torch.randn(2, 5, DIM)
    start = make("dca").initial_state(memory).weights
    assert torch.equal(start, torch.tensor([[1.0, 0, 0, 0, 0]] * 2))
    gmm = make("gmm", mixtures=3)
    assert gmm.initial_state(memory).position.shape == (2, 3)
    mask = torch.ones(2, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match="state.position"):
        gmm(torch.randn(2, DIM), memory, mask, initial_state(memory))


def test_forward_attention_advances_at_most_one_frame_per_step():
    """Each step's support is the previous one's plus one frame: after u steps from frame 0, frames
    beyond u get (numerically) nothing, and the weights equal the formula's."""
    attention = make("forward")
    memory = torch.randn(2, 12, DIM)
    lengths = torch.tensor([12, 8])
    _, weights, _ = run_steps(attention, torch.randn(5, 2, DIM), memory, lengths)
    for u in range(5):
        assert torch.all(weights[:, u, u + 2 :] < 1e-25)
    mask = lengths_to_mask(lengths, 12)
    previous = weights[:, 2]
    state = attention.initial_state(memory)._replace(weights=previous)
    query = torch.randn(2, DIM)
    _, w, _ = attention(query, memory, mask, state)
    content = make("location")(query, memory, mask, state)[1]  # y: the same weights, same seed
    expected = (previous + torch.nn.functional.pad(previous, (1, 0))[:, :-1]) * content
    torch.testing.assert_close(w, expected / expected.sum(1, keepdim=True))
