"""The LAS training objective: label-smoothed cross-entropy, joint CTC, scheduled sampling.

Shapes: B batch, U output steps, T' encoder frames, V vocabulary size.

Both losses are summed over characters and divided by the number of utterances B (not by the
number of characters). That keeps the loss a plain average over utterances, so under
DistributedDataParallel the average of the ranks' gradients equals the gradient of the whole
global batch exactly, whatever the transcripts' lengths. Per-character values are logged too.

Scheduled sampling follows ``objective.feedback`` (:class:`~speechattn.nn.decoder.FeedbackSchedule`,
the schedule TTS's self-fed frames use too):

>>> config = ObjectiveConfig(feedback=FeedbackSchedule(0.4, 100, 300))
>>> [config.feedback.at(step) for step in (0, 100, 200, 300, 1000)]
[0.0, 0.0, 0.2, 0.4, 0.4]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor
from torch.nn import functional as F

from speechattn.asr.model import LASOutput
from speechattn.nn.decoder import FeedbackSchedule
from speechattn.text import BLANK, PAD

__all__ = ["ObjectiveConfig", "las_loss"]


@dataclass
class ObjectiveConfig:
    """Training-only settings of the speller's objective."""

    RENAMED_KEYS: ClassVar[dict[str, str]] = {
        "sampling_max": "feedback.probability", "sampling_start": "feedback.start",
        "sampling_end": "feedback.end",
    }  # the names scheduled sampling had before TTS's self-fed frames shared its schedule

    label_smoothing: float = 0.1
    # scheduled sampling: the probability of feeding back the own previous prediction
    feedback: FeedbackSchedule = field(default_factory=FeedbackSchedule)
    # probability of feeding back a random character instead of the reference one (the target
    # scored is unchanged): the speller cannot lean on recalled training sentences as much
    token_noise: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"objective.label_smoothing={self.label_smoothing} must be in [0, 1)")
        if not 0.0 <= self.token_noise < 1.0:
            raise ValueError(f"objective.token_noise={self.token_noise} must be in [0, 1)")


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
