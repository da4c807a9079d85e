"""The TTS :class:`~speechattn.train.Task`: what the shared trainer needs to train Tacotron.

Shapes: B batch, T characters, U decoder steps, F mel frames, M mel bins.

Training steps are teacher-forced with :class:`~speechattn.tts.loss.TacotronLoss` (mel L1 before
and after the postnet, stop token, annealed guided attention). Validation reports:

- ``mel_l1``: teacher-forced L1 after the postnet on normalized dev mels (picks ``best.pt``);
- ``stop_accuracy`` and ``tf_focus_rate``: teacher-forced stop decisions and attention sharpness;
- ``focus_rate``, ``monotonicity``, ``diagonality``, ``length_ratio`` (free-running frames / real
  frames) and ``reached_cap`` (fraction) of free-running synthesis on ``align_utterances`` dev
  utterances: the alignment measures that say whether the voice can actually speak.

Media: teacher-forced and free-running alignments, target and predicted mels, and the
Griffin-Lim audio of the free-running mels of a few dev utterances.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from speechattn.audio import FeatureConfig
from speechattn.data.batching import pack_batches, spread
from speechattn.experiment import vocab_rows
from speechattn.metrics import alignment_measures
from speechattn.nn.encoder import lengths_to_mask
from speechattn.plot import alignment_figure, figure_to_array, mel_figure
from speechattn.tts.data import TTSBatch, TTSDataset
from speechattn.tts.decode import InferenceConfig, infer
from speechattn.tts.loss import TacotronLoss, TacotronLossConfig, masked_mel_loss
from speechattn.tts.model import Tacotron, num_decoder_steps
from speechattn.tts.synthesize import SynthesisConfig
from speechattn.vocoder import build_vocoder

__all__ = ["TTSTask"]


def _batches(lengths: list[int], indices: list[int], max_frames: int) -> list[list[int]]:
    """``indices`` packed as training packs its batches (:func:`pack_batches`), by length."""
    packed = pack_batches([lengths[i] for i in indices], max_frames)
    return [[indices[j] for j in batch] for batch in packed]


class TTSTask:
    """Trains ``model`` on ``train_set``; validates on (a spread of) ``valid_set``.

    Args:
        model: the bare Tacotron.
        train_set, valid_set: datasets of normalized mels.
        loss: loss weights and guided-attention schedule.
        features: the front-end (for seconds per frame and Griffin-Lim media).
        synthesis: free-running settings for validation and media (the cap is lowered to twice
            the real length so an untrained model cannot stall validation).
        valid_utterances, align_utterances, media_utterances: how many dev utterances each part
            of validation uses; ``valid_max_frames`` bounds a validation batch.
    """

    metric = "mel_l1"
    metric_mode = "min"

    def __init__(
        self,
        model: Tacotron,
        train_set: TTSDataset,
        valid_set: TTSDataset,
        loss: TacotronLossConfig,
        features: FeatureConfig,
        synthesis: SynthesisConfig | None = None,
        valid_utterances: int = 100,
        align_utterances: int = 8,
        media_utterances: int = 2,
        valid_max_frames: int = 20000,
    ) -> None:
        self.model = model
        self.train_set, self.valid_set = train_set, valid_set
        self.loss = TacotronLoss(loss, model.reduction_factor)
        self.features = features
        self.synthesis = synthesis or SynthesisConfig()
        self.valid_indices = spread(range(len(valid_set)), valid_utterances)
        self.align_indices = spread(range(len(valid_set)), align_utterances)
        self.media_indices = self.align_indices[:media_utterances]
        self.valid_max_frames = valid_max_frames

    # -- the trainer's protocol -----------------------------------------------------------------
    def vocab_rows(self, source: Path) -> dict[str, list[int | None] | None]:
        """Vocabulary row maps for a warm start from ``source`` (see :func:`speechattn.train.warm_start`)."""
        return vocab_rows(self.model.VOCAB_TENSORS, self.train_set.vocab, source)

    def train_lengths(self) -> list[int]:
        return self.train_set.lengths

    def make_batch(self, indices: list[int]) -> TTSBatch:
        return self.train_set.batch(indices)

    def batch_seconds(self, batch: TTSBatch) -> float:
        return float(batch.mel_lengths.sum()) * self.features.hop_length / self.features.sample_rate

    def training_step(self, model: nn.Module, batch: TTSBatch, step: int) -> tuple[Tensor, dict]:
        """Loss of one batch; ``model`` may be DDP-wrapped, so it is called, not reached into."""
        feedback = self.loss.config.feedback.at(step)
        output = model(batch.text, batch.text_lengths, batch.mels, batch.mel_lengths, feedback)
        terms = self.loss(output, batch.mels, batch.mel_lengths, batch.text_lengths, step)
        logs = terms.as_floats()
        del logs["loss"]  # the trainer logs the total itself
        if self.loss.config.feedback.probability > 0:
            logs["feedback"] = feedback
        return terms.total, logs

    def validate(self, model: nn.Module, step: int) -> dict[str, float]:
        """Teacher-forced dev losses plus free-running alignment measures (eval mode, no grad)."""
        return {**self._teacher_forced(model), **self._free_running(model)}

    def log_media(self, writer: Any, model: nn.Module, step: int) -> None:
        """Alignments, mels and vocoded audio of the first dev utterances."""
        if not self.media_indices:
            return
        batch = self._on_device(self.valid_set.batch(self.media_indices), model)
        forced = model(batch.text, batch.text_lengths, batch.mels, batch.mel_lengths)
        free = infer(model, batch.text, batch.text_lengths, self._inference_config(batch))
        vocoder = build_vocoder(self.synthesis.vocoder, self.features)
        cmvn = self.valid_set.cmvn  # stays on the CPU with the dataset (and the vocoder)
        for b, index in enumerate(self.media_indices):
            utt_id, text = self.valid_set.rows[index]["id"], self.valid_set.text(index)
            n, f = int(batch.text_lengths[b]), int(batch.mel_lengths[b])
            steps, frames = int(free.decoder_steps[b]), int(free.mel_lengths[b])
            forced_steps = int(num_decoder_steps(batch.mel_lengths[b], model.reduction_factor))
            images = {
                "alignment_teacher_forced": alignment_figure(forced.alignments[b, :forced_steps, :n], text, True),
                "alignment_free_running": alignment_figure(free.alignments[b, :steps, :n], text, True),
                "mel_target": mel_figure(batch.mels[b, :f], "target (normalized)"),
                "mel_free_running": mel_figure(free.mels[b, :frames], "free running (normalized)"),
            }  # fmt: skip
            for name, figure in images.items():
                writer.add_image(f"{name}/{utt_id}", figure_to_array(figure), step, dataformats="HWC")
            wave = vocoder(cmvn.inverse(free.mels[b, :frames].cpu()))
            wave = wave.clamp(-1.0, 1.0).unsqueeze(0)  # (1, S), as TensorBoard wants it
            writer.add_audio(f"vocoder/{utt_id}", wave, step, self.features.sample_rate)

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _on_device(batch: TTSBatch, model: nn.Module) -> TTSBatch:
        device = next(model.parameters()).device
        return TTSBatch(*(t.to(device) for t in batch))

    def _inference_config(self, batch: TTSBatch) -> InferenceConfig:
        real_steps = int(num_decoder_steps(batch.mel_lengths.max(), self.model.reduction_factor))
        cap = min(self.synthesis.inference.max_decoder_steps, 2 * real_steps + 10)
        return dataclasses.replace(self.synthesis.inference, max_decoder_steps=cap)

    def _teacher_forced(self, model: nn.Module) -> dict[str, float]:
        lengths = self.valid_set.lengths
        totals = {"mel_l1": 0.0, "stop_accuracy": 0.0, "tf_focus_rate": 0.0}
        frames = steps = 0
        for indices in _batches(lengths, self.valid_indices, self.valid_max_frames):
            batch = self._on_device(self.valid_set.batch(indices), model)
            out = model(batch.text, batch.text_lengths, batch.mels, batch.mel_lengths)
            count = int(batch.mel_lengths.sum())
            target = nn.functional.pad(batch.mels, (0, 0, 0, out.mel_after.shape[1] - batch.mels.shape[1]))
            totals["mel_l1"] += float(masked_mel_loss("l1", out.mel_after, target, batch.mel_lengths)) * count
            frames += count
            real = num_decoder_steps(batch.mel_lengths, model.reduction_factor)  # (B,)
            mask = lengths_to_mask(real, out.stop_logits.shape[1])  # (B, U)
            target_stop = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0) == (real - 1).unsqueeze(1)
            correct = ((out.stop_logits > 0) == target_stop) & mask
            totals["stop_accuracy"] += float(correct.sum())
            peak = out.alignments.max(dim=2).values * mask  # (B, U)
            totals["tf_focus_rate"] += float(peak.sum())
            steps += int(mask.sum())
        return {
            "mel_l1": totals["mel_l1"] / frames,
            "stop_accuracy": totals["stop_accuracy"] / steps,
            "tf_focus_rate": totals["tf_focus_rate"] / steps,
        }

    def _free_running(self, model: nn.Module) -> dict[str, float]:
        if not self.align_indices:
            return {}
        batch = self._on_device(self.valid_set.batch(self.align_indices), model)
        out = infer(model, batch.text, batch.text_lengths, self._inference_config(batch))
        sums = {"focus_rate": 0.0, "monotonicity": 0.0, "diagonality": 0.0, "length_ratio": 0.0}
        for b in range(len(self.align_indices)):
            measures = alignment_measures(
                out.alignments[b].cpu(), int(out.decoder_steps[b]), int(batch.text_lengths[b])
            )
            for key in ("focus_rate", "monotonicity", "diagonality"):
                sums[key] += getattr(measures, key)
            sums["length_ratio"] += float(out.mel_lengths[b] / batch.mel_lengths[b])
        count = len(self.align_indices)
        return {**{k: v / count for k, v in sums.items()}, "reached_cap": float(out.reached_cap.float().mean())}
