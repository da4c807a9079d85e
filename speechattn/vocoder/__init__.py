"""Vocoders: log-mel frames in, waveform out, chosen by name from a registry.

Shapes: B batch, T frames, M mel bins, S samples.

Every vocoder is built as ``VOCODERS[kind](config, features)`` from a :class:`VocoderConfig` and
the :class:`~speechattn.audio.FeatureConfig` of the front-end whose log-mels it inverts, and
follows :class:`Vocoder`: call it on (T, M) or (B, T, M) log-mels (``LogMel``'s domain, not
normalized) for (S,) or (B, S) samples at ``vocoder.sample_rate``, ``S = max(T - 1, 1) * hop``.

Adding a kind (a neural vocoder, say) is one new module with its class and one line in
``VOCODERS``; its settings go in :class:`VocoderConfig`, as the attention kinds share
:class:`~speechattn.nn.attention.AttentionConfig`.

>>> from speechattn.audio import FeatureConfig
>>> features = FeatureConfig(sample_rate=8000, n_fft=256, win_length=256, hop_length=80, n_mels=20)
>>> vocoder = build_vocoder(VocoderConfig(n_iter=2), features)
>>> tuple(vocoder(torch.zeros(11, 20)).shape), vocoder.sample_rate
((800,), 8000)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from speechattn.audio import FeatureConfig
from speechattn.vocoder.griffin_lim import GriffinLimVocoder

__all__ = ["Vocoder", "VocoderConfig", "VOCODERS", "build_vocoder", "GriffinLimVocoder"]


@runtime_checkable
class Vocoder(Protocol):
    """Log-mel (T, M) or (B, T, M) -> waveform (S,) or (B, S) at ``sample_rate``."""

    sample_rate: int

    def __call__(self, log_mel: Tensor) -> Tensor: ...


@dataclass
class VocoderConfig:
    """Which vocoder and its settings (``synthesis.vocoder`` in a TTS config)."""

    kind: str = "griffin_lim"
    n_iter: int = 32  # griffin_lim: iterations
    momentum: float = 0.99  # griffin_lim: fast Griffin-Lim momentum, 0 = the classic algorithm
    power: float = 1.0  # griffin_lim: > 1 sharpens harmonics (Tacotron: 1.5), erases quiet sounds


VOCODERS: dict[str, type] = {
    "griffin_lim": GriffinLimVocoder,
}


def build_vocoder(config: VocoderConfig, features: FeatureConfig) -> Vocoder:
    """The vocoder named by ``config.kind``, in eval mode, for ``features``' log-mels."""
    try:
        cls = VOCODERS[config.kind]
    except KeyError:
        raise ValueError(
            f"unknown vocoder kind {config.kind!r}; choose one of {sorted(VOCODERS)}"
        ) from None
    vocoder = cls(config, features)
    if isinstance(vocoder, torch.nn.Module):
        vocoder.eval()
    return vocoder
