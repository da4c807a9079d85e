"""Tests for speechattn/data/audio_check.py: what probe_audio accepts and the reasons it gives."""

import numpy as np
import pytest
import soundfile as sf

from speechattn.data.audio_check import AudioInfo, UnusableAudio, probe_audio


def tone(path, seconds=0.5, rate=16000, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    sf.write(path, np.stack([wave] * channels, axis=1) if channels > 1 else wave, rate)
    return path


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_header_facts_of_good_files(tmp_path):
    assert probe_audio(tone(tmp_path / "a.flac")) == AudioInfo(8000, 16000, 1)
    assert probe_audio(tone(tmp_path / "b.wav", rate=22050, channels=2)) == AudioInfo(11025, 22050, 2)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d: d / "missing.flac", "missing audio file"),
        (lambda d: write(d / "empty.flac", b""), "empty file"),
        (lambda d: write(d / "text.flac", b"not audio at all"), "unreadable audio"),
        (lambda d: tone(d / "zero.wav", seconds=0), "zero-length audio"),
    ],
    ids=["missing", "empty", "not-audio", "zero-frames"],
)
def test_unusable_files_give_a_short_reason(tmp_path, make, reason):
    with pytest.raises(UnusableAudio, match=reason):
        probe_audio(make(tmp_path))


def test_a_truncated_file_is_caught_without_decoding_it_all(tmp_path):
    path = tone(tmp_path / "cut.flac", seconds=2.0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the FLAC header still promises 2 s
    with pytest.raises(UnusableAudio, match="truncated or corrupt"):
        probe_audio(path)
