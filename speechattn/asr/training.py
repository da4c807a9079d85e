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
import sys
from pathlib import Path

import torch

from speechattn.asr.data import ASRDataset, spread
from speechattn.asr.recipe import (
    ASRRecipeConfig,
    build_frontend,
    build_model,
    check_data_dir,
    copy_data_files,
)
from speechattn.asr.task import ASRTask
from speechattn.audio import GlobalCMVN
from speechattn.config import config_to_dict, load_config, resolve_config, save_config
from speechattn.data.manifest import read_manifest
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
    train_set = ASRDataset(
        read_manifest(paths["train"]), vocab, frontend, str(paths["train"]),
        max_duration=data.max_duration, cache=data.cache_features,
    )  # fmt: skip
    valid_rows = spread(read_manifest(paths["valid"]), data.valid_utterances)
    valid_set = ASRDataset(
        valid_rows, vocab, frontend, str(paths["valid"]), cache=data.cache_features
    )
    return ASRTask(
        build_model(config, vocab), train_set, valid_set, config.objective, config.search
    )


def _get(values: dict, path: tuple[str, ...]) -> object:
    for key in path:
        values = values[key]
    return values


def _check_resumable(config: ASRRecipeConfig, exp_dir: Path) -> None:
    saved_path = exp_dir / "config.yaml"
    if not saved_path.is_file():
        return
    saved = config_to_dict(load_config(ASRRecipeConfig, saved_path))
    new = config_to_dict(config)
    changed = [".".join(path) for path in _FIXED_SECTIONS if _get(saved, path) != _get(new, path)]
    if changed:
        raise ValueError(
            f"{saved_path}: this experiment was started with other "
            f"{' and '.join(changed)} settings; "
            "use a new --exp folder (or the original config)"
        )


def train_asr(
    config: ASRRecipeConfig, data_dir: str | os.PathLike, exp_dir: str | os.PathLike
) -> TrainResult:
    """Save the config, vocab and CMVN into ``exp_dir``, then train (resuming when possible)."""
    data_dir, exp_dir = Path(data_dir), Path(exp_dir)
    check_data_dir(data_dir, config.data)
    if int(os.environ.get("RANK", "0")) == 0:
        _check_resumable(config, exp_dir)
        copy_data_files(data_dir, exp_dir)
        save_config(config, exp_dir / "config.yaml")
    torch.manual_seed(config.train.seed)  # the model's initial weights follow train.seed too
    task = build_task(config, data_dir)
    log.info("model: %.2fM parameters; %d training / %d validation utterances",
             sum(p.numel() for p in task.model.parameters()) / 1e6,
             len(task.train_set), len(task.valid_set))  # fmt: skip
    return Trainer(task, config.train, exp_dir).fit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Train a Listen-Attend-Spell recognizer.",
        epilog="Overrides: dotted config keys, e.g. train.max_steps=2000 "
        "model.decoder.attention.kind=additive",
    )  # fmt: skip
    parser.add_argument(
        "--config", type=Path, required=True, help="recipe YAML (recipes/asr/conf/*.yaml)"
    )
    parser.add_argument(
        "--data", type=Path, required=True, help="prepared folder (manifests, vocab, cmvn)"
    )
    parser.add_argument(
        "--exp", type=Path, required=True, help="experiment folder (created; resumed)"
    )
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)  # key=value may come between options
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    try:
        config = resolve_config(ASRRecipeConfig, args.config, args.overrides)
        result = train_asr(config, args.data, args.exp)
    except (ValueError, FileNotFoundError) as error:
        print(f"train: error: {error}", file=sys.stderr)
        return 1
    best = "none" if result.best_metric is None else f"{result.best_metric:.4f}"
    print(f"trained to step {result.step}; best dev CER {best}; model in {args.exp / 'best.pt'}")
    return 0
