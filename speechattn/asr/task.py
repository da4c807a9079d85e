"""The ASR :class:`~speechattn.train.Task`: what the shared trainer needs to train LAS.

Training steps run the model with the scheduled-sampling probability of the step (``objective.feedback``)
and :func:`~speechattn.asr.loss.las_loss`. Validation greedy-decodes the (capped) dev set and
reports CER (the metric that picks ``best.pt``) and WER. Media: the attention of a few dev
utterances as TensorBoard images, with their hypotheses as text.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from speechattn.asr.data import ASRBatch, ASRDataset
from speechattn.asr.decode import SearchConfig, decode_dataset, greedy_search
from speechattn.asr.loss import ObjectiveConfig, las_loss
from speechattn.asr.model import LAS
from speechattn.experiment import vocab_rows
from speechattn.metrics import error_rates

__all__ = ["ASRTask"]


class ASRTask:
    """Trains ``model`` on ``train_set``, validates greedy CER on ``valid_set``.

    Args:
        model: the bare LAS model.
        train_set, valid_set: datasets (``valid_set`` already capped to the utterances to score).
        objective: label smoothing and scheduled sampling.
        search: decoding bounds for validation (beam settings are ignored: validation is greedy).
        media_utterances: dev utterances whose attention goes to TensorBoard.
    """

    metric = "cer"
    metric_mode = "min"

    def __init__(
        self,
        model: LAS,
        train_set: ASRDataset,
        valid_set: ASRDataset,
        objective: ObjectiveConfig | None = None,
        search: SearchConfig | None = None,
        media_utterances: int = 2,
    ) -> None:
        if len(train_set) == 0:
            raise ValueError(f"{train_set.name}: no usable training utterances")
        if len(valid_set) == 0:
            raise ValueError(f"{valid_set.name}: no usable validation utterances")
        self.model = model
        self.train_set, self.valid_set = train_set, valid_set
        self.objective = objective or ObjectiveConfig()
        search = search or SearchConfig()
        self.search = dataclasses.replace(search, beam_size=1, ctc_weight=0.0, lm_weight=0.0)
        self.media_utterances = media_utterances

    def vocab_rows(self, source: Path) -> dict[str, list[int | None] | None]:
        """Vocabulary row maps for a warm start from ``source`` (see :func:`speechattn.train.warm_start`)."""
        return vocab_rows(self.model.VOCAB_TENSORS, self.train_set.vocab, source)

    def train_lengths(self) -> list[int]:
        return self.train_set.lengths

    def make_batch(self, indices: list[int]) -> ASRBatch:
        return self.train_set.batch(indices)

    def batch_seconds(self, batch: ASRBatch) -> float:
        return batch.seconds

    def training_step(self, model: nn.Module, batch: ASRBatch, step: int) -> tuple[Tensor, dict]:
        """Loss of one batch; ``model`` may be DDP-wrapped, so it is called, not reached into."""
        probability = self.objective.feedback.at(step)
        output = model(
            batch.features, batch.lengths, batch.targets, feedback=probability,
            token_noise=self.objective.token_noise,
        )  # fmt: skip
        loss, logs = las_loss(
            output, batch.targets, self.model.config.ctc_weight, self.objective.label_smoothing
        )
        if self.objective.feedback.probability > 0:
            logs["feedback"] = probability
        return loss, logs

    def validate(self, model: nn.Module, step: int) -> dict[str, float]:
        """Greedy CER / WER over the validation set (model in eval mode, no grad)."""
        decoded = decode_dataset(model, self.valid_set, self.search)
        refs = [d.ref or "" for d in decoded]
        rates = error_rates(refs, [d.hyp for d in decoded])
        return {"cer": rates.cer, "wer": rates.wer, "utterances": float(len(decoded))}

    def log_media(self, writer: Any, model: nn.Module, step: int) -> None:
        """Attention maps (decoder steps down, encoder frames across) of a few dev utterances."""
        indices = list(range(min(self.media_utterances, len(self.valid_set))))
        batch = self.valid_set.batch(indices, stand_in=False)
        if batch is None:
            return
        device = next(model.parameters()).device
        hyps = greedy_search(
            model, batch.features.to(device), batch.lengths.to(device), self.search,
            keep_attention=True,
        )  # fmt: skip
        for utt_id, ref, hyp in zip(batch.ids, batch.texts, hyps, strict=True):
            image = hyp.attention / hyp.attention.max().clamp(min=1e-8)  # (U, T') in [0, 1]
            writer.add_image(f"attention/{utt_id}", image.unsqueeze(0), step)  # (1, U, T')
            text = self.valid_set.vocab.decode(hyp.tokens)
            writer.add_text(f"hypothesis/{utt_id}", f"REF: {ref}  \nHYP: {text}", step)
