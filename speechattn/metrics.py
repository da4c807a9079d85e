"""Recognition error rates (WER/CER via jiwer) and measures of attention-alignment quality.

Shapes: U decoder steps (rows of an attention matrix), T encoder frames (columns).

Error rates are corpus-level: errors are summed over utterances, then divided by the summed
reference length (not an average of per-utterance rates). Words are whitespace-separated tokens;
characters are counted after collapsing runs of whitespace to one space and stripping the ends, so
spaces between words count as characters.

**Empty references** (jiwer rejects them): such an utterance has no reference words, so every
hypothesis word is an insertion. At corpus level it adds to the numerator only. A rate whose
reference length is zero is 0.0 when there are no errors and ``inf`` otherwise.

>>> rates = error_rates(["the cat sat"], ["the bat sat down"])
>>> rates.wer, rates.substitutions, rates.insertions, rates.ref_words
(0.6666666666666666, 1, 1, 3)
>>> alignment_measures([[1.0, 0.0], [0.0, 1.0]])
AlignmentMeasures(focus_rate=1.0, monotonicity=1.0, diagonality=1.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import NamedTuple

import jiwer
import numpy as np
import torch

__all__ = [
    "AlignmentMeasures",
    "ErrorRates",
    "alignment_measures",
    "attention_coverage",
    "error_rates",
    "first_steps_reaching",
    "mean_measures",
    "missed_by_group",
    "recognized_words",
    "utterance_errors",
]


# --------------------------------------------------------------------------------------------
# Error rates
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorRates:
    """Corpus error rates and the counts behind them (word-level counts, plus character totals)."""

    wer: float
    cer: float
    substitutions: int
    deletions: int
    insertions: int
    hits: int
    ref_words: int
    char_errors: int = 0
    ref_chars: int = 0
    utterances: int = 0

    @property
    def word_errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"WER {100 * self.wer:.2f}% [{self.word_errors} / {self.ref_words}, "
            f"{self.insertions} ins, {self.deletions} del, {self.substitutions} sub] "
            f"CER {100 * self.cer:.2f}% [{self.char_errors} / {self.ref_chars}] "
            f"({self.utterances} utterances)"
        )


class _Counts(NamedTuple):
    substitutions: int
    deletions: int
    insertions: int
    hits: int


def _rate(errors: int, length: int) -> float:
    if length == 0:
        return 0.0 if errors == 0 else float("inf")
    return errors / length


def _clean(text: str) -> str:
    return " ".join(text.split())


def _word_counts(refs: list[str], hyps: list[str]) -> _Counts:
    """S/D/I/H summed over pairs; empty references contribute only insertions."""
    pairs = [(r, h) for r, h in zip(refs, hyps) if r]
    insertions = sum(len(h.split()) for r, h in zip(refs, hyps) if not r)
    if not pairs:
        return _Counts(0, 0, insertions, 0)
    out = jiwer.process_words([r for r, _ in pairs], [h for _, h in pairs])
    return _Counts(out.substitutions, out.deletions, out.insertions + insertions, out.hits)


def _char_counts(refs: list[str], hyps: list[str]) -> _Counts:
    pairs = [(r, h) for r, h in zip(refs, hyps) if r]
    insertions = sum(len(h) for r, h in zip(refs, hyps) if not r)
    if not pairs:
        return _Counts(0, 0, insertions, 0)
    out = jiwer.process_characters([r for r, _ in pairs], [h for _, h in pairs])
    return _Counts(out.substitutions, out.deletions, out.insertions + insertions, out.hits)


def error_rates(refs: Sequence[str], hyps: Sequence[str]) -> ErrorRates:
    """Corpus WER and CER of hypotheses ``hyps`` against references ``refs`` (same order).

    >>> str(error_rates(["a b c", ""], ["a c", "x"]))
    'WER 66.67% [2 / 3, 1 ins, 1 del, 0 sub] CER 60.00% [3 / 5] (2 utterances)'
    """
    if isinstance(refs, str) or isinstance(hyps, str):
        raise TypeError("error_rates: pass lists of strings (one per utterance), not a string")
    if len(refs) != len(hyps):
        raise ValueError(f"error_rates: {len(refs)} references but {len(hyps)} hypotheses")
    refs, hyps = [_clean(r) for r in refs], [_clean(h) for h in hyps]
    words, chars = _word_counts(refs, hyps), _char_counts(refs, hyps)
    ref_words = words.substitutions + words.deletions + words.hits
    ref_chars = chars.substitutions + chars.deletions + chars.hits
    char_errors = chars.substitutions + chars.deletions + chars.insertions
    return ErrorRates(
        wer=_rate(words.substitutions + words.deletions + words.insertions, ref_words),
        cer=_rate(char_errors, ref_chars),
        substitutions=words.substitutions,
        deletions=words.deletions,
        insertions=words.insertions,
        hits=words.hits,
        ref_words=ref_words,
        char_errors=char_errors,
        ref_chars=ref_chars,
        utterances=len(refs),
    )


def utterance_errors(ref: str, hyp: str) -> dict[str, float | int | str]:
    """One utterance's scores for a per-utterance report (worst first, etc.).

    Keys: ``ref``, ``hyp`` (whitespace-collapsed), ``wer``, ``cer``, ``substitutions``,
    ``deletions``, ``insertions``, ``hits``, ``ref_words``, ``word_errors``, ``char_errors``,
    ``ref_chars``.

    >>> row = utterance_errors("hello world", "hello word")
    >>> row["wer"], row["word_errors"], row["cer"], row["char_errors"]
    (0.5, 1, 0.09090909090909091, 1)
    """
    rates = error_rates([ref], [hyp])
    return {
        "ref": _clean(ref),
        "hyp": _clean(hyp),
        **{k: v for k, v in rates.to_dict().items() if k != "utterances"},
        "word_errors": rates.word_errors,
    }


def recognized_words(ref: str, hyp: str) -> list[bool]:
    """For each word of ``ref``, whether the word alignment (jiwer's, as in :func:`error_rates`)
    pairs it with an equal word of ``hyp``; substituted and deleted words are ``False``.

    >>> recognized_words("a whole new idea", "a hall new idea")
    [True, False, True, True]
    >>> recognized_words("one two", "")
    [False, False]
    """
    ref, hyp = _clean(ref), _clean(hyp)
    hits = [False] * len(ref.split())
    if not hits or not hyp:
        return hits
    for chunk in jiwer.process_words(ref, hyp).alignments[0]:
        if chunk.type == "equal":
            for index in range(chunk.ref_start_idx, chunk.ref_end_idx):
                hits[index] = True
    return hits


def missed_by_group(
    refs: Sequence[str], hyps: Sequence[str], group: Callable[[str], str]
) -> dict[str, tuple[int, int]]:
    """Reference words sorted into groups by ``group(word)`` (e.g. how often the training
    transcripts contain the word): ``{label: (words, missed)}``, labels in order of first
    appearance. Insertions belong to no reference word and are not counted, so the misses of all
    groups add up to substitutions + deletions.

    >>> seen = {"THE", "CAT"}
    >>> missed_by_group(["THE CAT SAT", "THE MAT"], ["THE CAT SAD", "A MAT"],
    ...                 lambda w: "seen" if w in seen else "new")
    {'seen': (3, 1), 'new': (2, 1)}
    """
    if len(refs) != len(hyps):
        raise ValueError(f"missed_by_group: {len(refs)} references but {len(hyps)} hypotheses")
    groups: dict[str, list[int]] = {}
    for ref, hyp in zip(refs, hyps):
        for word, hit in zip(_clean(ref).split(), recognized_words(ref, hyp)):
            counts = groups.setdefault(group(word), [0, 0])
            counts[0] += 1
            counts[1] += not hit
    return {label: (words, missed) for label, (words, missed) in groups.items()}


# --------------------------------------------------------------------------------------------
# Alignment measures
# --------------------------------------------------------------------------------------------


class AlignmentMeasures(NamedTuple):
    """Scores in [0, 1] of one (U, T) attention matrix; 1.0 is a sharp, monotonic diagonal."""

    focus_rate: float
    monotonicity: float
    diagonality: float

    def __str__(self) -> str:
        return (
            f"focus {self.focus_rate:.3f}  monotonic {self.monotonicity:.3f}  "
            f"diagonal {self.diagonality:.3f}"
        )


def _as_matrix(att: torch.Tensor | np.ndarray | Sequence) -> np.ndarray:
    if isinstance(att, torch.Tensor):
        att = att.detach().cpu().double().numpy()
    matrix = np.asarray(att, dtype=np.float64)
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise ValueError(
            f"alignment_measures: expected a non-empty (U, T) matrix, got {matrix.shape}"
        )
    if not np.isfinite(matrix).all():
        raise ValueError("alignment_measures: attention weights contain NaN/inf")
    return matrix


def _positions(count: int) -> np.ndarray:
    """Indices 0..count-1 scaled to [0, 1]; a single index sits at 0."""
    return np.arange(count) / (count - 1) if count > 1 else np.zeros(1)


def alignment_measures(
    att: torch.Tensor | np.ndarray | Sequence,
    decoder_length: int | None = None,
    encoder_length: int | None = None,
) -> AlignmentMeasures:
    """Focus rate, monotonicity and diagonality of attention weights ``att`` (U, T).

    Only ``att[:decoder_length, :encoder_length]`` is scored (to skip padding). With
    ``a_u = argmax_t att[u, t]`` (the first maximum on ties):

    * focus rate = mean over u of ``max_t att[u, t]`` (1/T for uniform attention, 1 for one-hot);
    * monotonicity = fraction of the U - 1 transitions u-1 -> u with ``a_u >= a_{u-1}`` (the peak
      stays or moves forward); 1.0 when U == 1;
    * diagonality = ``1 - mean_u |a_u / (T - 1) - u / (U - 1)|``: 1 when the peak follows the
      straight line from (0, 0) to (U-1, T-1), 0 when every step is at the opposite corner. A single
      row or column has position 0.

    Uniform attention (all peaks at frame 0) scores monotonicity 1.0 and diagonality 0.5, which is
    why focus rate is reported beside them.

    >>> alignment_measures(np.eye(5)[::-1])
    AlignmentMeasures(focus_rate=1.0, monotonicity=0.0, diagonality=0.4)
    """
    matrix = _as_matrix(att)[:decoder_length, :encoder_length]
    if 0 in matrix.shape:
        raise ValueError(
            f"alignment_measures: lengths {decoder_length}, {encoder_length} leave nothing"
        )
    steps, frames = matrix.shape
    peaks = matrix.argmax(axis=1)  # (U,)
    focus = float(matrix.max(axis=1).mean())
    monotonic = float((np.diff(peaks) >= 0).mean()) if steps > 1 else 1.0
    distance = np.abs(_positions(frames)[peaks] - _positions(steps))
    return AlignmentMeasures(focus, monotonic, float(1.0 - distance.mean()))


def mean_measures(
    measures: Sequence[AlignmentMeasures], weights: Sequence[float]
) -> AlignmentMeasures:
    """Weighted mean of several alignments' measures, e.g. the chunks of a long text weighted by
    their decoder steps. A single alignment's measures come back exactly as they were.

    >>> mean_measures([AlignmentMeasures(1.0, 1.0, 1.0), AlignmentMeasures(0.5, 0.0, 0.5)], [3, 1])
    AlignmentMeasures(focus_rate=0.875, monotonicity=0.75, diagonality=0.875)
    """
    if not measures or len(measures) != len(weights):
        raise ValueError(
            f"mean_measures: {len(measures)} measures for {len(weights)} weights (need one each)"
        )
    total = float(sum(weights))
    if not total > 0 or any(w < 0 for w in weights):
        raise ValueError(f"mean_measures: weights must be >= 0 with a positive sum, got {weights}")
    shares = [w / total for w in weights]  # exactly 1.0 for one item, so its values are kept
    return AlignmentMeasures(*(sum(s * m[i] for s, m in zip(shares, measures)) for i in range(3)))


def attention_coverage(att: torch.Tensor | np.ndarray | Sequence, threshold: float = 0.5) -> float:
    """Fraction of the encoder positions (characters) of ``att`` (U, T) that receive at least
    ``threshold`` of attention summed over the decoder steps: 1.0 when the attention passes over
    every character, lower when it skips some (a word that is never spoken).

    >>> attention_coverage([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # the middle character skipped
    0.6666666666666666
    """
    return float((_as_matrix(att).sum(axis=0) >= threshold).mean())


def first_steps_reaching(att: torch.Tensor | np.ndarray | Sequence, positions: Sequence[int]) -> list[int]:
    """For each encoder position p (ascending), the first decoder step u at which the attention
    peak has reached p or gone past it (``max_{u' <= u} argmax_t att[u', t] >= p``), or U when it
    never does. Cutting the output at these steps splits a long utterance into the parts spoken
    for each span of the input (e.g. one part per sentence of a paragraph).

    >>> first_steps_reaching([[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], [1, 2, 3])
    [1, 3, 3]
    """
    matrix = _as_matrix(att)
    if list(positions) != sorted(positions):
        raise ValueError(f"first_steps_reaching: positions must ascend, got {list(positions)}")
    reached = np.maximum.accumulate(matrix.argmax(axis=1))  # (U,) furthest peak so far
    return [int(np.searchsorted(reached, p, side="left")) for p in positions]
