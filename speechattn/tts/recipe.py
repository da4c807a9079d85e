"""The TTS recipe's config, the files an experiment folder holds, and loading a trained voice.

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

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from speechattn import experiment
from speechattn.audio import GlobalCMVN
from speechattn.config import load_config
from speechattn.text import Vocab
from speechattn.train import TrainConfig, load_checkpoint, load_model_state
from speechattn.tts.data import TTSDataConfig
from speechattn.tts.loss import TacotronLossConfig
from speechattn.tts.model import Tacotron, TacotronConfig
from speechattn.tts.synthesize import LoadedTTS, SynthesisConfig

__all__ = [
    "TTSRecipeConfig",
    "DATA_FILES",
    "check_data_dir",
    "copy_data_files",
    "find_checkpoint",
    "load_tts",
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


def find_checkpoint(exp_dir: Path) -> Path:
    """``exp/best.pt``, else the newest ``exp/checkpoints/step-*.pt``."""
    return experiment.find_checkpoint(exp_dir, "recipes/tts/train.py")


def _require(exp_dir: Path, name: str) -> Path:
    path = exp_dir / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing; {exp_dir} is not a complete TTS experiment (recipes/tts/train.py "
            "writes config.yaml, vocab.json, mel_stats.json and features.json before training)"
        )
    return path


def load_tts(
    exp_dir: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> LoadedTTS:
    """A trained voice from an experiment folder, model in eval mode on ``device``.

    Reads ``config.yaml``, ``vocab.json``, ``mel_stats.json`` and the checkpoint (``best.pt`` by
    default) with ``torch.load(weights_only=True)``. A missing file, or a checkpoint that does not
    fit the config and vocabulary, raises an error naming the file and the fix.
    """
    exp_dir = Path(exp_dir)
    config = load_config(TTSRecipeConfig, _require(exp_dir, "config.yaml"))
    vocab = Vocab.load(_require(exp_dir, "vocab.json"))
    cmvn = GlobalCMVN.load(_require(exp_dir, "mel_stats.json"))
    if cmvn.mean.shape[0] != config.model.num_mels:
        raise ValueError(
            f"{exp_dir / 'mel_stats.json'}: {cmvn.mean.shape[0]} bins but model.num_mels="
            f"{config.model.num_mels}; the experiment's files come from different data"
        )
    path = Path(checkpoint) if checkpoint is not None else find_checkpoint(exp_dir)
    state = load_checkpoint(path)
    model = Tacotron(config.model, len(vocab))
    load_model_state(
        model, state["model"], path, "use the checkpoint trained with this experiment",
        f"does not fit {exp_dir / 'config.yaml'} and {exp_dir / 'vocab.json'}",
    )  # fmt: skip
    model.to(device).eval()
    return LoadedTTS(model, vocab, cmvn, config.data.features, config.synthesis, str(exp_dir))
