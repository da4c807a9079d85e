"""What both recipes' experiment folders and train commands share.

An experiment (``--exp``) holds copies of the data files its model depends on (vocabulary and
feature statistics), the resolved ``config.yaml``, and the trainer's ``best.pt`` / ``checkpoints/``.
The ASR and TTS ``train`` commands differ only in their config class and task; the folder checks,
the resume guard and the command line live here once.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

import torch
from torch import nn

from speechattn.audio import GlobalCMVN
from speechattn.checkpoint import load_checkpoint, load_model_state
from speechattn.config import config_to_dict, load_config, resolve_config, save_config
from speechattn.errors import run_command
from speechattn.fileio import ensure_folder, hold_folder
from speechattn.text import Vocab

__all__ = [
    "check_data_dir",
    "check_resumable",
    "copy_data_files",
    "find_checkpoint",
    "hold_experiment",
    "load_experiment",
    "LoadedExperiment",
    "run_train_command",
    "start_experiment",
    "train_parser",
    "vocab_rows",
]

C = TypeVar("C")
M = TypeVar("M", bound=nn.Module)


def check_data_dir(
    data_dir: Path, manifests: dict[str, str], files: Sequence[str], prepare_script: str
) -> dict[str, Path]:
    """Paths of ``manifests`` ({role: name}) and ``files`` in ``data_dir``; raises naming the fix."""
    paths = {
        **{role: data_dir / f"{name}.jsonl" for role, name in manifests.items()},
        **{name: data_dir / name for name in files},
    }
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{data_dir}: missing {', '.join(missing)}; run {prepare_script} --out {data_dir} "
            "first (or set data.train / data.valid to the manifest names you have)"
        )
    return paths


def copy_data_files(data_dir: Path, exp_dir: Path, files: Sequence[str]) -> None:
    """Copy ``files`` from ``data_dir`` into the experiment, refusing to swap them silently."""
    ensure_folder(exp_dir)
    for name in files:
        source, target = data_dir / name, exp_dir / name
        if target.is_file() and target.read_bytes() != source.read_bytes():
            raise ValueError(
                f"{target} differs from {source}: this experiment was started on other data; "
                "use a new --exp folder"
            )
        if not target.is_file():
            shutil.copyfile(source, target)


def find_checkpoint(exp_dir: Path, train_script: str = "the recipe's train.py") -> Path:
    """``exp/best.pt``, else the newest ``exp/checkpoints/step-*.pt``."""
    best = exp_dir / "best.pt"
    if best.is_file():
        return best
    steps = sorted((exp_dir / "checkpoints").glob("step-*.pt"))
    if steps:
        return steps[-1]
    raise FileNotFoundError(
        f"{exp_dir}: no best.pt and no checkpoints/step-*.pt; train first "
        f"({train_script} --exp {exp_dir} ...) or check --exp"
    )


class LoadedExperiment(NamedTuple, Generic[C, M]):
    """What :func:`load_experiment` read: the config, vocabulary, feature statistics (CMVN or mel
    stats), the model with the checkpoint's weights (eval mode), and that checkpoint's path."""

    config: C
    vocab: Vocab
    stats: GlobalCMVN
    model: M
    checkpoint: Path


def _an(word: str) -> str:
    return f"an {word}" if word[:1] in "AEFHILMNORSX" else f"a {word}"  # as spelled out: "an ASR"


def _require(path: Path, what: str, direction: str, train_script: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: {what} missing; is {path.parent} {_an(direction)} experiment? "
            f"({train_script} writes it before training)"
        )
    return path


def load_experiment(
    exp_dir: str | os.PathLike,
    config_class: type[C],
    stats_file: str,
    build_model: Callable[[C, Vocab, GlobalCMVN], M],
    direction: str,
    train_script: str,
    checkpoint: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
) -> LoadedExperiment[C, M]:
    """Load a trained experiment folder, the same way for both directions.

    Reads ``config.yaml`` (as ``config_class``), ``vocab.json``, ``stats_file``, and the
    checkpoint (``best.pt``, else the newest ``checkpoints/step-*.pt``, unless ``checkpoint``)
    with ``torch.load(weights_only=True)``; builds ``build_model(config, vocab, stats)`` and loads
    the weights into it. A missing file, a config of another kind, or weights that do not fit
    raise an error naming the file and the fix. ``direction`` ("ASR", "TTS") and
    ``train_script`` go into those messages.
    """
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise FileNotFoundError(f"{exp_dir}: experiment folder not found")
    config_path = _require(exp_dir / "config.yaml", "config", direction, train_script)
    try:
        config = load_config(config_class, config_path)
    except ValueError as err:
        raise ValueError(f"{config_path}: not {_an(direction)} recipe config ({err})") from None
    vocab = Vocab.load(_require(exp_dir / "vocab.json", "vocabulary", direction, train_script))
    stats = GlobalCMVN.load(_require(exp_dir / stats_file, "feature statistics", direction, train_script))
    path = Path(checkpoint) if checkpoint is not None else find_checkpoint(exp_dir, train_script)
    state = load_checkpoint(path)["model"]
    try:
        model = build_model(config, vocab, stats)
    except ValueError as err:  # e.g. statistics of other features: name the folder
        raise ValueError(f"{exp_dir}: {err}") from None
    load_model_state(
        model, state, path, "use a checkpoint of this experiment",
        f"weights do not fit the model of {config_path} and {exp_dir / 'vocab.json'}",
    )  # fmt: skip
    return LoadedExperiment(config, vocab, stats, model.to(device).eval(), path)


def vocab_rows(
    names: Sequence[str], vocab: Vocab, checkpoint: Path
) -> dict[str, list[int | None] | None]:
    """Row maps for a warm start from ``checkpoint``: the tensors ``names`` (a model's
    ``VOCAB_TENSORS``) take their rows by character from the source experiment's ``vocab.json``
    (beside the checkpoint, or one folder up for ``checkpoints/step-*.pt``); None when there is
    none, so that those tensors stay as initialized rather than load rows of unknown meaning."""
    folder = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    path = folder / "vocab.json"
    rows = vocab.rows_from(Vocab.load(path)) if path.is_file() else None
    return {name: rows for name in names}


def _section(values: dict[str, Any], path: tuple[str, ...]) -> object:
    for key in path:
        values = values[key]
    return values


def check_resumable(config: C, exp_dir: Path, fixed: Sequence[tuple[str, ...]]) -> None:
    """Refuse to resume ``exp_dir`` when a ``fixed`` config section (what the weights depend on,
    e.g. ``("model",)``) differs from the saved ``config.yaml``; anything else may change."""
    saved_path = exp_dir / "config.yaml"
    if not saved_path.is_file():
        return
    saved = config_to_dict(load_config(type(config), saved_path))
    new = config_to_dict(config)
    changed = [".".join(path) for path in fixed if _section(saved, path) != _section(new, path)]
    if changed:
        raise ValueError(
            f"{saved_path}: this experiment was started with other {' and '.join(changed)} "
            "settings; use a new --exp folder (or the original config)"
        )


def hold_experiment(exp_dir: Path) -> contextlib.AbstractContextManager[Any]:
    """Hold ``exp_dir`` for a training run (rank 0 only; see :func:`speechattn.fileio.hold_folder`):
    a second training on the same folder fails at once with the first one's pid."""
    if int(os.environ.get("RANK", "0")) != 0:
        return contextlib.nullcontext()
    return hold_folder(exp_dir, "training")


def start_experiment(
    config: C, exp_dir: Path, fixed: Sequence[tuple[str, ...]], copy_files: Callable[[], None]
) -> None:
    """On rank 0 only: check that ``exp_dir`` may be resumed, copy the data files in
    (``copy_files``) and save the resolved config."""
    if int(os.environ.get("RANK", "0")) != 0:
        return
    check_resumable(config, exp_dir, fixed)
    copy_files()
    save_config(config, exp_dir / "config.yaml")


def train_parser(description: str, config_dir: str, data_help: str, example: str) -> argparse.ArgumentParser:
    """The ``train`` command line both recipes share: --config, --data, --exp, key=value ..."""
    parser = argparse.ArgumentParser(
        description=description, epilog=f"Overrides: dotted config keys, e.g. {example}"
    )
    parser.add_argument("--config", type=Path, required=True, help=f"recipe YAML ({config_dir}/*.yaml)")
    parser.add_argument("--data", type=Path, required=True, help=f"prepared folder ({data_help})")
    parser.add_argument("--exp", type=Path, required=True, help="experiment folder (created; resumed)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    return parser


def run_train_command(
    argv: list[str] | None,
    parser: argparse.ArgumentParser,
    config_class: type[C],
    train: Callable[[C, Path, Path], Any],
    metric: str,
) -> int:
    """Parse ``argv``, resolve the config, call ``train(config, data, exp)``; returns the exit code.

    Expected failures (missing files, bad overrides, a changed model on resume, a folder that
    cannot be written or is in use by another training) are one line on stderr and exit code 1."""
    args = parser.parse_intermixed_args(argv)  # key=value may come between options

    def body() -> int:
        config = resolve_config(config_class, args.config, args.overrides)
        result = train(config, args.data, args.exp)
        best = "none" if result.best_metric is None else f"{result.best_metric:.4f}"
        print(f"trained to step {result.step}; best {metric} {best}; model in {args.exp / 'best.pt'}")
        return 0

    return run_command(parser.prog, body)
