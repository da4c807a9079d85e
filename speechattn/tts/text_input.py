"""Turning user text into model input: normalization, checks, sentence splitting, text files.

Rules (each failure raises :class:`TextInputError` with what was wrong and how to fix it):

- empty or whitespace-only text is refused;
- text is normalized with :func:`speechattn.text.normalize_tts` (numbers and abbreviations read
  out, lowercase, sentence punctuation kept);
- characters the voice was not trained on are dropped with one warning naming them; text left with
  no letter the vocabulary knows ("no speakable characters") is refused;
- text longer than ``max_chars`` (after normalization) is split at sentence ends (``. ! ? ;``),
  then at commas/colons, then at spaces, into chunks of at most ``max_chars``; with
  ``split=False`` it is refused instead.

>>> split_sentences("one two. three four five! six.", max_chars=12)
['one two.', 'three four', 'five!', 'six.']
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from speechattn.text import Vocab, normalize_tts

__all__ = ["TextInputError", "clean_text", "split_sentences", "read_text_file", "prepare_texts"]

_log = logging.getLogger(__name__)

# Split points, tried in order: after sentence ends, after clause punctuation, at spaces.
_BOUNDARIES = (re.compile(r"(?<=[.!?;])\s+"), re.compile(r"(?<=[,:])\s+"), re.compile(r"\s+"))


class TextInputError(ValueError):
    """Text that cannot be synthesized; the message says which text and the fix."""


def _preview(text: str, width: int = 40) -> str:
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def clean_text(text: str, vocab: Vocab) -> str:
    """Normalized ``text`` restricted to characters in ``vocab``; raises if nothing speakable."""
    if not isinstance(text, str):
        raise TypeError(f"text: expected a str, got {type(text).__name__}")
    if not text.strip():
        raise TextInputError("empty text: give at least one word to synthesize")
    normalized = normalize_tts(text)
    unknown = sorted({c for c in normalized if c not in vocab})
    if unknown:
        _log.warning(
            "text %s: characters %s are not in the voice's vocabulary and are dropped",
            _preview(text),
            ", ".join(map(repr, unknown)),
        )
    kept = re.sub(r"\s+", " ", "".join(c for c in normalized if c in vocab)).strip()
    if not any(c.isalpha() for c in kept):
        raise TextInputError(
            f"text {_preview(text)} has no speakable characters (after normalization: "
            f"{_preview(normalized)}; the voice knows {''.join(vocab.chars)!r}); write it in "
            "English letters"
        )
    return kept


def _split_once(text: str, max_chars: int, level: int) -> list[str]:
    if len(text) <= max_chars:
        return [text]
    if level == len(_BOUNDARIES):  # one "word" longer than max_chars: cut it
        return [text[i : i + max_chars] for i in range(0, len(text), max_chars)]
    chunks: list[str] = []
    current = ""
    for piece in _BOUNDARIES[level].split(text):
        candidate = f"{current} {piece}" if current else piece
        if len(candidate) <= max_chars:
            current = candidate
            continue
        if current:
            chunks.append(current)
        if len(piece) <= max_chars:
            current = piece
        else:
            chunks.extend(_split_once(piece, max_chars, level + 1))
            current = ""
    if current:
        chunks.append(current)
    return chunks


def split_sentences(text: str, max_chars: int) -> list[str]:
    """Chunks of at most ``max_chars`` characters, split at the most natural boundary possible.

    Sentences are packed greedily into chunks; a sentence longer than ``max_chars`` is split at
    commas/colons, then at spaces, and a single word longer than ``max_chars`` is cut.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    return _split_once(text.strip(), max_chars, 0)


def prepare_texts(
    texts: list[str], vocab: Vocab, max_chars: int, split: bool = True
) -> list[list[str]]:
    """For each input text, its cleaned chunks (one chunk unless the text was too long)."""
    prepared = []
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TextInputError(f"text {index}: expected a string, got {type(text).__name__}")
        cleaned = clean_text(text, vocab)
        if len(cleaned) > max_chars and not split:
            raise TextInputError(
                f"text {index} ({_preview(text)}) is {len(cleaned)} characters after "
                f"normalization, over the limit of {max_chars}; shorten it, raise max_text_chars "
                "or allow splitting at sentence boundaries"
            )
        prepared.append(split_sentences(cleaned, max_chars))
    return prepared


def read_text_file(path: str | os.PathLike) -> list[str]:
    """Non-blank lines of a UTF-8 text file, one utterance per line."""
    path = Path(path)
    if not path.is_file():
        raise TextInputError(f"{path}: no such text file")
    try:
        content = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise TextInputError(
            f"{path}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start}, "
            f"line {line}); re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from None
    lines = [line.strip() for line in content.splitlines() if line.strip()]
    if not lines:
        raise TextInputError(f"{path}: no text in the file (every line is blank)")
    return lines
