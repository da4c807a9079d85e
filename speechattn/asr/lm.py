"""A character n-gram language model for shallow fusion in beam search.

Shapes: N hypotheses, V vocabulary size (the ASR vocabulary, specials included).

The model predicts the next character id (EOS included) from the last ``order - 1`` ids of a
hypothesis, whose history starts with EOS (the speller's start symbol). Probabilities are
interpolated Kneser-Ney with one absolute discount ``D``::

    P(c | h) = max(n(h c) - D, 0) / n(h .) + D * types(h .) / n(h .) * P(c | h[1:])

with raw counts ``n`` at the highest order and continuation counts (the number of different
characters seen before ``h c``, counting the sentence start as one) below it; the lowest order is
interpolated with a uniform distribution over the characters the LM may emit, so nothing it can
emit has zero probability. Every seen context's whole distribution over V is precomputed, one
row of a (contexts, V) table, level by level in whole-tensor operations, so scoring N hypotheses
is N dictionary lookups and one row gather (the longest seen suffix of each history: for an
unseen context, interpolated Kneser-Ney falls back exactly to the shorter one).

Fitting counts over a few thousand transcripts takes about two seconds; the file (``lm.json``)
keeps the counts, not the probabilities. ASR training fits one on its training transcripts (and
``lm.text``, see :class:`LMConfig`) into ``EXP/lm.json``; ``recipes/asr/train_lm.py`` fits one on
any text (see ``main``).

>>> from speechattn.text import Vocab
>>> vocab = Vocab.build(["AB AB", "BA"])
>>> lm = CharNgramLM.fit([vocab.encode(t) for t in ["AB AB", "AB AB", "BA"]], len(vocab), order=3)
>>> after_a = lm.log_probs([[EOS, vocab.encode("A")[0]]])[0].exp()
>>> round(float(after_a.sum()), 4), vocab.chars[int(after_a.argmax()) - 4]
(1.0, 'B')
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from speechattn.data.manifest import atomic_write_text, read_manifest, read_text_lines
from speechattn.text import BLANK, EOS, PAD, UNK, Vocab

__all__ = [
    "LMConfig", "CharNgramLM", "fit_texts", "read_texts", "read_source", "build_parser", "main"
]

_FORMAT = "speechattn-char-ngram-1"
_NEVER = (PAD, UNK, BLANK)  # ids the LM never predicts


@dataclass
class LMConfig:
    """The character LM that ASR training fits on its transcripts; ``order=0`` (default): none.

    ``text``: a file of more sentences, one a line, fitted together with the transcripts (a path
    relative to the data folder, or absolute); ``prepare`` writes the offline corpus's LM text to
    ``lm_text.txt``. A 6-gram of the offline corpus's 1520 transcripts takes 2 s to fit (1.4 MB);
    with its 20,000 sentences of LM text, the 8-gram ``offline.yaml`` fits in about a minute (17 MB;
    6 s and 1.5 GB of memory to load). Counting is pure Python: for far more text (LibriSpeech's LM
    corpus) use a lower order, or a sample of the text.
    """

    order: int = 0
    discount: float = 0.7
    text: str = ""

    def __post_init__(self) -> None:
        if self.order < 0:
            raise ValueError(f"lm.order={self.order} must be >= 0 (0: no language model)")
        if not 0.0 < self.discount < 1.0:
            raise ValueError(f"lm.discount={self.discount} must be in (0, 1)")


class CharNgramLM:
    """Interpolated Kneser-Ney character n-gram model over a fixed vocabulary of ``vocab_size``."""

    def __init__(
        self, counts: dict[tuple[int, ...], int], vocab_size: int, order: int, discount: float
    ) -> None:
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if not 0.0 < discount < 1.0:
            raise ValueError(f"discount must be in (0, 1), got {discount}")
        bad = [g for g in counts if not 0 < len(g) <= order or max(g) >= vocab_size]
        if bad:
            raise ValueError(
                f"n-gram {bad[0]} does not fit order {order} and a vocabulary of {vocab_size}"
            )
        self.counts = counts
        self.vocab_size = vocab_size
        self.order = order
        self.discount = discount
        self._rows, self._table = self._build_tables()

    @classmethod
    def fit(
        cls,
        sentences: Iterable[Sequence[int]],
        vocab_size: int,
        order: int = 6,
        discount: float = 0.7,
    ) -> CharNgramLM:
        """Count the n-grams (up to ``order``) of id sequences, each framed as EOS ... EOS."""
        counts: Counter[tuple[int, ...]] = Counter()
        for ids in sentences:
            seq = (EOS, *ids, EOS)
            for end in range(1, len(seq)):  # the first EOS is context only
                for n in range(1, min(order, end + 1) + 1):
                    counts[seq[end - n + 1 : end + 1]] += 1
        if not counts:
            raise ValueError("no text to fit the language model on")
        return cls(dict(counts), vocab_size, order, discount)

    def _build_tables(self) -> tuple[dict[tuple[int, ...], int], Tensor]:
        """``({context: row}, (contexts, V) log P(. | context))`` for every seen context."""
        # following[n][context][c]: the count behind P(c | context) for a context of n ids. Raw
        # counts at the highest order and for n-grams that open a sentence (they have nothing to
        # their left); below that, continuation counts: each distinct n-gram adds one to its
        # suffix, so a suffix counts its distinct left neighbours.
        following: list[dict[tuple[int, ...], Counter[int]]] = [
            defaultdict(Counter) for _ in range(self.order)
        ]
        for gram, count in self.counts.items():
            n = len(gram)
            if n == self.order or (n > 1 and gram[0] == EOS):  # EOS first: the sentence opening
                following[n - 1][gram[:-1]][gram[-1]] += count
            if n > 1:
                following[n - 2][gram[1:-1]][gram[-1]] += 1
        allowed = torch.ones(1, self.vocab_size, dtype=torch.float64)
        allowed[0, list(_NEVER)] = 0.0
        # row 0: the uniform distribution the unigrams fall back to
        rows: dict[tuple[int, ...], int] = {(): 0}
        blocks = [allowed / allowed.sum()]
        for level in following:  # shorter contexts first: each one's fallback is ready
            if not level:
                continue
            contexts = list(level)
            table = torch.cat(blocks)
            lower = table[[rows[context[1:]] for context in contexts]]
            blocks.append(self._interpolate(contexts, level, lower))
            rows.update((context, len(table) + i) for i, context in enumerate(contexts))
        return rows, torch.cat(blocks).clamp_min(1e-30).log().float()

    def _interpolate(
        self, contexts: list[tuple[int, ...]], following: dict[tuple[int, ...], Counter[int]],
        lower: Tensor,
    ) -> Tensor:
        """(C, V) interpolated Kneser-Ney probabilities of ``contexts`` from their counts and
        the (C, V) probabilities of their one-shorter suffixes."""
        where = [(i, c, n) for i, context in enumerate(contexts)
                 for c, n in following[context].items()]  # fmt: skip
        row, column, count = zip(*where, strict=True)
        seen = torch.zeros_like(lower)
        seen[list(row), list(column)] = torch.tensor(count, dtype=torch.float64)
        total = seen.sum(1, keepdim=True)
        types = (seen > 0).sum(1, keepdim=True, dtype=torch.float64)
        return lower * (self.discount * types / total) + (seen - self.discount).clamp_min(0) / total

    def context_of(self, history: Sequence[int]) -> tuple[int, ...]:
        """The longest suffix (at most ``order - 1`` ids) of ``history`` that was seen in fitting."""
        start = max(len(history) - self.order + 1, 0)
        for begin in range(start, len(history) + 1):
            context = tuple(history[begin:])
            if context in self._rows:
                return context
        return ()

    def log_probs(self, histories: Sequence[Sequence[int]]) -> Tensor:
        """(N,) histories (each starting with EOS) -> (N, V) log P(next id | history)."""
        if not histories:
            return torch.zeros(0, self.vocab_size)
        return self._table[[self._rows[self.context_of(h)] for h in histories]]

    def sentence_log_prob(self, ids: Sequence[int]) -> float:
        """log P(ids, then EOS): the sum of the per-character log-probabilities."""
        history, total = [EOS], 0.0
        for token in (*ids, EOS):
            total += float(self._table[self._rows[self.context_of(history)], token])
            history.append(token)
        return total

    def perplexity(self, sentences: Iterable[Sequence[int]]) -> float:
        """Per-character perplexity (EOS counted) of id sequences."""
        total, count = 0.0, 0
        for ids in sentences:
            total += self.sentence_log_prob(ids)
            count += len(ids) + 1
        if count == 0:
            raise ValueError("no text to measure perplexity on")
        return math.exp(-total / count)

    def save(self, path: str | os.PathLike, source: dict | None = None) -> Path:
        """Write the counts as JSON (atomically); ``source``, what the LM was fitted on, is kept
        with them for :func:`read_source`."""
        record = {
            "format": _FORMAT, "order": self.order, "discount": self.discount,
            "vocab_size": self.vocab_size, "source": source,
            "ngrams": [[list(g), c] for g, c in sorted(self.counts.items())],
        }  # fmt: skip
        atomic_write_text(Path(path), json.dumps(record, separators=(",", ":")) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike, vocab_size: int | None = None) -> CharNgramLM:
        """Read a file written by :meth:`save`; ``vocab_size`` must match the recognizer's."""
        path = Path(path)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if record.get("format") != _FORMAT:
                raise ValueError(f"format {record.get('format')!r}, expected {_FORMAT!r}")
            counts = {tuple(g): int(c) for g, c in record["ngrams"]}
            lm = cls(counts, int(record["vocab_size"]), int(record["order"]),
                     float(record["discount"]))  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a speechattn character LM ({err})") from None
        if vocab_size is not None and lm.vocab_size != vocab_size:
            raise ValueError(
                f"{path}: LM over {lm.vocab_size} symbols, the recognizer has {vocab_size}; "
                "fit the LM with the experiment's vocab.json"
            )
        return lm


def read_source(path: str | os.PathLike) -> dict | None:
    """The ``source`` an LM file was saved with (None: none, or not an LM file)."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record.get("source") if isinstance(record, dict) else None


def fit_texts(texts: Iterable[str], vocab: Vocab, config: LMConfig) -> CharNgramLM:
    """An LM over ``vocab`` fitted on transcripts (characters outside ``vocab`` become UNK)."""
    if config.order < 1:
        raise ValueError("lm.order=0: no language model to fit")
    return CharNgramLM.fit(
        (vocab.encode(t) for t in texts if t.strip()), len(vocab), config.order, config.discount
    )


def read_texts(manifests: Sequence[Path], text_files: Sequence[Path] = ()) -> list[str]:
    """The transcripts of JSONL ``manifests`` and the lines of ``text_files``, stripped and
    uppercased, empty ones left out: what an LM is fitted on."""
    texts = [row.get("text", "") for path in manifests for row in read_manifest(path)]
    for path in text_files:
        texts += read_text_lines(path)
    return [t.strip().upper() for t in texts if t.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Fit a character n-gram LM for shallow fusion in ASR beam search.",
        epilog="Training already writes EXP/lm.json from its training transcripts; use this for "
        "other text, then: infer.py --lm FILE --lm-weight 0.4",
    )
    parser.add_argument("--vocab", type=Path, required=True, help="the experiment's vocab.json")
    parser.add_argument("--manifest", type=Path, nargs="*", default=[], help="JSONL manifests")
    parser.add_argument("--text", type=Path, nargs="*", default=[], help="text, one sentence a line")
    parser.add_argument("--out", type=Path, required=True, help="where to write the LM (JSON)")
    parser.add_argument("--order", type=int, default=6, help="n-gram order (default 6)")
    parser.add_argument("--discount", type=float, default=LMConfig.discount)
    parser.add_argument("--dev", type=Path, help="manifest to report perplexity on")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if not args.manifest and not args.text:
            raise ValueError("give --manifest and/or --text to fit on")
        vocab = Vocab.load(args.vocab)
        texts = read_texts(args.manifest, args.text)
        lm = fit_texts(texts, vocab, LMConfig(args.order, args.discount))
        lm.save(args.out)
        message = f"{len(texts)} sentences, order {lm.order}: {len(lm.counts)} n-grams -> {args.out}"
        if args.dev:
            dev = [vocab.encode(t) for t in read_texts([args.dev], [])]
            message += f"; perplexity {lm.perplexity(dev):.3f} per character on {args.dev}"
        print(message)
    except (ValueError, FileNotFoundError) as err:
        print(f"train_lm: error: {err}", file=sys.stderr)
        return 1
    return 0
