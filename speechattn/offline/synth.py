"""Thin wrappers around the ``espeak-ng`` and ``flite`` command-line synthesizers.

Both programs run as subprocesses with explicit argument lists (never through a shell) and write a
temporary WAV file next to the final one. :func:`render` turns one :class:`RenderJob` into a
finished file: synthesize, trim leading/trailing silence, resample, peak-normalize, check the
duration, write under a temporary name and ``os.replace`` it into place, so a killed build never
leaves a truncated file under a final name (only ``.*.inprogress-*`` leftovers, which
:func:`remove_partial_files` deletes).

Both synthesizers are deterministic: the same job gives the same bytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from speechattn.fileio import TEMP_SUFFIX, ensure_folder

__all__ = [
    "ENGINES",
    "MAX_DURATION_S",
    "MIN_DURATION_S",
    "PARTIAL_TAG",
    "TARGET_PEAK",
    "Engine",
    "RenderJob",
    "SynthesisError",
    "SynthesizerNotFoundError",
    "Voice",
    "check_flite_voices",
    "engine_versions",
    "init_worker",
    "postprocess",
    "remove_partial_files",
    "render",
    "require_engines",
    "synthesize",
]

MIN_DURATION_S = 0.3
MAX_DURATION_S = 20.0
TARGET_PEAK = 0.9  # every file is scaled to this peak: never clipped, comparable loudness
SILENCE_RATIO = 0.01  # samples below this fraction of the peak count as silence when trimming
MARGIN_S = 0.1  # silence kept before and after the speech
PARTIAL_TAG = ".inprogress-"
_TIMEOUT_S = 120


class SynthesizerNotFoundError(RuntimeError):
    """A synthesizer program is not on PATH; the message names the Debian package to install."""


class SynthesisError(RuntimeError):
    """A synthesizer failed or produced unusable audio; the message names the voice and text."""


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker.

    Args:
        engine: a key of :data:`ENGINES` (``"espeak-ng"`` or ``"flite"``).
        name: espeak-ng's ``-v`` value (``"en-us+m3"``) or flite's ``-voice`` value (``"slt"``).
        speed: relative speaking rate, 1.0 = the engine's default (espeak-ng: 175 words/min).
        pitch: espeak-ng's ``-p`` (0-99) or flite's mean F0 in Hz; ``None`` keeps the default.
    """

    engine: str
    name: str
    speed: float = 1.0
    pitch: int | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(
                f"Voice: unknown engine {self.engine!r}; choose one of {sorted(ENGINES)}"
            )
        if not 0.5 <= self.speed <= 2.0:
            raise ValueError(f"Voice {self.name!r}: speed={self.speed} outside [0.5, 2.0]")

    def describe(self) -> dict[str, object]:
        return {"engine": self.engine, "voice": self.name, "speed": self.speed, "pitch": self.pitch}


def _espeak_command(voice: Voice, text: str, wav_path: str, speed: float) -> list[str]:
    command = ["espeak-ng", "-v", voice.name, "-s", str(round(175 * speed))]
    if voice.pitch is not None:
        command += ["-p", str(voice.pitch)]
    return command + ["-w", wav_path, "--", text]


def _flite_command(voice: Voice, text: str, wav_path: str, speed: float) -> list[str]:
    command = ["flite", "-voice", voice.name, "--setf", f"duration_stretch={1.0 / speed:.4f}"]
    if voice.pitch is not None:
        command += ["--setf", f"int_f0_target_mean={voice.pitch}"]
    return command + ["-t", text, "-o", wav_path]


@dataclass(frozen=True)
class Engine:
    """A synthesizer program, the Debian package that provides it, and its command builder."""

    program: str
    package: str
    command: Callable[[Voice, str, str, float], list[str]]
    version_args: tuple[str, ...]


ENGINES: dict[str, Engine] = {
    "espeak-ng": Engine("espeak-ng", "espeak-ng", _espeak_command, ("--version",)),
    "flite": Engine("flite", "flite", _flite_command, ("--version",)),
}


def require_engines(engines: Iterable[str]) -> None:
    """Raise :class:`SynthesizerNotFoundError` naming the package for each missing program."""
    missing = [ENGINES[e] for e in sorted(set(engines)) if shutil.which(ENGINES[e].program) is None]
    if missing:
        programs = ", ".join(e.program for e in missing)
        packages = " ".join(e.package for e in missing)
        raise SynthesizerNotFoundError(
            f"{programs} not found on PATH; the offline corpus needs it: "
            f"install it with `apt-get install {packages}` (Debian/Ubuntu)"
        )


def check_flite_voices(names: Iterable[str]) -> None:
    """flite silently falls back to its default voice for unknown names; refuse them instead."""
    listing = subprocess.run(["flite", "-lv"], capture_output=True, text=True, timeout=_TIMEOUT_S)
    available = set(listing.stdout.replace("Voices available:", "").split())
    unknown = sorted(set(names) - available)
    if unknown:
        listed = " ".join(sorted(available))
        raise SynthesisError(
            f"flite has no voice {', '.join(unknown)} (`flite -lv` lists: {listed})"
        )


def engine_versions(engines: Iterable[str]) -> dict[str, str]:
    """First non-empty line of each program's version output, for provenance in corpus.json."""
    versions = {}
    for name in sorted(set(engines)):
        engine = ENGINES[name]
        command = [engine.program, *engine.version_args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT_S)
        lines = [ln.strip() for ln in (result.stdout + result.stderr).splitlines() if ln.strip()]
        first = lines[0] if lines else ""
        versions[name] = next((ln for ln in lines if "version" in ln.lower()), first)
    return versions


def synthesize(voice: Voice, text: str, wav_path: str | Path, speed: float | None = None) -> None:
    """Run the voice's synthesizer on ``text``, writing a WAV file at ``wav_path``."""
    engine = ENGINES[voice.engine]
    command = engine.command(voice, text, str(wav_path), voice.speed if speed is None else speed)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT_S)
    except FileNotFoundError as err:
        raise SynthesizerNotFoundError(
            f"{engine.program} not found on PATH: "
            f"install it with `apt-get install {engine.package}`"
        ) from err
    if result.returncode != 0 or not Path(wav_path).is_file():
        raise SynthesisError(
            f"{engine.program} failed (exit {result.returncode}) for voice {voice.name!r} on "
            f"{text!r}: {result.stderr.strip() or 'no output file'}"
        )


def _trim(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Cut leading and trailing silence, keeping ``MARGIN_S`` on each side."""
    loud = np.flatnonzero(np.abs(wave) > SILENCE_RATIO * np.abs(wave).max())
    margin = int(MARGIN_S * sample_rate)
    start, stop = max(loud[0] - margin, 0), min(loud[-1] + 1 + margin, len(wave))
    return wave[start:stop]


def _resample(wave: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    if orig_sr == new_sr:
        return wave
    import torch  # imported here: only workers that resample pay for it
    import torchaudio.functional as F

    return F.resample(torch.from_numpy(wave), orig_sr, new_sr).numpy()


def postprocess(wave: np.ndarray, sample_rate: int, target_rate: int) -> np.ndarray:
    """Trim silence, resample to ``target_rate`` and scale to ``TARGET_PEAK``.

    Args:
        wave: (S,) float samples; must contain sound.
    Returns:
        (S',) float32 samples at ``target_rate`` with peak ``TARGET_PEAK``.
    """
    if wave.size == 0 or not np.isfinite(wave).all() or np.abs(wave).max() == 0:
        raise SynthesisError("synthesizer produced empty, silent or non-finite audio")
    wave = _resample(_trim(wave.astype(np.float32), sample_rate), sample_rate, target_rate)
    return (wave * (TARGET_PEAK / np.abs(wave).max())).astype(np.float32)


@dataclass(frozen=True)
class RenderJob:
    """One output file: ``text`` spoken by ``voice`` at ``speed``, saved at ``sample_rate``.

    The format follows ``out_path``'s suffix (``.flac`` or ``.wav``, 16-bit PCM, mono).
    """

    out_path: str
    text: str
    voice: Voice
    speed: float
    sample_rate: int


def _partial_path(path: Path, tag: str) -> Path:
    return path.with_name(f".{path.name}{PARTIAL_TAG}{os.getpid()}.{tag}")


def render(job: RenderJob) -> int:
    """Synthesize, clean up and atomically write one file; returns its length in samples."""
    out_path = Path(job.out_path)
    ensure_folder(out_path.parent)
    raw_wav, partial = _partial_path(out_path, "raw.wav"), _partial_path(out_path, "part")
    try:
        synthesize(job.voice, job.text, raw_wav, job.speed)
        wave, rate = sf.read(raw_wav, dtype="float32", always_2d=True)
        try:
            wave = postprocess(wave.mean(axis=1), rate, job.sample_rate)
        except SynthesisError as err:
            where = f"{out_path.name}: voice {job.voice.name!r}, text {job.text!r}"
            raise SynthesisError(f"{where}: {err}") from err
        duration = len(wave) / job.sample_rate
        if not MIN_DURATION_S < duration < MAX_DURATION_S:
            raise SynthesisError(
                f"{out_path.name}: {duration:.2f} s of audio for {job.text!r} "
                f"(voice {job.voice.name!r}), expected {MIN_DURATION_S}-{MAX_DURATION_S} s; "
                "shorten the sentence or change the speed"
            )
        audio_format = {".flac": "FLAC", ".wav": "WAV"}[out_path.suffix.lower()]
        sf.write(partial, wave, job.sample_rate, format=audio_format, subtype="PCM_16")
        os.replace(partial, out_path)
        return len(wave)
    finally:
        raw_wav.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)


def remove_partial_files(root: Path) -> int:
    """Delete the temporary files a killed build left under ``root`` (this module's, and
    :func:`speechattn.fileio.atomic_write`'s); returns how many."""
    removed = 0
    leftovers = [*root.rglob(f".*{PARTIAL_TAG}*"), *root.rglob(f".*{TEMP_SUFFIX}")]
    for path in leftovers:
        if path.is_file() and not path.is_symlink():
            path.unlink()
            removed += 1
    return removed


def init_worker() -> None:
    """Process-pool initializer: one torch thread per worker (the pool already fills the cores)."""
    import torch

    torch.set_num_threads(1)
