"""ASR data: manifest rows -> checked utterances -> cached normalized log-mels -> padded batches.

Shapes: B batch, S samples, T frames, M mel bins, U target length (characters + EOS).

Audio in a manifest is checked when a dataset is built (header plus first and last samples, see
:func:`speechattn.data.audio_check.probe_audio`). What happens to unusual files:

- missing, empty (0 bytes), unreadable, truncated or zero-length audio: **skipped**, with the
  reason in ``dataset.skipped`` and one warning naming the manifest and the count;
- audio shorter than one analysis window: **skipped** ("too short");
- stereo (any channel count): **converted**, channels averaged;
- another sample rate: **converted**, resampled to ``features.sample_rate``;
- training utterances longer than ``max_duration``: **skipped** (they would dominate memory);
- a file that fails only when it is decoded (NaN samples, corrupt data in the middle): dropped from
  its batch with a warning and never tried again.

Features are computed on first use and kept in memory as float16 (half the size; the rounding is
far below the CMVN-normalized features' noise): LibriSpeech's 100 h take about 6 GB.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from speechattn.audio import (
    AudioError,
    FeatureConfig,
    GlobalCMVN,
    LogMel,
    load_audio,
    speed_perturb,
)
from speechattn.data.audio_check import UnusableAudio, probe_audio
from speechattn.data.batching import pad_sequence_batch
from speechattn.text import PAD, Vocab

__all__ = ["ASRDataConfig", "FeatureFrontEnd", "ASRBatch", "ASRDataset", "take_minutes"]

log = logging.getLogger(__name__)


@dataclass
class ASRDataConfig:
    """Which manifests (``<data>/<name>.jsonl``) and how features are made."""

    train: str = "train"
    valid: str = "dev"
    valid_utterances: int = 200  # dev CER on at most this many utterances, spread over the manifest
    max_duration: float = 25.0  # seconds; longer training utterances are skipped
    cache_features: bool = True
    features: FeatureConfig = field(default_factory=FeatureConfig)
    # Speed perturbation of the training audio: each time an utterance is loaded, one of these
    # factors is drawn for it (e.g. [0.9, 1.0, 1.1], the ESPnet/icefall recipes' choice); empty:
    # none. Batches are planned on the unperturbed lengths, so one may hold up to 1/min more frames.
    speed_perturb: list[float] = field(default_factory=list)
    # Train on a fixed subset of the training manifest holding about this many minutes of audio
    # (0: all of it), for learning curves: see take_minutes. The subset does not follow train.seed.
    train_minutes: float = 0.0

    def __post_init__(self) -> None:
        if self.train_minutes < 0:
            raise ValueError(f"data.train_minutes={self.train_minutes} must be >= 0 (0: all)")
        if self.valid_utterances < 1:
            raise ValueError(f"data.valid_utterances={self.valid_utterances} must be >= 1")
        if self.max_duration <= 0:
            raise ValueError(f"data.max_duration={self.max_duration} must be > 0 seconds")
        bad = [f for f in self.speed_perturb if not 0.5 <= f <= 2.0]
        if bad:
            raise ValueError(f"data.speed_perturb={self.speed_perturb}: factors must be in 0.5-2.0")


class FeatureFrontEnd(nn.Module):
    """Waveform (S,) at ``config.sample_rate`` -> CMVN-normalized log-mel frames (T, M)."""

    def __init__(self, config: FeatureConfig, cmvn: GlobalCMVN) -> None:
        super().__init__()
        if cmvn.mean.shape[0] != config.n_mels:
            raise ValueError(
                f"CMVN stats have {cmvn.mean.shape[0]} bins but features.n_mels={config.n_mels}; "
                "re-run the prepare step with the same feature settings"
            )
        self.config = config
        self.log_mel = LogMel(config)
        self.cmvn = cmvn

    @property
    def min_samples(self) -> int:
        return self.config.n_fft // 2 + 1 if self.config.center else self.config.n_fft

    def num_frames(self, num_samples: int) -> int:
        return self.log_mel.num_frames(num_samples)

    @torch.no_grad()
    def forward(self, wave: Tensor) -> Tensor:
        return self.cmvn(self.log_mel(wave))  # (T, M)


class ASRBatch(NamedTuple):
    """A padded batch. features (B, T, M); lengths (B,); targets (B, U) ending in EOS, PAD after."""

    features: Tensor
    lengths: Tensor
    targets: Tensor
    ids: list[str]
    texts: list[str]
    seconds: float


def take_minutes(rows: Sequence[dict[str, Any]], minutes: float) -> list[dict[str, Any]]:
    """The utterances that come first in a fixed pseudo-random order of their ids, up to
    ``minutes`` of audio in all.

    The order is a hash of each ``id``, so it depends on which utterances there are, not on the
    manifest's order or on any seed, and a smaller subset is inside a larger one (a learning
    curve's 10 minutes are inside its 20). The subset keeps the manifest's order; rows need a
    ``duration`` in seconds. ``minutes`` 0 or more than there is: all rows.

    >>> rows = [{"id": str(i), "duration": 30.0} for i in range(6)]
    >>> len(take_minutes(rows, 1.5)), len(take_minutes(rows, 0)), len(take_minutes(rows, 60))
    (3, 6, 6)
    """
    if minutes <= 0:
        return list(rows)
    order = sorted(range(len(rows)), key=lambda i: hashlib.sha1(str(rows[i]["id"]).encode()).digest())
    chosen, total = set(), 0.0
    for index in order:
        if total >= minutes * 60.0:
            break
        chosen.add(index)
        total += float(rows[index]["duration"])
    return [row for i, row in enumerate(rows) if i in chosen]


class ASRDataset:
    """Utterances of one manifest with their transcripts as ids and cached features.

    Args:
        rows: manifest rows ({"id", "audio", "text", ...}); ``text`` may be missing (no reference).
        vocab: the character vocabulary.
        frontend: waveform -> normalized features.
        name: for messages, usually the manifest path.
        max_duration: skip longer utterances (seconds); None keeps all.
        cache: keep computed features in memory (one copy per speed factor).
        speeds: speed-perturbation factors, one drawn (torch's global RNG) each time an
            utterance is loaded; empty: the audio as it is.
    """

    def __init__(
        self,
        rows: Sequence[Mapping[str, Any]],
        vocab: Vocab,
        frontend: FeatureFrontEnd,
        name: str = "manifest",
        max_duration: float | None = None,
        cache: bool = True,
        speeds: Sequence[float] = (),
    ) -> None:
        self.vocab, self.frontend, self.name, self.cache = vocab, frontend, name, cache
        self.speeds = tuple(speeds)
        self.rows: list[dict[str, Any]] = []
        self.lengths: list[int] = []  # feature frames, from the audio header
        self.skipped: list[tuple[str, str]] = []  # (id, reason)
        for row in rows:
            self._add(dict(row), max_duration)
        if self.skipped:
            log.warning(
                "%s: %d of %d utterance(s) skipped (first: %s: %s)", name, len(self.skipped),
                len(rows), *self.skipped[0],
            )  # fmt: skip
        self._features: dict[tuple[int, float], Tensor] = {}
        self._failed: set[int] = set()
        self._by_id: dict[str, dict[str, Any]] | None = None

    def _add(self, row: dict[str, Any], max_duration: float | None) -> None:
        utt_id = str(row.get("id", row.get("audio", "?")))
        if "audio" not in row:
            self.skipped.append((utt_id, "no 'audio' field in the manifest row"))
            return
        try:
            info = probe_audio(Path(row["audio"]))
        except UnusableAudio as err:
            self.skipped.append((utt_id, f"{row['audio']}: {err}"))
            return
        rate = self.frontend.config.sample_rate
        samples = math.floor(info.frames * rate / info.sample_rate)
        duration = info.frames / info.sample_rate
        if samples < self.frontend.min_samples:
            self.skipped.append((utt_id, f"{row['audio']}: too short ({duration:.3f} s)"))
        elif max_duration is not None and duration > max_duration:
            self.skipped.append(
                (utt_id, f"longer than max_duration={max_duration} s ({duration:.1f} s)")
            )
        else:
            row["id"], row["duration"] = utt_id, duration
            self.rows.append(row)
            self.lengths.append(self.frontend.num_frames(samples))

    def __len__(self) -> int:
        return len(self.rows)

    def features(self, index: int) -> Tensor | None:
        """(T, M) normalized log-mels of utterance ``index``, or None when its audio is unusable."""
        if index in self._failed:
            return None
        speed = self.speeds[int(torch.randint(len(self.speeds), ()))] if self.speeds else 1.0
        cached = self._features.get((index, speed))
        if cached is not None:
            return cached.float()
        rate = self.frontend.config.sample_rate
        try:
            wave, _ = load_audio(self.rows[index]["audio"], rate)
            wave = speed_perturb(wave, speed, rate)
            if wave.shape[0] < self.frontend.min_samples:
                raise AudioError(f"{self.rows[index]['audio']}: too short to analyse")
        except AudioError as err:
            log.warning("%s: dropping utterance %s: %s", self.name, self.rows[index]["id"], err)
            self._failed.add(index)
            return None
        feats = self.frontend(wave)  # (T, M)
        if self.cache:
            self._features[(index, speed)] = feats.half()
            return self._features[(index, speed)].float()
        return feats

    def targets(self, index: int) -> Tensor:
        """(U,) character ids of the transcript plus EOS."""
        return torch.tensor(self.vocab.encode(self.rows[index].get("text", ""), add_eos=True))

    def row(self, utt_id: str) -> dict[str, Any]:
        """The manifest row of utterance ``utt_id``."""
        if self._by_id is None:
            self._by_id = {row["id"]: row for row in self.rows}
        return self._by_id[utt_id]

    def batch(self, indices: Sequence[int], stand_in: bool = True) -> ASRBatch | None:
        """Collate utterances ``indices``; unusable ones are dropped.

        If every utterance of the batch fails to load, the first loadable one of the dataset
        stands in (so a training step always has data), or None is returned without ``stand_in``.
        """
        good = [(i, f) for i in indices if (f := self.features(i)) is not None]
        if not good and not stand_in:
            return None
        if not good:
            good = [self._stand_in()]
        features, lengths = pad_sequence_batch([f for _, f in good])  # (B, T, M), (B,)
        targets, _ = pad_sequence_batch([self.targets(i) for i, _ in good], pad_value=PAD)
        rows = [self.rows[i] for i, _ in good]
        return ASRBatch(
            features, lengths, targets, [r["id"] for r in rows], [r.get("text", "") for r in rows],
            float(sum(r["duration"] for r in rows)),
        )  # fmt: skip

    def _stand_in(self) -> tuple[int, Tensor]:
        for index in range(len(self.rows)):
            feats = self.features(index)
            if feats is not None:
                return index, feats
        raise ValueError(f"{self.name}: no utterance with usable audio (see the warnings above)")
