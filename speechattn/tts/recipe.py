"""The TTS recipe's config and the files an experiment folder holds (loading: tts/pretrained.py).

A recipe config composes the components' own configs; it is resolved with
:func:`speechattn.config.resolve_config` (defaults -> YAML -> ``key=value``) and saved as
``exp/config.yaml``. Sections::

    model:      TacotronConfig       network (embedding, encoder, prenet, decoder + attention, postnet)
    loss:       TacotronLossConfig   mel loss, stop token, guided attention and its annealing
    train:      TrainConfig          the shared trainer (steps, lr, batch frames, checkpoints...)
    data:       TTSDataConfig        manifests, validation sizes, feature settings
    synthesis:  SynthesisConfig      inference defaults: stop/cap, attention window, Griffin-Lim

Experiment folder: ``config.yaml``, ``vocab.json``, ``mel_stats.json``, ``features.json`` (copied
from the data folder), ``best.pt`` / ``checkpoints/`` / ``log.jsonl`` / ``tensorboard/`` (trainer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from speechattn import experiment
from speechattn.train import TrainConfig
from speechattn.tts.data import TTSDataConfig
from speechattn.tts.loss import TacotronLossConfig
from speechattn.tts.model import TacotronConfig
from speechattn.tts.synthesize import SynthesisConfig

__all__ = [
    "TTSRecipeConfig",
    "DATA_FILES",
    "check_data_dir",
    "copy_data_files",
]

DATA_FILES = ("vocab.json", "mel_stats.json", "features.json")


@dataclass
class TTSRecipeConfig:
    """Everything one TTS experiment is made of."""

    model: TacotronConfig = field(default_factory=TacotronConfig)
    loss: TacotronLossConfig = field(default_factory=TacotronLossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: TTSDataConfig = field(default_factory=TTSDataConfig)
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)

    def __post_init__(self) -> None:
        n_mels, model_mels = self.data.features.n_mels, self.model.num_mels
        if n_mels != model_mels:
            raise ValueError(
                f"model.num_mels={model_mels} differs from data.features.n_mels={n_mels}; "
                "set both to the same number of mel bins"
            )


def check_data_dir(data_dir: Path, config: TTSDataConfig) -> dict[str, Path]:
    """Paths of the files training needs in ``data_dir``; a missing one raises naming the fix."""
    manifests = {"train": config.train, "valid": config.valid}
    return experiment.check_data_dir(data_dir, manifests, DATA_FILES, "recipes/tts/prepare.py")


def copy_data_files(data_dir: Path, exp_dir: Path) -> None:
    """Copy vocab, mel stats and feature settings into the experiment; never swap them silently."""
    experiment.copy_data_files(data_dir, exp_dir, DATA_FILES)
