"""Tests for speechattn/asr/decode.py and ctc_prefix.py: greedy, beam, CTC prefix scores, bounds."""

import itertools
import math

import pytest
import torch
from torch.nn import functional as F

from speechattn.asr.ctc_prefix import CTCPrefixScorer
from speechattn.asr.decode import SearchConfig, beam_search, decode, greedy_search, max_lengths
from speechattn.asr.model import LAS, LASConfig
from speechattn.text import BLANK, EOS, PAD

VOCAB = 12


@pytest.fixture(scope="module")
def model() -> LAS:
    torch.manual_seed(0)
    return LAS(LASConfig.tiny(num_mels=8, ctc_weight=0.3), VOCAB).eval()


@pytest.fixture(scope="module")
def inputs():
    torch.manual_seed(2)
    return torch.randn(4, 64, 8), torch.tensor([64, 50, 17, 9])


def test_beam_size_one_equals_greedy(model, inputs):
    greedy = greedy_search(model, *inputs, keep_attention=True)
    beam = beam_search(model, *inputs, SearchConfig(beam_size=1), keep_attention=True)
    for g, b in zip(greedy, beam, strict=True):
        assert g.tokens == b.tokens
        assert g.score == pytest.approx(b.score, abs=1e-4)
        torch.testing.assert_close(g.attention, b.attention)


@pytest.mark.parametrize("ctc_weight", [0.0, 0.5])
def test_batched_beam_equals_one_by_one(model, inputs, ctc_weight):
    features, lengths = inputs
    config = SearchConfig(beam_size=4, ctc_weight=ctc_weight)
    batched = beam_search(model, features, lengths, config)
    for b in range(len(lengths)):
        alone = beam_search(model, features[b : b + 1, : lengths[b]], lengths[b : b + 1], config)[0]
        assert alone.tokens == batched[b].tokens
        assert alone.score == pytest.approx(batched[b].score, abs=1e-3)


def test_decode_terminates_within_bound_on_untrained_model(model, inputs):
    features, lengths = inputs
    encoder_lengths = model.encode(features, lengths).lengths
    bound = max_lengths(encoder_lengths, SearchConfig(max_length_ratio=0.5, max_length_offset=3))
    for config in (
        SearchConfig(max_length_ratio=0.5, max_length_offset=3),
        SearchConfig(beam_size=3, max_length_ratio=0.5, max_length_offset=3),
        SearchConfig(beam_size=3, ctc_weight=0.3, max_length_ratio=0.5, max_length_offset=3),
    ):
        for b, hyp in enumerate(decode(model, features, lengths, config, keep_attention=True)):
            assert len(hyp.tokens) <= int(bound[b]) - 1  # the last step is always EOS
            assert all(t not in (PAD, EOS, BLANK) for t in hyp.tokens)
            assert hyp.attention.shape == (len(hyp.tokens) + 1, int(encoder_lengths[b]))
            assert math.isfinite(hyp.score)


def test_untrained_greedy_runs_to_the_bound(model, inputs):
    """A random model rarely says EOS: the bound, not luck, must end the decode."""
    features, lengths = inputs
    config = SearchConfig(max_length_ratio=1.0, max_length_offset=2)
    hyps = greedy_search(model, features, lengths, config)
    bound = max_lengths(model.encode(features, lengths).lengths, config)
    assert max(len(h.tokens) for h in hyps) == int(bound.max()) - 1


def test_joint_ctc_needs_ctc_head(inputs):
    plain = LAS(LASConfig.tiny(num_mels=8), VOCAB).eval()
    with pytest.raises(ValueError, match="CTC head"):
        beam_search(plain, *inputs, SearchConfig(beam_size=2, ctc_weight=0.3))


def _brute_force_prefix(log_probs, prefix, blank):
    """log P(CTC output starts with prefix) by enumerating every frame labelling."""
    frames, vocab = log_probs.shape
    total = 0.0
    for path in itertools.product(range(vocab), repeat=frames):
        collapsed, previous = [], None
        for label in path:
            if label != blank and label != previous:
                collapsed.append(label)
            previous = label
        if collapsed[: len(prefix)] == prefix:
            total += math.exp(sum(float(log_probs[t, c]) for t, c in enumerate(path)))
    return math.log(total)


def test_ctc_prefix_scores_match_brute_force_and_ctc_loss():
    torch.manual_seed(0)
    vocab, blank, eos = 5, BLANK, EOS
    log_probs = torch.randn(2, 6, vocab).log_softmax(-1)
    lengths = torch.tensor([6, 4])  # row 1 is padded: its last two frames must not count
    scorer = CTCPrefixScorer(log_probs, lengths, blank, eos)
    state = scorer.initial_state()
    labels = [4, 4, 2]  # a repeat, which needs a blank between
    for i, label in enumerate(labels):
        delta = scorer.score(state)
        for row in range(2):
            expected = _brute_force_prefix(log_probs[row, : lengths[row]], labels[: i + 1], blank)
            assert float(state.psi[row] + delta[row, label]) == pytest.approx(expected, abs=1e-6)
        rows = torch.tensor([0, 1])
        state = scorer.advance(state, delta, rows, torch.tensor([label, label]))
    delta = scorer.score(state)
    for row in range(2):
        length = int(lengths[row])
        nll = F.ctc_loss(
            log_probs[row, :length].unsqueeze(1),
            torch.tensor([labels]),
            torch.tensor([length]),
            torch.tensor([3]),
            blank=blank,
            reduction="sum",
        )
        assert float(state.psi[row] + delta[row, eos]) == pytest.approx(-float(nll), abs=1e-5)
    assert torch.all(delta[:, blank] == float("-inf"))


def test_ctc_prefix_scorer_holds_each_utterance_once_for_its_beams():
    """G hypotheses per utterance on one copy of its frames score and advance exactly as the
    frames repeated per hypothesis do, each hypothesis on its own prefix."""
    torch.manual_seed(1)
    log_probs = torch.randn(2, 7, 6).log_softmax(-1)
    lengths = torch.tensor([7, 5])
    grouped = CTCPrefixScorer(log_probs, lengths, BLANK, EOS)
    repeated = CTCPrefixScorer(log_probs.repeat_interleave(3, 0), lengths.repeat_interleave(3),
                               BLANK, EOS)  # fmt: skip
    ours, theirs = grouped.initial_state(3), repeated.initial_state()
    assert ours.r.shape == theirs.r.shape == (6, 7, 2)
    for tokens in ([4, 5, 4, 5, 4, 4], [4, 4, 5, 5, 4, 5], [5, 4, 4, 5, 5, 4]):
        delta = grouped.score(ours)
        torch.testing.assert_close(delta, repeated.score(theirs))
        rows, chosen = torch.tensor([1, 0, 2, 5, 3, 4]), torch.tensor(tokens)
        ours = grouped.advance(ours, delta, rows, chosen)
        theirs = repeated.advance(theirs, delta, rows, chosen)
        torch.testing.assert_close(ours.r, theirs.r)
    assert not torch.allclose(delta[0], delta[1])  # the hypotheses of one utterance differ
    kept = grouped.select(torch.tensor([False, True]))  # the first utterance has finished
    torch.testing.assert_close(kept.score(ours.select(torch.arange(3, 6))),
                               repeated.score(theirs)[3:])  # fmt: skip


class _BigramStub:
    """A stand-in for LAS whose next-token distribution depends only on the previous token."""

    has_ctc = False

    def __init__(self, table: dict[int, dict[int, float]], vocab: int = 8):
        self.logits = torch.full((vocab, vocab), -30.0)
        for previous, nexts in table.items():
            for token, prob in nexts.items():
                self.logits[previous, token] = math.log(prob)

    def encode(self, features, lengths):
        from speechattn.asr.model import SpeechMemory

        memory = features.new_zeros(features.shape[0], 4, 2)
        return SpeechMemory(
            memory,
            torch.full_like(lengths, 4),
            torch.ones(features.shape[0], 4, dtype=torch.bool),
            memory,
        )

    def initial_state(self, speech):
        from speechattn.nn.attention import AttentionState
        from speechattn.nn.decoder import DecoderState

        n = speech.memory.shape[0]
        zeros = torch.zeros(n, 4)
        return DecoderState(
            torch.zeros(1, n, 1),
            torch.zeros(1, n, 1),
            torch.zeros(n, 2),
            AttentionState(zeros, zeros),
        )

    def step(self, tokens, speech, state):
        return self.logits[tokens], torch.full((len(tokens), 4), 0.25), state


def test_unlikely_early_endings_do_not_stop_the_beam():
    """With a tiny vocabulary, junk EOS extensions rank in the top K at every step; they must not
    end the search before the likely hypothesis (greedy's 4 5 6 7) is finished."""
    stub = _BigramStub({
        EOS: {4: 0.9, EOS: 0.05, 5: 0.05},
        4: {5: 0.9, EOS: 0.06, 6: 0.04},
        5: {6: 0.9, EOS: 0.06, 4: 0.04},
        6: {7: 0.9, EOS: 0.06, 5: 0.04},
        7: {EOS: 0.95, 4: 0.05},
    })  # fmt: skip
    features, lengths = torch.zeros(2, 8, 1), torch.tensor([8, 8])
    greedy = greedy_search(stub, features, lengths)
    for beam in (1, 3, 5):
        hyps = beam_search(stub, features, lengths, SearchConfig(beam_size=beam))
        assert [h.tokens for h in hyps] == [g.tokens for g in greedy] == [[4, 5, 6, 7]] * 2
