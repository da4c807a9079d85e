"""Tests for speechattn/offline/sentences.py, synth.py and corpus.py (the offline corpus).

One ``mini`` corpus is built per module and read back with the LibriSpeech and LJSpeech readers.
"""

from __future__ import annotations

import dataclasses
import doctest
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechattn.data.librispeech import iter_split
from speechattn.data.ljspeech import read_metadata
from speechattn.offline import corpus as corpus_module
from speechattn.offline import sentences as sentences_module
from speechattn.offline.corpus import CorpusError, build_corpus, main, plan_corpus
from speechattn.offline.lexicon import Lexicon, build_lexicon
from speechattn.offline.prose import load_prose
from speechattn.offline.sentences import generate_sentences, normalize_text, to_transcript
from speechattn.offline.synth import PARTIAL_TAG, SynthesizerNotFoundError
from speechattn.text import number_to_words, ordinal_to_words, year_to_words

HAVE_SYNTHESIZERS = all(shutil.which(p) for p in ("espeak-ng", "flite"))
_needs_synth = pytest.mark.skipif(
    not HAVE_SYNTHESIZERS, reason="needs espeak-ng and flite (apt-get install espeak-ng flite)"
)


def synthesizes(test: Callable) -> Callable:
    """Mark a test that runs espeak-ng/flite: slow, and skipped where they are not installed."""
    return pytest.mark.slow(_needs_synth(test))

TRANSCRIPT = re.compile(r"^[A-Z']+( [A-Z']+)*$")
ASR_ID = re.compile(r"^(\d{3})-(\d{4})-(\d{4})$")


@pytest.fixture(scope="module")
def mini(mini_corpus: Path) -> tuple[Path, dict]:
    """The session's mini corpus and its summary (a second build of a finished corpus only reads)."""
    return mini_corpus, build_corpus(mini_corpus, size="mini", seed=0, jobs=2, progress=False)


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return build_lexicon()


def _digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _split_transcripts(root: Path, split: str) -> dict[str, str]:
    return {u.id: u.transcript for u in iter_split(root / "asr" / split)}


# -- text ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (105, "one hundred five"),
        (999, "nine hundred ninety nine"),
        (1000, "one thousand"),
        (47232, "forty seven thousand two hundred thirty two"),
        (2_000_001, "two million one"),
    ],
)
def test_number_to_words(value: int, words: str) -> None:
    assert number_to_words(value) == words


def test_ordinals_years_and_errors() -> None:
    ordinals = [ordinal_to_words(n) for n in (1, 2, 3, 5, 9, 12, 20, 21, 40, 100)]
    assert ordinals == [
        "first", "second", "third", "fifth", "ninth", "twelfth", "twentieth", "twenty first",
        "fortieth", "one hundredth",
    ]
    years = [year_to_words(y) for y in (1134, 1800, 1905, 2000, 2009, 2010)]
    assert years == [
        "eleven thirty four", "eighteen hundred", "nineteen oh five", "two thousand",
        "two thousand nine", "twenty ten",
    ]
    assert number_to_words(-3) == "minus three"  # shared with speechattn.text


@pytest.mark.parametrize(
    ("raw", "normalized", "transcript"),
    [
        ("Mr. Hall paid $1 for 3 pens.", "Mister Hall paid one dollar for three pens.",
         "MISTER HALL PAID ONE DOLLAR FOR THREE PENS"),
        ("About 15% of the 1,250 guides left in 1999, on the 3rd of May?",
         "About fifteen percent of the one thousand two hundred fifty guides left in nineteen "
         "ninety nine, on the third of May?",
         "ABOUT FIFTEEN PERCENT OF THE ONE THOUSAND TWO HUNDRED FIFTY GUIDES LEFT IN NINETEEN "
         "NINETY NINE ON THE THIRD OF MAY"),
        ("Dr. Young's train leaves at 7 o'clock.", "Doctor Young's train leaves at seven o'clock.",
         "DOCTOR YOUNG'S TRAIN LEAVES AT SEVEN O'CLOCK"),
        ("Room 797 is on the 12th floor, said Mrs. Wood.",
         "Room seven hundred ninety seven is on the twelfth floor, said Missus Wood.",
         "ROOM SEVEN HUNDRED NINETY SEVEN IS ON THE TWELFTH FLOOR SAID MISSUS WOOD"),
    ],
)
def test_normalize_and_transcript(raw: str, normalized: str, transcript: str) -> None:
    assert normalize_text(raw) == normalized
    assert to_transcript(normalized) == transcript


def test_normalizer_refuses_unknown_digits() -> None:
    for raw in ("It weighs 3.5 pounds.", "We left at 7:30.", "Pages 3-4 are torn."):
        with pytest.raises(ValueError, match=re.escape(raw)):
            normalize_text(raw)


def test_docstring_examples() -> None:
    assert doctest.testmod(sentences_module).failed == 0


def test_same_seed_same_sentences_other_seed_different(lexicon: Lexicon) -> None:
    first = generate_sentences(300, seed=3, lexicon=lexicon)
    assert generate_sentences(300, seed=3, lexicon=lexicon) == first
    other = generate_sentences(300, seed=4, lexicon=lexicon)
    assert len({s.raw for s in first} & {s.raw for s in other}) < 15  # only short ones may repeat


def test_sentences_are_varied_english(lexicon: Lexicon) -> None:
    sentences = generate_sentences(3000, seed=0, lexicon=lexicon)
    assert len({s.transcript for s in sentences}) == 3000
    lengths = [len(s.raw.split()) for s in sentences]
    assert min(lengths) == 3 and max(lengths) >= 20 and 6 < np.mean(lengths) < 15
    assert len({w for s in sentences for w in s.transcript.split()}) > 2500
    assert all(TRANSCRIPT.match(s.transcript) for s in sentences)
    assert all(not re.search(r"\d", s.normalized) for s in sentences)
    assert sum(bool(re.search(r"\d", s.raw)) for s in sentences) > 300
    assert sum(s.raw.endswith("?") for s in sentences) > 200
    assert sum("," in s.raw for s in sentences) > 300
    assert all(s.raw[0].isupper() or s.raw[0].isdigit() for s in sentences)


# -- plan ---------------------------------------------------------------------------------------


def test_plan_ids_and_sentence_splits() -> None:
    plan = plan_corpus("mini", seed=0)
    ids = [u.id for u in plan.asr]
    assert len(ids) == len(set(ids))
    for utt in plan.asr:
        speaker, chapter, _ = ASR_ID.match(utt.id).groups()
        assert (int(speaker), int(chapter)) == (utt.speaker, utt.chapter)
        assert utt.chapter >= 1000 and utt.speaker >= 100
    texts = {
        split: {u.sentence.transcript for u in plan.asr if u.split == split}
        for split in corpus_module.SPLITS
    }
    assert not texts["train"] & (texts["dev"] | texts["test"] | texts["test-prose"])
    assert not texts["dev"] & (texts["test"] | texts["test-prose"])
    assert not texts["test"] & texts["test-prose"]
    assert texts["test-unseen-voice"] == texts["test"]  # same sentences, other voices
    assert texts["test-prose-unseen-voice"] == texts["test-prose"]
    assert len(texts["test-prose"]) == corpus_module.SIZES["mini"].test_prose
    assert not {u.sentence.transcript for u in plan.tts} & set().union(*texts.values())
    other_seed = plan_corpus("mini", seed=1)
    assert {u.sentence.raw for u in other_seed.asr} != {u.sentence.raw for u in plan.asr}


def test_lm_text_is_new_sentences_and_leaves_the_spoken_ones_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan = plan_corpus("mini", seed=0)
    spec = corpus_module.SIZES["mini"]
    assert len(plan.lm_text) == len(set(plan.lm_text)) == spec.lm_sentences + spec.lm_prose
    assert all(TRANSCRIPT.match(line) for line in plan.lm_text)
    spoken = {u.sentence.transcript for u in plan.asr} | {u.sentence.transcript for u in plan.tts}
    assert not spoken & set(plan.lm_text)  # no dev or test sentence leaks into it
    # the spoken sentences do not depend on how much LM text is planned after them
    no_text = dataclasses.replace(spec, lm_sentences=0, lm_prose=0)
    monkeypatch.setitem(corpus_module.SIZES, "mini", no_text)
    without = plan_corpus("mini", seed=0)
    assert without.asr == plan.asr and without.tts == plan.tts and without.lm_text == ()


def test_prose_goes_where_the_sizes_say_and_nowhere_else() -> None:
    spec = corpus_module.SIZES["mini"]
    plan = plan_corpus("mini", seed=0)
    prose = {s.transcript for s in load_prose(0).sentences}
    by_split = {split: [u for u in plan.asr if u.split == split] for split in corpus_module.SPLITS}
    for split, share in (("train", spec.prose_share), ("dev", spec.prose_share), ("test", 0.0),
                         ("test-prose", 1.0)):  # fmt: skip
        utts = by_split[split]
        assert sum(u.sentence.transcript in prose for u in utts) == round(share * len(utts)), split
    # every training voice reads some of each kind
    for speaker, _ in plan.speakers["train"]:
        kinds = {u.sentence.transcript in prose for u in by_split["train"] if u.speaker == speaker}
        assert kinds == {True, False}, speaker
    assert sum(line in prose for line in plan.lm_text) == spec.lm_prose
    assert not {u.sentence.transcript for u in by_split["test-prose"]} & set(plan.lm_text)
    assert not {u.sentence.transcript for u in plan.tts} & prose
    # the prose test sentences are the first of the seed's order: the same ones at every size
    small = plan_corpus("small", seed=0)
    small_test = {u.sentence.transcript for u in small.asr if u.split == "test-prose"}
    assert {u.sentence.transcript for u in by_split["test-prose"]} <= small_test
    assert len(small_test) == corpus_module.SIZES["small"].test_prose


def test_sizes_table() -> None:
    small, medium = corpus_module.SIZES["small"], corpus_module.SIZES["medium"]
    assert small.train_voices >= 6
    small_train = small.train_voices * small.train_per_voice
    assert 4 <= medium.train_voices * medium.train_per_voice / small_train <= 6
    with pytest.raises(CorpusError, match="huge"):
        plan_corpus("huge")


# -- built corpus -------------------------------------------------------------------------------


@synthesizes
def test_asr_read_back_gives_generated_transcripts(mini: tuple[Path, dict]) -> None:
    root, _ = mini
    plan = plan_corpus("mini", seed=0)
    for split in corpus_module.SPLITS:
        expected = {u.id: u.sentence.transcript for u in plan.asr if u.split == split}
        assert _split_transcripts(root, split) == expected
        for utt in iter_split(root / "asr" / split):
            assert utt.audio_path.is_file() and TRANSCRIPT.match(utt.transcript)
    spoken_numbers = [u for u in plan.asr if re.search(r"\d", u.sentence.raw)]
    assert spoken_numbers
    assert all(not re.search(r"\d", u.sentence.transcript) for u in spoken_numbers)


@synthesizes
def test_unseen_voices_and_test_sentences_stay_out_of_train(mini: tuple[Path, dict]) -> None:
    root, summary = mini
    splits = summary["asr"]["splits"]

    def voices(split: str) -> set[tuple[str, str]]:
        return {(s["engine"], s["voice"]) for s in splits[split]["speakers"]}

    assert voices("train") == voices("dev") == voices("test") == voices("test-prose")
    assert not voices("train") & voices("test-unseen-voice")
    assert voices("test-prose-unseen-voice") == voices("test-unseen-voice")
    for split in ("train", "test-unseen-voice"):
        assert {engine for engine, _ in voices(split)} == {"espeak-ng", "flite"}, split
    speaker_dirs = {
        split: {p.name for p in (root / "asr" / split).iterdir()} for split in corpus_module.SPLITS
    }
    assert not speaker_dirs["train"] & speaker_dirs["test-unseen-voice"]
    train = set(_split_transcripts(root, "train").values())
    for split in ("dev", "test", "test-unseen-voice", "test-prose", "test-prose-unseen-voice"):
        assert not train & set(_split_transcripts(root, split).values()), split


@synthesizes
def test_audio_files_are_plausible(mini: tuple[Path, dict]) -> None:
    root, summary = mini
    flacs = sorted(root.glob("asr/*/*/*/*.flac"))
    assert len(flacs) == sum(s["utterances"] for s in summary["asr"]["splits"].values())
    for path in flacs + sorted(root.glob("tts/wavs/*.wav")):
        wave, rate = sf.read(path, dtype="float32", always_2d=True)
        assert wave.shape[1] == 1, path
        assert rate == (16000 if path.suffix == ".flac" else 22050), path
        assert 0.3 < len(wave) / rate < 20, path
        assert 0.5 < np.abs(wave).max() < 1.0, path  # speech, not clipped
    for split, info in summary["asr"]["splits"].items():
        seconds = sum(sf.info(p).duration for p in root.glob(f"asr/{split}/*/*/*.flac"))
        assert info["duration_s"] == pytest.approx(seconds, abs=1e-2), split
    total = sum(s["duration_s"] for s in summary["asr"]["splits"].values())
    assert 60 < total < 600  # a few minutes


@synthesizes
def test_tts_part_reads_back_with_the_ljspeech_reader(mini: tuple[Path, dict]) -> None:
    root, summary = mini
    rows = read_metadata(root)
    plan = plan_corpus("mini", seed=0)
    assert [(r.id, r.raw_text, r.text) for r in rows] == [
        (u.id, u.sentence.raw, u.sentence.normalized) for u in plan.tts
    ]
    assert rows[0].id == "OC01-0001" and len(rows) == summary["tts"]["utterances"]
    for row in rows:
        info = sf.info(row.wav_path)
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
    lines = (root / "tts/test_sentences.txt").read_text(encoding="utf-8").splitlines()
    held_out = [line.split("|", 1) for line in lines]
    raw_by_id = {r.id: r.raw_text for r in rows}
    assert len(held_out) == summary["tts"]["test_utterances"] == 4
    assert all(raw_by_id[utt_id] == raw for utt_id, raw in held_out)


@synthesizes
def test_second_run_changes_nothing(mini: tuple[Path, dict]) -> None:
    root, summary = mini
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    assert build_corpus(root, size="mini", seed=0, jobs=2, progress=False) == summary
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before


@synthesizes
def test_lm_text_file_and_a_corpus_built_before_it_existed(
    mini: tuple[Path, dict], tmp_path: Path
) -> None:
    root, summary = mini
    lines = (root / corpus_module.LM_TEXT).read_text(encoding="utf-8").splitlines()
    assert lines == list(plan_corpus("mini", seed=0).lm_text)
    assert summary["asr"]["lm_text"] == {"path": corpus_module.LM_TEXT, "sentences": len(lines)}
    assert summary["tools"]["wordnet_examples"] == load_prose(0).digest
    # a corpus finished before the LM text existed gets it, and no audio is made again
    old = tmp_path / "old"
    shutil.copytree(root, old)
    (old / corpus_module.LM_TEXT).unlink()
    audio = {p: p.stat().st_mtime_ns for p in old.rglob("*.flac")}
    assert build_corpus(old, size="mini", seed=0, jobs=1, progress=False) == summary
    assert (old / corpus_module.LM_TEXT).read_text(encoding="utf-8").splitlines() == lines
    assert {p: p.stat().st_mtime_ns for p in old.rglob("*.flac")} == audio


@synthesizes
def test_other_request_in_same_folder_is_refused(mini: tuple[Path, dict]) -> None:
    root, _ = mini
    with pytest.raises(CorpusError, match="seed"):
        build_corpus(root, size="mini", seed=1, progress=False)


@_needs_synth
def test_a_corpus_of_the_old_format_is_refused_and_kept(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    record = '{"format_version": 1, "size": "mini", "seed": 0}\n'
    (old / "corpus.json").write_text(record, encoding="utf-8")
    with pytest.raises(CorpusError, match=r"format 1, made by an older speechattn.*--out"):
        build_corpus(old, size="mini", seed=0, progress=False)
    assert [p.name for p in old.iterdir()] == ["corpus.json"]
    assert (old / "corpus.json").read_text(encoding="utf-8") == record


@synthesizes
def test_killed_build_resumes_to_the_same_bytes(mini: tuple[Path, dict], tmp_path: Path) -> None:
    reference, _ = mini
    out = tmp_path / "killed"
    args = ["--size", "mini", "--out", str(out), "--jobs", "1", "--quiet"]
    command = [sys.executable, "-m", "speechattn.offline.corpus", *args]
    process = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("asr/*/*/*/*.flac"))) < 10:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "no audio written in 120 s"
            time.sleep(0.01)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert not (out / "corpus.json").exists(), "the build finished before it could be killed"
    for path in list(out.rglob("*.flac")) + list(out.rglob("*.wav")):
        if PARTIAL_TAG not in path.name:
            sf.read(path)  # every file under its final name is complete
    assert main(args) == 0
    assert not [p for p in out.rglob("*") if PARTIAL_TAG in p.name]
    assert _digest(out) == _digest(reference)


def test_missing_synthesizer_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    espeak = shutil.which("espeak-ng")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(SynthesizerNotFoundError, match=r"apt-get install espeak-ng flite"):
        build_corpus(tmp_path / "out", size="mini", progress=False)
    assert main(["--size", "mini", "--out", str(tmp_path / "out")]) == 1
    assert "apt-get install espeak-ng flite" in capsys.readouterr().err
    if espeak:
        (empty / "espeak-ng").symlink_to(espeak)
        only_flite = r"^flite not found.*apt-get install flite"
        with pytest.raises(SynthesizerNotFoundError, match=only_flite):
            build_corpus(tmp_path / "out", size="mini", progress=False)
    assert not (tmp_path / "out").exists()
