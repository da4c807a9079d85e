"""Tests for speechattn/asr/lm.py (character n-gram LM) and its shallow fusion in beam search."""

import json
import math

import pytest
import torch

from speechattn.asr import lm as lm_module
from speechattn.asr.decode import SearchConfig, beam_search, decode
from speechattn.asr.lm import CharNgramLM, LMConfig, fit_texts
from speechattn.asr.model import LAS, LASConfig
from speechattn.data.manifest import write_manifest
from speechattn.text import BLANK, EOS, PAD, UNK, Vocab

VOCAB = Vocab.build(["THE CAT SAT", "A HAT"])


def ids(text: str) -> list[int]:
    return VOCAB.encode(text)


@pytest.fixture(scope="module")
def lm() -> CharNgramLM:
    return fit_texts(["THE CAT SAT", "THE HAT", "A CAT SAT", "THE CAT"], VOCAB, LMConfig(order=4))


def test_every_distribution_sums_to_one_and_never_emits_specials(lm):
    histories = [[EOS], [EOS, *ids("THE")], [EOS, *ids("ZZZ CA")], [EOS, *ids("CAT SAT SAT")]]
    probs = lm.log_probs(histories).exp()  # (4, V)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(4), atol=1e-5, rtol=0)
    assert float(probs[:, [PAD, UNK, BLANK]].max()) < 1e-12


def test_kneser_ney_by_hand():
    # Order 2, D = 0.5 on "AB", "AB", "AC". Bigram counts (with the EOS framing): EOS A 3, A B 2,
    # B EOS 2, A C 1, C EOS 1. Unigram continuation counts: A 1, B 1, C 1, EOS 2 (total 5).
    vocab = Vocab.build(["ABC"])
    lm = CharNgramLM.fit([vocab.encode(t) for t in ("AB", "AB", "AC")], len(vocab), 2, 0.5)
    a, b, c = vocab.encode("ABC")
    emit = len(vocab) - 3  # PAD, UNK and BLANK are never emitted
    uni_b = (1 - 0.5) / 5 + 0.5 * 4 / 5 / emit
    uni_eos = (2 - 0.5) / 5 + 0.5 * 4 / 5 / emit
    after_a = lm.log_probs([[EOS, a]])[0].exp()
    assert float(after_a[b]) == pytest.approx((2 - 0.5) / 3 + 0.5 * 2 / 3 * uni_b, rel=1e-5)
    after_c = lm.log_probs([[EOS, c]])[0].exp()  # C seen once, then EOS
    assert float(after_c[EOS]) == pytest.approx((1 - 0.5) / 1 + 0.5 * 1 / 1 * uni_eos, rel=1e-5)
    # A context never seen (B then C) falls back to the shorter one (C).
    torch.testing.assert_close(lm.log_probs([[EOS, b, c]]), lm.log_probs([[EOS, c]]))


def test_it_prefers_the_text_it_was_fitted_on(lm):
    assert lm.sentence_log_prob(ids("THE CAT SAT")) > lm.sentence_log_prob(ids("TAH EHT CTA"))
    assert lm.perplexity([ids("THE CAT SAT")]) < lm.perplexity([ids("SAT TAC EHT")])


def test_save_load_round_trip_and_errors(lm, tmp_path):
    path = lm.save(tmp_path / "lm.json")
    loaded = CharNgramLM.load(path, len(VOCAB))
    histories = [[EOS, *ids("THE C")], [EOS]]
    torch.testing.assert_close(loaded.log_probs(histories), lm.log_probs(histories))
    with pytest.raises(ValueError, match="recognizer has 5"):
        CharNgramLM.load(path, 5)
    (tmp_path / "bad.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="bad.json: not a speechattn character LM"):
        CharNgramLM.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="order"):
        LMConfig(order=-1)
    with pytest.raises(ValueError, match="no text"):
        fit_texts([" "], VOCAB, LMConfig(order=3))
    with pytest.raises(ValueError, match="lm.order=0"):
        fit_texts(["THE CAT"], VOCAB, LMConfig())


def test_an_lm_file_of_the_first_format_still_loads(lm, tmp_path):
    # format 1 (experiments trained before the counts became arrays): [[ids...], count] rows
    rows = []
    for n, (keys, counts) in lm.ngrams.items():
        for key, count in zip(keys.tolist(), counts.tolist(), strict=True):
            gram = [(key // len(VOCAB) ** (n - 1 - i)) % len(VOCAB) for i in range(n)]
            rows.append([gram, count])
    record = {"format": "speechattn-char-ngram-1", "order": lm.order, "discount": lm.discount,
              "vocab_size": lm.vocab_size, "source": None, "ngrams": rows}  # fmt: skip
    (tmp_path / "old.json").write_text(json.dumps(record))
    old = CharNgramLM.load(tmp_path / "old.json", len(VOCAB))
    histories = [[EOS], [EOS, *ids("THE C")], [EOS, *ids("A H")], [EOS, *ids("ZZ")]]
    torch.testing.assert_close(old.log_probs(histories), lm.log_probs(histories), atol=0, rtol=0)
    assert old.count(ids("CAT")) == lm.count(ids("CAT")) == 3


def test_counting_and_the_limits_of_the_keys():
    vocab = Vocab.build(["AB"])
    lm = CharNgramLM.fit([vocab.encode("ABAB")], len(vocab), order=3)
    a, b = vocab.encode("AB")
    assert lm.count([a, b]) == 2 and lm.count([b, a]) == 1 and lm.count([EOS, a]) == 1
    assert lm.count([EOS, a, b]) == 1 and lm.count([a, b, EOS]) == 1 and lm.count([b, b]) == 0
    assert lm.context_of([EOS, a, b]) == (a, b) and lm.context_of([EOS, b, b]) == (b,)
    with pytest.raises(ValueError, match="does not fit 64-bit n-gram keys"):
        CharNgramLM.fit([vocab.encode("AB")], 300, order=8)


@pytest.fixture(scope="module")
def model() -> LAS:
    torch.manual_seed(0)
    return LAS(LASConfig.tiny(num_mels=8), len(VOCAB)).eval()


def test_fusion_weight_zero_changes_nothing_and_a_heavy_lm_decides(model, lm):
    torch.manual_seed(1)
    features, lengths = torch.randn(2, 60, 8), torch.tensor([60, 45])
    plain = beam_search(model, features, lengths, SearchConfig(beam_size=3))
    zero = beam_search(model, features, lengths, SearchConfig(beam_size=3), lm=lm)
    assert [h.tokens for h in plain] == [h.tokens for h in zero]
    # The untrained model has no opinion; at weight 20 the LM's favourite sentence wins.
    heavy = decode(model, features, lengths, SearchConfig(beam_size=3, lm_weight=20.0), lm=lm)
    assert [VOCAB.decode(h.tokens) for h in heavy] == ["THE CAT", "THE CAT"]
    assert [VOCAB.decode(h.tokens) for h in plain] != ["THE CAT", "THE CAT"]


def test_lm_weight_without_an_lm_is_an_error(model):
    with pytest.raises(ValueError, match="needs a language model"):
        decode(model, torch.randn(1, 20, 8), torch.tensor([20]), SearchConfig(lm_weight=0.3))
    with pytest.raises(ValueError, match="lm_weight=-1"):
        SearchConfig(lm_weight=-1)


def test_train_lm_command(tmp_path, capsys):
    VOCAB.save(tmp_path / "vocab.json")
    rows = [{"id": str(i), "audio": "x.flac", "text": t} for i, t in enumerate(["THE CAT", "A HAT"])]
    write_manifest(tmp_path / "train.jsonl", rows)
    (tmp_path / "more.txt").write_text("the cat sat\n\n")
    out = tmp_path / "lm.json"
    argv = ["--vocab", str(tmp_path / "vocab.json"), "--manifest", str(tmp_path / "train.jsonl"),
            "--text", str(tmp_path / "more.txt"), "--out", str(out), "--order", "3",
            "--dev", str(tmp_path / "train.jsonl")]  # fmt: skip
    assert lm_module.main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("3 sentences, order 3") and "perplexity" in printed
    loaded = CharNgramLM.load(out, len(VOCAB))
    assert loaded.order == 3 and loaded.count(ids("SAT")) == 1  # from more.txt, upper-cased
    assert loaded.count(ids("THE")) == 2 and loaded.count(ids("TAC")) == 0
    assert math.isfinite(loaded.perplexity([ids("THE HAT")]))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    bad = ["--vocab", str(tmp_path / "vocab.json"), "--text", str(tmp_path / "latin1.txt"),
           "--out", str(out)]  # fmt: skip
    assert lm_module.main(bad) == 1
    assert "latin1.txt: not UTF-8" in capsys.readouterr().err
