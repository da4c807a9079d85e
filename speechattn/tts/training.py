"""``train``: fit a TTS experiment with the shared trainer (what ``recipes/tts/train.py`` runs).

Usage:
    python recipes/tts/train.py --config recipes/tts/conf/tiny.yaml --data data/tts_mini --exp exp/tts_tiny
    python recipes/tts/train.py --config recipes/tts/conf/offline.yaml --data data/tts_small \\
        --exp exp/tts_offline train.max_steps=4000 loss.guided_weight=2.0
    torchrun --nproc_per_node 4 recipes/tts/train.py --config recipes/tts/conf/ljspeech.yaml ...

Re-running on the same ``--exp`` resumes from its newest checkpoint. The model and data sections
of the config must stay as they were (the run refuses otherwise); training, loss and synthesis
settings may change, e.g. ``train.max_steps`` to train longer.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from speechattn.audio import GlobalCMVN, check_features
from speechattn.experiment import (
    hold_experiment,
    run_train_command,
    start_experiment,
    train_parser,
)
from speechattn.text import Vocab
from speechattn.train import Trainer, TrainResult
from speechattn.tts.data import TTSDataset
from speechattn.tts.model import Tacotron
from speechattn.tts.recipe import TTSRecipeConfig, check_data_dir, copy_data_files
from speechattn.tts.task import TTSTask

__all__ = ["build_task", "train_tts", "build_parser", "main"]

log = logging.getLogger(__name__)
_FIXED_SECTIONS = (("model",), ("data",))  # what the weights depend on


def build_task(config: TTSRecipeConfig, data_dir: str | os.PathLike) -> TTSTask:
    """Model and datasets for ``config`` on the prepared folder ``data_dir``."""
    data_dir = Path(data_dir)
    paths = check_data_dir(data_dir, config.data)
    check_features(data_dir, config.data.features, "recipes/tts/prepare.py")
    vocab = Vocab.load(paths["vocab.json"])
    cmvn = GlobalCMVN.load(paths["mel_stats.json"])
    data = config.data
    train_set = TTSDataset(paths["train"], vocab, cmvn, data.max_frames, data.cache_in_memory)
    valid_set = TTSDataset(paths["valid"], vocab, cmvn, None, data.cache_in_memory)
    return TTSTask(
        Tacotron(config.model, len(vocab)), train_set, valid_set, config.loss, data.features,
        config.synthesis, data.valid_utterances, data.align_utterances,
        valid_max_frames=config.train.max_frames,
    )  # fmt: skip


def train_tts(
    config: TTSRecipeConfig, data_dir: str | os.PathLike, exp_dir: str | os.PathLike
) -> TrainResult:
    """Save config, vocab, mel stats and features into ``exp_dir``, then train (or resume)."""
    data_dir, exp_dir = Path(data_dir), Path(exp_dir)
    check_data_dir(data_dir, config.data)
    with hold_experiment(exp_dir):
        start_experiment(config, exp_dir, _FIXED_SECTIONS, lambda: copy_data_files(data_dir, exp_dir))
        task = build_task(config, data_dir)
        log.info(
            "model: %.2fM parameters; %d training / %d validation utterances",
            sum(p.numel() for p in task.model.parameters()) / 1e6,
            len(task.train_set),
            len(task.valid_set),
        )
        return Trainer(task, config.train, exp_dir).fit()


def build_parser() -> argparse.ArgumentParser:
    return train_parser(
        "Train a Tacotron voice.", "recipes/tts/conf", "manifests, vocab, mel stats",
        "train.max_steps=2000 model.reduction_factor=3",
    )


def main(argv: list[str] | None = None) -> int:
    return run_train_command(argv, build_parser(), TTSRecipeConfig, train_tts, "dev mel L1")
