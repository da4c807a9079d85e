"""Tests for speechattn/asr/prepare.py: every file found is in a manifest or skipped.tsv, the odd
audio is kept and marked, the LM text, the LJ Speech reader, and the recorded feature settings."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from test_librispeech import SAMPLE_RATE, make_tiny_split, sine, write_chapter

from speechattn.asr.prepare import main, prepare_librispeech
from speechattn.data.librispeech import iter_split
from speechattn.data.manifest import read_manifest

# ---------------------------------------------------------------- prepare_librispeech

def _write_raw(split: Path, utt_id: str, text: str, payload: bytes | None) -> None:
    speaker, chapter, _ = utt_id.split("-")
    folder = split / speaker / chapter
    folder.mkdir(parents=True, exist_ok=True)
    if payload is not None:
        (folder / f"{utt_id}.flac").write_bytes(payload)
    with (folder / f"{speaker}-{chapter}.trans.txt").open("a") as handle:
        handle.write(f"{utt_id} {text}\n")


def _audio_bytes(tmp: Path, wave: np.ndarray, rate: int, fmt: str = "FLAC") -> bytes:
    path = tmp / f"scratch.{fmt.lower()}"
    sf.write(path, wave, rate, format=fmt)
    return path.read_bytes()


def make_awkward_corpus(root: Path) -> None:
    """train/ with every kind of problem, dev/ with one clean utterance."""
    train = root / "train"
    expected = make_tiny_split(train)  # three good utterances
    assert len(expected) == 3
    scratch = root / "scratch"
    scratch.mkdir()
    good = _audio_bytes(scratch, sine(0.5), SAMPLE_RATE)
    _write_raw(train, "50-60-0000", "CORRUPT", np.random.default_rng(0).bytes(4000))
    _write_raw(train, "50-60-0001", "EMPTY FILE", b"")
    # A valid WAV header with no frames (libsndfile sniffs content, not the .flac name).
    _write_raw(train, "50-60-0002", "ZERO FRAMES", _audio_bytes(scratch, sine(0.0), SAMPLE_RATE,
                                                                 "WAV"))
    _write_raw(train, "50-60-0003", "TRUNCATED", good[: len(good) // 2])
    _write_raw(train, "50-60-0004", "", good)
    _write_raw(train, "50-60-0005", "NO AUDIO FILE", None)
    _write_raw(train, "70-80-0000", "STEREO Z", _audio_bytes(scratch, sine(0.5, channels=2),
                                                             SAMPLE_RATE))
    _write_raw(train, "70-80-0001", "NARROWBAND Q", _audio_bytes(scratch, sine(1.0, 500.0, 8000),
                                                                 8000))
    write_chapter(root / "dev", "9", "9", {"0000": "DEV ONLY X"})


SKIP_REASONS = {
    "50-60-0000": "unreadable audio",
    "50-60-0001": "empty file (0 bytes)",
    "50-60-0002": "zero-length audio (0 frames)",
    "50-60-0003": "truncated or corrupt audio data",
    "50-60-0004": "empty transcript",
    "50-60-0005": "missing audio file",
}


def test_prepare_skips_unusable_and_marks_odd_audio(tmp_path: Path) -> None:
    from speechattn.audio import FeatureConfig, GlobalCMVN, LogMel, compute_cmvn, load_audio
    from speechattn.data.manifest import read_manifest
    from speechattn.text import Vocab

    corpus = tmp_path / "corpus"
    make_awkward_corpus(corpus)
    out = tmp_path / "out"
    summary = prepare_librispeech(["train", "dev"], out, librispeech_dir=corpus, jobs=2,
                                  progress=False)
    assert summary["found"] == {"train": 11, "dev": 1}
    assert summary["utterances"] == {"train": 5, "dev": 1}
    assert summary["skipped"] == {"train": 6, "dev": 0}

    rows = {row["id"]: row for row in read_manifest(out / "train.jsonl")}
    assert sorted(rows) == ["1089-134686-0000", "1089-134686-0001", "121-121726-0000",
                            "70-80-0000", "70-80-0001"]
    first = rows["1089-134686-0000"]
    assert first == {"id": "1089-134686-0000", "duration": 0.25, "speaker": "1089",
                     "text": "HE HOPED THERE WOULD BE STEW",
                     "audio": str((corpus / "train/1089/134686/1089-134686-0000.flac").resolve())}
    assert rows["70-80-0000"]["channels"] == 2 and "sample_rate" not in rows["70-80-0000"]
    assert rows["70-80-0001"]["sample_rate"] == 8000 and rows["70-80-0001"]["duration"] == 1.0
    assert [r["id"] for r in read_manifest(out / "dev.jsonl")] == ["9-9-0000"]

    lines = (out / "skipped.tsv").read_text().splitlines()
    assert lines[0] == "split\tid\tpath\treason"
    table = {fields[1]: fields for fields in (line.split("\t") for line in lines[1:])}
    assert sorted(table) == sorted(SKIP_REASONS)
    for utt_id, reason in SKIP_REASONS.items():
        assert table[utt_id][0] == "train" and table[utt_id][3].startswith(reason), table[utt_id]
        assert table[utt_id][2].endswith(f"{utt_id}.flac")

    # Vocabulary: the characters of the kept *training* transcripts only ("X" is dev-only).
    vocab = Vocab.load(out / "vocab.json")
    assert set(vocab.chars) == set("".join(row["text"] for row in rows.values()))
    assert "X" not in vocab and "Q" in vocab and "Z" in vocab

    # CMVN: exactly the statistics of the kept training audio, resampled/downmixed to 16 kHz.
    log_mel = LogMel(FeatureConfig())
    feats = [log_mel(load_audio(rows[i]["audio"], sample_rate=16000)[0]) for i in sorted(rows)]
    mean, std = compute_cmvn(feats)
    cmvn = GlobalCMVN.load(out / "cmvn.json")
    assert cmvn.mean.shape == (80,)
    assert torch.allclose(cmvn.mean, mean, atol=1e-4) and torch.allclose(cmvn.std, std, atol=1e-4)


def test_prepare_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:

    make_tiny_split(tmp_path / "LibriSpeech" / "dev-clean")
    out = tmp_path / "out"
    assert main(["--subsets", "dev-clean", "--out", str(out), "--librispeech-dir",
                 str(tmp_path), "--no-progress", "--cmvn-utterances", "2"]) == 0
    assert "dev-clean: 3 utterances found, 3 kept, 0 skipped\n" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"dev-clean.jsonl", "skipped.tsv", "vocab.json",
                                               "cmvn.json", "features.json"}  # no LM text here
    assert main(["--subsets", "test-clean", "--out", str(out), "--librispeech-dir",
                 str(tmp_path)]) == 1
    assert "found dev-clean" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--subsets", "x", "--out", str(out), "--download", "--librispeech-dir", "y"])


def test_train_subsets_must_be_prepared(tmp_path: Path) -> None:

    make_tiny_split(tmp_path / "dev")
    with pytest.raises(ValueError, match="train_subsets=\\['train'\\]"):
        prepare_librispeech(["dev"], tmp_path / "out", librispeech_dir=tmp_path,
                            train_subsets=["train"], progress=False)


def test_prepare_copies_the_lm_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:

    corpus = tmp_path / "corpus"
    make_tiny_split(corpus / "dev")
    (corpus / "lm-text.txt").write_text("the cat  SAT\n\n  a dog ran \n", encoding="utf-8")
    out = tmp_path / "out"
    summary = prepare_librispeech(["dev"], out, librispeech_dir=corpus, progress=False)
    assert summary["lm_text"] == out / "lm_text.txt" and summary["lm_sentences"] == 2
    assert (out / "lm_text.txt").read_text(encoding="utf-8") == "THE CAT SAT\nA DOG RAN\n"
    # --lm-text FILE wins over the corpus's own
    other = tmp_path / "librispeech-lm-norm.txt"
    other.write_text("OTHER WORDS\n", encoding="utf-8")
    assert main(["--subsets", "dev", "--out", str(out), "--librispeech-dir", str(corpus),
                 "--lm-text", str(other), "--no-progress"]) == 0
    assert "wrote 1 sentences of LM text" in capsys.readouterr().out
    assert (out / "lm_text.txt").read_text(encoding="utf-8") == "OTHER WORDS\n"
    # a missing, empty or undecodable LM text is an error that leaves the last good copy in place
    for content in (None, b" \n\n", b"\xff\xfe bad\n"):
        bad = tmp_path / "bad.txt"
        bad.unlink(missing_ok=True)
        if content is not None:
            bad.write_bytes(content)
        assert main(["--subsets", "dev", "--out", str(out), "--librispeech-dir", str(corpus),
                     "--lm-text", str(bad), "--no-progress"]) == 1
        assert "bad.txt" in capsys.readouterr().err
        assert (out / "lm_text.txt").read_text(encoding="utf-8") == "OTHER WORDS\n"
        assert not list(out.glob(".*partial"))


# ---------------------------------------------------------------- every file found is accounted for

def _skipped_lines(out: Path) -> list[str]:
    lines = (out / "skipped.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "split\tid\tpath\treason"
    return lines[1:]


def _prepare_cli(corpus: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> str:

    assert main(["--subsets", "train", "--out", str(out), "--librispeech-dir", str(corpus),
                 "--no-progress", "--cmvn-utterances", "2"]) == 0
    return capsys.readouterr().out


def test_prepare_lists_every_flac_that_no_transcript_line_names(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from speechattn.data.manifest import read_manifest

    corpus = tmp_path / "corpus"
    train = corpus / "train"
    make_tiny_split(train)  # three good utterances
    write_chapter(train, "5", "6", {"0000": "NOT LISTED", "0001": "KEPT B"})
    (train / "5/6/5-6.trans.txt").write_text("5-6-0001 KEPT B\n5-6-0009 NO AUDIO\n")
    write_chapter(train, "7", "8", {"0000": "X", "0001": "Y"})
    (train / "7/8/7-8.trans.txt").unlink()
    write_chapter(train, "9", "9", {"0000": "Z"})
    (train / "9/9/9-9.trans.txt").write_text("")
    sf.write(train / "1089" / "loose.flac", sine(0.25), SAMPLE_RATE)  # outside any chapter

    out = tmp_path / "out"
    assert "train: 10 utterances found, 4 kept, 6 skipped\n" in _prepare_cli(corpus, out, capsys)
    assert [row["id"] for row in read_manifest(out / "train.jsonl")] == [
        "1089-134686-0000", "1089-134686-0001", "121-121726-0000", "5-6-0001"]
    assert _skipped_lines(out) == [
        f"train\t5-6-0000\t{train}/5/6/5-6-0000.flac\tno transcript line in 5-6.trans.txt",
        f"train\t5-6-0009\t{train}/5/6/5-6-0009.flac\tmissing audio file",
        f"train\t7-8-0000\t{train}/7/8/7-8-0000.flac\tno 7-8.trans.txt in the chapter folder",
        f"train\t7-8-0001\t{train}/7/8/7-8-0001.flac\tno 7-8.trans.txt in the chapter folder",
        f"train\t9-9-0000\t{train}/9/9/9-9-0000.flac\t"
        "no transcript line in 9-9.trans.txt (the file is empty)",
        f"train\tloose\t{train}/1089/loose.flac\tnot in a <speaker>/<chapter>/ folder of train",
    ]


def test_prepare_skips_transcript_lines_that_are_not_utf8_and_goes_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from speechattn.data.manifest import read_manifest

    corpus = tmp_path / "corpus"
    train = corpus / "train"
    make_tiny_split(train)
    write_chapter(train, "4", "4", {"0000": "", "0001": ""})
    latin1 = train / "4/4/4-4.trans.txt"  # a BOM, one good line, one Latin-1 line
    latin1.write_bytes(b"\xef\xbb\xbf4-4-0001 GOOD LINE\n4-4-0000 CAF\xc9 AU LAIT\n")
    write_chapter(train, "3", "3", {"0000": ""})
    bad_id = train / "3/3/3-3.trans.txt"  # the id itself cannot be read
    bad_id.write_bytes(b"3-3-00\xff0 WHO KNOWS\n")

    out = tmp_path / "out"
    assert "train: 7 utterances found, 4 kept, 3 skipped\n" in _prepare_cli(corpus, out, capsys)
    rows = read_manifest(out / "train.jsonl")
    assert [(row["id"], row["text"]) for row in rows] == [
        ("1089-134686-0000", "HE HOPED THERE WOULD BE STEW"),
        ("1089-134686-0001", "STUFF IT INTO YOU"), ("121-121726-0000", "ALSO A POPULAR CONTRIVANCE"),
        ("4-4-0001", "GOOD LINE")]
    assert _skipped_lines(out) == [
        f"train\t\t{bad_id}\t{bad_id}:1: not UTF-8 text (byte 0xff at offset 6 of the line); "
        "re-save the file as UTF-8",
        f"train\t3-3-0000\t{train}/3/3/3-3-0000.flac\t"
        "no readable transcript line in 3-3.trans.txt (some lines are not UTF-8)",
        f"train\t4-4-0000\t{train}/4/4/4-4-0000.flac\t{latin1}:2: not UTF-8 text "
        "(byte 0xc9 at offset 12 of the line); re-save the file as UTF-8",
    ]
    summary = prepare_librispeech(["train"], out, librispeech_dir=corpus, progress=False)
    assert (summary["found"], summary["utterances"], summary["skipped"]) == (
        {"train": 7}, {"train": 4}, {"train": 3})
    # The strict reader names the first bad line instead of a bare codec error.
    with pytest.raises(ValueError, match=rf"^{re.escape(str(bad_id))}:1: not UTF-8 text .*"
                       r"\(and 1 more such lines\)$"):
        list(iter_split(train))


def test_prepare_asr_reads_an_ljspeech_corpus_with_a_split_file(tmp_path, capsys):
    """The LJ layout as ASR data: the split file decides the splits, the normalized text is read
    as spoken ("Mr." -> MISTER, digits in words), rows keep the 22.05 kHz rate, and every line
    and wav is kept or skipped; the LM text is put in the transcripts' alphabet."""
    from test_tts_prepare import RATE, tone

    root = tmp_path / "LJSpeech-1.1"
    (root / "wavs").mkdir(parents=True)
    lines = []
    for k in range(4):
        sf.write(root / "wavs" / f"LJ001-{k:04d}.wav", tone(0.5, 200 + 50 * k), RATE)
        lines.append(f"LJ001-{k:04d}|raw {k}|Mr. Smith read {k + 1} \"pages,\" twice.")
    lines.append("LJ001-0009|No audio file.|No audio file.")
    sf.write(root / "wavs" / "LJ001-0010.wav", tone(0.5, 300), RATE)
    lines.append("LJ001-0010|???|???")  # nothing left after normalization
    sf.write(root / "wavs" / "LJ001-0011.wav", tone(0.5, 300), RATE)  # no row names it
    (root / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    split = tmp_path / "split.tsv"
    split.write_text("LJ001-0000 test\nLJ001-0001 dev\nLJ001-0009 test\n")
    lm_text = tmp_path / "lm.txt"
    lm_text.write_text('Mr. Jones paid 3 shillings.\n\n"Quoted," she said.\n', encoding="utf-8")
    out = tmp_path / "data"
    assert main(["--ljspeech-dir", str(tmp_path), "--split-file", str(split), "--out", str(out),
                 "--lm-text", str(lm_text), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "train: 4 utterances found, 2 kept, 2 skipped" in printed
    assert "test: 2 utterances found, 1 kept, 1 skipped" in printed
    assert "dev: 1 utterances found, 1 kept, 0 skipped" in printed
    test_rows = read_manifest(out / "test.jsonl")
    assert [r["id"] for r in test_rows] == ["LJ001-0000"]
    assert test_rows[0]["text"] == "MISTER SMITH READ ONE PAGES TWICE"
    assert test_rows[0]["sample_rate"] == RATE and test_rows[0]["speaker"] == "LJ"
    assert [r["id"] for r in read_manifest(out / "train.jsonl")] == ["LJ001-0002", "LJ001-0003"]
    skipped = [line.split("\t") for line in (out / "skipped.tsv").read_text().splitlines()[1:]]
    assert [(s[0], s[1], s[3]) for s in skipped] == [
        ("train", "LJ001-0010", "empty transcript"),
        ("train", "LJ001-0011", "wavs/LJ001-0011.wav: no row in metadata.csv"),
        ("test", "LJ001-0009", "metadata.csv:5: missing audio file"),
    ]
    assert (out / "lm_text.txt").read_text() == "MISTER JONES PAID THREE SHILLINGS\nQUOTED SHE SAID\n"


def test_prepare_asr_needs_a_split_file_with_an_ljspeech_corpus(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--ljspeech-dir", str(tmp_path), "--out", str(tmp_path / "o")])
    assert "--split-file goes with --ljspeech-dir" in capsys.readouterr().err


def test_prepare_records_its_features_and_training_checks_them(tmp_path, capsys):
    """CMVN is made with the recipe's data.features (--config), recorded in features.json;
    a second prepare with other settings into the same folder, and a training whose config
    says otherwise, are refused; a folder from before features.json counts as the defaults."""
    import json

    from speechattn.asr.recipe import ASRRecipeConfig
    from speechattn.asr.training import train_asr
    from speechattn.config import resolve_config

    make_tiny_split(tmp_path / "LibriSpeech" / "train")
    config = tmp_path / "recipe.yaml"
    config.write_text("model: {num_mels: 40}\ndata:\n  features: {n_mels: 40}\n")
    out = tmp_path / "out"
    argv = ["--subsets", "train", "--out", str(out), "--librispeech-dir", str(tmp_path),
            "--no-progress"]
    assert main([*argv, "--config", str(config)]) == 0
    assert json.loads((out / "features.json").read_text())["n_mels"] == 40
    assert len(json.loads((out / "cmvn.json").read_text())["mean"]) == 40  # made with them
    capsys.readouterr()
    assert main(argv) == 1  # the default 80 mels into a folder of 40
    assert "n_mels=40, now n_mels=80" in capsys.readouterr().err
    default = resolve_config(ASRRecipeConfig, "recipes/asr/conf/tiny.yaml", ["data.valid=train"])
    with pytest.raises(ValueError, match=r"features.json: features were made with n_mels=40 but "
                                         r"the config says n_mels=80"):
        train_asr(default, out, tmp_path / "exp")
    assert not (tmp_path / "exp").exists()  # refused before the experiment was started
    (out / "features.json").unlink()  # as prepared before features.json: the defaults
    forty = resolve_config(ASRRecipeConfig, "recipes/asr/conf/tiny.yaml",
                           ["data.features.n_mels=40", "model.num_mels=40", "data.valid=train"])
    with pytest.raises(ValueError, match="features were made with n_mels=80"):
        train_asr(forty, out, tmp_path / "exp")
