"""Free-running (autoregressive) decoding of a batch with a per-item finished mask.

Shapes: B batch, T text characters, U decoder steps, r reduction factor, F mel frames, M mel bins.

Every item runs until its stop probability passes ``stop_threshold`` (one decision per step of r
frames) or until ``max_decoder_steps``; an item that hits the cap is reported in
``InferenceOutput.reached_cap`` rather than silently cut. Items that have stopped keep being
computed (their rows are simply ignored) so that batching never changes any item's result.

``window`` switches the shared attention to a local window around the previous step's focus for
the duration of the call: ``window`` characters ahead and ``window_backward`` behind. Keeping
``window_backward`` at 0 or 1 makes the alignment (nearly) monotonic, so long inputs neither skip
words nor babble in a loop.

``temperature`` (also for the duration of the call) divides the attention scores before the
softmax: below 1 it sharpens the weights onto fewer characters (Chorowski et al., 2015, call
1 / temperature the "sharpening" factor). ``None`` keeps the temperature the model was trained
with.

``stop_near_end`` (None: off) accepts a stop only once the attention's peak is within that many
characters of the item's last input position (its EOS): a stop token that fires early, before
the text has been read, is then ignored. It guards against the "stops early" failure; it cannot
make a voice that skips words read them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from speechattn.nn.attention import Attention
from speechattn.nn.encoder import lengths_to_mask
from speechattn.tts.model import Tacotron

__all__ = ["InferenceConfig", "InferenceOutput", "infer", "attention_settings"]


@dataclass
class InferenceConfig:
    """Free-running decoding options."""

    max_decoder_steps: int = 1000
    stop_threshold: float = 0.5
    stop_near_end: int | None = None  # a stop counts only with the peak this near the EOS
    window: int | None = 4  # None: global attention, as in training
    window_backward: int | None = 1
    temperature: float | None = None  # None: the model's attention temperature; < 1 sharpens
    prenet_dropout: bool | None = None  # None: the model's prenet.dropout_at_inference


class InferenceOutput(NamedTuple):
    """mels: (B, F, M) normalized, zero beyond ``mel_lengths`` (B,); alignments (B, U, T), zero
    beyond each item's ``decoder_steps`` (B,); reached_cap (B,) bool: stopped by the cap."""

    mels: Tensor
    mel_lengths: Tensor
    alignments: Tensor
    decoder_steps: Tensor
    reached_cap: Tensor


@contextmanager
def attention_settings(
    attention: Attention, window: int | None, backward: int | None,
    temperature: float | None = None,
) -> Iterator[None]:
    """Temporarily set the attention's local window, and its temperature unless None (both
    restored on exit, also on error)."""
    saved = attention.window, attention.window_backward, attention.temperature
    attention.window, attention.window_backward = window, backward
    if temperature is not None:
        attention.temperature = temperature
    try:
        yield
    finally:
        attention.window, attention.window_backward, attention.temperature = saved


def _check(config: InferenceConfig) -> None:
    if config.max_decoder_steps < 1:
        raise ValueError(f"max_decoder_steps must be >= 1, got {config.max_decoder_steps}")
    if not 0.0 < config.stop_threshold < 1.0:
        raise ValueError(f"stop_threshold must be in (0, 1), got {config.stop_threshold}")
    if config.stop_near_end is not None and config.stop_near_end < 0:
        raise ValueError(f"stop_near_end must be >= 0 or None, got {config.stop_near_end}")
    if config.window is not None and config.window < 0:
        raise ValueError(f"window must be >= 0 or None, got {config.window}")
    if config.temperature is not None and config.temperature <= 0:
        raise ValueError(f"temperature must be > 0 or None, got {config.temperature}")


@torch.no_grad()
def infer(
    model: Tacotron, text: Tensor, text_lengths: Tensor, config: InferenceConfig | None = None
) -> InferenceOutput:
    """Decode (B, T) character ids with (B,) lengths; the model is used in eval mode."""
    config = config or InferenceConfig()
    _check(config)
    was_training = model.training
    model.eval()
    try:
        attention = model.decoder.attention
        with attention_settings(attention, config.window, config.window_backward, config.temperature):
            return _decode(model, text, text_lengths, config)
    finally:
        model.train(was_training)


def _decode(
    model: Tacotron, text: Tensor, text_lengths: Tensor, config: InferenceConfig
) -> InferenceOutput:
    memory, memory_lengths = model.encode(text, text_lengths)  # (B, T, E)
    mask = lengths_to_mask(memory_lengths.to(memory.device), memory.shape[1])  # (B, T)
    keys = model.decoder.prepare(memory)
    state = model.decoder.initial_state(memory)
    dropout = model.prenet_dropout(config.prenet_dropout)
    batch, r = memory.shape[0], model.reduction_factor
    frame = memory.new_zeros(batch, model.config.num_mels)  # the go frame
    steps = torch.full((batch,), config.max_decoder_steps, dtype=torch.long, device=memory.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=memory.device)
    if config.stop_near_end is not None:
        end_zone = memory_lengths.to(memory.device) - 1 - config.stop_near_end  # (B,) first index
    frames, weights = [], []
    for u in range(config.max_decoder_steps):
        out = model.step(frame, memory, mask, state, keys, dropout)
        frames.append(out.frames)
        weights.append(out.weights)
        state, frame = out.state, out.frames[:, -1]
        stops = torch.sigmoid(out.stop_logit) > config.stop_threshold  # (B,)
        if config.stop_near_end is not None:
            stops &= out.weights.argmax(dim=1) >= end_zone
        steps = torch.where(stops & ~finished, torch.full_like(steps, u + 1), steps)
        finished |= stops
        if bool(finished.all()):
            break
    mel_lengths = steps * r
    mel_before = torch.cat(frames, dim=1)  # (B, U * r, M)
    mels = model.refine(mel_before, mel_lengths)
    alignments = torch.stack(weights, dim=1)  # (B, U, T)
    alignments = alignments * lengths_to_mask(steps, alignments.shape[1]).unsqueeze(2)
    return InferenceOutput(mels, mel_lengths, alignments, steps, ~finished)
