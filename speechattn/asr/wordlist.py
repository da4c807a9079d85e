"""A word list that beam search may hold hypotheses to: lexicon-constrained decoding, softly.

Shapes: N hypotheses, V vocabulary size (the ASR vocabulary, specials included).

A character speller can spell anything, including words that do not exist ("CLASROM"). Given a
list of words, :meth:`WordList.penalties` scores every one-character extension of a hypothesis:

- a letter that leaves every listed word's prefixes costs ``leave`` nats (the word being spelled
  can no longer become a listed word);
- a word end (space or EOS) after a word that is not listed costs ``leave`` too;
- every space costs ``per_word`` nats: without it the search would split a word it cannot spell
  into short listed ones ("PALLIATIVE" -> "PALE ACTIVE").

The cost is soft, so a word outside the list can still win when the audio insists. Any plain word
list works (one word per line); for pronunciation dictionaries such as CMUdict the first column is
the word and a ``(2)`` variant marker is dropped. The costs of each partly spelled word are computed
once and cached.

>>> from speechattn.text import Vocab
>>> vocab = Vocab.build(["AB CAB"])
>>> words = WordList(["AB", "CAB"], vocab)
>>> cost = words.penalties([[EOS, *vocab.encode("CA")]], leave=5.0, per_word=1.0)[0]
>>> [float(cost[i]) for i in vocab.encode("ABC ")]  # after "CA": only B stays on a listed word
[-5.0, 0.0, -5.0, -6.0]
>>> float(words.penalties([[EOS, *vocab.encode("AB")]], 5.0, 1.0)[0][vocab.encode(" ")[0]])
-1.0
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from speechattn.data.manifest import read_text_lines
from speechattn.text import EOS, Vocab

__all__ = ["WordList"]

_VARIANT = re.compile(r"\(\d+\)$")  # CMUdict's "WORD(2)" second pronunciation


class WordList:
    """The words (over ``vocab``'s characters) that beam search prefers hypotheses to spell."""

    def __init__(self, words: Iterable[str], vocab: Vocab) -> None:
        allowed = set(vocab.chars) - {" "}
        self.words = {w for w in words if w and set(w) <= allowed}
        if not self.words:
            raise ValueError("word list: no word is spelled with the recognizer's characters")
        self.prefixes = {w[:end] for w in self.words for end in range(1, len(w) + 1)}
        self.vocab = vocab
        self._space = vocab.encode(" ")[0] if " " in vocab.chars else None
        self._cache: dict[str, tuple[Tensor, Tensor]] = {}

    @classmethod
    def load(cls, path: str | os.PathLike, vocab: Vocab) -> WordList:
        """Words from a text file: the first column of each line, upper-cased, variants merged."""
        lines = read_text_lines(path)
        words = (_VARIANT.sub("", line.split()[0]).upper() for line in lines if line.split())
        try:
            return cls(words, vocab)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None

    def __len__(self) -> int:
        return len(self.words)

    def _costs(self, partial: str) -> tuple[Tensor, Tensor]:
        """(V,) "leaves the list" flags and (V,) word-boundary flags after ``partial``."""
        if partial not in self._cache:
            leaves = torch.ones(len(self.vocab))  # specials (UNK) are in no word
            boundary = torch.zeros(len(self.vocab))
            word_ok = partial == "" or partial in self.words
            for index, char in enumerate(self.vocab.chars, start=4):
                if char == " ":
                    leaves[index] = float(not word_ok)
                    boundary[index] = 1.0
                else:
                    leaves[index] = float(partial + char not in self.prefixes)
            leaves[EOS] = float(not word_ok)
            self._cache[partial] = (leaves, boundary)
        return self._cache[partial]

    def penalties(
        self, histories: Sequence[Sequence[int]], leave: float, per_word: float
    ) -> Tensor:
        """(N,) histories (ids, each starting with EOS) -> (N, V) costs (<= 0) of each extension."""
        rows = []
        for history in histories:
            start = len(history)
            while start > 1 and history[start - 1] != self._space:
                start -= 1  # back to the start of the word being spelled
            partial = self.vocab.decode(list(history[start:]))
            leaves, boundary = self._costs(partial)
            rows.append(0.0 - (leave * leaves + per_word * boundary))  # 0.0, not -0.0
        if not rows:
            return torch.zeros(0, len(self.vocab))
        return torch.stack(rows)
