"""Tests for speechattn/text.py: vocabulary ids, persistence, unknown characters, normalizers."""

import json
import logging

import pytest
import torch

from speechattn.text import (
    BLANK,
    EOS,
    PAD,
    UNK,
    Vocab,
    normalize_asr,
    normalize_tts,
    number_to_words,
    ordinal_to_words,
)

# ---- Vocab ---------------------------------------------------------------------------------


@pytest.fixture
def vocab() -> Vocab:
    # Characters sorted by code point: ' ' 4, "'" 5, 'A' 6, 'B' 7, 'C' 8.
    return Vocab.build(["AB C'"])


def test_reserved_ids(vocab):
    assert (PAD, EOS, UNK, BLANK) == (0, 1, 2, 3)
    assert (vocab.pad_id, vocab.eos_id, vocab.sos_id, vocab.unk_id, vocab.blank_id) == (
        0, 1, 1, 2, 3,
    )  # fmt: skip
    assert len(vocab) == 9
    assert vocab.symbols == ("<pad>", "<eos>", "<unk>", "<blank>", " ", "'", "A", "B", "C")


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("AB C'", [6, 7, 4, 8, 5]),
        ("CAB", [8, 6, 7]),
        ("", []),
        ("C'A", [8, 5, 6]),
    ],
)
def test_encode_table(vocab, text, ids):
    assert vocab.encode(text) == ids
    assert vocab.decode(ids) == text


def test_encode_add_eos(vocab):
    assert vocab.encode("BA", add_eos=True) == [7, 6, 1]


@pytest.mark.parametrize(
    ("ids", "strip", "text"),
    [
        ([6, 7, 1, 8], True, "AB"),  # stops at EOS
        ([1, 6, 7, 1, 8], True, "AB"),  # leading EOS is the SOS
        ([6, 0, 3, 2, 7, 0, 0], True, "AB"),  # PAD, BLANK, UNK dropped
        ([1], True, ""),
        ([6, 1, 2, 3, 0], False, "A<eos><unk><blank><pad>"),
    ],
)
def test_decode_table(vocab, ids, strip, text):
    assert vocab.decode(ids, strip_special=strip) == text


def test_decode_tensor_and_bad_id(vocab):
    assert vocab.decode(torch.tensor([8, 6, 1])) == "CA"
    with pytest.raises(ValueError, match="id 9"):
        vocab.decode([9])


def test_round_trip(vocab, tmp_path):
    path = vocab.save(tmp_path / "model" / "vocab.json")
    loaded = Vocab.load(path)
    assert loaded == vocab
    assert loaded.symbols == vocab.symbols
    assert loaded.encode("AB C'") == [6, 7, 4, 8, 5]
    assert json.loads(path.read_text())["symbols"][4:] == [" ", "'", "A", "B", "C"]


def test_round_trip_non_ascii(tmp_path):
    vocab = Vocab.build(["naïve café", "日本"])
    assert Vocab.load(vocab.save(tmp_path / "v.json")) == vocab


def test_unknown_char_warns_once_per_char(vocab, caplog):
    with caplog.at_level(logging.WARNING, logger="speechattn.text"):
        assert vocab.encode("AZ") == [6, UNK]
        assert vocab.encode("ZZB") == [UNK, UNK, 7]
    assert len(caplog.records) == 1
    assert "'Z'" in caplog.records[0].getMessage()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="speechattn.text"):
        vocab.encode("Q")  # a new unknown character warns again
        vocab.encode("QZ")
    assert [r.getMessage().count("'Q'") for r in caplog.records] == [1]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="speechattn.text"):
        Vocab.build(["AB"]).encode("Z")  # a fresh instance has its own memory
    assert len(caplog.records) == 1


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not a JSON vocabulary"),
        ('{"weights": [1, 2]}', "not a speechattn vocabulary"),
        ("[1, 2, 3]", "not a speechattn vocabulary"),
        ('{"format": "speechattn-vocab", "symbols": ["a", "b"]}', "must be a list starting"),
        (
            '{"format": "speechattn-vocab", "symbols": ["<pad>", "<eos>", "<unk>", "<blank>", "ab"]}',
            "not a single character",
        ),
    ],
)
def test_load_rejects_non_vocab(tmp_path, content, match):
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=match) as info:
        Vocab.load(path)
    assert str(path) in str(info.value)


def test_constructor_rejects_duplicates():
    with pytest.raises(ValueError, match="more than once"):
        Vocab(["a", "b", "a"])


# ---- numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (20, "twenty"),
        (42, "forty two"),
        (100, "one hundred"),
        (101, "one hundred one"),
        (999, "nine hundred ninety nine"),
        (1000, "one thousand"),
        (1_000_001, "one million one"),
        (2_500_000_000, "two billion five hundred million"),
        (10**15, "one zero zero zero zero zero zero zero zero zero zero zero zero zero zero zero"),
    ],
)
def test_number_to_words(n, words):
    assert number_to_words(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1, "first"),
        (2, "second"),
        (3, "third"),
        (4, "fourth"),
        (5, "fifth"),
        (8, "eighth"),
        (9, "ninth"),
        (11, "eleventh"),
        (12, "twelfth"),
        (20, "twentieth"),
        (21, "twenty first"),
        (100, "one hundredth"),
        (1003, "one thousand third"),
    ],
)
def test_ordinal_to_words(n, words):
    assert ordinal_to_words(n) == words


# ---- normalizers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hello, world!", "HELLO WORLD"),
        ("  many   spaces\tand\nlines ", "MANY SPACES AND LINES"),
        ("It's John's 3 dogs.", "IT'S JOHN'S THREE DOGS"),
        ("'quoted' students' 'tis", "QUOTED STUDENTS TIS"),
        ("Room 101; 2nd floor", "ROOM ONE HUNDRED ONE SECOND FLOOR"),
        ("In 1984 and 2005", "IN NINETEEN EIGHTY FOUR AND TWO THOUSAND FIVE"),
        ("3.5 out of 10", "THREE POINT FIVE OUT OF TEN"),
        ("well-known and/or not", "WELL KNOWN AND OR NOT"),
        ("Café “déjà vu” — don’t", "CAFE DEJA VU DON'T"),
        ("Mr. Smith", "MR SMITH"),
        ("#$%&*", ""),
    ],
)
def test_normalize_asr_table(raw, expected):
    assert normalize_asr(raw) == expected


def test_normalize_asr_years_optional():
    assert normalize_asr("1984", read_years=False) == "ONE THOUSAND NINE HUNDRED EIGHTY FOUR"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hello, World!", "hello, world!"),
        ("I have 3 cats; you have 12?", "i have three cats; you have twelve?"),
        ("It costs $5 or $0.99.", "it costs five dollars or ninety nine cents."),
        ("Pi is about 3.14159.", "pi is about three point one four one five nine."),
        ("The 1st, 2nd, 3rd and 23rd.", "the first, second, third and twenty third."),
        (
            "It was 1905, not 1900 or 2019.",
            "it was nineteen oh five, not nineteen hundred or twenty nineteen.",
        ),
        ("1,000,000 people: 50% of them", "one million people: fifty percent of them"),
        ("Mr. and Mrs. Smith met Dr. Jones.", "mister and missus smith met doctor jones."),
        ("the eleventh century MSS.", "the eleventh century manuscripts."),  # LJ001-0033
        ("St. Louis is on Baker St.", "saint louis is on baker street."),
        ("Apples, pears, etc.", "apples, pears, et cetera."),
        ("Cats vs. dogs, e.g. Rex, i.e. mine", "cats versus dogs, for example rex, that is mine"),
        ("No. 5 said no.", "number five said no."),
        ('"Quick" (really) - fast: yes', '"quick" (really) - fast: yes'),
        ("R&D * 2", "r and d two"),
        ("Agent 007", "agent zero zero seven"),
    ],
)
def test_normalize_tts_table(raw, expected):
    assert normalize_tts(raw) == expected


def test_normalize_tts_years_optional():
    assert normalize_tts("in 1984", read_years=False) == "in one thousand nine hundred eighty four"


DIGIT_NAMES = "zero one two three four five six seven eight nine".split()


def test_numbers_over_the_int_conversion_limit_are_read_digit_by_digit():
    """int() refuses strings of more than 4,300 digits; such numbers are still spelled out."""
    digits = "1234567890" * 500  # 5,000 digits
    spelled = " ".join(DIGIT_NAMES[int(d)] for d in digits)
    text = normalize_tts(f"Call {digits} now.")
    assert text == f"call {spelled} now."
    assert len(text.split()) == 5_002
    assert normalize_tts(f"${digits}.50") == f"{spelled} dollars fifty cents"
    assert normalize_tts(f"the {digits}th") == f"the {spelled[: -len('zero')]}zeroth"
    assert normalize_tts(f"{digits}.25 or {digits}%") == (
        f"{spelled} point two five or {spelled} percent"
    )
    assert normalize_tts(f"{'0' * 10}{digits}st") == f"{spelled[: -len('zero')]}zeroth"
    assert normalize_asr(f"{digits} cats") == f"{spelled} cats".upper()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "999999999999999 x",
            "nine hundred ninety nine trillion nine hundred ninety nine billion nine hundred "
            "ninety nine million nine hundred ninety nine thousand nine hundred ninety nine x",
        ),
        ("1000000000000000", "one" + " zero" * 15),
        ("$0000000000000001234", "one thousand two hundred thirty four dollars"),
        ("$0000000000000000001.00", "one dollar"),
        ("000000000000000000021st", "twenty first"),
        ("0000000000000000007.5", "seven point five"),
    ],
)
def test_long_digit_strings_read_as_before(raw, expected):
    """Near 10**15, the switch to digit by digit, and leading zeros before money, ordinals and
    decimals (dropped, as int() dropped them)."""
    assert normalize_tts(raw) == expected
