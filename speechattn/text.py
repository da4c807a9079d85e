"""Character vocabularies and text normalization for ASR and TTS.

Two normalizers turn raw text into the strings the models see:

* :func:`normalize_asr` -- transcripts for recognition: ``A-Z``, apostrophe and single spaces
  (LibriSpeech style). Digits are spelled out, other punctuation is dropped.
* :func:`normalize_tts` -- input text for synthesis: lowercase, numbers / ordinals / common
  abbreviations read out as words, sentence punctuation kept as characters (it carries prosody).

:class:`Vocab` maps characters to ids with four reserved ids in front::

    PAD=0  EOS=1 (also the decoder's SOS)  UNK=2  BLANK=3 (CTC)  characters from 4

>>> vocab = Vocab.build(["AB C'"])
>>> vocab.encode("CAB")
[8, 6, 7]
>>> vocab.decode([8, 6, 7, 1, 6])
'CAB'
>>> normalize_asr("It's 42, isn't it?")
"IT'S FORTY TWO ISN'T IT"
>>> normalize_tts("Dr. Smith lives at 221 Baker St.")
'doctor smith lives at two hundred twenty one baker street.'
"""

from __future__ import annotations

import json
import logging
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

from speechattn.fileio import write_text_atomic

__all__ = [
    "BLANK",
    "EOS",
    "PAD",
    "SPECIAL_SYMBOLS",
    "UNK",
    "Vocab",
    "normalize_asr",
    "normalize_tts",
    "number_to_words",
    "ordinal_to_words",
    "year_to_words",
]

_log = logging.getLogger(__name__)

PAD, EOS, UNK, BLANK = 0, 1, 2, 3
SPECIAL_SYMBOLS: tuple[str, ...] = ("<pad>", "<eos>", "<unk>", "<blank>")
_VOCAB_FORMAT = "speechattn-vocab"


# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------


class Vocab:
    """Character vocabulary with reserved ids PAD=0, EOS=1 (=SOS), UNK=2, BLANK=3.

    Args:
        chars: the characters, in id order; character ``chars[i]`` gets id ``4 + i``. Each must be
            a single character and appear once.

    Unknown characters encode to UNK; the first time a given character is seen by this instance
    a warning naming it is logged on the ``speechattn.text`` logger (once per character).
    """

    def __init__(self, chars: Sequence[str]) -> None:
        chars = list(chars)
        for char in chars:
            if not isinstance(char, str) or len(char) != 1:
                raise ValueError(f"Vocab: symbol {char!r} is not a single character")
        duplicates = sorted({c for c in chars if chars.count(c) > 1})
        if duplicates:
            raise ValueError(f"Vocab: characters {duplicates!r} appear more than once")
        self._symbols: tuple[str, ...] = SPECIAL_SYMBOLS + tuple(chars)
        self._ids = {char: index for index, char in enumerate(self._symbols) if len(char) == 1}
        self._warned: set[str] = set()

    @classmethod
    def build(cls, texts: Iterable[str]) -> Vocab:
        """Vocabulary of every character in ``texts``, sorted by code point."""
        chars: set[str] = set()
        for text in texts:
            chars.update(text)
        return cls(sorted(chars))

    # ---- properties ------------------------------------------------------------------------
    @property
    def pad_id(self) -> int:
        return PAD

    @property
    def eos_id(self) -> int:
        """End of sentence; the decoder also starts from it (SOS)."""
        return EOS

    @property
    def sos_id(self) -> int:
        return EOS

    @property
    def unk_id(self) -> int:
        return UNK

    @property
    def blank_id(self) -> int:
        return BLANK

    @property
    def symbols(self) -> tuple[str, ...]:
        """All symbols in id order, the four reserved ones first."""
        return self._symbols

    @property
    def chars(self) -> tuple[str, ...]:
        """The ordinary characters in id order (ids 4, 5, ...)."""
        return self._symbols[len(SPECIAL_SYMBOLS) :]

    def __len__(self) -> int:
        return len(self._symbols)

    def rows_from(self, other: Vocab) -> list[int | None]:
        """For each id of this vocabulary, the id of the same symbol in ``other`` (None where
        ``other`` lacks it): how a warm start copies the rows of vocabulary-indexed weights.

        >>> Vocab(["A", "B", "C"]).rows_from(Vocab(["C", "A"]))
        [0, 1, 2, 3, 5, None, 4]
        """
        return [other._ids.get(s, i if i < len(SPECIAL_SYMBOLS) else None)
                for i, s in enumerate(self._symbols)]

    def __contains__(self, char: object) -> bool:
        return char in self._ids

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self._symbols == other._symbols

    def __hash__(self) -> int:
        return hash(self._symbols)

    def __repr__(self) -> str:
        return f"Vocab({''.join(self.chars)!r})"

    # ---- encode / decode -------------------------------------------------------------------
    def encode(self, text: str, add_eos: bool = False) -> list[int]:
        """Ids of the characters of ``text`` (unknown ones -> UNK), plus EOS if ``add_eos``."""
        ids = [self._ids.get(char, UNK) for char in text]
        if UNK in ids:
            self._warn_unknown(text)
        if add_eos:
            ids.append(EOS)
        return ids

    def _warn_unknown(self, text: str) -> None:
        new = sorted({c for c in text if c not in self._ids and c not in self._warned})
        if new:
            self._warned.update(new)
            _log.warning(
                "characters %s are not in the vocabulary and map to <unk> (rebuild the vocab "
                "or normalize the text first)",
                ", ".join(repr(c) for c in new),
            )

    def decode(self, ids: Iterable[int], strip_special: bool = True) -> str:
        """Text for ``ids`` (a list or a 1-D integer tensor).

        With ``strip_special`` a leading EOS is read as SOS and skipped, decoding stops at the next
        EOS, and PAD, UNK and BLANK are dropped. Without it every id is rendered, reserved ones by
        their names (``<pad>``, ``<eos>``, ...). Ids outside the vocabulary raise ``ValueError``.
        """
        ids = [int(i) for i in ids]
        for i in ids:
            if not 0 <= i < len(self._symbols):
                raise ValueError(f"Vocab.decode: id {i} outside the vocabulary of {len(self)}")
        if not strip_special:
            return "".join(self._symbols[i] for i in ids)
        if ids and ids[0] == EOS:
            ids = ids[1:]
        if EOS in ids:
            ids = ids[: ids.index(EOS)]
        return "".join(self._symbols[i] for i in ids if i >= len(SPECIAL_SYMBOLS))

    # ---- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": _VOCAB_FORMAT, "version": 1, "symbols": list(self._symbols)}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the vocabulary as JSON (atomically) and return the path."""
        path = Path(path)
        write_text_atomic(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocab:
        """Read a vocabulary written by :meth:`save`; anything else raises ``ValueError``."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not a JSON vocabulary file ({err})") from err
        if not isinstance(data, dict) or data.get("format") != _VOCAB_FORMAT:
            raise ValueError(
                f"{path}: not a speechattn vocabulary (expected a JSON object with "
                f'"format": "{_VOCAB_FORMAT}"; write one with Vocab.save)'
            )
        symbols = data.get("symbols")
        n_special = len(SPECIAL_SYMBOLS)
        if not isinstance(symbols, list) or tuple(symbols[:n_special]) != SPECIAL_SYMBOLS:
            raise ValueError(
                f"{path}: vocabulary 'symbols' must be a list starting with {list(SPECIAL_SYMBOLS)}"
            )
        try:
            return cls(symbols[n_special:])
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err


# --------------------------------------------------------------------------------------------
# Numbers as words (American English, no "and": 123 -> "one hundred twenty three")
# --------------------------------------------------------------------------------------------

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
_IRREGULAR_ORDINALS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth",
    "eight": "eighth", "nine": "ninth", "twelve": "twelfth",
}  # fmt: skip


def _below_thousand(n: int) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words += [_ONES[hundreds], "hundred"]
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_TENS[tens])
        if ones:
            words.append(_ONES[ones])
    elif rest:
        words.append(_ONES[rest])
    return words


def number_to_words(n: int) -> str:
    """Cardinal ``n`` in words; numbers of 10**15 and above are read digit by digit.

    >>> number_to_words(1_002_015)
    'one million two thousand fifteen'
    >>> number_to_words(-40)
    'minus forty'
    """
    if n < 0:
        return "minus " + number_to_words(-n)
    if n == 0:
        return "zero"
    if n >= 10**15:
        return " ".join(_ONES[int(d)] for d in str(n))
    words: list[str] = []
    for scale, name in _SCALES:
        count, n = divmod(n, scale)
        if count:
            words += _below_thousand(count) + [name]
    words += _below_thousand(n)
    return " ".join(words)


def ordinal_to_words(n: int) -> str:
    """Ordinal ``n`` in words.

    >>> ordinal_to_words(23)
    'twenty third'
    >>> ordinal_to_words(40)
    'fortieth'
    """
    return _ordinal_of(number_to_words(n))


def _ordinal_of(cardinal: str) -> str:
    """The ordinal of a number given in words: "twenty three" -> "twenty third"."""
    *head, last = cardinal.split()
    if last in _IRREGULAR_ORDINALS:
        last = _IRREGULAR_ORDINALS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join([*head, last])


def year_to_words(year: int) -> str:
    """Read a year as people say it; 2000-2009 and numbers outside 1000-9999 read as numbers.

    >>> [year_to_words(y) for y in (1905, 1900, 1999, 2000, 2007, 2024)]
    ['nineteen oh five', 'nineteen hundred', 'nineteen ninety nine', 'two thousand', 'two thousand seven', 'twenty twenty four']
    """
    if 2000 <= year <= 2009 or not 1000 <= year <= 9999:
        return number_to_words(year)
    century, rest = divmod(year, 100)
    if rest == 0:
        return f"{number_to_words(century)} hundred"
    if rest < 10:
        return f"{number_to_words(century)} oh {_ONES[rest]}"
    return f"{number_to_words(century)} {number_to_words(rest)}"


def _is_year(token: str) -> bool:
    """Four plain digits read as a year: 1100-1999 and 2010-2099 (2000-2009 read as numbers)."""
    if len(token) != 4:
        return False  # before int(): a token may be far too long for it
    value = int(token)
    return 1100 <= value <= 1999 or 2010 <= value <= 2099


def _digits_to_words(digits: str) -> str:
    return " ".join(_ONES[int(d)] for d in digits)


_DIGIT_BY_DIGIT = len(str(10**15))  # this many digits and more: read digit by digit


def _cardinal_words(digits: str) -> str:
    """``number_to_words(int(digits))`` for a string of digits of any length.

    Long strings never go through ``int()``, which refuses more than 4,300 digits; like
    :func:`number_to_words` they are read digit by digit, leading zeros dropped.
    """
    if len(digits) >= _DIGIT_BY_DIGIT:
        start = 0
        while start < len(digits) - 1 and unicodedata.digit(digits[start]) == 0:
            start += 1  # re's \d (and int()) also take non-ASCII digits, such as Arabic-Indic ones
        digits = digits[start:]
    if len(digits) >= _DIGIT_BY_DIGIT:
        return _digits_to_words(digits)
    return number_to_words(int(digits))


_GROUPED = re.compile(r"\b\d{1,3}(?:,\d{3})+\b")
_MONEY = re.compile(r"\$(\d+)(?:\.(\d\d))?\b")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_DECIMAL = re.compile(r"\b(\d+)\.(\d+)\b")
_PERCENT = re.compile(r"(\d)\s*%")
_INTEGER = re.compile(r"\d+")


def _money_words(match: re.Match) -> str:
    dollars, cents = _cardinal_words(match.group(1)), int(match.group(2) or 0)
    parts = []
    if dollars != "zero" or not cents:
        parts.append(f"{dollars} dollar{'' if dollars == 'one' else 's'}")
    if cents:
        parts.append(f"{number_to_words(cents)} cent{'' if cents == 1 else 's'}")
    return " ".join(parts)


def _integer_words(token: str, read_years: bool) -> str:
    if read_years and _is_year(token):
        return year_to_words(int(token))
    if len(token) > 1 and token.startswith("0"):
        return _digits_to_words(token)  # codes such as 007 are read digit by digit
    return _cardinal_words(token)


def _expand_numbers(text: str, read_years: bool) -> str:
    """Spell out money, grouped thousands, ordinals, decimals, percentages and integers."""
    text = _GROUPED.sub(lambda m: m.group(0).replace(",", ""), text)
    text = _PERCENT.sub(r"\1 percent", text)
    text = _MONEY.sub(_money_words, text)
    text = _ORDINAL.sub(lambda m: _ordinal_of(_cardinal_words(m.group(1))), text)
    text = _DECIMAL.sub(
        lambda m: f"{_cardinal_words(m.group(1))} point {_digits_to_words(m.group(2))}", text
    )
    return _INTEGER.sub(lambda m: _padded(m, _integer_words(m.group(0), read_years)), text)


def _padded(match: re.Match, words: str) -> str:
    """``words`` with a space on each side where the match touches a letter (abc123 -> abc ...)."""
    text, start, end = match.string, match.start(), match.end()
    before = " " if start > 0 and text[start - 1].isalpha() else ""
    after = " " if end < len(text) and text[end].isalpha() else ""
    return f"{before}{words}{after}"


# --------------------------------------------------------------------------------------------
# Normalizers
# --------------------------------------------------------------------------------------------

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_DASHES = re.compile("[\u2012\u2013\u2014\u2015]")
_SPACES = re.compile(r"\s+")


def _to_ascii(text: str) -> str:
    """Fold accents (café -> cafe) and typographic quotes/dashes to ASCII."""
    text = _DASHES.sub(" - ", text.translate(_QUOTES))
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalize_asr(text: str, read_years: bool = True) -> str:
    """Transcript for ASR: ``A-Z``, apostrophe and single spaces.

    Digits are spelled out (see :func:`normalize_tts` for the number rules; ``read_years``
    reads 1984 as "NINETEEN EIGHTY FOUR"). Hyphens, dashes and slashes become spaces, any other
    punctuation is dropped, apostrophes are kept only inside words (IT'S, not 'QUOTED').

    >>> normalize_asr("  Well-known: 3rd of 5, 1984 ... 'quoted'  ")
    'WELL KNOWN THIRD OF FIVE NINETEEN EIGHTY FOUR QUOTED'
    """
    text = _expand_numbers(_to_ascii(text), read_years).upper()
    text = re.sub(r"[-/\\_]", " ", text)
    text = re.sub(r"[^A-Z' \s]", "", text)
    text = re.sub(r"(?<![A-Z])'|'(?![A-Z])", " ", text)
    return _SPACES.sub(" ", text).strip()


# (pattern, expansion); patterns match case-insensitively at a word start.
_ABBREVIATIONS: tuple[tuple[str, str], ...] = (
    (r"mss\.", "manuscripts"),
    (r"mrs\.", "missus"), (r"mr\.", "mister"), (r"ms\.", "miss"), (r"dr\.", "doctor"),
    (r"prof\.", "professor"), (r"jr\.", "junior"), (r"sr\.", "senior"), (r"capt\.", "captain"),
    (r"gen\.", "general"), (r"col\.", "colonel"), (r"lt\.", "lieutenant"), (r"sgt\.", "sergeant"),
    (r"maj\.", "major"), (r"gov\.", "governor"), (r"rev\.", "reverend"), (r"hon\.", "honorable"),
    (r"mt\.", "mount"), (r"ft\.", "fort"), (r"co\.", "company"), (r"ltd\.", "limited"),
    (r"vs\.", "versus"), (r"etc\.", "et cetera"), (r"e\.g\.", "for example"),
    (r"i\.e\.", "that is"), (r"no\.(?=\s*\d)", "number"),
)  # fmt: skip
# "St." before a capitalised word is "saint" (St. Louis), otherwise "street" (Baker St.).
_SAINT = re.compile(r"\b[Ss][Tt]\.(?=\s+[A-Z])")
_STREET = re.compile(r"\b[Ss][Tt]\.")
_TTS_KEEP = re.compile(r"[^a-z!'\"(),\-.:;? ]")


def _expand_abbreviations(text: str) -> str:
    def sub(pattern: re.Pattern, words: str, text: str) -> str:
        # An abbreviation that ends the text also ends the sentence: keep one full stop.
        return pattern.sub(lambda m: words + ("." if not text[m.end() :].strip() else ""), text)

    for pattern, words in _ABBREVIATIONS:
        text = sub(re.compile(r"\b" + pattern, re.IGNORECASE), words, text)
    text = sub(_SAINT, "saint", text)
    return sub(_STREET, "street", text)


def normalize_tts(text: str, read_years: bool = True) -> str:
    """Text for TTS: lowercase words plus the punctuation ``! ' " ( ) , - . : ; ?``.

    Output is lowercase (a smaller character set and no capitalisation the voice cannot hear).
    Rules, in order: accents and typographic quotes folded to ASCII; abbreviations expanded
    (Mr. Mrs. Ms. Dr. Prof. Jr. Sr. St. Capt. Gen. Col. Lt. Sgt. Maj. Gov. Rev. Hon. Mt. Ft. Co.
    Ltd. vs. etc. e.g. i.e. and "No." before a digit); ``1,000`` grouping removed; ``$3.50`` ->
    "three dollars fifty cents"; ordinals ``1st 2nd 23rd``; decimals ``3.14`` -> "three point one
    four"; ``%`` -> "percent"; with ``read_years`` four-digit years 1100-1999 and 2010-2099 read
    as years ("nineteen oh five"); other integers as cardinals (leading zeros digit by digit);
    ``&`` -> "and"; other symbols dropped; whitespace collapsed.

    >>> normalize_tts("On May 23rd, 1905, Mrs. Lee paid $3.50 (e.g. 7.5% more)!")
    'on may twenty third, nineteen oh five, missus lee paid three dollars fifty cents (for example seven point five percent more)!'
    >>> normalize_tts("In 1984 there were 1,984 of them.", read_years=False)
    'in one thousand nine hundred eighty four there were one thousand nine hundred eighty four of them.'
    """
    text = _expand_abbreviations(_to_ascii(text))
    text = _expand_numbers(text, read_years).replace("&", " and ").lower()
    text = _TTS_KEEP.sub(" ", text)
    return _SPACES.sub(" ", text).strip()
