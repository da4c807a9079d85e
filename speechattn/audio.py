"""Waveform I/O, resampling, the log-mel front-end and global CMVN (vocoders: speechattn.vocoder).

Shapes: B batch, S samples, T frames, M mel bins, F linear frequency bins (n_fft // 2 + 1).

Audio is read and written with soundfile only (torchaudio's own load/save need torchcodec).
Features are ``log(max(mel, log_floor))`` with the natural log, where ``mel`` is
``torchaudio.transforms.MelSpectrogram`` of the configured power (2 = power, 1 = magnitude).

>>> config = FeatureConfig(sample_rate=8000, n_fft=256, win_length=256, hop_length=80, n_mels=20)
>>> log_mel = LogMel(config)
>>> tuple(log_mel(torch.zeros(2, 800)).shape), log_mel.num_frames(800)
((2, 11, 20), 11)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import torch
import torchaudio
from torch import Tensor, nn

from speechattn.fileio import atomic_write, write_text_atomic
from speechattn.nn.encoder import lengths_to_mask

__all__ = [
    "AudioError",
    "FEATURES_FILE",
    "FeatureConfig",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "GlobalCMVN",
    "LoadedAudio",
    "LogMel",
    "as_waveform",
    "check_features",
    "check_sample_rate",
    "compute_cmvn",
    "load_audio",
    "mel_filterbank",
    "record_features",
    "resample",
    "save_audio",
    "speed_perturb",
    "subtract_utterance_mean",
]

_SAVE_FORMATS = {".wav": "WAV", ".flac": "FLAC"}
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 384_000


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file and the fix."""


# --------------------------------------------------------------------------------------------
# Waveform I/O
# --------------------------------------------------------------------------------------------


class LoadedAudio(tuple):
    """What :func:`load_audio` returns: unpacks as ``(wave, sample_rate)``.

    ``wave`` is (S,) float32 at ``sample_rate`` (the requested rate when one was given);
    ``original_sample_rate`` is the rate stored in the file, before any resampling.
    """

    def __new__(cls, wave: Tensor, sample_rate: int, original_sample_rate: int) -> LoadedAudio:
        self = super().__new__(cls, (wave, sample_rate))
        self.original_sample_rate = original_sample_rate
        return self

    @property
    def wave(self) -> Tensor:
        return self[0]

    @property
    def sample_rate(self) -> int:
        return self[1]

    @property
    def resampled(self) -> bool:
        return self.sample_rate != self.original_sample_rate


def load_audio(path: str | os.PathLike, sample_rate: int | None = None) -> LoadedAudio:
    """Read a wav/flac/ogg file as float32 mono (channels averaged), resampled to ``sample_rate``.

    Returns ``(wave (S,), sr)``; ``sr`` is the rate of ``wave`` and the result's
    ``.original_sample_rate`` the file's own rate. Silence is fine; a missing, unreadable, empty
    or zero-length file, or one holding NaN/inf samples, raises :class:`AudioError`.
    """
    path = Path(path)
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file (name the files in it)")
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file (check the manifest or the data directory)")
    try:
        data, file_rate = sf.read(path, dtype="float32", always_2d=True)  # (S, C)
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError) as err:
        size = path.stat().st_size
        what = "is empty (0 bytes)" if size == 0 else f"is not readable audio ({err})"
        raise AudioError(f"{path}: {what}; re-download or re-create the file") from err
    if data.shape[0] == 0:
        raise AudioError(
            f"{path}: contains no samples (zero-length audio); drop it from the manifest"
        )
    bad = ~np.isfinite(data)
    if bad.any():
        first = int(np.argwhere(bad)[0, 0])
        raise AudioError(
            f"{path}: {int(bad.sum())} NaN/inf samples (first at sample {first}); "
            "the file is corrupt, re-create it"
        )
    wave = torch.from_numpy(data.mean(axis=1, dtype=np.float32))  # (S,)
    try:
        check_sample_rate(file_rate, "the file's sample rate")
    except ValueError as err:
        raise AudioError(f"{path}: {err}; the header is damaged or the file is not speech") from None
    target = file_rate if sample_rate is None else sample_rate
    return LoadedAudio(resample(wave, file_rate, target), target, file_rate)


def check_sample_rate(rate: object, what: str = "sample_rate") -> int:
    """``rate`` as an int if it is a plausible audio rate (1 kHz to 384 kHz), else ``ValueError``
    (``TypeError`` for a non-integer): a rate of 0 or 1 Hz is a mistake, and resampling from it
    would make millions of samples out of each one.

    >>> check_sample_rate(16000), check_sample_rate(np.int64(8000))
    (16000, 8000)
    """
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer):
        raise TypeError(f"{what}={rate!r}: expected an integer number of Hz")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise ValueError(
            f"{what}={rate} Hz is not a plausible audio rate (expected {MIN_SAMPLE_RATE}-"
            f"{MAX_SAMPLE_RATE} Hz)"
        )
    return int(rate)


def as_waveform(audio: object) -> Tensor:
    """A mono (S,) float32 waveform from a numpy array or tensor of samples.

    Integer PCM is scaled to [-1, 1] (int16 by 32768, int32 by 2**31, uint8 around 128); a
    (C, S) or (S, C) array is averaged over its channels (the shorter axis). Anything else (a
    path is not accepted here; bytes, None, lists) raises ``TypeError`` saying what is.

    >>> as_waveform(np.array([16384, -32768], dtype=np.int16)).tolist()
    [0.5, -1.0]
    """
    if isinstance(audio, np.ndarray):
        audio = torch.from_numpy(np.ascontiguousarray(audio))
    if not isinstance(audio, Tensor):
        raise TypeError(
            f"audio: expected a file path, a numpy array or a torch tensor of samples, got "
            f"{type(audio).__name__}"
        )
    wave = _scaled_to_unit(audio)
    if wave.dim() == 2:  # (C, S) or (S, C): channels are the short axis
        wave = wave.mean(dim=0 if wave.shape[0] <= wave.shape[1] else 1)
    if wave.dim() != 1 or wave.numel() == 0:
        raise ValueError(f"audio array must be (S,) or (C, S) with samples, got shape {tuple(audio.shape)}")
    if not torch.isfinite(wave).all():
        raise ValueError("audio array holds NaN or infinite samples")
    return wave


def _scaled_to_unit(samples: Tensor) -> Tensor:
    if samples.dtype == torch.uint8:
        return (samples.float() - 128.0) / 128.0
    if samples.dtype in (torch.int8, torch.int16, torch.int32, torch.int64):
        bits = {torch.int8: 8, torch.int16: 16, torch.int32: 32, torch.int64: 64}[samples.dtype]
        return (samples.double() / 2.0 ** (bits - 1)).float()
    if samples.is_floating_point():
        return samples.float()
    raise TypeError(f"audio: samples of type {samples.dtype} are not audio (expected float or int PCM)")


def resample(wave: Tensor, orig_sr: int, new_sr: int) -> Tensor:
    """Band-limited resampling of ``wave`` (..., S) from ``orig_sr`` to ``new_sr`` Hz (each
    checked by :func:`check_sample_rate`)."""
    orig_sr, new_sr = check_sample_rate(orig_sr, "orig_sr"), check_sample_rate(new_sr, "new_sr")
    if orig_sr == new_sr:
        return wave
    return torchaudio.functional.resample(wave, orig_sr, new_sr)


def speed_perturb(wave: Tensor, factor: float, sample_rate: int) -> Tensor:
    """``wave`` (..., S) played ``factor`` times faster, tempo and pitch together (sox's
    ``speed``, the ESPnet/Kaldi recipes' perturbation): about ``S / factor`` samples.

    >>> speed_perturb(torch.zeros(16000), 1.1, 16000).shape, speed_perturb(torch.zeros(16000), 0.9, 16000).shape
    (torch.Size([14546]), torch.Size([17778]))
    """
    if not 0.5 <= factor <= 2.0:
        raise ValueError(f"speed factor {factor} is outside 0.5-2.0")
    if factor == 1.0:
        return wave
    # Read the samples as if recorded at rate * factor, then bring them back to the rate.
    return resample(wave, round(sample_rate * factor), sample_rate)


def save_audio(path: str | os.PathLike, wave: Tensor | np.ndarray, sample_rate: int) -> Path:
    """Write ``wave`` (S,) or channels-first (C, S) as 16-bit PCM WAV or FLAC, atomically.

    Samples are clipped to [-1, 1]; the file appears under its name only once fully written.
    """
    path = Path(path)
    file_format = _SAVE_FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise ValueError(
            f"{path}: cannot save {path.suffix!r} audio; use one of {list(_SAVE_FORMATS)}"
        )
    if isinstance(wave, Tensor):
        wave = wave.detach().cpu().numpy()
    data = np.asarray(wave, dtype=np.float32)
    if data.ndim not in (1, 2) or data.size == 0:
        raise ValueError(f"{path}: expected a non-empty (S,) or (C, S) waveform, got {data.shape}")
    if not np.isfinite(data).all():
        raise ValueError(f"{path}: waveform contains NaN/inf samples; refusing to write it")
    data = np.clip(data, -1.0, 1.0)
    data = data.T if data.ndim == 2 else data  # soundfile wants (S, C)
    with atomic_write(path) as handle:
        sf.write(handle, data, sample_rate, subtype="PCM_16", format=file_format)
    return path


# --------------------------------------------------------------------------------------------
# Log-mel features
# --------------------------------------------------------------------------------------------


@dataclass
class FeatureConfig:
    """Log-mel front-end settings. The defaults are the ASR ones (25 ms / 10 ms at 16 kHz).

    ``mel_scale`` / ``norm`` follow torchaudio ("htk" with no area norm for ASR; "slaney" scale and
    norm for TTS, which is librosa's default). ``power`` 2.0 gives a power mel spectrogram, 1.0 a
    magnitude one. Features are ``ln(max(mel, log_floor))``. ``f_max=None`` means Nyquist.
    """

    sample_rate: int = 16000
    n_fft: int = 400
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float | None = None
    log_floor: float = 1e-5
    mel_scale: Literal["htk", "slaney"] = "htk"
    norm: Literal["slaney"] | None = None
    power: float = 2.0
    center: bool = True
    pad_mode: str = "reflect"

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"FeatureConfig.{name}={value!r} must be a positive integer")
        if self.win_length > self.n_fft:
            raise ValueError(
                f"FeatureConfig.win_length={self.win_length} exceeds n_fft={self.n_fft}"
            )
        nyquist = self.sample_rate / 2
        if not 0 <= self.f_min < self.max_frequency <= nyquist:
            raise ValueError(
                f"FeatureConfig: need 0 <= f_min ({self.f_min}) < f_max ({self.f_max}) <= "
                f"sample_rate / 2 ({nyquist})"
            )
        if self.mel_scale not in ("htk", "slaney"):
            raise ValueError(f"FeatureConfig.mel_scale={self.mel_scale!r}: use 'htk' or 'slaney'")
        if self.norm not in (None, "slaney"):
            raise ValueError(f"FeatureConfig.norm={self.norm!r}: use None or 'slaney'")
        if not self.power > 0 or not self.log_floor > 0:
            raise ValueError(
                f"FeatureConfig: power={self.power} and log_floor={self.log_floor} must be > 0"
            )

    @classmethod
    def tts(cls) -> FeatureConfig:
        """Tacotron defaults: 22050 Hz, 1024-point FFT and window, hop 256, 80 slaney mels to 8 kHz,
        magnitude (power 1)."""
        return cls(
            sample_rate=22050, n_fft=1024, win_length=1024, hop_length=256, n_mels=80,
            f_min=0.0, f_max=8000.0, mel_scale="slaney", norm="slaney", power=1.0,
        )  # fmt: skip

    @property
    def max_frequency(self) -> float:
        """``f_max`` with ``None`` resolved to Nyquist."""
        return float(self.sample_rate / 2 if self.f_max is None else self.f_max)

    @property
    def n_freqs(self) -> int:
        """Linear frequency bins F of the STFT."""
        return self.n_fft // 2 + 1

    def to_dict(self) -> dict:
        return asdict(self)


FEATURES_FILE = "features.json"  # the FeatureConfig a prepared folder's features were made with


def record_features(folder: str | os.PathLike, features: FeatureConfig) -> Path:
    """Write ``folder/features.json`` for ``features``, or check that the one there says the same:
    a prepared folder never mixes features made with two settings."""
    path = Path(folder) / FEATURES_FILE
    wanted = features.to_dict()
    if not path.is_file():
        return write_text_atomic(path, json.dumps(wanted, indent=1) + "\n")
    was, now = _differences(_read_features(path), wanted)
    if was:
        raise ValueError(
            f"{path}: this folder was prepared with other feature settings ({was}, now {now}); "
            "use a new --out folder"
        )
    return path


def check_features(
    folder: str | os.PathLike, features: FeatureConfig, prepare: str,
    unrecorded: FeatureConfig | None = None,
) -> None:
    """Training's check: ``features`` (the recipe config's) must be those ``folder/features.json``
    records. A folder without the file is refused, naming ``prepare``, unless ``unrecorded`` says
    what such folders were made with (folders prepared before the file existed)."""
    path = Path(folder) / FEATURES_FILE
    if path.is_file():
        stored = _read_features(path)
    elif unrecorded is not None:
        stored = unrecorded.to_dict()
    else:
        raise FileNotFoundError(f"{path}: missing; run {prepare} --out {folder}")
    was, now = _differences(stored, features.to_dict())
    if was:
        raise ValueError(
            f"{path}: features were made with {was} but the config says {now}; set "
            f"data.features to match or re-run {prepare} into a new folder"
        )


def _differences(stored: dict, wanted: dict) -> tuple[str, str]:
    """The settings that differ, as ``"k=stored, ..."`` and ``"k=wanted, ..."`` ("" when none)."""
    changed = sorted(k for k in wanted if stored.get(k) != wanted[k])
    return (", ".join(f"{k}={stored.get(k)!r}" for k in changed),
            ", ".join(f"{k}={wanted[k]!r}" for k in changed))


def _read_features(path: Path) -> dict:
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        stored = None
    if not isinstance(stored, dict):
        raise ValueError(f"{path}: not a features record; prepare the folder again")
    return stored


def mel_filterbank(config: FeatureConfig) -> Tensor:
    """The (F, M) triangular filterbank ``mel = fbank.T @ linear`` uses for ``config``."""
    return torchaudio.functional.melscale_fbanks(
        n_freqs=config.n_freqs,
        f_min=config.f_min,
        f_max=config.max_frequency,
        n_mels=config.n_mels,
        sample_rate=config.sample_rate,
        norm=config.norm,
        mel_scale=config.mel_scale,
    )


class LogMel(nn.Module):
    """Waveform -> log-mel frames: (B, S) -> (B, T, M) or (S,) -> (T, M)."""

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        self.config = config
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            win_length=config.win_length,
            hop_length=config.hop_length,
            f_min=config.f_min,
            f_max=config.max_frequency,
            n_mels=config.n_mels,
            power=config.power,
            center=config.center,
            pad_mode=config.pad_mode,
            norm=config.norm,
            mel_scale=config.mel_scale,
        )

    def forward(self, wave: Tensor) -> Tensor:
        if wave.dim() not in (1, 2):
            raise ValueError(f"LogMel: expected a (S,) or (B, S) waveform, got {tuple(wave.shape)}")
        shortest = self.config.n_fft // 2 + 1 if self.config.center else self.config.n_fft
        if wave.shape[-1] < shortest:
            raise ValueError(
                f"LogMel: a waveform of {wave.shape[-1]} samples is too short for n_fft="
                f"{self.config.n_fft}; need at least {shortest} (pad it or drop the utterance)"
            )
        mel = self.mel(wave.float())  # (..., M, T)
        return mel.clamp(min=self.config.log_floor).log().transpose(-1, -2)  # (..., T, M)

    def num_frames(self, num_samples: int) -> int:
        """Frames T that :meth:`forward` makes from ``num_samples`` samples."""
        if self.config.center:
            return 1 + num_samples // self.config.hop_length
        return max(0, 1 + (num_samples - self.config.n_fft) // self.config.hop_length)


# --------------------------------------------------------------------------------------------
# Global mean / variance normalization
# --------------------------------------------------------------------------------------------


def compute_cmvn(features: Iterable[Tensor], min_std: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Per-bin mean and std over every frame of ``features`` (each (T, M)), in one pass.

    Each tensor's float64 mean and sum of squared deviations are merged into the running totals
    (Chan et al.'s pairwise update), so a whole corpus never sits in memory and the result does not
    lose precision on long manifests. Returns float32 ``(mean (M,), std (M,))``; ``std`` is at least
    ``min_std`` so constant bins do not divide by zero.
    """
    count, mean, sq_dev = 0, None, None
    for index, feats in enumerate(features):
        if feats.dim() != 2 or feats.shape[0] == 0:
            raise ValueError(
                f"compute_cmvn: item {index} has shape {tuple(feats.shape)}, need (T, M)"
            )
        if mean is not None and feats.shape[1] != mean.shape[0]:
            raise ValueError(
                f"compute_cmvn: item {index} has {feats.shape[1]} bins, earlier ones {mean.shape[0]}"
            )
        x = feats.detach().to(torch.float64)
        if not torch.isfinite(x).all():
            raise ValueError(f"compute_cmvn: item {index} contains NaN/inf values")
        n, batch_mean = x.shape[0], x.mean(dim=0)
        batch_sq_dev = ((x - batch_mean) ** 2).sum(dim=0)
        if mean is None:
            count, mean, sq_dev = n, batch_mean, batch_sq_dev
            continue
        delta, total = batch_mean - mean, count + n
        mean = mean + delta * (n / total)
        sq_dev = sq_dev + batch_sq_dev + delta**2 * (count * n / total)
        count = total
    if mean is None:
        raise ValueError("compute_cmvn: no features given (is the manifest empty?)")
    std = (sq_dev / count).sqrt().clamp(min=min_std)
    return mean.float(), std.float()


def subtract_utterance_mean(features: Tensor, lengths: Tensor) -> Tensor:
    """(B, T, M) features, (B,) valid frame counts -> each utterance minus its own mean per bin.

    The mean is taken over the valid frames only; padded frames come out as zeros. After global
    CMVN this removes what stays fixed over an utterance (a voice's or a channel's spectral
    colouring), as cepstral mean normalization does.

    >>> x = torch.tensor([[[1.0, 2.0], [3.0, 6.0], [9.0, 9.0]]])
    >>> subtract_utterance_mean(x, torch.tensor([2])).tolist()
    [[[-1.0, -2.0], [1.0, 2.0], [0.0, 0.0]]]
    """
    mask = lengths_to_mask(lengths.to(features.device), features.shape[1])  # (B, T)
    valid = mask.unsqueeze(-1).to(features.dtype)  # (B, T, 1)
    mean = (features * valid).sum(1, keepdim=True) / valid.sum(1, keepdim=True).clamp_min(1.0)
    return (features - mean) * valid


class GlobalCMVN(nn.Module):
    """``(x - mean) / std`` over the last dim, with the stats held as buffers.

    Args:
        mean: (M,) per-bin mean.
        std: (M,) per-bin standard deviation, all > 0.
    """

    def __init__(self, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        mean, std = torch.as_tensor(mean).float(), torch.as_tensor(std).float()
        if mean.dim() != 1 or mean.shape != std.shape:
            raise ValueError(
                f"GlobalCMVN: mean {tuple(mean.shape)} and std {tuple(std.shape)} must both be (M,)"
            )
        if not (std > 0).all() or not torch.isfinite(mean).all():
            raise ValueError("GlobalCMVN: std must be > 0 and mean finite (see compute_cmvn)")
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x: Tensor) -> Tensor:
        """(..., M) -> (..., M) normalized."""
        return (x - self.mean) / self.std

    def inverse(self, x: Tensor) -> Tensor:
        """(..., M) normalized -> (..., M) in the original feature domain."""
        return x * self.std + self.mean

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``{"format", "mean", "std"}`` JSON atomically and return the path."""
        path = Path(path)
        record = {"format": "speechattn-cmvn", "mean": self.mean.tolist(), "std": self.std.tolist()}
        write_text_atomic(path, json.dumps(record))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> GlobalCMVN:
        """Read stats written by :meth:`save`; anything else raises ``ValueError`` naming the file."""
        path = Path(path)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not a JSON CMVN file ({err})") from err
        if not isinstance(record, dict) or record.get("format") != "speechattn-cmvn":
            raise ValueError(
                f'{path}: not CMVN stats (expected "format": "speechattn-cmvn"; write with '
                "GlobalCMVN.save)"
            )
        try:
            return cls(torch.tensor(record["mean"]), torch.tensor(record["std"]))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: bad CMVN stats ({err})") from err
