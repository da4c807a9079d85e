"""The files of an experiment folder that both recipes share: data files, checkpoints.

An experiment (``--exp``) holds copies of the data files its model depends on (vocabulary and
feature statistics), the resolved ``config.yaml``, and the trainer's ``best.pt`` / ``checkpoints/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

__all__ = ["check_data_dir", "copy_data_files", "find_checkpoint"]


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
    exp_dir.mkdir(parents=True, exist_ok=True)
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
