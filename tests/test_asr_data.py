"""Tests for speechattn/asr/data.py: odd audio is skipped or converted, and runs complete."""

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from speechattn.asr import training
from speechattn.asr.data import ASRDataset, FeatureFrontEnd, take_minutes
from speechattn.asr.infer import run_decode
from speechattn.asr.model import LAS
from speechattn.asr.pretrained import LoadedASR
from speechattn.asr.recipe import ASRRecipeConfig
from speechattn.asr.scoring import score_hypotheses
from speechattn.audio import FeatureConfig, GlobalCMVN, LogMel, compute_cmvn, resample
from speechattn.config import resolve_config
from speechattn.data.manifest import read_manifest, write_manifest
from speechattn.metrics import error_rates
from speechattn.text import EOS, Vocab

pytestmark = pytest.mark.usefixtures("one_thread")

RATE = 16000
TEXT = "A CAB"
TINY = "recipes/asr/conf/tiny.yaml"


def _tone(seconds: float, rate: int = RATE, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * math.pi * 440 * t) + 0.01 * np.random.default_rng(0).standard_normal(
        t.size
    )
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


@pytest.fixture()
def odd_manifest(tmp_path):
    """Rows: good, stereo, 8 kHz, NaN, corrupt, empty, zero-length, too short, missing audio."""
    sf.write(tmp_path / "good.wav", _tone(1.0), RATE)
    sf.write(tmp_path / "stereo.flac", _tone(1.0, channels=2) * [1.0, 0.25], RATE)
    sf.write(tmp_path / "rate8k.wav", _tone(1.0, rate=8000), 8000)
    nan = _tone(1.0).astype(np.float32)
    nan[5000] = np.nan
    sf.write(tmp_path / "nan.wav", nan, RATE, subtype="FLOAT")
    (tmp_path / "corrupt.flac").write_bytes(b"fLaC" + bytes(range(256)) * 8)
    (tmp_path / "empty.wav").write_bytes(b"")
    sf.write(tmp_path / "zero.wav", np.zeros(0, dtype=np.float32), RATE)
    sf.write(tmp_path / "short.wav", _tone(0.005), RATE)
    names = ["good.wav", "stereo.flac", "rate8k.wav", "nan.wav", "corrupt.flac", "empty.wav",
             "zero.wav", "short.wav", "missing.wav"]  # fmt: skip
    rows = [{"id": n.split(".")[0], "audio": str(tmp_path / n), "duration": 1.0, "text": TEXT}
            for n in names]  # fmt: skip
    log_mel = LogMel(FeatureConfig())
    mean, std = compute_cmvn([log_mel(torch.from_numpy(_tone(1.0)).float())])
    return rows, Vocab.build([TEXT]), GlobalCMVN(mean, std)


def test_unusable_audio_is_skipped_with_reasons(odd_manifest):
    rows, vocab, cmvn = odd_manifest
    dataset = ASRDataset(rows, vocab, FeatureFrontEnd(FeatureConfig(), cmvn), "odd.jsonl")
    assert [r["id"] for r in dataset.rows] == ["good", "stereo", "rate8k", "nan"]
    reasons = dict(dataset.skipped)
    assert set(reasons) == {"corrupt", "empty", "zero", "short", "missing"}
    assert "unreadable" in reasons["corrupt"] and "empty" in reasons["empty"]
    assert "zero-length" in reasons["zero"] and "too short" in reasons["short"]
    assert "missing" in reasons["missing"]


def test_stereo_and_other_rates_are_converted(odd_manifest):
    rows, vocab, cmvn = odd_manifest
    frontend = FeatureFrontEnd(FeatureConfig(), cmvn)
    dataset = ASRDataset(rows, vocab, frontend, "odd.jsonl", cache=False)
    good, stereo, rate8k = (dataset.features(i) for i in range(3))
    assert good.shape == (101, 80) and dataset.lengths[:3] == [101, 101, 101]
    channels, _ = sf.read(rows[1]["audio"], dtype="float32")  # (S, 2)
    torch.testing.assert_close(stereo, frontend(torch.from_numpy(channels.mean(axis=1))))
    narrow, _ = sf.read(rows[2]["audio"], dtype="float32")
    expected = frontend(resample(torch.from_numpy(narrow), 8000, RATE))
    torch.testing.assert_close(rate8k, expected)  # resampled to 16 kHz before the features


def test_audio_failing_at_load_is_dropped_from_batches(odd_manifest):
    rows, vocab, cmvn = odd_manifest
    dataset = ASRDataset(rows, vocab, FeatureFrontEnd(FeatureConfig(), cmvn), "odd.jsonl")
    batch = dataset.batch([0, 1, 2, 3])
    assert batch.ids == ["good", "stereo", "rate8k"]  # "nan" holds NaN samples
    assert batch.features.shape == (3, 101, 80) and batch.lengths.tolist() == [101] * 3
    assert batch.targets[0].tolist() == vocab.encode(TEXT) + [EOS]
    assert dataset.batch([3]).ids == ["good"]  # a stand-in keeps a training step fed
    assert dataset.batch([3], stand_in=False) is None


def test_decode_and_score_complete_on_odd_manifest(odd_manifest, tmp_path):
    rows, vocab, cmvn = odd_manifest
    config = resolve_config(ASRRecipeConfig, TINY, ["search.max_length_offset=3"])
    torch.manual_seed(0)
    asr = LoadedASR(LAS(config.model, len(vocab)).eval(), vocab, cmvn, config)
    out = tmp_path / "decode"
    speaker_of = {"good": 1, "stereo": 2, "rate8k": 2}
    rows = [{**r, "speaker": speaker_of.get(r["id"], 3)} for r in rows]
    record = run_decode(asr, rows, config.search, out, plot=1, progress=False)
    assert record["utterances"] == 3
    assert {s["id"] for s in record["skipped"]} == {
        "corrupt",
        "empty",
        "zero",
        "short",
        "missing",
        "nan",
    }
    assert len((out / "hyp.txt").read_text().splitlines()) == 3
    summary = score_hypotheses(out, record)
    assert summary["utterances"] == 3 and summary["cer"] >= 0
    hyps = read_manifest(out / "hyps.jsonl")
    assert {h["id"]: h["speaker"] for h in hyps} == speaker_of
    assert {s: v["utterances"] for s, v in summary["speakers"].items()} == {"1": 1, "2": 2}
    two = [h for h in hyps if h["speaker"] == 2]
    expected = error_rates([h["ref"] for h in two], [h["hyp"] for h in two])
    assert summary["speakers"]["2"]["cer"] == round(expected.cer, 4)
    assert len(list((out / "alignments").glob("*.png"))) == 1


def test_training_run_completes_on_odd_manifest(odd_manifest, tmp_path):
    rows, vocab, cmvn = odd_manifest
    data = tmp_path / "data"
    for split in ("train", "dev"):
        write_manifest(data / f"{split}.jsonl", rows)
    vocab.save(data / "vocab.json")
    cmvn.save(data / "cmvn.json")
    exp = tmp_path / "exp"
    argv = ["--config", TINY, "--data", str(data), "--exp", str(exp),
            "train.max_steps=2", "train.progress=false", "search.max_length_offset=3"]  # fmt: skip
    assert training.main(argv) == 0
    valid = [json.loads(line) for line in (exp / "log.jsonl").read_text().splitlines()]
    assert valid[-1]["split"] == "valid" and valid[-1]["utterances"] == 3.0


def _frontend() -> FeatureFrontEnd:
    config = FeatureConfig()
    return FeatureFrontEnd(config, GlobalCMVN(torch.zeros(config.n_mels), torch.ones(config.n_mels)))


@pytest.mark.parametrize("speed", [0.9, 1.1])
def test_speed_perturbation_scales_the_feature_length(tmp_path, speed):
    sf.write(tmp_path / "a.wav", _tone(2.0), RATE)
    rows = [{"id": "a", "audio": str(tmp_path / "a.wav"), "text": TEXT}]
    plain = ASRDataset(rows, Vocab.build([TEXT]), _frontend()).features(0)
    perturbed = ASRDataset(rows, Vocab.build([TEXT]), _frontend(), speeds=[speed]).features(0)
    assert abs(perturbed.shape[0] - plain.shape[0] / speed) <= 1  # 201 frames -> 223 or 182
    assert perturbed.shape[0] != plain.shape[0]


def test_speed_perturbation_draws_a_factor_per_load_from_the_seed(tmp_path):
    sf.write(tmp_path / "a.wav", _tone(2.0), RATE)
    rows = [{"id": "a", "audio": str(tmp_path / "a.wav"), "text": TEXT}]

    def lengths(seed):
        torch.manual_seed(seed)
        data = ASRDataset(rows, Vocab.build([TEXT]), _frontend(), speeds=[0.9, 1.0, 1.1])
        return [data.features(0).shape[0] for _ in range(12)]

    first = lengths(0)
    assert first == lengths(0)  # the trainer's saved RNG state replays it on resume
    assert set(first) == {182, 201, 223}
    assert resolve_config(ASRRecipeConfig, TINY, ["data.speed_perturb=[0.9,1.0,1.1]"]
                          ).data.speed_perturb == [0.9, 1.0, 1.1]
    with pytest.raises(ValueError, match=r"data.speed_perturb=\[3.0\]"):
        resolve_config(ASRRecipeConfig, TINY, ["data.speed_perturb=[3.0]"])


def test_train_minutes_takes_nested_fixed_subsets_of_about_that_much_audio():
    rows = [{"id": f"u{i:03d}", "duration": 2.0 + (i * 7) % 11} for i in range(200)]
    ten, twenty = take_minutes(rows, 10), take_minutes(rows, 20)
    seconds = [sum(r["duration"] for r in part) for part in (ten, twenty)]
    assert 600 <= seconds[0] < 600 + 13 and 1200 <= seconds[1] < 1200 + 13  # stops past the mark
    assert {r["id"] for r in ten} < {r["id"] for r in twenty}  # nested, so the curve compares
    assert [r["id"] for r in ten] == sorted(r["id"] for r in ten)  # the manifest's order
    assert ten != rows[: len(ten)]  # a random draw, not the manifest's head
    assert take_minutes(list(reversed(rows)), 10) == list(reversed(ten))  # depends on rows only
    assert take_minutes(rows, 0) == rows
    with pytest.raises(ValueError, match=r"data.train_minutes=-1"):
        resolve_config(ASRRecipeConfig, TINY, ["data.train_minutes=-1"])
