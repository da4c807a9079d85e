"""Cheap checks of corpus audio files before training: header facts and readable edges.

:func:`probe_audio` reads a file's header and its first and last frames, which finds missing,
empty, unrecognised and truncated files without decoding whole corpora. Data preparation and the
ASR dataset skip what it rejects and record the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import soundfile as sf

__all__ = ["AudioInfo", "UnusableAudio", "probe_audio"]


class AudioInfo(NamedTuple):
    """What :func:`probe_audio` learns from a file's header."""

    frames: int
    sample_rate: int
    channels: int


class UnusableAudio(ValueError):
    """An audio file that cannot be used; ``str(err)`` is the short reason for skipped.tsv."""


_EDGE_FRAMES = 1024
_UNKNOWN_FRAMES = 1 << 40  # libsndfile's "length unknown" is SF_COUNT_MAX


def probe_audio(path: str | Path) -> AudioInfo:
    """Check that ``path`` is usable audio and return its header facts.

    Reads the header plus the first and last 1024 frames, which catches missing, empty,
    unrecognised and truncated files without decoding whole corpora. Raises
    :class:`UnusableAudio` with a short reason.
    """
    path = Path(path)
    if not path.is_file():
        raise UnusableAudio("missing audio file")
    if path.stat().st_size == 0:
        raise UnusableAudio("empty file (0 bytes)")
    try:
        audio = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise UnusableAudio(f"unreadable audio ({err})") from None
    with audio:
        frames = audio.frames
        try:
            if frames >= _UNKNOWN_FRAMES:  # header does not say: count by decoding
                frames = len(audio.read(dtype="int16"))
            elif frames:
                _read_edges(audio, frames)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise UnusableAudio(f"truncated or corrupt audio data ({err})") from None
        info = AudioInfo(frames, audio.samplerate, audio.channels)
    if info.frames == 0:
        raise UnusableAudio("zero-length audio (0 frames)")
    return info


def _read_edges(audio: sf.SoundFile, frames: int) -> None:
    edge = min(frames, _EDGE_FRAMES)
    head = audio.read(edge, dtype="int16")
    audio.seek(frames - edge)
    tail = audio.read(edge, dtype="int16")
    if len(head) != edge or len(tail) != edge:
        raise UnusableAudio(f"truncated or corrupt audio data (header says {frames} frames)")
