"""Using a trained voice: load an experiment folder into a :class:`LoadedTTS`.

>>> tts = load_tts("exp/tts_offline")                       # doctest: +SKIP
>>> synthesize(tts, ["Hello there."])                        # doctest: +SKIP

``load_tts`` reads the folder with :func:`speechattn.experiment.load_experiment`, as ``load_asr``
does for a recognizer: the config is checked against :class:`TTSRecipeConfig`, the checkpoint is
read with ``torch.load(weights_only=True)``, and the weights must fit the network the config and
vocabulary describe; each failure names the file and what to do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from speechattn import experiment
from speechattn.audio import FeatureConfig, GlobalCMVN
from speechattn.text import Vocab
from speechattn.tts.model import Tacotron
from speechattn.tts.recipe import TTSRecipeConfig
from speechattn.tts.synthesize import SynthesisConfig

__all__ = ["LoadedTTS", "load_tts", "find_checkpoint"]

TRAIN_SCRIPT = "recipes/tts/train.py"


@dataclass
class LoadedTTS:
    """A trained voice: model (eval mode), vocabulary, mel statistics and front-end settings."""

    model: Tacotron
    vocab: Vocab
    cmvn: GlobalCMVN
    features: FeatureConfig
    config: SynthesisConfig = field(default_factory=SynthesisConfig)
    source: str = ""  # where it was loaded from, for messages


def find_checkpoint(exp_dir: Path) -> Path:
    """``exp/best.pt``, else the newest ``exp/checkpoints/step-*.pt``."""
    return experiment.find_checkpoint(exp_dir, TRAIN_SCRIPT)


def _build(config: TTSRecipeConfig, vocab: Vocab, stats: GlobalCMVN) -> Tacotron:
    if stats.mean.shape[0] != config.model.num_mels:
        raise ValueError(
            f"mel_stats.json: {stats.mean.shape[0]} bins but model.num_mels="
            f"{config.model.num_mels}; the experiment's files come from different data"
        )
    return Tacotron(config.model, len(vocab))


def load_tts(
    exp_dir: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> LoadedTTS:
    """A trained voice from an experiment folder, model in eval mode on ``device``: its
    ``config.yaml``, ``vocab.json``, ``mel_stats.json`` and checkpoint (``best.pt`` unless
    ``checkpoint``)."""
    loaded = experiment.load_experiment(
        exp_dir, TTSRecipeConfig, "mel_stats.json", _build, "TTS", TRAIN_SCRIPT, checkpoint, device
    )
    config = loaded.config
    return LoadedTTS(
        loaded.model, loaded.vocab, loaded.stats, config.data.features, config.synthesis,
        str(exp_dir),
    )  # fmt: skip
