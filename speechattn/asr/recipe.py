"""The ASR recipe's config and the files an experiment folder holds.

A recipe config composes the components' own configs; it is resolved with
:func:`speechattn.config.resolve_config` (defaults -> YAML -> ``key=value``) and saved as
``exp/config.yaml``. Sections::

    model:      LASConfig        encoder, decoder + attention, embed_dim, ctc_weight, specaugment
    objective:  ObjectiveConfig  label smoothing, scheduled sampling
    train:      TrainConfig      the shared trainer (steps, lr, batch frames, checkpoints...)
    data:       ASRDataConfig    manifests, duration limit, feature settings
    search:     SearchConfig     decoding defaults (validation is always greedy)

Experiment folder: ``config.yaml``, ``vocab.json``, ``cmvn.json`` (copied from the data folder),
``best.pt`` / ``checkpoints/`` / ``log.jsonl`` / ``tensorboard/`` (the trainer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from speechattn import experiment
from speechattn.asr.data import ASRDataConfig, FeatureFrontEnd
from speechattn.asr.loss import ObjectiveConfig
from speechattn.asr.model import LAS, LASConfig
from speechattn.asr.search import SearchConfig
from speechattn.audio import GlobalCMVN
from speechattn.text import Vocab
from speechattn.train import TrainConfig

__all__ = [
    "ASRRecipeConfig",
    "DATA_FILES",
    "check_data_dir",
    "copy_data_files",
    "build_model",
    "build_frontend",
]

DATA_FILES = ("vocab.json", "cmvn.json")


@dataclass
class ASRRecipeConfig:
    """Everything one ASR experiment is made of."""

    model: LASConfig = field(default_factory=LASConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: ASRDataConfig = field(default_factory=ASRDataConfig)
    search: SearchConfig = field(default_factory=SearchConfig)

    def __post_init__(self) -> None:
        n_mels, input_dim = self.data.features.n_mels, self.model.encoder.input_dim
        if n_mels != input_dim:
            raise ValueError(
                f"model.encoder.input_dim={input_dim} differs from data.features.n_mels={n_mels}; "
                "set both to the same number of mel bins"
            )
        if self.search.ctc_weight > 0 and self.model.ctc_weight == 0:
            raise ValueError(
                f"search.ctc_weight={self.search.ctc_weight} needs a CTC head: "
                "set model.ctc_weight > 0"
            )


def check_data_dir(data_dir: Path, config: ASRDataConfig) -> dict[str, Path]:
    """Paths of the files training needs in ``data_dir``; a missing one raises naming the fix."""
    manifests = {"train": config.train, "valid": config.valid}
    return experiment.check_data_dir(data_dir, manifests, DATA_FILES, "recipes/asr/prepare.py")


def copy_data_files(data_dir: Path, exp_dir: Path) -> None:
    """Copy ``vocab.json`` and ``cmvn.json`` into the experiment, refusing to swap them silently."""
    experiment.copy_data_files(data_dir, exp_dir, DATA_FILES)


def build_model(config: ASRRecipeConfig, vocab: Vocab) -> LAS:
    return LAS(config.model, len(vocab))


def build_frontend(config: ASRRecipeConfig, cmvn: GlobalCMVN) -> FeatureFrontEnd:
    return FeatureFrontEnd(config.data.features, cmvn)
