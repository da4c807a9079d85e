"""Tests for speechattn/tts/prepare.py and data.py on a tiny LJSpeech-layout folder built here."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from speechattn.audio import FeatureConfig, GlobalCMVN, check_features
from speechattn.data.manifest import read_manifest
from speechattn.text import Vocab
from speechattn.tts.data import TTSDataset
from speechattn.tts.prepare import PrepareConfig, main, prepare_tts, voiced_bounds

RATE = 22050
SILENCE = 0.3  # seconds of silence before and after each tone


def tone(seconds: float, freq: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    voiced = 0.5 * np.sin(2 * np.pi * freq * t) * np.hanning(len(t)) ** 0.1
    pad = np.zeros(int(SILENCE * RATE))
    return np.concatenate([pad, voiced, pad]).astype(np.float32)


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "LJSpeech-1.1"
    (root / "wavs").mkdir(parents=True)
    lines = []
    for k in range(6):
        sf.write(root / "wavs" / f"LJ001-{k:04d}.wav", tone(0.4 + 0.1 * k, 200 + 50 * k), RATE)
        lines.append(f"LJ001-{k:04d}|Raw text {k}.|Sentence number {k}, Mr. Smith.")
    (root / "wavs" / "LJ002-0000.wav").write_bytes(b"RIFF\x00\x01garbage that is no wave file")
    lines.append("LJ002-0000|Corrupt audio.|Corrupt audio.")
    sf.write(root / "wavs" / "LJ002-0001.wav", tone(0.5, 300), RATE)
    lines.append("LJ002-0001||")  # empty text
    sf.write(root / "wavs" / "LJ002-0002.wav", tone(0.5, 300), RATE)
    lines.append("LJ002-0002|???|???")  # nothing speakable
    lines.append("LJ002-0003|No audio file.|No audio file.")
    sf.write(root / "wavs" / "LJ002-0004.wav", np.zeros(RATE, dtype=np.float32), RATE)
    lines.append("LJ002-0004|Only silence.|Only silence.")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "test_sentences.txt").write_text("LJ001-0005|Raw text 5.\n", encoding="utf-8")
    return tmp_path


def test_prepare_builds_manifests_mels_stats_and_skips_bad_rows(corpus, tmp_path):
    out = tmp_path / "data"
    summary = prepare_tts(corpus, out, PrepareConfig(num_dev=1), progress=False)
    assert summary.counts == {"train": 4, "dev": 1, "test": 1}
    reasons = dict(summary.skipped)
    assert set(reasons) == {"LJ002-0000", "LJ002-0001", "LJ002-0002", "LJ002-0003", "LJ002-0004"}
    assert reasons["LJ002-0000"].startswith("unreadable audio") and "LJ002-0000.wav" in reasons["LJ002-0000"]
    assert reasons["LJ002-0001"] == "metadata.csv:8: empty text"
    assert reasons["LJ002-0002"] == "no letters in the text after normalization"
    assert reasons["LJ002-0003"] == "metadata.csv:10: missing audio file"
    assert reasons["LJ002-0004"] == "silent audio (peak 0.0e+00)"
    skipped_tsv = (out / "skipped.tsv").read_text().splitlines()
    assert len(skipped_tsv) == 5 and skipped_tsv[1] == "LJ002-0001\tmetadata.csv:8: empty text"

    test = read_manifest(out / "test.jsonl")
    assert [row["id"] for row in test] == ["LJ001-0005"]  # the held-out list
    rows = read_manifest(out / "train.jsonl") + read_manifest(out / "dev.jsonl")
    assert sorted(row["id"] for row in rows) == [f"LJ001-{k:04d}" for k in range(5)]
    first = next(row for row in rows + test if row["id"] == "LJ001-0000")
    assert first["text"] == "sentence number zero, mister smith."
    mel = np.load(out / first["mel"])
    assert mel.dtype == np.float32 and mel.shape == (first["frames"], 80)
    # 0.4 s of tone inside 0.6 s of silence: trimming keeps the tone plus 2 x 0.05 s margins.
    assert 0.4 <= first["duration"] <= 0.6
    assert first["duration"] == pytest.approx(first["frames"] * 256 / RATE, abs=1e-3)

    stats = GlobalCMVN.load(out / "mel_stats.json")
    train_mels = torch.cat([torch.from_numpy(np.load(out / r["mel"])) for r in read_manifest(out / "train.jsonl")])
    torch.testing.assert_close(stats.mean, train_mels.mean(0), atol=1e-4, rtol=1e-4)
    assert set(Vocab.load(out / "vocab.json").chars) <= set("abcdefghijklmnopqrstuvwxyz ,.")
    report = json.loads((out / "prepare.json").read_text())
    assert (report["found"], report["counts"]["train"], report["skipped"]) == (11, 4, 5)
    assert summary.found == 11 == sum(summary.counts.values()) + len(summary.skipped)


def test_prepare_is_idempotent_and_reuses_cached_mels(corpus, tmp_path):
    out = tmp_path / "data"
    first = prepare_tts(corpus, out, PrepareConfig(num_dev=1), progress=False)
    assert first.computed == 8  # every row with a non-empty wav and some letters in its text
    manifests = {name: (out / name).read_text() for name in ("train.jsonl", "dev.jsonl", "test.jsonl")}
    mtime = (out / "mels" / "LJ001-0000.npy").stat().st_mtime_ns
    again = prepare_tts(corpus, out, PrepareConfig(num_dev=1), progress=False)
    assert again.computed == 2  # only the rows that failed before are tried again
    assert (out / "mels" / "LJ001-0000.npy").stat().st_mtime_ns == mtime
    assert {name: (out / name).read_text() for name in manifests} == manifests
    assert not [p for p in (out / "mels").iterdir() if p.name.startswith(".")]  # no temp files


def test_prepare_refuses_other_feature_settings_in_the_same_folder(corpus, tmp_path):
    out = tmp_path / "data"
    prepare_tts(corpus, out, PrepareConfig(num_dev=1), progress=False)
    other = PrepareConfig(features=FeatureConfig(**{**FeatureConfig.tts().to_dict(), "hop_length": 200}))
    with pytest.raises(ValueError, match=r"features.json.*hop_length.*new --out"):
        prepare_tts(corpus, out, other, progress=False)
    with pytest.raises(ValueError, match="hop_length=256.*hop_length=200"):
        check_features(out, other.features, "recipes/tts/prepare.py")


def test_prepare_without_held_out_list_and_with_workers(corpus, tmp_path):
    (corpus / "LJSpeech-1.1" / "test_sentences.txt").unlink()
    summary = prepare_tts(corpus, tmp_path / "data", PrepareConfig(num_dev=1, num_test=2, workers=2), progress=False)
    assert summary.counts == {"train": 4, "dev": 1, "test": 1}  # test capped at a tenth (>= 1)


def _skipped_table(out):
    return dict(line.split("\t") for line in (out / "skipped.tsv").read_text(encoding="utf-8").splitlines())


def test_prepare_lists_wavs_without_a_row_and_skips_lines_that_are_not_utf8(corpus, tmp_path, capsys):
    root = corpus / "LJSpeech-1.1"
    sf.write(root / "wavs" / "LJ003-0000.wav", tone(0.5, 300), RATE)  # no metadata row
    sf.write(root / "wavs" / "LJ003-0001.wav", tone(0.5, 300), RATE)
    with (root / "metadata.csv").open("ab") as handle:  # line 12, Latin-1
        handle.write(b"LJ003-0001|Caf\xe9.|Caf\xe9.\n")
    out = tmp_path / "data"
    assert main(["--ljspeech-dir", str(corpus), "--out", str(out), "--no-progress", "num_dev=1"]) == 0
    assert capsys.readouterr().out == (
        f"{out}: 13 utterances found: train 4, dev 1, test 1 kept, 7 skipped (see skipped.tsv); "
        "8 mels computed\n"
    )
    kept = [row["id"] for name in ("train", "dev", "test") for row in read_manifest(out / f"{name}.jsonl")]
    assert sorted(kept) == [f"LJ001-{k:04d}" for k in range(6)]
    table = _skipped_table(out)
    assert table.pop("LJ002-0000").startswith("unreadable audio: ")
    assert table == {
        "LJ002-0001": "metadata.csv:8: empty text",
        "LJ002-0002": "no letters in the text after normalization",
        "LJ002-0003": "metadata.csv:10: missing audio file",
        "LJ002-0004": "silent audio (peak 0.0e+00)",
        "LJ003-0000": "wavs/LJ003-0000.wav: no row in metadata.csv",
        "LJ003-0001": "metadata.csv:12: not UTF-8 text (byte 0xe9 at offset 14 of the line); "
        "re-save the file as UTF-8",
    }
    assert json.loads((out / "prepare.json").read_text())["found"] == 13


def test_unreadable_metadata_is_listed_and_an_error_names_the_file(tmp_path, capsys):
    root = tmp_path / "LJSpeech-1.1"
    (root / "wavs").mkdir(parents=True)
    for utt_id in ("LJ005-0000", "LJ005-0001"):
        sf.write(root / "wavs" / f"{utt_id}.wav", tone(0.5, 300), RATE)
    # A UTF-8 byte-order mark, a Latin-1 text, then a line whose id itself is not UTF-8.
    (root / "metadata.csv").write_bytes(b"\xef\xbb\xbfLJ005-0000|Caf\xe9|Caf\xe9\nLJ\xff5-0001|x|x\n")
    out = tmp_path / "data"
    assert main(["--ljspeech-dir", str(root), "--out", str(out), "--no-progress"]) == 1
    assert f"prepare: error: {out}: no usable training utterances (3 skipped, see skipped.tsv)\n" in (
        capsys.readouterr().err
    )
    assert (out / "skipped.tsv").read_text(encoding="utf-8").splitlines() == [
        "\tmetadata.csv:2: not UTF-8 text (byte 0xff at offset 2 of the line); re-save the file as UTF-8",
        "LJ005-0000\tmetadata.csv:1: not UTF-8 text (byte 0xe9 at offset 14 of the line); "
        "re-save the file as UTF-8",
        "LJ005-0001\twavs/LJ005-0001.wav: no readable row in metadata.csv (some lines are not UTF-8)",
    ]


def test_held_out_list_that_is_not_utf8_is_an_error_naming_it(corpus, tmp_path, capsys):
    held_out = corpus / "LJSpeech-1.1" / "test_sentences.txt"
    held_out.write_bytes(b"LJ001-0005|Caf\xe9.\n")
    assert main(["--ljspeech-dir", str(corpus), "--out", str(tmp_path / "data"), "--no-progress"]) == 1
    assert f"prepare: error: {held_out}: not UTF-8 text (byte 14)\n" in capsys.readouterr().err


def test_dataset_batches_normalized_mels_and_text_with_eos(corpus, tmp_path):
    out = tmp_path / "data"
    prepare_tts(corpus, out, PrepareConfig(num_dev=1), progress=False)
    vocab, cmvn = Vocab.load(out / "vocab.json"), GlobalCMVN.load(out / "mel_stats.json")
    dataset = TTSDataset(out / "train.jsonl", vocab, cmvn)
    batch = dataset.batch([0, 1])
    assert batch.mels.shape == (2, max(dataset.lengths[:2]), 80)
    assert batch.mel_lengths.tolist() == dataset.lengths[:2]
    assert batch.text[0, int(batch.text_lengths[0]) - 1] == vocab.eos_id
    assert vocab.decode(batch.text[0]) == dataset.text(0)
    every = torch.cat([dataset.mel(i) for i in range(len(dataset))])
    assert every.mean().abs() < 1e-3 and (every.std(0) - 1).abs().max() < 1e-2
    torch.testing.assert_close(dataset.mel(0), dataset.mel(0))  # cached copy (float16) is close
    with pytest.raises(ValueError, match="at most 1 frames"):
        TTSDataset(out / "train.jsonl", vocab, cmvn, max_frames=1)


def test_voiced_bounds_cut_leading_and_trailing_quiet_frames():
    rng = np.random.default_rng(0)
    wave = np.concatenate([np.zeros(5000), 0.3 * rng.normal(size=20000), 1e-3 * rng.normal(size=7000)])
    # Frames are centred every 256 samples and 1024 wide: frames 18..99 reach into the loud burst
    # (samples 5000..24999); the 1e-3 tail is 50 dB down, so it counts only with top_db=80.
    assert voiced_bounds(wave.astype(np.float32), 40, 1024, 256) == (18 * 256, 100 * 256)
    assert voiced_bounds(wave.astype(np.float32), 80, 1024, 256) == (18 * 256, len(wave))
    assert voiced_bounds(np.zeros(3000, dtype=np.float32), 40, 1024, 256) == (0, 0)


def test_a_split_file_fixes_the_split_by_id(corpus, tmp_path):
    split = tmp_path / "split.tsv"
    split.write_text("# id split\nLJ001-0000\ttest\nLJ001-0001 dev\nLJ001-0002\ttrain\n"
                     "LJ009-0009 test  # not in the corpus: ignored\n")
    out = tmp_path / "data"
    summary = prepare_tts(corpus, out, PrepareConfig(split_file=str(split)), progress=False)
    ids = {name: [row["id"] for row in read_manifest(out / f"{name}.jsonl")]
           for name in ("train", "dev", "test")}
    assert ids == {"train": ["LJ001-0002", "LJ001-0003", "LJ001-0004", "LJ001-0005"],
                   "dev": ["LJ001-0001"], "test": ["LJ001-0000"]}  # test_sentences.txt unused
    assert summary.counts == {"train": 4, "dev": 1, "test": 1}
    split.write_text("LJ001-0000 test\nLJ001-0001 valid\n")
    with pytest.raises(ValueError, match=r"split.tsv:2: expected '<id> <train\|dev\|test>'"):
        prepare_tts(corpus, out, PrepareConfig(split_file=str(split)), progress=False)
