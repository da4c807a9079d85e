"""The LAS training objective: label-smoothed cross-entropy, joint CTC, scheduled sampling.

Shapes: B batch, U output steps, T' encoder frames, V vocabulary size.

Both losses are summed over characters and divided by the number of utterances B (not by the
number of characters). That keeps the loss a plain average over utterances, so under
DistributedDataParallel the average of the ranks' gradients equals the gradient of the whole
global batch exactly, whatever the transcripts' lengths. Per-character values are logged too.

>>> config = ObjectiveConfig(sampling_max=0.4, sampling_start=100, sampling_end=300)
>>> [sampling_probability(step, config) for step in (0, 100, 200, 300, 1000)]
[0.0, 0.0, 0.2, 0.4, 0.4]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from speechattn.asr.model import LASOutput
from speechattn.text import BLANK, PAD
from speechattn.train import linear_ramp

__all__ = ["ObjectiveConfig", "sampling_probability", "las_loss"]


@dataclass
class ObjectiveConfig:
    """Training-only settings of the speller's objective."""

    label_smoothing: float = 0.1
    sampling_max: float = 0.0  # scheduled sampling: probability of feeding back the own prediction
    sampling_start: int = 0  # ... grows linearly from 0 at this step
    sampling_end: int = 0  # ... to sampling_max at this step, and stays there
    # probability of feeding back a random character instead of the reference one (the target
    # scored is unchanged): the speller cannot lean on recalled training sentences as much
    token_noise: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"objective.label_smoothing={self.label_smoothing} must be in [0, 1)")
        if not 0.0 <= self.sampling_max <= 1.0:
            raise ValueError(f"objective.sampling_max={self.sampling_max} must be in [0, 1]")
        if not 0.0 <= self.token_noise < 1.0:
            raise ValueError(f"objective.token_noise={self.token_noise} must be in [0, 1)")
        if self.sampling_end < self.sampling_start:
            raise ValueError(
                f"objective.sampling_end={self.sampling_end} is before "
                f"sampling_start={self.sampling_start}"
            )


def sampling_probability(step: int, config: ObjectiveConfig) -> float:
    """The scheduled-sampling probability at ``step`` (linear ramp, then flat)."""
    return linear_ramp(step, config.sampling_max, config.sampling_start, config.sampling_end)


def las_loss(
    output: LASOutput, targets: Tensor, ctc_weight: float = 0.0, label_smoothing: float = 0.0
) -> tuple[Tensor, dict[str, float]]:
    """``(1 - w) * attention CE + w * CTC``, each summed over characters and divided by B.

    Args:
        output: the model's teacher-forced :class:`LASOutput`.
        targets: (B, U) character ids ending in EOS, PAD after (PAD positions are ignored).
        ctc_weight: w; needs ``output.ctc_log_probs`` when > 0.
        label_smoothing: mass spread uniformly over the vocabulary in the attention CE.

    Returns the scalar loss and floats to log: per-character ``att_ce`` / ``ctc``, ``acc``.
    """
    batch, steps, vocab = output.logits.shape
    flat_targets = targets.reshape(batch * steps)  # (B * U,)
    att_sum = F.cross_entropy(
        output.logits.reshape(batch * steps, vocab).float(),  # (B * U, V)
        flat_targets,
        ignore_index=PAD,
        label_smoothing=label_smoothing,
        reduction="sum",
    )
    real = flat_targets != PAD
    num_chars = real.sum().clamp(min=1)
    correct = (output.logits.detach().argmax(-1).reshape(-1) == flat_targets) & real
    logs = {
        "att_ce": float(att_sum.detach() / num_chars),
        "acc": float(correct.sum() / num_chars),
    }
    loss = att_sum / batch
    if ctc_weight > 0:
        if output.ctc_log_probs is None:
            raise ValueError("ctc_weight > 0 but the model has no CTC head (model.ctc_weight=0)")
        ctc_sum = _ctc_sum(output.ctc_log_probs, output.encoder_lengths, targets)
        logs["ctc"] = float(ctc_sum.detach() / max(int(num_chars) - batch, 1))
        loss = (1.0 - ctc_weight) * loss + ctc_weight * ctc_sum / batch
    return loss, logs


def _ctc_sum(log_probs: Tensor, lengths: Tensor, targets: Tensor) -> Tensor:
    """Summed CTC loss of the targets without their final EOS; infeasible rows count 0."""
    label_lengths = (targets != PAD).sum(dim=1) - 1  # (B,) drop the EOS
    return F.ctc_loss(
        log_probs.transpose(0, 1),  # (T', B, V) as torch wants
        targets,  # (B, U): entries past label_lengths (the EOS, the PADs) are ignored
        lengths.to(torch.long),
        label_lengths,
        blank=BLANK,
        reduction="sum",
        zero_infinity=True,
    )
