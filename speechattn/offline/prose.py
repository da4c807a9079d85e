"""Real English for the offline corpus: the usage examples of WordNet 3.0.

WordNet's glosses quote short sentences and phrases written by its lexicographers to show a word
in use ("she put the slippers under the bed neatly", "the economy reflated after the Fed took
extreme measures"). Debian's ``wordnet-base`` package installs them in ``/usr/share/wordnet``
under the WordNet 3.0 licence (use, copy, modify and distribute, with Princeton's copyright
notice kept; see ``/usr/share/doc/wordnet-base/copyright``). Unlike the corpus's grammar, this
text was not made from the corpus's word lists, so a model trained on the grammar alone has never
seen most of its words or sentence patterns.

An example is kept when a synthesizer can say it and a transcript can spell it: only letters,
digits, spaces and ``, . ; : ? ! ' -``; between :data:`MIN_WORDS` and :data:`MAX_WORDS` words;
numbers that :func:`~speechattn.offline.sentences.normalize_text` can spell out. Duplicate
transcripts are dropped. The order is the files' (``data.noun``, ``data.verb``, ``data.adj``,
``data.adv``), then shuffled by the seed, so the same WordNet and the same seed give the same
sentences.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from dataclasses import dataclass
from pathlib import Path

from speechattn.offline.sentences import MAX_WORDS, MIN_WORDS, Sentence

__all__ = [
    "MIN_PROSE_WORDS",
    "WORDNET_DIR",
    "WORDNET_FILES",
    "ProseNotFoundError",
    "ProseSource",
    "load_prose",
    "parse_examples",
]

WORDNET_DIR = Path("/usr/share/wordnet")
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
# Shorter examples are mostly noun phrases ("an actable scene"); four words make a sentence more
# often than not.
MIN_PROSE_WORDS = max(MIN_WORDS, 4)
_SAYABLE = re.compile(r"[A-Za-z0-9 ,.;:?!'-]+")
_QUOTED = re.compile(r'"([^"]+)"')


class ProseNotFoundError(RuntimeError):
    """The WordNet files are missing; the message names the Debian package to install."""


@dataclass(frozen=True)
class ProseSource:
    """The usable WordNet examples in the order a seed gives them, and a digest of their text
    (recorded in ``corpus.json``: another WordNet release gives other sentences)."""

    sentences: tuple[Sentence, ...]
    digest: str


def parse_examples(line: str) -> list[str]:
    """The quoted usage examples of one line of a WordNet ``data.*`` file (none for its header).

    >>> parse_examples('00001740 03 n 01 entity 0 000 | that which is perceived; "a real thing"')
    ['a real thing']
    """
    if line.startswith("  ") or "|" not in line:  # the licence header lines start with spaces
        return []
    return [text.strip() for text in _QUOTED.findall(line.split("|", 1)[1])]


def _usable(text: str) -> Sentence | None:
    if not _SAYABLE.fullmatch(text) or not MIN_PROSE_WORDS <= len(text.split()) <= MAX_WORDS:
        return None
    try:
        sentence = Sentence.from_raw(text)
    except ValueError:  # a decimal, time or range the normalizer does not read
        return None
    return sentence if sentence.transcript else None


def load_prose(seed: int = 0, folder: Path = WORDNET_DIR) -> ProseSource:
    """Every usable example of the WordNet files in ``folder``, shuffled by ``seed``.

    Raises:
        ProseNotFoundError: a ``data.*`` file is missing (install ``wordnet-base``).
    """
    sentences, digest = _read_examples(Path(folder))
    shuffled = list(sentences)
    random.Random(f"prose-{seed}").shuffle(shuffled)
    return ProseSource(tuple(shuffled), digest)


@functools.lru_cache(maxsize=4)
def _read_examples(folder: Path) -> tuple[tuple[Sentence, ...], str]:
    """The usable examples in file order and their digest (read once per folder: about 2 s)."""
    missing = [name for name in WORDNET_FILES if not (folder / name).is_file()]
    if missing:
        raise ProseNotFoundError(
            f"{folder / missing[0]} not found: the offline corpus reads WordNet's usage examples "
            "from the Debian package wordnet-base (sudo apt-get install wordnet-base, or make sysdeps)"
        )
    seen: set[str] = set()
    sentences: list[Sentence] = []
    digest = hashlib.sha256()
    for name in WORDNET_FILES:
        # WordNet 3.0's files are Latin-1 (a few glosses have accented letters)
        with open(folder / name, encoding="latin-1") as lines:
            for line in lines:
                for text in parse_examples(line):
                    sentence = _usable(text)
                    if sentence is None or sentence.transcript in seen:
                        continue
                    seen.add(sentence.transcript)
                    sentences.append(sentence)
                    digest.update(sentence.raw.encode("utf-8") + b"\n")
    return tuple(sentences), digest.hexdigest()[:16]
