"""Tests for speechattn/tts/text_input.py, synthesize.py and pretrained.py: text checks,
batched synthesis, outputs on disk, loading an experiment folder."""

import json
import logging

import pytest
import soundfile as sf
import torch

from speechattn.audio import FeatureConfig, GlobalCMVN
from speechattn.config import save_config
from speechattn.metrics import alignment_measures
from speechattn.nn.attention import AttentionConfig
from speechattn.nn.decoder import DecoderConfig
from speechattn.nn.encoder import EncoderConfig
from speechattn.plot import MAX_ALIGNMENT_CELLS, alignment_figure
from speechattn.text import Vocab
from speechattn.tts.data import TTSDataConfig
from speechattn.tts.decode import InferenceConfig
from speechattn.tts.model import PostnetConfig, PrenetConfig, Tacotron, TacotronConfig
from speechattn.tts.pretrained import LoadedTTS, load_tts
from speechattn.tts.recipe import TTSRecipeConfig
from speechattn.tts.synthesize import (
    SynthesisConfig,
    save_results,
    synthesize,
)
from speechattn.tts.text_input import (
    TextInputError,
    clean_text,
    prepare_texts,
    read_text_file,
    split_sentences,
)
from speechattn.vocoder import VocoderConfig

MELS = 16
VOCAB = Vocab.build(["abcdefghijklmnopqrstuvwxyz .,!?'"])


def features() -> FeatureConfig:
    return FeatureConfig(
        sample_rate=8000, n_fft=256, win_length=256, hop_length=80, n_mels=MELS, f_max=4000.0,
        mel_scale="slaney", norm="slaney", power=1.0,
    )  # fmt: skip


def model_config(post_attention_layers: int = 0) -> TacotronConfig:
    return TacotronConfig(
        num_mels=MELS,
        reduction_factor=2,
        embedding_dim=8,
        encoder=EncoderConfig(hidden_dim=6, num_layers=1, conv_channels=8, conv_layers=1, conv_kernel=3),
        prenet=PrenetConfig(dims=[8], dropout=0.5, dropout_at_inference=False),
        decoder=DecoderConfig(
            hidden_dim=12, num_layers=1, post_attention_layers=post_attention_layers,
            attention=AttentionConfig(attention_dim=4, location_channels=2, location_kernel=3),
        ),
        postnet=PostnetConfig(channels=4, layers=2, kernel=3),
    )


def synthesis_config(**kwargs) -> SynthesisConfig:
    inference = InferenceConfig(max_decoder_steps=kwargs.pop("max_decoder_steps", 20))
    return SynthesisConfig(inference=inference, vocoder=VocoderConfig(n_iter=4), **kwargs)


def make_tts(post_attention_layers: int = 0) -> LoadedTTS:
    torch.manual_seed(0)
    model = Tacotron(model_config(post_attention_layers), len(VOCAB)).eval()
    with torch.no_grad():
        model.stop_proj.bias.fill_(-100.0)  # never stops: every utterance runs to the cap
    cmvn = GlobalCMVN(torch.full((MELS,), -4.0), torch.ones(MELS))
    return LoadedTTS(model, VOCAB, cmvn, features(), synthesis_config())


@pytest.fixture
def tts() -> LoadedTTS:
    return make_tts()


# ---- text input ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_text_is_refused(text):
    with pytest.raises(TextInputError, match="empty text"):
        clean_text(text, VOCAB)


@pytest.mark.parametrize("text", ["日本語のテキスト", "### *** ###", "... ?!"])
def test_text_without_speakable_characters_is_refused(text):
    with pytest.raises(TextInputError, match="no speakable characters"):
        clean_text(text, VOCAB)


def test_clean_text_normalizes_and_drops_unknown_characters(caplog):
    vocab = Vocab.build(["abcdefghijklmnopqrstuvwxyz ."])  # no comma, no hyphen
    with caplog.at_level(logging.WARNING):
        assert clean_text("Dr. Who, 2 times.", vocab) == "doctor who two times."
        assert clean_text("well-known, yes", vocab) == "wellknown yes"
    assert "','" in caplog.text and "'-'" in caplog.text


def test_split_sentences_prefers_sentence_then_clause_then_word_boundaries():
    text = "first sentence here. second one, with a clause; third."
    assert split_sentences(text, 100) == [text]
    assert split_sentences(text, 30) == ["first sentence here.", "second one, with a clause;", "third."]
    assert split_sentences("a very, long clause indeed", 12) == ["a very,", "long clause", "indeed"]
    assert split_sentences("abcdefghij", 4) == ["abcd", "efgh", "ij"]
    for chunk in split_sentences(text * 5, 25):
        assert 0 < len(chunk) <= 25


def test_long_text_is_split_or_refused():
    text = "the cat sat. " * 30
    chunks = prepare_texts([text], VOCAB, max_chars=50)[0]
    assert len(chunks) > 1 and all(len(c) <= 50 for c in chunks)
    assert " ".join(chunks) == text.strip()
    with pytest.raises(TextInputError, match="over the limit of 50"):
        prepare_texts([text], VOCAB, max_chars=50, split=False)


def test_text_file_reading(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("\ufeffHello there.\n\n  Second line \n", encoding="utf-8")
    assert read_text_file(good) == ["Hello there.", "Second line"]
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("ok\ncaf\u00e9 au lait\n".encode("latin-1"))
    with pytest.raises(TextInputError, match=r"latin1\.txt: not UTF-8.*line 2"):
        read_text_file(latin)
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(TextInputError, match="blank.txt: no text"):
        read_text_file(blank)
    with pytest.raises(TextInputError, match="missing.txt: no such text file"):
        read_text_file(tmp_path / "missing.txt")


# ---- synthesis -------------------------------------------------------------------------------


def test_synthesis_results_and_cap_report(tts, caplog):
    with caplog.at_level(logging.WARNING):
        results = synthesize(tts, ["Hello world.", "Hi!"])
    assert len(results) == 2
    wave, rate, alignment, info = results[0]
    assert rate == 8000 and wave.dim() == 1 and torch.isfinite(wave).all()
    assert info["stop_reason"] == "max_decoder_steps" and info["decoder_steps"] == 20
    assert info["mel_frames"] == 40 and alignment.shape == (20, len("hello world.") + 1)
    assert info["duration_s"] == pytest.approx(wave.numel() / 8000, abs=1e-4)
    for key in ("focus_rate", "monotonicity", "rtf", "rtf_model", "rtf_vocoder"):
        assert info[key] >= 0
    assert "max_decoder_steps=20" in caplog.text


@pytest.mark.parametrize("post_attention_layers", [0, 1])
def test_batched_synthesis_equals_one_by_one(post_attention_layers):
    tts = make_tts(post_attention_layers)
    with torch.no_grad():
        tts.model.stop_proj.weight.mul_(20.0)
        tts.model.stop_proj.bias.fill_(0.0)
    texts = ["a short one.", "a rather longer sentence to speak.", "mid length text"]
    together = synthesize(tts, texts)
    for text, batched in zip(texts, together):
        alone = synthesize(tts, [text])[0]
        assert batched.info["decoder_steps"] == alone.info["decoder_steps"]
        torch.testing.assert_close(batched.alignment, alone.alignment, atol=1e-5, rtol=1e-4)
        # Griffin-Lim (momentum 0.99) amplifies float rounding a little: compare samples loosely.
        torch.testing.assert_close(batched.waveform, alone.waveform, atol=1e-3, rtol=0)


def test_split_text_keeps_one_alignment_per_chunk(tts):
    config = synthesis_config(max_text_chars=12, max_decoder_steps=5)
    (result,) = synthesize(tts, ["one two. three four."], config)
    wave, rate, alignment, info = result
    assert info["normalized"] == ["one two.", "three four."] and info["chunks"] == 2
    # Each chunk attends to its own characters only (what a block-diagonal matrix showed).
    first, second = result.alignments
    assert first.shape == (5, 9) and second.shape == (5, 12) and info["chunk_steps"] == [5, 5]
    assert alignment.shape == (10, 12) and torch.all(alignment[:5, 9:] == 0)
    for chunk, part in zip(info["normalized"], result.alignments):
        torch.testing.assert_close(part, synthesize(tts, [chunk], config)[0].alignment)
    # The utterance's measures: the chunks', weighted by decoder steps (here 5 and 5).
    halves = [alignment_measures(part) for part in result.alignments]
    for key, (one, two) in zip(("focus_rate", "monotonicity", "diagonality"), zip(*halves)):
        assert info[key] == pytest.approx((one + two) / 2, abs=1e-4)
    single = (5 * 2 - 1) * 80  # 5 steps of 2 frames: 9 hops of 80 samples
    assert wave.numel() == 2 * single + int(0.15 * rate)


def test_one_chunk_measures_are_those_of_its_alignment(tts):
    ((_, _, alignment, info),) = synthesize(tts, ["Hello world."])
    measures = alignment_measures(alignment)
    assert info["chunks"] == 1 and info["chunk_steps"] == [20]
    assert [info["focus_rate"], info["monotonicity"], info["diagonality"]] == [
        round(value, 4) for value in measures
    ]


def test_long_text_memory_grows_linearly(tts, tmp_path):
    """20,000 characters: the result holds sum U_i x max T_i attention weights, not a block-diagonal
    sum U x sum T matrix (3.2 GB at 5,000 characters with a trained voice; 15,000 ran out of memory
    plotting it), and its figure is drawn from a bounded image."""
    text = ("The quick brown fox jumps over the lazy dog, again and again. " * 400)[:20_000]
    (result,) = synthesize(tts, [text], synthesis_config(max_decoder_steps=3))
    info, limit = result.info, tts.config.max_text_chars
    assert info["chunks"] > 100 and info["decoder_steps"] == 3 * info["chunks"]
    assert result.alignment.numel() <= info["decoder_steps"] * (limit + 1)  # was x 20,000
    image = alignment_figure(result.alignment).axes[0].images[0].get_array()
    assert max(image.shape) <= MAX_ALIGNMENT_CELLS
    shapes = [tuple(part.shape) for part in result.alignments]
    assert shapes == [(3, len(chunk) + 1) for chunk in info["normalized"]]
    save_results([result], tmp_path)
    assert (tmp_path / "utt-0001.png").stat().st_size > 1000


def test_bad_texts_raise_before_any_work(tts):
    with pytest.raises(TextInputError, match="empty text"):
        synthesize(tts, ["fine text", ""])
    with pytest.raises(ValueError, match="no texts"):
        synthesize(tts, [])


def test_save_results_writes_wav_png_and_summary(tts, tmp_path):
    results = synthesize(tts, ["Hello world.", "Bye."])
    summary_path = save_results(results, tmp_path / "out", names=["a", "b"])
    summary = json.loads(summary_path.read_text())
    assert [u["name"] for u in summary["utterances"]] == ["a", "b"]
    assert summary["reached_cap"] == ["a", "b"]
    data, rate = sf.read(tmp_path / "out" / "a.wav", dtype="int16")
    assert rate == 8000 and len(data) == results[0].waveform.numel()
    assert sf.info(tmp_path / "out" / "a.wav").subtype == "PCM_16"
    assert (tmp_path / "out" / "b.png").stat().st_size > 1000


# ---- loading an experiment -------------------------------------------------------------------


def make_experiment(tmp_path, tts: LoadedTTS):
    exp = tmp_path / "exp"
    config = TTSRecipeConfig(
        model=model_config(), data=TTSDataConfig(features=features()), synthesis=synthesis_config()
    )
    save_config(config, exp / "config.yaml")
    VOCAB.save(exp / "vocab.json")
    tts.cmvn.save(exp / "mel_stats.json")
    torch.save({"model": tts.model.state_dict(), "step": 3}, exp / "best.pt")
    return exp


def test_load_tts_round_trip(tts, tmp_path):
    exp = make_experiment(tmp_path, tts)
    loaded = load_tts(exp)
    assert not loaded.model.training and loaded.vocab == VOCAB
    assert loaded.config.inference.max_decoder_steps == 20
    original, again = synthesize(tts, ["hello"])[0], synthesize(loaded, ["hello"])[0]
    torch.testing.assert_close(original.waveform, again.waveform)


def test_load_tts_errors_name_the_file(tts, tmp_path):
    exp = make_experiment(tmp_path, tts)
    (exp / "best.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="best.pt: not a loadable"):
        load_tts(exp)
    other = Tacotron(model_config(), len(VOCAB) + 3)
    torch.save({"model": other.state_dict()}, exp / "best.pt")
    with pytest.raises(ValueError, match="best.pt: weights do not fit the model of .*config.yaml"):
        load_tts(exp)
    torch.save({"model": tts.model.state_dict(), "step": 3}, exp / "best.pt")
    mel_stats = exp / "mel_stats.json"
    mel_stats.rename(exp / "kept.json")
    GlobalCMVN(torch.zeros(7), torch.ones(7)).save(mel_stats)  # statistics of other features
    with pytest.raises(ValueError, match=r"exp: mel_stats.json: 7 bins but model.num_mels="):
        load_tts(exp)
    (exp / "kept.json").replace(mel_stats)
    (exp / "best.pt").unlink()
    with pytest.raises(FileNotFoundError, match="no best.pt"):
        load_tts(exp)
    (exp / "vocab.json").unlink()
    with pytest.raises(FileNotFoundError, match="vocab.json: vocabulary missing; is .*exp a TTS experiment"):
        load_tts(exp)
