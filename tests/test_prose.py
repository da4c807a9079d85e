"""Tests for speechattn/offline/prose.py: WordNet's usage examples as corpus sentences."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from speechattn.offline import prose as prose_module
from speechattn.offline.prose import (
    WORDNET_DIR,
    WORDNET_FILES,
    ProseNotFoundError,
    load_prose,
    parse_examples,
)

HEADER = "  1 This software and database is being provided to you, the LICENSEE, by\n"


def _line(offset: int, gloss: str) -> str:
    return f"{offset:08d} 03 n 01 word 0 000 | {gloss}\n"


@pytest.fixture
def wordnet(tmp_path: Path) -> Path:
    """A WordNet-layout folder: the four data files, a licence header line in each."""
    lines = {
        "data.noun": [
            _line(1, 'a thing; "the cat sat on the mat"; "the cat sat on the mat"'),
            _line(2, 'a count; "she bought 3 apples at the market"; "he ran 2.5 miles today"'),
            _line(3, 'a phrase; "a red ball"'),  # three words: a phrase, not kept
        ],
        "data.verb": [_line(4, 'to speak; "`none\' is separative here"; "He spoke for an hour"')],
        "data.adj": [_line(5, 'brave; "the brave knight (of old) rode on"; "a very brave new knight"')],
        "data.adv": [_line(6, 'quickly; "she ran home very quickly indeed"')],
    }
    for name in WORDNET_FILES:
        (tmp_path / name).write_text(HEADER + "".join(lines[name]), encoding="latin-1")
    return tmp_path


def test_examples_are_filtered_normalized_and_deduplicated(wordnet: Path) -> None:
    source = load_prose(0, wordnet)
    assert sorted(s.raw for s in source.sentences) == sorted([
        "the cat sat on the mat",  # once, though quoted twice
        "she bought 3 apples at the market",
        "He spoke for an hour",
        "a very brave new knight",
        "she ran home very quickly indeed",
    ])  # fmt: skip
    apples = next(s for s in source.sentences if "apples" in s.raw)
    assert apples.normalized == "She bought three apples at the market"
    assert apples.transcript == "SHE BOUGHT THREE APPLES AT THE MARKET"


def test_same_seed_same_order_other_seed_other_order(wordnet: Path) -> None:
    first, again = load_prose(0, wordnet), load_prose(0, wordnet)
    assert first == again
    orders = {tuple(s.raw for s in load_prose(seed, wordnet).sentences) for seed in range(6)}
    assert len(orders) > 1
    assert len({load_prose(seed, wordnet).digest for seed in range(6)}) == 1  # the text's, not the order's


def test_missing_wordnet_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(ProseNotFoundError, match=r"data\.noun not found.*apt-get install wordnet-base"):
        load_prose(0, tmp_path)


def test_parse_examples_skips_the_licence_header() -> None:
    assert parse_examples(HEADER) == []
    assert parse_examples(_line(7, 'no examples here')) == []
    assert parse_examples(_line(8, '"one"; "two words"')) == ["one", "two words"]
    assert doctest.testmod(prose_module).failed == 0


@pytest.mark.skipif(not (WORDNET_DIR / "data.noun").is_file(), reason="needs wordnet-base")
def test_the_installed_wordnet_gives_tens_of_thousands_of_sentences() -> None:
    source = load_prose(0)
    assert len(source.sentences) > 30000
    transcripts = [s.transcript for s in source.sentences]
    assert len(set(transcripts)) == len(transcripts)
    words = {w for t in transcripts for w in t.split()}
    assert len(words) > 20000  # far more than the grammar's lexicon
