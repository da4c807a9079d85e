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
row of a (contexts, V) table, level by level in whole-array operations, so scoring N hypotheses
is one binary search per context length over all N and one row gather (the longest seen suffix of
each history: for an unseen context, interpolated Kneser-Ney falls back exactly to the shorter
one). N-grams are int64 keys (the ids as digits in base V), counted with ``numpy.unique``: memory
and time grow with the number of distinct n-grams, not with Python objects per n-gram.

The file (``lm.json``) keeps the counts, not the probabilities. ASR training fits one on its
training transcripts (and ``lm.text``, see :class:`LMConfig`) into ``EXP/lm.json``;
``recipes/asr/train_lm.py`` fits one on any text (see ``main``).

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from speechattn.data.manifest import read_manifest, read_text_lines
from speechattn.fileio import write_text_atomic
from speechattn.text import BLANK, EOS, PAD, UNK, Vocab

__all__ = [
    "LMConfig", "CharNgramLM", "fit_texts", "read_texts", "read_source", "build_parser", "main"
]

_FORMAT = "speechattn-char-ngram-2"  # n-grams as integer keys per length
_FORMAT_LISTS = "speechattn-char-ngram-1"  # n-grams as id lists: still read
_NEVER = (PAD, UNK, BLANK)  # ids the LM never predicts


@dataclass
class LMConfig:
    """The character LM that ASR training fits on its transcripts; ``order=0`` (default): none.

    ``text``: a file of more sentences, one a line, fitted together with the transcripts (a path
    relative to the data folder, or absolute); ``prepare`` writes the offline corpus's LM text to
    ``lm_text.txt``. The table holds 4 bytes per seen context and symbol; fitting and loading
    times and memory for the offline corpus's text are in recipes/asr/README.md.
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
    """Interpolated Kneser-Ney character n-gram model over a fixed vocabulary of ``vocab_size``.

    ``ngrams[n] = (keys, counts)``: the distinct n-grams as sorted int64 keys (the ids as the
    digits of a base-``vocab_size`` number, first id most significant) and how often each was seen.
    Arrays, not Python tuples: 30,000 sentences' 8-gram (1.1 M n-grams) take tens of MB, not GB.
    """

    def __init__(
        self, ngrams: dict[int, tuple[np.ndarray, np.ndarray]], vocab_size: int, order: int,
        discount: float,
    ) -> None:  # fmt: skip
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if not 0.0 < discount < 1.0:
            raise ValueError(f"discount must be in (0, 1), got {discount}")
        _check_key_range(vocab_size, order)
        bad = [n for n in ngrams if not 0 < n <= order]
        if bad:
            raise ValueError(f"{bad[0]}-grams do not fit order {order}")
        for n, (keys, _) in ngrams.items():
            if len(keys) and (keys.min() < 0 or keys.max() >= vocab_size**n):
                raise ValueError(f"a {n}-gram does not fit a vocabulary of {vocab_size}")
        self.ngrams = {n: (np.asarray(k, np.int64), np.asarray(c, np.int64))
                       for n, (k, c) in sorted(ngrams.items())}  # fmt: skip
        self.vocab_size = vocab_size
        self.order = order
        self.discount = discount
        self._contexts, self._offsets, self._table = self._build_tables()

    @property
    def num_ngrams(self) -> int:
        return sum(len(keys) for keys, _ in self.ngrams.values())

    @property
    def num_contexts(self) -> int:
        """Seen contexts: the rows of the probability table, besides the uniform one."""
        return sum(len(keys) for keys in self._contexts)

    def count(self, gram: Sequence[int]) -> int:
        """How often the n-gram ``gram`` (ids) was seen in fitting (0: never)."""
        keys, counts = self.ngrams.get(len(gram), (np.zeros(0, np.int64), None))
        key = _key(gram, self.vocab_size)
        index = int(np.searchsorted(keys, key))
        return int(counts[index]) if index < len(keys) and keys[index] == key else 0

    @classmethod
    def fit(
        cls,
        sentences: Iterable[Sequence[int]],
        vocab_size: int,
        order: int = 6,
        discount: float = 0.7,
    ) -> CharNgramLM:
        """Count the n-grams (up to ``order``) of id sequences, each framed as EOS ... EOS."""
        _check_key_range(vocab_size, order)
        framed = [np.asarray((EOS, *ids, EOS), dtype=np.int64) for ids in sentences]
        if not framed:
            raise ValueError("no text to fit the language model on")
        flat = np.concatenate(framed)  # (P,) every sentence, framed, one after another
        position = np.concatenate([np.arange(len(f)) for f in framed])  # within its sentence
        ngrams, keys = {}, np.zeros_like(flat)
        for n in range(1, min(order, len(flat)) + 1):
            # keys[p]: the n ids ending at p (valid where they stay inside p's sentence)
            keys[n - 1 :] += flat[: len(flat) - n + 1] * vocab_size ** (n - 1)
            ends = position >= max(n - 1, 1)  # the first EOS is context only
            if ends.any():
                ngrams[n] = np.unique(keys[ends], return_counts=True)
        return cls(ngrams, vocab_size, order, discount)

    def _build_tables(self) -> tuple[list[np.ndarray], list[int], Tensor]:
        """Per context length m, the sorted keys of the seen contexts and the row of the first
        one, and the (rows, V) log P(. | context) table (row 0: the uniform fallback)."""
        V = self.vocab_size
        # following[m]: (context key, next id, count) behind P(next | a context of m ids). Raw
        # counts at the highest order and for n-grams that open a sentence (nothing to their
        # left); below that, continuation counts: each distinct n-gram adds one to its suffix,
        # so a suffix counts its distinct left neighbours.
        following: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [
            [] for _ in range(self.order)
        ]
        for n, (keys, counts) in self.ngrams.items():
            context, last = keys // V, keys % V
            if n == self.order:
                following[n - 1].append((context, last, counts))
            elif n > 1:
                opens = context // V ** (n - 2) == EOS  # the first of the n ids
                following[n - 1].append((context[opens], last[opens], counts[opens]))
            if n > 1:
                middle = context % V ** (n - 2)
                following[n - 2].append((middle, last, np.ones(len(keys), np.int64)))
        allowed = torch.ones(1, V, dtype=torch.float64)
        allowed[0, list(_NEVER)] = 0.0
        previous = allowed / allowed.sum()  # (1, V) the uniform distribution unigrams fall back to
        # The table is kept level by level as float32 log-probabilities; only the level before
        # the one being computed stays in float64, as the next level's fallback.
        blocks = [_log_table(previous)]
        contexts: list[np.ndarray] = []
        offsets: list[int] = []
        for m, parts in enumerate(following):  # shorter contexts first: each fallback is ready
            offsets.append(sum(len(b) for b in blocks))
            if not parts:
                contexts.append(np.zeros(0, np.int64))
                continue
            context = np.concatenate([c for c, _, _ in parts])
            pair, where = np.unique(context * V + np.concatenate([x for _, x, _ in parts]),
                                    return_inverse=True)  # fmt: skip
            count = np.bincount(where, weights=np.concatenate([c for _, _, c in parts]))
            keys, row = np.unique(pair // V, return_inverse=True)
            seen = torch.zeros(len(keys), V, dtype=torch.float64)  # (C, V)
            seen[torch.from_numpy(row), torch.from_numpy(pair % V)] = torch.from_numpy(count)
            if m == 0:
                lower = previous.expand(len(keys), V)
            else:  # the one-shorter suffix of every context was seen at level m - 1
                suffix = np.searchsorted(contexts[m - 1], keys % V ** (m - 1))
                lower = previous[torch.from_numpy(suffix)]
            previous = self._interpolate(seen, lower)
            blocks.append(_log_table(previous))
            contexts.append(keys)
        return contexts, offsets, torch.cat(blocks)

    def _interpolate(self, seen: Tensor, lower: Tensor) -> Tensor:
        """(C, V) interpolated Kneser-Ney probabilities from the (C, V) counts of C contexts
        (overwritten) and the (C, V) probabilities of their one-shorter suffixes."""
        total = seen.sum(1, keepdim=True)
        types = (seen > 0).sum(1, keepdim=True, dtype=torch.float64)
        # in place on ``seen``: the (C, V) temporaries are what peaks the memory of a large LM
        discounted = seen.sub_(self.discount).clamp_min_(0).div_(total)
        return discounted.add_(lower * (self.discount * types / total))

    def _rows_of(self, histories: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """(N,) table rows of each history's longest seen suffix of at most ``order - 1`` ids,
        and (N,) the length of that suffix."""
        width = self.order - 1
        tails = np.full((len(histories), width), -1, dtype=np.int64)  # right-aligned, -1: none
        for i, history in enumerate(histories):
            tail = history[max(len(history) - width, 0) :] if width else ()
            if len(tail):
                tails[i, width - len(tail) :] = tail
        rows = np.full(len(histories), self._offsets[0] if len(self._contexts[0]) else 0)
        lengths = np.zeros(len(histories), dtype=np.int64)
        keys = np.zeros(len(histories), dtype=np.int64)
        for m in range(1, width + 1):  # longer suffixes override shorter ones
            digit = tails[:, width - m]
            valid = digit >= 0
            keys = keys + np.where(valid, digit, 0) * self.vocab_size ** (m - 1)
            known = self._contexts[m]
            if not len(known):
                break
            index = np.minimum(np.searchsorted(known, keys), len(known) - 1)
            found = valid & (known[index] == keys)
            if not found.any():
                break  # no longer suffix can be seen when this one is not
            rows = np.where(found, self._offsets[m] + index, rows)
            lengths[found] = m
        return rows, lengths

    def context_of(self, history: Sequence[int]) -> tuple[int, ...]:
        """The longest suffix (at most ``order - 1`` ids) of ``history`` that was seen in fitting."""
        length = int(self._rows_of([history])[1][0])
        return tuple(history[len(history) - length :]) if length else ()

    def log_probs(self, histories: Sequence[Sequence[int]]) -> Tensor:
        """(N,) histories (each starting with EOS) -> (N, V) log P(next id | history)."""
        if not len(histories):
            return torch.zeros(0, self.vocab_size)
        return self._table[torch.from_numpy(self._rows_of(histories)[0])]

    def sentence_log_prob(self, ids: Sequence[int]) -> float:
        """log P(ids, then EOS): the sum of the per-character log-probabilities."""
        history = [EOS, *ids]
        targets = torch.tensor([*ids, EOS])
        rows, _ = self._rows_of([history[: k + 1] for k in range(len(history))])
        return float(self._table[torch.from_numpy(rows), targets].sum())

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
            "ngrams": {str(n): [keys.tolist(), counts.tolist()]
                       for n, (keys, counts) in self.ngrams.items()},
        }  # fmt: skip
        write_text_atomic(Path(path), json.dumps(record, separators=(",", ":")) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike, vocab_size: int | None = None) -> CharNgramLM:
        """Read a file written by :meth:`save` (or by the first format, n-grams as id lists);
        ``vocab_size`` must match the recognizer's."""
        path = Path(path)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            size, order = int(record["vocab_size"]), int(record["order"])
            if record.get("format") == _FORMAT:
                ngrams = {int(n): (np.array(k, np.int64), np.array(c, np.int64))
                          for n, (k, c) in record["ngrams"].items()}  # fmt: skip
            elif record.get("format") == _FORMAT_LISTS:
                ngrams = _keys_of_lists(record["ngrams"], size)
            else:
                raise ValueError(f"format {record.get('format')!r}, expected {_FORMAT!r}")
            lm = cls(ngrams, size, order, float(record["discount"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"{path}: not a speechattn character LM ({err})") from None
        if vocab_size is not None and lm.vocab_size != vocab_size:
            raise ValueError(
                f"{path}: LM over {lm.vocab_size} symbols, the recognizer has {vocab_size}; "
                "fit the LM with the experiment's vocab.json"
            )
        return lm


def _check_key_range(vocab_size: int, order: int) -> None:
    if vocab_size**order >= 2**63:
        raise ValueError(
            f"order {order} over {vocab_size} symbols does not fit 64-bit n-gram keys; "
            "use a lower order"
        )


def _key(gram: Sequence[int], vocab_size: int) -> int:
    """An n-gram's key: its ids as the digits of a base-``vocab_size`` number, first id first."""
    key = 0
    for token in gram:
        key = key * vocab_size + int(token)
    return key


def _log_table(probs: Tensor) -> Tensor:
    """float64 probabilities -> float32 log-probabilities (1e-30 for what cannot occur)."""
    return probs.clamp_min(1e-30).log().float()


def _keys_of_lists(ngrams: list, vocab_size: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The first format's ``[[ids...], count]`` rows as sorted keys and counts per length."""
    by_length: dict[int, tuple[list[int], list[int]]] = {}
    for gram, count in ngrams:
        if not all(0 <= int(token) < vocab_size for token in gram):
            raise ValueError(f"n-gram {gram} does not fit a vocabulary of {vocab_size}")
        keys, counts = by_length.setdefault(len(gram), ([], []))
        keys.append(_key(gram, vocab_size))
        counts.append(int(count))
    out = {}
    for n, (keys, counts) in by_length.items():
        order = np.argsort(np.array(keys, np.int64), kind="stable")
        out[n] = (np.array(keys, np.int64)[order], np.array(counts, np.int64)[order])
    return out


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
        message = f"{len(texts)} sentences, order {lm.order}: {lm.num_ngrams} n-grams -> {args.out}"
        if args.dev:
            dev = [vocab.encode(t) for t in read_texts([args.dev], [])]
            message += f"; perplexity {lm.perplexity(dev):.3f} per character on {args.dev}"
        print(message)
    except (ValueError, FileNotFoundError) as err:
        print(f"train_lm: error: {err}", file=sys.stderr)
        return 1
    return 0
