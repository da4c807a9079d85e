"""SpecAugment (Park et al., 2019) frequency and time masking, and an optional mel-axis warp, active
in training mode only.

Shapes: B batch, T frames, M mel bins.

Masks come from ``torchaudio.transforms.FrequencyMasking`` / ``TimeMasking`` with ``iid_masks``, so
every utterance in a batch gets its own masks. Features are expected to be CMVN-normalized: the
masks fill with 0, the per-bin mean. Time-warping is left out (it costs more than it helps on small
corpora).

``freq_warp=w`` stretches or squeezes each utterance's mel axis by a factor drawn from
``[1 - w, 1 + w]`` before masking (bin m takes the value at m / factor, linearly interpolated): a
cheap stand-in for vocal tract length perturbation, meant to make a model trained on few voices
less sensitive to a new voice's formants and pitch. Off (0) by default.

``time_stretch=s`` resamples each utterance's time axis by a factor drawn from ``[1 - s, 1 + s]``
(frame t of the output is the input at t / factor, linearly interpolated; the length scales by
the factor): a tempo perturbation on the features, for voices that speak faster or slower than
the training ones. It changes lengths, so it runs through :meth:`SpecAugment.augment`. Off (0).

>>> import torch
>>> augment = SpecAugment(SpecAugmentConfig(freq_masks=1, freq_width=4, time_masks=1, time_width=5))
>>> x = torch.ones(2, 50, 20)
>>> bool(torch.equal(augment.eval()(x), x)), bool((augment.train()(x) == 0).any())
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchaudio.transforms import FrequencyMasking, TimeMasking

__all__ = ["SpecAugmentConfig", "SpecAugment", "warp_mel_axis", "stretch_time"]


@dataclass
class SpecAugmentConfig:
    """How many masks of which maximum width; 0 masks switches a kind off."""

    freq_masks: int = 2
    freq_width: int = 15  # mel bins per frequency mask, at most
    time_masks: int = 2
    time_width: int = 40  # frames per time mask, at most
    time_ratio: float = 0.2  # and at most this fraction of the (padded) frames
    freq_warp: float = 0.0  # mel axis scaled by a factor in [1 - freq_warp, 1 + freq_warp]
    time_stretch: float = 0.0  # time axis scaled by a factor in [1 - time_stretch, 1 + ...]

    def __post_init__(self) -> None:
        for name in ("freq_masks", "freq_width", "time_masks", "time_width"):
            if getattr(self, name) < 0:
                raise ValueError(f"specaugment.{name}={getattr(self, name)} must be >= 0")
        if not 0.0 < self.time_ratio <= 1.0:
            raise ValueError(f"specaugment.time_ratio={self.time_ratio} must be in (0, 1]")
        if not 0.0 <= self.freq_warp < 0.5:
            raise ValueError(f"specaugment.freq_warp={self.freq_warp} must be in [0, 0.5)")
        if not 0.0 <= self.time_stretch < 0.5:
            raise ValueError(f"specaugment.time_stretch={self.time_stretch} must be in [0, 0.5)")

    @property
    def enabled(self) -> bool:
        return (
            (self.freq_masks > 0 and self.freq_width > 0)
            or (self.time_masks > 0 and self.time_width > 0)
            or self.freq_warp > 0
            or self.time_stretch > 0
        )


class SpecAugment(nn.Module):
    """(B, T, M) -> (B, T, M) with random bands of bins and frames set to 0 (training mode only)."""

    def __init__(self, config: SpecAugmentConfig) -> None:
        super().__init__()
        masks: list[nn.Module] = []
        if config.freq_width > 0:
            masks += [FrequencyMasking(config.freq_width, iid_masks=True)] * config.freq_masks
        if config.time_width > 0:
            time_mask = TimeMasking(config.time_width, iid_masks=True, p=config.time_ratio)
            masks += [time_mask] * config.time_masks
        self.masks = nn.ModuleList(masks)
        self.freq_warp = config.freq_warp
        self.time_stretch = config.time_stretch

    def augment(self, features: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T, M), (B,) -> stretched (time_stretch), warped and masked features, new lengths."""
        if self.training and self.time_stretch > 0:
            factors = torch.empty(features.shape[0], device=features.device)
            factors.uniform_(1.0 - self.time_stretch, 1.0 + self.time_stretch)
            features, lengths = stretch_time(features, lengths, factors)
        return self(features), lengths

    def forward(self, features: Tensor) -> Tensor:
        if not self.training:
            return features
        if self.freq_warp > 0:
            factors = torch.empty(features.shape[0], device=features.device)
            factors.uniform_(1.0 - self.freq_warp, 1.0 + self.freq_warp)
            features = warp_mel_axis(features, factors)
        if len(self.masks) == 0:
            return features
        x = features.transpose(1, 2).unsqueeze(1)  # (B, 1, M, T): torchaudio's (..., freq, time)
        for mask in self.masks:
            x = mask(x)
        return x.squeeze(1).transpose(1, 2)  # (B, T, M)


def warp_mel_axis(features: Tensor, factors: Tensor) -> Tensor:
    """(B, T, M) features with utterance b's mel axis scaled by ``factors[b]`` (B,).

    Output bin m is the input at position m / factor, linearly interpolated and clamped to the top
    bin: a factor above 1 moves spectral features up, below 1 down.

    >>> x = torch.zeros(1, 1, 10); x[0, 0, 4] = 1.0
    >>> warp_mel_axis(x, torch.tensor([1.5]))[0, 0].argmax().item()
    6
    """
    bins = features.shape[2]
    grid = torch.arange(bins, device=features.device, dtype=features.dtype)
    position = grid.unsqueeze(0) / factors.to(features.dtype).unsqueeze(1)  # (B, M)
    top = torch.full((features.shape[0], 1), bins - 1, device=features.device)  # (B, 1)
    return _read_frames(features.transpose(1, 2), position, top).transpose(1, 2)  # (B, T, M)


def stretch_time(features: Tensor, lengths: Tensor, factors: Tensor) -> tuple[Tensor, Tensor]:
    """(B, T, M), (B,) -> utterance b's frames resampled by ``factors[b]`` (B,), and new lengths.

    New length ``round(length * factor)`` (at least 1); output frame t is the input at
    ``t / factor``, linearly interpolated within the utterance; zero beyond each new length.

    >>> x = torch.arange(4.0).reshape(1, 4, 1)
    >>> y, n = stretch_time(x, torch.tensor([4]), torch.tensor([1.5]))
    >>> n.tolist(), [round(v, 3) for v in y[0, :, 0].tolist()]
    ([6], [0.0, 0.667, 1.333, 2.0, 2.667, 3.0])
    """
    device = features.device
    old = lengths.to(device)
    new = (old.to(factors.dtype) * factors.to(device)).round().long().clamp(min=1)  # (B,)
    steps = int(new.max())
    grid = torch.arange(steps, device=device, dtype=features.dtype)
    last = (old - 1).clamp(min=0).unsqueeze(1)  # (B, 1)
    position = grid.unsqueeze(0) / factors.to(device, features.dtype).unsqueeze(1)  # (B, T')
    keep = (grid.unsqueeze(0) < new.unsqueeze(1)).unsqueeze(2).to(features.dtype)  # (B, T', 1)
    return _read_frames(features, position, last) * keep, new.to(lengths.device)


def _read_frames(x: Tensor, position: Tensor, last: Tensor) -> Tensor:
    """(B, T, C) rows read at fractional ``position`` (B, K) along T, clamped to row ``last``
    (B, 1) of each item, linearly interpolated between neighbours -> (B, K, C)."""
    position = torch.minimum(position, last.to(x.dtype))
    low = position.floor().long()
    high = torch.minimum(low + 1, last)
    frac = (position - low).unsqueeze(2)  # (B, K, 1)
    below = x.gather(1, low.unsqueeze(2).expand(-1, -1, x.shape[2]))  # (B, K, C)
    above = x.gather(1, high.unsqueeze(2).expand(-1, -1, x.shape[2]))  # (B, K, C)
    return below + (above - below) * frac
