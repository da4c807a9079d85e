"""TTS training data: manifests of cached mels (see :mod:`speechattn.tts.prepare`) -> batches.

Shapes: B batch, T characters (+ EOS), F mel frames, M mel bins.

Mels are normalized with the corpus statistics (``mel_stats.json``) on loading; with
``cache_in_memory`` they are kept as float16 after the first load (LJSpeech's 24 h take ~1.2 GB).
Text is encoded with the data folder's vocabulary plus a final EOS, which gives the attention a
last position to settle on while the stop token fires.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from speechattn.audio import FeatureConfig, GlobalCMVN
from speechattn.data.batching import pad_sequence_batch
from speechattn.data.manifest import read_manifest
from speechattn.text import Vocab

__all__ = ["TTSDataConfig", "TTSBatch", "TTSDataset"]

_REQUIRED = ("id", "mel", "frames", "text")


@dataclass
class TTSDataConfig:
    """Which manifests (``<data>/<name>.jsonl``) and how many utterances validation uses."""

    train: str = "train"
    valid: str = "dev"
    valid_utterances: int = 100  # teacher-forced dev mel L1 on at most this many
    align_utterances: int = 8  # free-running alignment measures on this many dev utterances
    max_frames: int | None = 1000  # longer training utterances are left out
    cache_in_memory: bool = True
    features: FeatureConfig = field(default_factory=FeatureConfig.tts)

    def __post_init__(self) -> None:
        if self.valid_utterances < 1 or self.align_utterances < 0:
            raise ValueError(
                f"data.valid_utterances={self.valid_utterances} must be >= 1 and "
                f"data.align_utterances={self.align_utterances} >= 0"
            )


class TTSBatch(NamedTuple):
    """text (B, T) ids with EOS, text_lengths (B,), mels (B, F, M) normalized, mel_lengths (B,)."""

    text: Tensor
    text_lengths: Tensor
    mels: Tensor
    mel_lengths: Tensor


class TTSDataset:
    """Utterances of one manifest; ``batch(indices)`` collates them into a :class:`TTSBatch`."""

    def __init__(
        self,
        manifest: str | Path,
        vocab: Vocab,
        cmvn: GlobalCMVN,
        max_frames: int | None = None,
        cache_in_memory: bool = True,
    ) -> None:
        manifest = Path(manifest)
        self.root = manifest.parent
        self.rows = [r for r in _checked_rows(manifest) if max_frames is None or r["frames"] <= max_frames]
        if not self.rows:
            raise ValueError(
                f"{manifest}: no utterances"
                + (f" of at most {max_frames} frames (raise data.max_frames)" if max_frames else "")
            )
        self.vocab, self.cmvn = vocab, cmvn
        self.cache: dict[int, Tensor] | None = {} if cache_in_memory else None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def lengths(self) -> list[int]:
        """Mel frames per utterance (the decoder's cost dominates)."""
        return [int(r["frames"]) for r in self.rows]

    def text(self, index: int) -> str:
        return self.rows[index]["text"]

    def mel(self, index: int) -> Tensor:
        """(F, M) normalized mel of utterance ``index``."""
        if self.cache is not None and index in self.cache:
            return self.cache[index].float()
        path = self.root / self.rows[index]["mel"]
        try:
            raw = torch.from_numpy(np.load(path))
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: cannot read cached mel ({err}); re-run prepare") from err
        mel = self.cmvn(raw.float())
        if self.cache is not None:
            self.cache[index] = mel.half()
        return mel

    def batch(self, indices: list[int]) -> TTSBatch:
        ids = [torch.tensor(self.vocab.encode(self.text(i), add_eos=True)) for i in indices]
        text, text_lengths = pad_sequence_batch(ids, self.vocab.pad_id)
        mels, mel_lengths = pad_sequence_batch([self.mel(i) for i in indices])
        return TTSBatch(text, text_lengths, mels, mel_lengths)


def _checked_rows(manifest: Path) -> list[dict[str, Any]]:
    rows = read_manifest(manifest)
    for line, row in enumerate(rows, start=1):
        missing = [k for k in _REQUIRED if k not in row]
        if missing:
            raise ValueError(
                f"{manifest}: row {line} ({row.get('id', '?')}) lacks {missing}; "
                "re-run recipes/tts/prepare.py"
            )
    return rows
