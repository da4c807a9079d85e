"""Tests for speechattn/metrics.py: exact WER/CER counts and alignment measures."""

import math

import numpy as np
import pytest
import torch

from speechattn.metrics import (
    AlignmentMeasures,
    alignment_measures,
    attention_coverage,
    error_rates,
    first_steps_reaching,
    mean_measures,
    missed_by_group,
    recognized_words,
    utterance_errors,
)

# ---- error rates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("refs", "hyps", "expected"),
    [
        # (wer, substitutions, deletions, insertions, hits, ref_words)
        (["a b c d"], ["a b c d"], (0.0, 0, 0, 0, 4, 4)),
        (["a b c d"], ["a x c d"], (0.25, 1, 0, 0, 3, 4)),
        (["a b c d"], ["a c d"], (0.25, 0, 1, 0, 3, 4)),
        (["a b c d"], ["a b y c d z"], (0.5, 0, 0, 2, 4, 4)),
        (["a b c d"], [""], (1.0, 0, 4, 0, 0, 4)),
        (["the cat sat", "on the mat"], ["the cat sat down", "on mat"], (2 / 6, 0, 1, 1, 5, 6)),
        (["one two", "three"], ["one too", "tree for"], (1.0, 2, 0, 1, 1, 3)),
    ],
)
def test_word_counts_table(refs, hyps, expected):
    rates = error_rates(refs, hyps)
    got = (rates.wer, rates.substitutions, rates.deletions, rates.insertions, rates.hits,
           rates.ref_words)  # fmt: skip
    assert got == pytest.approx(expected)
    assert rates.utterances == len(refs)


def test_cer_exact():
    # "abcd" -> "abxd": 1 sub of 4; "ab cd" -> "abcd": the space is deleted, 1 of 5.
    rates = error_rates(["abcd", "ab cd"], ["abxd", "abcd"])
    assert (rates.char_errors, rates.ref_chars) == (2, 9)
    assert rates.cer == pytest.approx(2 / 9)
    # Extra whitespace is not an error.
    assert error_rates(["a  b "], [" a b"]).cer == 0.0


def test_corpus_rate_is_not_mean_of_utterance_rates():
    rates = error_rates(["a", "b c d e"], ["x", "b c d e"])
    assert rates.wer == pytest.approx(1 / 5)  # mean of per-utterance rates would be 0.5


def test_empty_reference_handling():
    rates = error_rates(["", "a b"], ["x y", "a b"])
    assert (rates.insertions, rates.ref_words, rates.wer) == (2, 2, 1.0)
    assert (rates.char_errors, rates.ref_chars) == (3, 3)


@pytest.mark.parametrize(
    ("ref", "hyp", "expected"),
    [
        ("a b c d", "a b c d", [True, True, True, True]),
        ("a b c d", "a x c d", [True, False, True, True]),
        ("a b c d", "a c d", [True, False, True, True]),
        ("a b c d", "z a b y c d", [True, True, True, True]),  # insertions miss no word
        ("a b", "ab", [False, False]),
        ("", "x", []),
    ],
)
def test_recognized_words_table(ref, hyp, expected):
    assert recognized_words(ref, hyp) == expected


def test_missed_by_group_adds_up_to_substitutions_and_deletions():
    refs = ["the cat sat", "on the mat", "one two", "three", ""]
    hyps = ["the cat sat down", "on mat", "one too", "tree for", "x"]
    groups = missed_by_group(refs, hyps, lambda word: "short" if len(word) <= 3 else "long")
    rates = error_rates(refs, hyps)
    assert groups == {"short": (8, 2), "long": (1, 1)}  # "the" deleted, "two", "three" substituted
    assert sum(words for words, _ in groups.values()) == rates.ref_words
    assert sum(missed for _, missed in groups.values()) == rates.substitutions + rates.deletions
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        missed_by_group(["a", "b"], ["a"], str)
    silent = error_rates([""], [""])
    assert (silent.wer, silent.cer) == (0.0, 0.0)
    assert math.isinf(error_rates([""], ["x"]).wer)


def test_error_rates_input_errors():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        error_rates(["a", "b"], ["a"])
    with pytest.raises(TypeError, match="lists of strings"):
        error_rates("a b", "a b")


def test_utterance_errors_row():
    row = utterance_errors("THE  CAT SAT", "THE HAT SAT ON")
    assert row == {
        "ref": "THE CAT SAT", "hyp": "THE HAT SAT ON", "wer": pytest.approx(2 / 3), "cer":
        pytest.approx(4 / 11), "substitutions": 1, "deletions": 0, "insertions": 1, "hits": 2,
        "ref_words": 3, "char_errors": 4, "ref_chars": 11, "word_errors": 2,
    }  # fmt: skip


def test_str_report():
    text = str(error_rates(["a b c d"], ["a x c"]))
    assert text.startswith("WER 50.00% [2 / 4, 0 ins, 1 del, 1 sub]")


# ---- alignment measures --------------------------------------------------------------------


def test_perfect_diagonal_scores_one():
    for size in (1, 2, 7):
        assert alignment_measures(np.eye(size)) == AlignmentMeasures(1.0, 1.0, 1.0)


def test_rectangular_diagonal():
    # 3 steps over 5 frames, peaks at frames 0, 2, 4: exactly on the diagonal.
    att = np.zeros((3, 5))
    att[[0, 1, 2], [0, 2, 4]] = 1.0
    assert alignment_measures(torch.tensor(att)) == AlignmentMeasures(1.0, 1.0, 1.0)


def test_reversed_diagonal():
    # Peaks 4, 3, 2, 1, 0: every transition goes back; distances 1, .5, 0, .5, 1 (mean 0.6).
    got = alignment_measures(np.eye(5)[::-1])
    assert got.focus_rate == 1.0 and got.monotonicity == 0.0
    assert got.diagonality == pytest.approx(0.4, abs=1e-12)
    # 4x4: distances 1, 1/3, 1/3, 1 (mean 2/3).
    assert alignment_measures(np.eye(4)[::-1]).diagonality == pytest.approx(1 / 3, abs=1e-12)


def test_uniform_focus_is_one_over_t():
    got = alignment_measures(torch.full((5, 8), 1 / 8))
    assert got.focus_rate == 1 / 8  # exactly (powers of two are exact in binary)
    # Ties resolve to frame 0: peaks never move back; distances u / 4 average to 0.5.
    assert (got.monotonicity, got.diagonality) == (1.0, 0.5)
    assert alignment_measures(np.full((3, 10), 0.1)).focus_rate == pytest.approx(0.1, abs=1e-15)


def test_mixed_matrix_exact_numbers():
    att = np.array(
        [
            [0.7, 0.2, 0.1, 0.0],  # peak 0
            [0.1, 0.5, 0.4, 0.0],  # peak 1
            [0.6, 0.2, 0.1, 0.1],  # peak 0: backwards
            [0.0, 0.1, 0.1, 0.8],  # peak 3
        ]
    )
    got = alignment_measures(att)
    assert got.focus_rate == pytest.approx((0.7 + 0.5 + 0.6 + 0.8) / 4)
    assert got.monotonicity == pytest.approx(2 / 3)
    # |0 - 0| + |1/3 - 1/3| + |0 - 2/3| + |1 - 1| = 2/3 over 4 steps.
    assert got.diagonality == pytest.approx(1 - (2 / 3) / 4)


def test_single_step_and_lengths_ignore_padding():
    assert alignment_measures([[0.25, 0.75]]).monotonicity == 1.0
    padded = np.zeros((6, 9))
    padded[:4, :4] = np.eye(4)
    padded[4:, 0] = 1.0  # padded decoder steps jump back to frame 0
    assert alignment_measures(padded, decoder_length=4, encoder_length=4) == (1.0, 1.0, 1.0)
    assert alignment_measures(padded).monotonicity == pytest.approx(4 / 5)


def test_alignment_measures_rejects_bad_input():
    with pytest.raises(ValueError, match="\\(U, T\\)"):
        alignment_measures(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        alignment_measures(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="leave nothing"):
        alignment_measures(np.eye(3), decoder_length=0)


def test_mean_measures_weights_and_keeps_a_single_one_exactly():
    first, second = AlignmentMeasures(0.9, 1.0, 0.7), AlignmentMeasures(0.3, 0.5, 0.1)
    got = mean_measures([first, second], [30, 10])
    assert got == pytest.approx((0.75, 0.875, 0.55), abs=1e-12)
    odd = AlignmentMeasures(0.1, 0.7, 1 / 3)  # values a weighted sum could round
    assert mean_measures([odd], [7]) == odd
    assert mean_measures([first, second], [1, 0]) == first
    # The measures of a block of chunks, weighted by steps, are those of the chunks' rows pooled
    # for the focus rate (a mean over rows).
    chunks = [np.eye(4), np.full((2, 3), 1 / 3)]
    pooled = mean_measures([alignment_measures(c) for c in chunks], [4, 2])
    assert pooled.focus_rate == pytest.approx((4 * 1.0 + 2 / 3) / 6, abs=1e-12)
    with pytest.raises(ValueError, match="2 measures for 1 weights"):
        mean_measures([first, second], [1])
    with pytest.raises(ValueError, match="positive sum"):
        mean_measures([first], [0])


def test_attention_coverage_counts_characters_with_enough_mass():
    diagonal = np.eye(4)  # every character attended once, fully
    assert attention_coverage(diagonal) == 1.0
    skipping = np.array([[1.0, 0, 0, 0], [0, 0.6, 0.4, 0], [0, 0, 0, 1.0]])  # col 2 gets 0.4
    assert attention_coverage(skipping) == 0.75
    assert attention_coverage(skipping, threshold=0.3) == 1.0
    spread = np.full((2, 4), 0.25)  # two steps of uniform attention: 0.5 per character
    assert attention_coverage(spread) == 1.0
    assert attention_coverage(torch.tensor(spread), threshold=0.51) == 0.0
    with pytest.raises(ValueError, match="non-empty"):
        attention_coverage(np.zeros((0, 3)))


def test_first_steps_reaching_follows_the_furthest_peak():
    peaks = [0, 1, 1, 3, 2, 5]  # step 4 looks back at 2: the furthest peak so far stays 3
    att = np.eye(6)[peaks]
    assert first_steps_reaching(att, [1, 2, 3, 4, 5]) == [1, 3, 3, 5, 5]
    assert first_steps_reaching(att, []) == []
    assert first_steps_reaching(att[:4], [4]) == [4]  # never reached: U
    with pytest.raises(ValueError, match="must ascend"):
        first_steps_reaching(att, [3, 1])
