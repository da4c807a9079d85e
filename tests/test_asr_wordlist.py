"""Tests for speechattn/asr/wordlist.py (word-list costs) and its use in beam search and infer."""

import pytest
import torch

from speechattn.asr.decode import SearchConfig, beam_search, decode
from speechattn.asr.model import LAS, LASConfig
from speechattn.asr.wordlist import WordList
from speechattn.text import EOS, UNK, Vocab

VOCAB = Vocab.build(["THE CAT SAT", "A HAT'S"])
WORDS = ["THE", "CAT", "A", "HAT'S"]


def ids(text: str) -> list[int]:
    return VOCAB.encode(text)


def costs(words: WordList, spelled: str) -> dict[str, float]:
    row = words.penalties([[EOS, *ids(spelled)]], leave=5.0, per_word=1.0)[0]
    table = {char: float(row[VOCAB.encode(char)[0]]) for char in VOCAB.chars}
    table["<eos>"] = float(row[EOS])
    return table


def test_costs_by_hand():
    words = WordList(WORDS, VOCAB)
    # nothing spelled yet: any first letter of a listed word is free; a space ends an empty word
    start = costs(words, "")
    assert {c for c, v in start.items() if v == 0.0} == {"T", "C", "A", "H", "<eos>"}
    assert start[" "] == -1.0 and start["S"] == -5.0
    assert float(words.penalties([[EOS]], 5.0, 1.0)[0][UNK]) == -5.0  # UNK spells no word
    # "CA": only T continues a listed word; ending here leaves the list
    after_ca = costs(words, "CA")
    assert after_ca["T"] == 0.0 and after_ca["S"] == -5.0
    assert after_ca[" "] == -6.0 and after_ca["<eos>"] == -5.0
    # a complete word: a space costs the per-word penalty only, EOS nothing
    after_the = costs(words, "A CAT SAT THE")  # only the last word counts
    assert after_the[" "] == -1.0 and after_the["<eos>"] == 0.0 and after_the["A"] == -5.0
    assert costs(words, "HAT'")["S"] == 0.0  # the apostrophe is a letter like the others


def test_load_reads_plain_lists_and_cmudict_and_names_bad_files(tmp_path):
    path = tmp_path / "dict.txt"
    path.write_text("the  DH AH0\nthe(2)  DH IY0\n\ncat K AE1 T\ncafé K AE F\nHAT'S\n")
    words = WordList.load(path, VOCAB)
    assert words.words == {"THE", "CAT", "HAT'S"}  # variants merged, "CAFÉ" not spellable
    assert len(words) == 3
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \ncafé\n")
    with pytest.raises(ValueError, match="empty.txt: word list: no word"):
        WordList.load(empty, VOCAB)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="latin1.txt: not UTF-8"):
        WordList.load(latin1, VOCAB)


@pytest.fixture(scope="module")
def model() -> LAS:
    torch.manual_seed(0)
    return LAS(LASConfig.tiny(num_mels=8), len(VOCAB)).eval()


def test_free_costs_change_nothing_and_heavy_ones_keep_every_word_listed(model):
    torch.manual_seed(1)
    features, lengths = torch.randn(3, 60, 8), torch.tensor([60, 45, 30])
    words = WordList(WORDS, VOCAB)
    plain = beam_search(model, features, lengths, SearchConfig(beam_size=4))
    free = SearchConfig(beam_size=4, lexicon_penalty=0.0, word_penalty=0.0)
    assert [h.tokens for h in beam_search(model, features, lengths, free, words=words)] == [
        h.tokens for h in plain
    ]
    spelled = [VOCAB.decode(h.tokens).split() for h in plain]
    assert any(w not in WORDS for hyp in spelled for w in hyp)  # the untrained model babbles
    strict = SearchConfig(beam_size=4, lexicon_penalty=50.0, word_penalty=0.0)
    for hyp in decode(model, features, lengths, strict, words=words):
        text = VOCAB.decode(hyp.tokens)
        assert all(w in WORDS for w in text.split()) and "  " not in text
        assert len(text) == len(hyp.tokens)  # no UNK (decoded to nothing) slipped through


def test_penalty_values_are_checked():
    with pytest.raises(ValueError, match="lexicon_penalty=-1"):
        SearchConfig(lexicon_penalty=-1)
