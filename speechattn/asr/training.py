"""``train``: fit an ASR experiment with the shared trainer (what ``recipes/asr/train.py`` runs).

Usage:
    python recipes/asr/train.py --config recipes/asr/conf/tiny.yaml --data data/asr_mini --exp exp/asr_tiny
    python recipes/asr/train.py --config recipes/asr/conf/offline.yaml --data data/asr_small \\
        --exp exp/asr_offline train.max_steps=6000 model.ctc_weight=0.2
    torchrun --nproc_per_node 4 recipes/asr/train.py --config ... (DDP; one process per GPU)

Re-running on the same ``--exp`` resumes from its newest checkpoint. The ``model`` and
``data.features`` settings must stay as they were (the run refuses otherwise); the others may
change, e.g. ``train.max_steps`` to train longer.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import torch

from speechattn.asr.data import ASRDataset, take_minutes
from speechattn.asr.recipe import (
    ASRRecipeConfig,
    build_frontend,
    build_model,
    check_data_dir,
    copy_data_files,
    lm_text_path,
    write_lm,
)
from speechattn.asr.task import ASRTask
from speechattn.audio import FeatureConfig, GlobalCMVN, check_features
from speechattn.data.batching import spread
from speechattn.data.manifest import read_manifest
from speechattn.experiment import (
    hold_experiment,
    run_train_command,
    start_experiment,
    train_parser,
)
from speechattn.text import Vocab
from speechattn.train import Trainer, TrainResult

__all__ = ["build_task", "train_asr", "build_parser", "main"]

log = logging.getLogger(__name__)
_FIXED_SECTIONS = (("model",), ("data", "features"))  # what the weights depend on


def build_task(config: ASRRecipeConfig, data_dir: str | os.PathLike) -> ASRTask:
    """Model and datasets for ``config`` on the prepared folder ``data_dir``."""
    paths = check_data_dir(Path(data_dir), config.data)
    vocab = Vocab.load(paths["vocab.json"])
    frontend = build_frontend(config, GlobalCMVN.load(paths["cmvn.json"]))
    data = config.data
    train_rows = read_manifest(paths["train"])
    if data.train_minutes > 0:
        subset = take_minutes(train_rows, data.train_minutes)
        log.info("data.train_minutes=%g: %d of %d training utterances (%.1f min)", data.train_minutes,
                 len(subset), len(train_rows), sum(r["duration"] for r in subset) / 60)  # fmt: skip
        train_rows = subset
    train_set = ASRDataset(
        train_rows, vocab, frontend, str(paths["train"]),
        max_duration=data.max_duration, cache=data.cache_features, speeds=data.speed_perturb,
    )  # fmt: skip
    valid_rows = spread(read_manifest(paths["valid"]), data.valid_utterances)
    valid_set = ASRDataset(
        valid_rows, vocab, frontend, str(paths["valid"]), cache=data.cache_features
    )
    return ASRTask(
        build_model(config, vocab), train_set, valid_set, config.objective, config.search
    )


def train_asr(
    config: ASRRecipeConfig, data_dir: str | os.PathLike, exp_dir: str | os.PathLike
) -> TrainResult:
    """Save the config, vocab, CMVN and the transcripts' LM into ``exp_dir``, then train (resuming
    when possible)."""
    data_dir, exp_dir = Path(data_dir), Path(exp_dir)
    paths = check_data_dir(data_dir, config.data)
    # A folder prepared before features.json existed was made with the default features.
    check_features(data_dir, config.data.features, "recipes/asr/prepare.py", FeatureConfig())
    lm_text = lm_text_path(config, data_dir)
    with hold_experiment(exp_dir):
        start_experiment(config, exp_dir, _FIXED_SECTIONS, lambda: copy_data_files(data_dir, exp_dir))
        lm_path = write_lm(config, paths["train"], Vocab.load(paths["vocab.json"]), exp_dir, lm_text)
        if lm_path is not None:
            source = "training transcripts" + (f" + {lm_text}" if lm_text else "")
            log.info("character LM (order %d) of the %s -> %s", config.lm.order, source, lm_path)
        torch.manual_seed(config.train.seed)  # the model's initial weights follow train.seed too
        task = build_task(config, data_dir)
        log.info("model: %.2fM parameters; %d training / %d validation utterances",
                 sum(p.numel() for p in task.model.parameters()) / 1e6,
                 len(task.train_set), len(task.valid_set))  # fmt: skip
        return Trainer(task, config.train, exp_dir).fit()


def build_parser() -> argparse.ArgumentParser:
    return train_parser(
        "Train a Listen-Attend-Spell recognizer.", "recipes/asr/conf",
        "manifests, vocab, cmvn", "train.max_steps=2000 model.decoder.attention.kind=additive",
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return run_train_command(argv, build_parser(), ASRRecipeConfig, train_asr, "dev CER")
