"""The TTS recipe's commands end to end (prepare -> train -> synthesize) on a tiny LJSpeech-layout
folder, and the errors they report."""

import json

import numpy as np
import pytest
import soundfile as sf

from speechattn.tts import infer, prepare, training

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]  # trains (2 steps) and synthesizes

RATE = 22050
TINY = "recipes/tts/conf/tiny.yaml"
SHORT = ["train.max_steps=2", "train.valid_every=2", "train.checkpoint_every=2", "train.media_every=2", "train.progress=false"]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """A corpus of five tone "sentences", prepared and trained for 2 steps with tiny.yaml."""
    root = tmp_path_factory.mktemp("tts_recipe")
    corpus = root / "corpus"
    (corpus / "wavs").mkdir(parents=True)
    lines = []
    for k, text in enumerate(["one two.", "three four five.", "six.", "seven eight.", "nine, ten!"]):
        t = np.arange(int((0.3 + 0.1 * k) * RATE)) / RATE
        sf.write(corpus / "wavs" / f"T{k}.wav", (0.3 * np.sin(2 * np.pi * (150 + 40 * k) * t)).astype(np.float32), RATE)
        lines.append(f"T{k}|{text}|{text}")
    (corpus / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    data, exp = root / "data", root / "exp"
    assert prepare.main(["--ljspeech-dir", str(corpus), "--out", str(data), "--no-progress", "num_dev=1", "num_test=1"]) == 0
    assert training.main(["--config", TINY, "--data", str(data), "--exp", str(exp), *SHORT]) == 0
    return data, exp


def test_train_writes_the_experiment_files(experiment):
    data, exp = experiment
    for name in ("config.yaml", "vocab.json", "mel_stats.json", "features.json", "best.pt", "log.jsonl"):
        assert (exp / name).is_file(), name
    assert (exp / "checkpoints" / "step-0000002.pt").is_file()
    valid = [json.loads(line) for line in (exp / "log.jsonl").read_text().splitlines() if '"valid"' in line]
    assert {"mel_l1", "stop_accuracy", "focus_rate", "monotonicity", "reached_cap"} <= set(valid[-1])
    assert list((exp / "tensorboard").iterdir())  # media and scalars


def test_train_refuses_to_resume_with_another_model(experiment, capsys):
    data, exp = experiment
    code = training.main(["--config", TINY, "--data", str(data), "--exp", str(exp), *SHORT, "model.embedding_dim=16"])
    assert code == 1 and "other model settings" in capsys.readouterr().err


def test_synthesize_command_writes_wav_png_and_summary(experiment, tmp_path, capsys):
    _, exp = experiment
    out = tmp_path / "out"
    args = ["--exp", str(exp), "--text", "one two three.", "--out", str(out), "synthesis.inference.max_decoder_steps=12"]
    assert infer.main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    (item,) = summary["utterances"]
    assert item["decoder_steps"] <= 12 and item["stop_reason"] in ("stop_token", "max_decoder_steps")
    assert sf.info(out / "utt-0001.wav").subtype == "PCM_16" and (out / "utt-0001.png").is_file()
    assert "utt-0001:" in capsys.readouterr().out


def test_cli_synthesize_writes_the_wav_and_png_it_prints(experiment, tmp_path, capsys):
    """``speechattn synthesize --exp EXP "text" --out F.wav``: a 16-bit WAV at the voice's rate, an
    alignment PNG beside it, and one line naming both with the duration and why decoding stopped."""
    from speechattn.cli import main

    _, exp = experiment
    target = tmp_path / "speech" / "hello.wav"
    assert main(["synthesize", "--exp", str(exp), "Nine, ten!", "--out", str(target)]) == 0
    wav, png, info = capsys.readouterr().out.strip().split("\t")
    assert wav == str(target) and png == str(target.with_suffix(".png"))
    written = sf.info(target)
    assert written.samplerate == RATE and written.subtype == "PCM_16" and written.frames > 0
    info = json.loads(info)
    assert info["duration_s"] == pytest.approx(written.frames / RATE, abs=0.02)
    assert info["stop_reason"] in ("stop_token", "max_decoder_steps") and info["decoder_steps"] > 0
    assert 0 < info["focus_rate"] <= 1 and 0 <= info["monotonicity"] <= 1
    assert target.with_suffix(".png").stat().st_size > 1000
    assert main(["synthesize", "--model", str(tmp_path / "nowhere"), "hi", "-o", str(target)]) == 1
    assert "speechattn synthesize: error:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda d: ["--text", "   "], "empty text"),
        (lambda d: ["--text", "###"], "no speakable characters"),
        (lambda d: ["--text-file", str(d / "latin1.txt")], "latin1.txt: not UTF-8"),
        (lambda d: ["--text", "hi", "synthesis.vocoder.n_iters=3"], "unknown config key"),
        (lambda d: ["--text", "hi", "model.embedding_dim=3"], "only synthesis settings"),
    ],
)
def test_synthesize_command_errors_are_one_clear_line(experiment, tmp_path, capsys, make_args, message):
    _, exp = experiment
    (tmp_path / "latin1.txt").write_bytes("na\u00efve text\n".encode("latin-1"))
    code = infer.main(["--exp", str(exp), "--out", str(tmp_path / "out"), *make_args(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and message in err and err.startswith("synthesize: error:")


def test_synthesize_command_on_a_missing_experiment(tmp_path, capsys):
    assert infer.main(["--exp", str(tmp_path / "nope"), "--text", "hi", "--out", str(tmp_path)]) == 1
    assert "nope: experiment folder not found" in capsys.readouterr().err


def test_prepare_command_on_a_folder_without_metadata(tmp_path, capsys):
    assert prepare.main(["--ljspeech-dir", str(tmp_path), "--out", str(tmp_path / "data")]) == 1
    assert "no metadata.csv" in capsys.readouterr().err
