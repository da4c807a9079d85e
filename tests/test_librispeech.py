"""Tests for speechattn/data/librispeech.py: reading and locating splits (prepare: test_asr_prepare.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechattn.data.librispeech import LibriUtterance, find_split_dir, iter_split

SAMPLE_RATE = 16000


def sine(seconds: float, freq: float = 440.0, sample_rate: int = SAMPLE_RATE,
         channels: int = 1) -> np.ndarray:
    """A quiet sine, (S,) or (S, channels)."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    wave = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return wave if channels == 1 else np.stack([wave] * channels, axis=1)


def write_chapter(split_dir: Path, speaker: str, chapter: str,
                  texts: dict[str, str], seconds: float = 0.25) -> dict[str, Path]:
    """Write <split>/<spk>/<chap>/ with one sine flac per utterance and its trans.txt."""
    folder = split_dir / speaker / chapter
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    lines = []
    for number, (utt, text) in enumerate(texts.items()):
        utt_id = f"{speaker}-{chapter}-{utt}"
        paths[utt_id] = folder / f"{utt_id}.flac"
        sf.write(paths[utt_id], sine(seconds, 300.0 + 100 * number), SAMPLE_RATE)
        lines.append(f"{utt_id} {text}".rstrip())
    (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return paths


def make_tiny_split(split_dir: Path) -> dict[str, str]:
    """Two speakers, three utterances; returns id -> transcript."""
    write_chapter(split_dir, "1089", "134686", {"0001": "STUFF IT INTO YOU",
                                                "0000": "HE HOPED THERE WOULD BE STEW"})
    write_chapter(split_dir, "121", "121726", {"0000": "ALSO A POPULAR CONTRIVANCE"})
    return {"1089-134686-0000": "HE HOPED THERE WOULD BE STEW",
            "1089-134686-0001": "STUFF IT INTO YOU",
            "121-121726-0000": "ALSO A POPULAR CONTRIVANCE"}


def test_iter_split_reads_sorted_utterances(tmp_path: Path) -> None:
    split = tmp_path / "dev-clean"
    expected = make_tiny_split(split)
    utterances = list(iter_split(split))
    assert [u.id for u in utterances] == sorted(expected)
    assert {u.id: u.transcript for u in utterances} == expected
    first = utterances[0]
    assert first == LibriUtterance("1089-134686-0000",
                                   split / "1089" / "134686" / "1089-134686-0000.flac",
                                   "HE HOPED THERE WOULD BE STEW", "1089", "134686")
    assert all(u.audio_path.is_file() for u in utterances)


def test_iter_split_keeps_empty_transcript_and_rejects_foreign_id(tmp_path: Path) -> None:
    split = tmp_path / "dev"
    write_chapter(split, "7", "8", {"0000": ""})
    assert [(u.id, u.transcript) for u in iter_split(split)] == [("7-8-0000", "")]
    (split / "7" / "8" / "7-8.trans.txt").write_text("7-8-0000 OK\n9-9-0001 WRONG\n")
    with pytest.raises(ValueError, match=r"7-8\.trans\.txt:2: id '9-9-0001'"):
        list(iter_split(split))


def test_iter_split_errors_on_folder_without_transcripts(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="trans.txt"):
        list(iter_split(tmp_path))
    with pytest.raises(FileNotFoundError, match="not found"):
        list(iter_split(tmp_path / "missing"))


@pytest.mark.parametrize("shape", ["librispeech", "flat"])
def test_find_split_dir_accepts_both_shapes(tmp_path: Path, shape: str) -> None:
    base = tmp_path / "LibriSpeech" if shape == "librispeech" else tmp_path
    for name in ("train", "test-unseen-voice"):
        (base / name).mkdir(parents=True)
    assert find_split_dir(tmp_path, "test-unseen-voice") == base / "test-unseen-voice"
    assert find_split_dir(base, "train") == base / "train"


def test_missing_split_lists_what_exists(tmp_path: Path) -> None:
    (tmp_path / "LibriSpeech" / "dev-clean").mkdir(parents=True)
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match=r"'test-other' not found.*found dev-clean, train"):
        find_split_dir(tmp_path, "test-other")
    with pytest.raises(FileNotFoundError, match="found nothing"):
        find_split_dir(tmp_path / "empty", "dev")
