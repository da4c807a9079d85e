"""Griffin-Lim: log-mel -> linear spectrogram (pseudo-inverse of the filterbank) -> waveform by
fast (momentum) Griffin-Lim, plus the spectral measures used to check it.

Shapes: B batch, S samples, T frames, M mel bins, F linear frequency bins (n_fft // 2 + 1).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torchaudio
from torch import Tensor, nn

from speechattn.audio import FeatureConfig, mel_filterbank

if TYPE_CHECKING:
    from speechattn.vocoder import VocoderConfig

__all__ = [
    "GriffinLimVocoder",
    "linear_spectrogram",
    "mel_pseudo_inverse",
    "mel_to_linear",
    "spectral_convergence",
]

def linear_spectrogram(wave: Tensor, config: FeatureConfig) -> Tensor:
    """STFT magnitude of ``wave`` (..., S) -> (..., F, T), framed exactly like :class:`LogMel`."""
    window = torch.hann_window(config.win_length, dtype=wave.dtype, device=wave.device)
    batch_shape = wave.shape[:-1]
    spec = torch.stft(
        wave.reshape(-1, wave.shape[-1]),  # (B', S)
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        win_length=config.win_length,
        window=window,
        center=config.center,
        pad_mode=config.pad_mode,
        return_complex=True,
    )  # (B', F, T)
    return spec.abs().reshape(*batch_shape, *spec.shape[-2:])


def mel_pseudo_inverse(config: FeatureConfig) -> Tensor:
    """(F, M) Moore-Penrose pseudo-inverse of the mel projection ``mel = fbank.T @ linear``.

    Multiplying a mel spectrogram by it gives the minimum-norm least-squares linear spectrogram.
    Bins no filter covers (above ``f_max``, below ``f_min``) come back as 0.
    """
    fbank = mel_filterbank(config).to(torch.float64)  # (F, M)
    return torch.linalg.pinv(fbank.T).float()  # (F, M)


def mel_to_linear(mel: Tensor, config: FeatureConfig, inverse: Tensor | None = None) -> Tensor:
    """Non-negative least-squares estimate of the linear spectrogram behind ``mel``.

    Args:
        mel: (..., M, T) mel spectrogram in the linear (not log) domain, of power ``config.power``
            -- ``exp`` of :class:`LogMel` output, transposed.
        config: the front-end that made ``mel``.
        inverse: (F, M) result of :func:`mel_pseudo_inverse` to reuse; computed when None.

    Returns:
        (..., F, T) spectrogram of the same power. It is the pseudo-inverse solution clamped at 0:
        not the exact non-negative least-squares optimum, but one matrix product and close to it
        for the smooth spectral envelopes mels describe.
    """
    if mel.shape[-2] != config.n_mels:
        raise ValueError(
            f"mel_to_linear: expected {config.n_mels} mel bins on dim -2, got {tuple(mel.shape)}"
        )
    inverse = mel_pseudo_inverse(config) if inverse is None else inverse
    return torch.matmul(inverse.to(mel.dtype), mel).clamp(min=0.0)  # (F, M) @ (..., M, T)


def spectral_convergence(reference_mag: Tensor, estimate_mag: Tensor) -> float:
    """``||reference - estimate||_F / ||reference||_F`` of two magnitude spectrograms (0 = equal)."""
    if reference_mag.shape != estimate_mag.shape:
        raise ValueError(
            f"spectral_convergence: shapes differ, {tuple(reference_mag.shape)} vs "
            f"{tuple(estimate_mag.shape)} (trim both to the same frames)"
        )
    reference, estimate = reference_mag.double(), estimate_mag.double()
    norm = torch.linalg.vector_norm(reference)
    if norm == 0:
        raise ValueError("spectral_convergence: the reference spectrogram is all zeros")
    return float(torch.linalg.vector_norm(reference - estimate) / norm)


class GriffinLimVocoder(nn.Module):
    """Log-mel frames -> waveform by inverse mel and fast (momentum) Griffin-Lim.

    Args:
        config: ``n_iter`` iterations; ``momentum`` in [0, 1) (0 is the classic algorithm);
            ``power``, the exponent applied to the recovered magnitude (scaled to peak 1, then
            scaled back) before phase reconstruction: 1.0 keeps it, Tacotron used 1.5 to sharpen
            harmonics against the smearing of the inverse mel.
        features: the :class:`~speechattn.audio.LogMel` front-end whose output this inverts
            (``center=True``).
        rand_init: start from random phase instead of zero phase (zero is deterministic).
    """

    def __init__(
        self, config: VocoderConfig, features: FeatureConfig, rand_init: bool = False
    ) -> None:
        super().__init__()
        if not features.center:
            raise ValueError(
                "GriffinLimVocoder: needs FeatureConfig.center=True (torch.istft frames)"
            )
        n_iter, momentum, power = config.n_iter, config.momentum, config.power
        if n_iter < 1 or not 0 <= momentum < 1 or power <= 0:
            raise ValueError(
                f"GriffinLimVocoder: need n_iter >= 1 ({n_iter}), 0 <= momentum < 1 ({momentum}) "
                f"and power > 0 ({power})"
            )
        self.features = features
        self.sample_rate = features.sample_rate
        self.power = power
        self.register_buffer("inverse", mel_pseudo_inverse(features), persistent=False)
        self.griffin_lim = torchaudio.transforms.GriffinLim(
            n_fft=features.n_fft,
            n_iter=n_iter,
            win_length=features.win_length,
            hop_length=features.hop_length,
            power=1.0,
            momentum=momentum,
            rand_init=rand_init,
        )

    def linear_to_wave(self, magnitude: Tensor) -> Tensor:
        """(..., F, T) linear magnitude -> (..., S) waveform, S = (T - 1) * hop_length."""
        magnitude = magnitude.float()
        if self.power != 1.0:
            # Sharpen relative to each spectrogram's peak so the level does not change with power.
            peak = magnitude.amax(dim=(-2, -1), keepdim=True).clamp(min=1e-12)
            magnitude = peak * (magnitude / peak) ** self.power
        return self.griffin_lim(magnitude)

    def forward(self, log_mel: Tensor) -> Tensor:
        """(T, M) -> (S,) or (B, T, M) -> (B, S), S = max(T - 1, 1) * hop_length, with
        ``log_mel`` in :class:`~speechattn.audio.LogMel`'s domain.

        The STFT needs more than ``n_fft / 2`` samples, so a mel of a few frames (a voice that
        stops at once) is padded with silent frames first and the result cut back.
        """
        features = self.features
        if log_mel.dim() not in (2, 3) or log_mel.shape[-1] != features.n_mels:
            raise ValueError(
                f"GriffinLimVocoder: expected (T, {features.n_mels}) or "
                f"(B, T, {features.n_mels}) log-mel frames, got {tuple(log_mel.shape)}"
            )
        frames = log_mel.shape[-2]
        shortest = features.n_fft // (2 * features.hop_length) + 2
        if frames < shortest:
            pad = log_mel.new_full(
                (*log_mel.shape[:-2], shortest - frames, features.n_mels),
                math.log(features.log_floor),
            )
            log_mel = torch.cat([log_mel, pad], dim=-2)  # (..., shortest, M)
        mel = log_mel.float().exp().transpose(-1, -2)  # undo the log: (..., M, T)
        linear = mel_to_linear(mel, features, self.inverse)  # (..., F, T), power features.power
        wave = self.linear_to_wave(linear ** (1.0 / features.power))  # undo the power
        return wave[..., : max(frames - 1, 1) * features.hop_length]
