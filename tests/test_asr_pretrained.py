"""Tests for speechattn/asr/pretrained.py and infer.py: loading checks, transcribe, --audio mode."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from speechattn.asr import infer
from speechattn.asr.model import LAS
from speechattn.asr.pretrained import load_asr, transcribe
from speechattn.asr.recipe import ASRRecipeConfig
from speechattn.audio import GlobalCMVN
from speechattn.config import resolve_config, save_config
from speechattn.text import Vocab

TINY = "recipes/asr/conf/tiny.yaml"


def make_exp(path, overrides=()):
    """An untrained experiment folder, laid out as train writes it."""
    config = resolve_config(ASRRecipeConfig, TINY, ["search.max_length_offset=3", *overrides])
    vocab = Vocab.build(["HELLO WORLD"])
    torch.manual_seed(0)
    model = LAS(config.model, len(vocab))
    path.mkdir(parents=True, exist_ok=True)
    save_config(config, path / "config.yaml")
    vocab.save(path / "vocab.json")
    GlobalCMVN(torch.zeros(80), torch.ones(80)).save(path / "cmvn.json")
    torch.save({"model": model.state_dict(), "step": 0}, path / "best.pt")
    return path


def test_load_asr_returns_eval_model_vocab_cmvn_config(tmp_path):
    asr = load_asr(make_exp(tmp_path / "exp"))
    model, vocab, cmvn, config = asr.model, asr.vocab, asr.cmvn, asr.config
    assert asr.lm is None and asr.source == str(tmp_path / "exp")
    assert not model.training and model.vocab_size == len(vocab) == 4 + len(" DEHLORW")
    assert cmvn.mean.shape == (80,) and config.model.encoder.hidden_dim == 32


def test_load_asr_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere: experiment folder not found"):
        load_asr(tmp_path / "nowhere")
    exp = make_exp(tmp_path / "exp")
    (exp / "vocab.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"vocab.json: vocabulary missing; is .*exp an ASR experiment"):
        load_asr(exp)
    exp = make_exp(tmp_path / "truncated")
    (exp / "best.pt").write_bytes((exp / "best.pt").read_bytes()[:100])
    with pytest.raises(ValueError, match="best.pt: not a loadable speechattn checkpoint"):
        load_asr(exp)
    exp = make_exp(tmp_path / "other")
    make_exp(tmp_path / "bigger", ["model.decoder.hidden_dim=24"])
    with pytest.raises(ValueError, match="weights do not fit the model"):
        load_asr(exp, checkpoint=tmp_path / "bigger" / "best.pt")
    (exp / "best.pt").unlink()
    with pytest.raises(FileNotFoundError, match="no best.pt and no checkpoints"):
        load_asr(exp)
    (exp / "config.yaml").write_text("model:\n  bogus_key: 1\n")
    with pytest.raises(ValueError, match="config.yaml: not an ASR recipe config"):
        load_asr(exp)


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    exp = make_exp(tmp_path / "exp")
    torch.save({"model": {}, "evil": object.__new__(Vocab)}, exp / "best.pt")
    with pytest.raises(ValueError, match="not a loadable speechattn checkpoint"):
        load_asr(exp)


def test_transcribe_tensors_and_files_match(tmp_path):
    asr = load_asr(make_exp(tmp_path / "exp"))
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (8000, 16000, 3000)]
    paths = []
    for i, wave in enumerate(waves):
        sf.write(tmp_path / f"{i}.wav", wave, 16000, subtype="FLOAT")
        paths.append(tmp_path / f"{i}.wav")
    from_tensors = transcribe(asr, [torch.from_numpy(w) for w in waves])
    assert from_tensors == transcribe(asr, paths)
    assert all(isinstance(t, str) for t in from_tensors) and len(from_tensors) == 3
    alone = [transcribe(asr, [p])[0] for p in paths]
    assert alone == from_tensors  # batching does not change the result
    recognized = asr.recognize(paths, keep_attention=True)
    assert [r.text for r in recognized] == from_tensors  # in input order
    for r, wave in zip(recognized, waves, strict=True):
        frames = asr.frontend.num_frames(len(wave))
        encoder_frames = int(asr.model.encoder.output_lengths(torch.tensor([frames])))
        assert r.attention.shape == (len(r.text) + 1, encoder_frames)  # a row per character + EOS


def test_infer_audio_mode_writes_hypotheses_without_scoring(tmp_path, capsys):
    exp = make_exp(tmp_path / "exp")
    sf.write(tmp_path / "a.wav", np.zeros(8000, dtype=np.float32), 16000)
    (tmp_path / "bad.flac").write_bytes(b"not audio")
    out = tmp_path / "out"
    audio = [str(tmp_path / "a.wav"), str(tmp_path / "bad.flac")]
    code = infer.main(
        ["--exp", str(exp), "--audio", *audio, "--out", str(out), "--beam", "2", "--no-progress"]
    )
    assert code == 0
    lines = (out / "hyp.txt").read_text().splitlines()
    assert len(lines) == 1 and lines[0].split(" ")[0] == "a"
    assert not (out / "summary.json").exists()
    assert "1 skipped" in capsys.readouterr().out


def test_infer_lexicon_keeps_every_word_listed_and_is_recorded(tmp_path):
    exp = make_exp(tmp_path / "exp")
    rng = np.random.default_rng(1)
    audio = []
    for i in range(3):
        sf.write(tmp_path / f"{i}.wav", rng.standard_normal(12000).astype(np.float32) * 0.1, 16000)
        audio.append(str(tmp_path / f"{i}.wav"))
    (tmp_path / "words.txt").write_text("hello HH AH L OW\nworld W ER L D\n")
    argv = ["--exp", str(exp), "--audio", *audio, "--beam", "3", "--no-progress"]
    assert infer.main([*argv, "--out", str(tmp_path / "plain")]) == 0
    plain = (tmp_path / "plain" / "hyp.txt").read_text().split()
    assert set(plain) - {"0", "1", "2", "HELLO", "WORLD"}  # untrained: not words
    out = tmp_path / "listed"
    lexicon = ["--lexicon", str(tmp_path / "words.txt"), "--lexicon-penalty", "50"]
    assert infer.main([*argv, *lexicon, "--out", str(out)]) == 0
    assert set((out / "hyp.txt").read_text().split()) <= {"0", "1", "2", "HELLO", "WORLD"}
    record = json.loads((out / "decode.json").read_text())
    assert record["lexicon"].endswith("words.txt (2 words)")
    assert record["search"]["lexicon_penalty"] == 50.0


def test_python_api_takes_a_lexicon_too(tmp_path):
    from speechattn.api import ASR

    exp = make_exp(tmp_path / "exp")
    (tmp_path / "words.txt").write_text("HELLO\nWORLD\n")
    waves = [np.random.default_rng(i).standard_normal(12000).astype(np.float32) * 0.1 for i in range(3)]
    plain = [ASR.load(exp).transcribe(w, beam_size=3) for w in waves]
    assert any(set(t.split()) - {"HELLO", "WORLD"} for t in plain)
    listed = ASR.load(exp, lexicon=tmp_path / "words.txt")
    assert len(listed.words) == 2
    for wave in waves:
        assert set(listed.transcribe(wave, beam_size=3).split()) <= {"HELLO", "WORLD"}


def test_infer_reports_a_missing_experiment(tmp_path, capsys):
    code = infer.main(["--exp", str(tmp_path / "none"), "--manifest", str(tmp_path / "m.jsonl"),
                       "--out", str(tmp_path / "o")])  # fmt: skip
    assert code == 1 and "experiment folder not found" in capsys.readouterr().err
