"""Tacotron training loss: masked mel reconstruction, stop token, guided attention.

Shapes: B batch, T text characters, U decoder steps, F mel frames (U * r), M mel bins.

Guided attention (Tachibana et al., 2017) penalises attention far from the diagonal with the prior

    W[u, t] = 1 - exp(-(t / T_b - u / U_b) ** 2 / (2 g ** 2))

for each item's own lengths (T_b, U_b); the loss is ``sum(W * A) / number of real steps``, i.e. the
attention mass off the diagonal per step, in [0, 1]. Its weight decays by half every
``guided_half_life`` steps (down to ``guided_min_weight``): it makes the alignment appear in the
first few hundred steps and then gets out of the way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional

from speechattn.nn.decoder import FeedbackSchedule
from speechattn.nn.encoder import lengths_to_mask
from speechattn.tts.model import TacotronOutput, num_decoder_steps

__all__ = [
    "MEL_LOSSES",
    "TacotronLossConfig",
    "LossTerms",
    "TacotronLoss",
    "guided_attention_prior",
    "masked_mel_loss",
]


def _l1(x: Tensor, y: Tensor) -> Tensor:
    return (x - y).abs()


def _mse(x: Tensor, y: Tensor) -> Tensor:
    return (x - y).pow(2)


# Element-wise distances; the masking and averaging are shared.
MEL_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"l1": _l1, "mse": _mse}


@dataclass
class TacotronLossConfig:
    """Weights of the loss terms and the guided-attention schedule."""

    mel_loss: str = "l1"  # a key of MEL_LOSSES
    stop_weight: float = 1.0
    stop_pos_weight: float = 5.0  # one positive step per utterance: weigh it up
    guided_weight: float = 1.0
    guided_sigma: float = 0.2
    guided_half_life: int | None = 2000  # steps; None keeps the weight constant
    guided_min_weight: float = 0.0
    # Self-fed frames: the probability of feeding the decoder its own previous frame instead of
    # the recorded one (the schedule ASR's scheduled sampling uses too)
    feedback: FeedbackSchedule = field(default_factory=FeedbackSchedule)

    RENAMED_KEYS: ClassVar[dict[str, str]] = {
        "feedback_max": "feedback.probability", "feedback_start": "feedback.start",
        "feedback_end": "feedback.end",
    }  # the names before the schedule was shared with ASR


class LossTerms(NamedTuple):
    """total: scalar to minimise; the others are the unweighted terms (scalars)."""

    total: Tensor
    mel_before: Tensor
    mel_after: Tensor
    stop: Tensor
    guided: Tensor
    guided_weight: float

    def as_floats(self) -> dict[str, float]:
        """For logging."""
        return {
            "loss": float(self.total.detach()),
            "mel_before": float(self.mel_before.detach()),
            "mel_after": float(self.mel_after.detach()),
            "stop": float(self.stop.detach()),
            "guided": float(self.guided.detach()),
            "guided_weight": self.guided_weight,
        }


def guided_attention_prior(
    text_lengths: Tensor, step_lengths: Tensor, max_text: int, max_steps: int, sigma: float
) -> Tensor:
    """(B,), (B,) -> W (B, U, T): 0 on each item's diagonal, towards 1 away from it, 0 on padding."""
    t = torch.arange(max_text, device=text_lengths.device).float()  # (T,)
    u = torch.arange(max_steps, device=text_lengths.device).float()  # (U,)
    t_rel = t.unsqueeze(0) / text_lengths.unsqueeze(1).float()  # (B, T)
    u_rel = u.unsqueeze(0) / step_lengths.unsqueeze(1).float()  # (B, U)
    distance = u_rel.unsqueeze(2) - t_rel.unsqueeze(1)  # (B, U, T)
    prior = 1.0 - torch.exp(-distance.pow(2) / (2.0 * sigma**2))
    valid = lengths_to_mask(step_lengths, max_steps).unsqueeze(2) & lengths_to_mask(
        text_lengths, max_text
    ).unsqueeze(1)  # (B, U, T)
    return prior * valid


def masked_mel_loss(kind: str, prediction: Tensor, target: Tensor, lengths: Tensor) -> Tensor:
    """Mean distance over the real frames and all bins of (B, F, M) tensors."""
    mask = lengths_to_mask(lengths, prediction.shape[1]).unsqueeze(2).to(prediction.dtype)
    distance = MEL_LOSSES[kind](prediction, target) * mask
    return distance.sum() / (mask.sum() * prediction.shape[2]).clamp(min=1.0)


class TacotronLoss(nn.Module):
    """Callable ``(output, batch tensors, step) -> LossTerms``; holds no parameters."""

    def __init__(self, config: TacotronLossConfig, reduction_factor: int) -> None:
        super().__init__()
        if config.mel_loss not in MEL_LOSSES:
            raise ValueError(
                f"loss.mel_loss={config.mel_loss!r}: choose one of {sorted(MEL_LOSSES)}"
            )
        if config.guided_sigma <= 0:
            raise ValueError(f"loss.guided_sigma must be > 0, got {config.guided_sigma}")
        self.config = config
        self.reduction_factor = reduction_factor

    def guided_weight(self, step: int) -> float:
        """The annealed guided-attention weight at training step ``step``."""
        c = self.config
        if c.guided_half_life is None or c.guided_weight == 0:
            return c.guided_weight
        decayed = c.guided_weight * 0.5 ** (step / c.guided_half_life)
        return max(decayed, c.guided_min_weight)

    def forward(
        self,
        output: TacotronOutput,
        mels: Tensor,
        mel_lengths: Tensor,
        text_lengths: Tensor,
        step: int = 0,
    ) -> LossTerms:
        """``output`` from :meth:`Tacotron.forward`; targets (B, F, M), lengths (B,), (B,)."""
        c = self.config
        frames = output.mel_before.shape[1]
        mels = functional.pad(mels, (0, 0, 0, frames - mels.shape[1]))  # (B, U * r, M)
        device = mels.device
        mel_lengths, text_lengths = mel_lengths.to(device), text_lengths.to(device)
        mel_before = masked_mel_loss(c.mel_loss, output.mel_before, mels, mel_lengths)
        mel_after = masked_mel_loss(c.mel_loss, output.mel_after, mels, mel_lengths)
        stop = self._stop_loss(output.stop_logits, mel_lengths)
        guided = self._guided_loss(output.alignments, text_lengths, mel_lengths)
        weight = self.guided_weight(step)
        total = mel_before + mel_after + c.stop_weight * stop + weight * guided
        return LossTerms(total, mel_before, mel_after, stop, guided, weight)

    def _stop_loss(self, stop_logits: Tensor, mel_lengths: Tensor) -> Tensor:
        """BCE over real steps; the target is 1 on each item's last step."""
        steps = num_decoder_steps(mel_lengths, self.reduction_factor)  # (B,)
        mask = lengths_to_mask(steps, stop_logits.shape[1])  # (B, U)
        target = torch.zeros_like(stop_logits)
        target[torch.arange(len(steps), device=steps.device), steps - 1] = 1.0
        pos_weight = stop_logits.new_tensor(self.config.stop_pos_weight)
        bce = functional.binary_cross_entropy_with_logits(
            stop_logits, target, pos_weight=pos_weight, reduction="none"
        )
        return (bce * mask).sum() / mask.sum()

    def _guided_loss(self, alignments: Tensor, text_lengths: Tensor, mel_lengths: Tensor) -> Tensor:
        steps = num_decoder_steps(mel_lengths, self.reduction_factor)
        batch, max_steps, max_text = alignments.shape
        prior = guided_attention_prior(
            text_lengths, steps, max_text, max_steps, self.config.guided_sigma
        )  # (B, U, T)
        return (prior * alignments).sum() / steps.sum()
