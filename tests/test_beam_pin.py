"""The searches' results on a fixed tiny trained model do not change (speed work must keep them).

tests/data/beam_pin/ was written by scripts/make_beam_pin.py before the search was optimized: a tiny
LAS trained on a synthetic task, 12 inputs, and the hypotheses and scores that greedy search and
beam search (beam 4 and 10, with CTC prefix scoring, with CTC and the character LM) gave on them.
"""

import json
from pathlib import Path

import pytest
import torch

from scripts.make_beam_pin import NUM_MELS, hypotheses, lm_for
from speechattn.asr.model import LAS, LASConfig
from speechattn.text import Vocab

PIN = Path(__file__).parent / "data" / "beam_pin"


@pytest.fixture(scope="module")
def pinned(one_thread):
    record = json.loads((PIN / "expected.json").read_text())
    saved = torch.load(PIN / "model.pt", weights_only=True)
    vocab = Vocab(list(record["chars"]))
    model = LAS(LASConfig.tiny(num_mels=NUM_MELS, ctc_weight=0.3), len(vocab))
    model.load_state_dict(saved["model"])
    decoded = hypotheses(
        model.eval(), saved["features"], saved["lengths"], lm_for(vocab, record["lm_texts"])
    )
    return record["hypotheses"], decoded


@pytest.mark.parametrize("search", ["greedy", "beam4", "beam10", "beam10_ctc", "beam10_ctc_lm"])
def test_search_results_match_the_pinned_ones(pinned, search):
    expected, decoded = pinned
    assert [tokens for tokens, _ in decoded[search]] == [tokens for tokens, _ in expected[search]]
    assert [score for _, score in decoded[search]] == pytest.approx(
        [score for _, score in expected[search]], rel=1e-4, abs=1e-4
    )


def test_the_pinned_searches_disagree_somewhere(pinned):
    """The pin is only worth something if the inputs make the searches differ."""
    expected, _ = pinned
    results = {name: [tuple(tokens) for tokens, _ in hyps] for name, hyps in expected.items()}
    assert results["greedy"] != results["beam4"]
    assert results["beam10"] != results["beam10_ctc"] != results["beam10_ctc_lm"]
