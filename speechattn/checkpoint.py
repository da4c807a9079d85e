"""Checkpoint files: the one saver, the safe loader, and loading weights into a model.

:func:`save_atomic` writes through :func:`speechattn.fileio.atomic_write`;
:func:`load_checkpoint` reads with ``torch.load(weights_only=True)`` and never another way;
:func:`load_model_state` loads a whole state or names what does not fit; :func:`warm_start`
copies what fits (``train.init_from``). :mod:`speechattn.train` re-exports them.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from speechattn.fileio import atomic_write

__all__ = ["WarmStart", "load_checkpoint", "load_model_state", "save_atomic", "warm_start"]


def save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` through :func:`speechattn.fileio.atomic_write`: never a half-written file."""
    with atomic_write(path) as handle:
        torch.save(obj, handle)
    return Path(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a speechattn checkpoint safely (``weights_only=True``), with errors that name the file.

    A file holding anything but tensors and plain containers (a pickle that would run code on
    load, an object of another program) is refused and never loaded another way.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found (train a model first, or check --exp)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(
            f"{path}: not a loadable speechattn checkpoint: not a plain tensor file (it holds "
            "Python objects that loading would have to run), so it will not be loaded"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError, IndexError) as error:
        raise ValueError(
            f"{path}: not a loadable speechattn checkpoint ({type(error).__name__}); it may be "
            "truncated or come from another program"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise ValueError(f"{path}: not a speechattn checkpoint (no 'model' state inside)")
    return data


def load_model_state(
    model: nn.Module, state: dict[str, Any], path: Path, fix: str,
    mismatch: str = "weights do not fit the model",
) -> None:
    """``model.load_state_dict(state)``, or a ``ValueError``: ``PATH: MISMATCH (which keys are
    missing or unexpected, which shapes differ); FIX``."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and isinstance(state[k], Tensor) and state[k].shape != own[k].shape
    ]
    wrong_type = [k for k in own if k in state and not isinstance(state[k], Tensor)]
    problems = [
        f"{label} {_few(keys)}"
        for label, keys in (("missing", missing), ("unexpected", unexpected),
                            ("shapes (file vs model)", shapes), ("not tensors", wrong_type))
        if keys
    ]  # fmt: skip
    if problems:
        raise ValueError(f"{path}: {mismatch} ({'; '.join(problems)}); {fix}")
    model.load_state_dict(state)


class WarmStart(NamedTuple):
    """What :func:`warm_start` did: tensor names loaded as they were, loaded row by row through
    a vocabulary map, and left as initialized (``"name: why"``)."""

    loaded: list[str]
    remapped: list[str]
    fresh: list[str]


def warm_start(
    model: nn.Module, source: dict[str, Any], rows: dict[str, list[int | None] | None] | None = None
) -> WarmStart:
    """Copy into ``model`` every tensor of ``source`` (a state dict) with the same name and shape.

    ``rows`` names vocabulary-indexed tensors: row ``i`` of the model's gets row ``rows[name][i]``
    of the source's (a row mapped to None, or a map of None for an unknown source vocabulary,
    stays as initialized). Everything not copied is listed in the result's ``fresh``.
    """
    rows = rows or {}
    own = model.state_dict()
    copied: dict[str, Tensor] = {}
    loaded, remapped, fresh = [], [], []
    for name, tensor in own.items():
        theirs = source.get(name)
        if not isinstance(theirs, Tensor):
            fresh.append(f"{name}: not in the source")
        elif name in rows:
            mapping = rows[name]
            if mapping is None or theirs.shape[1:] != tensor.shape[1:]:
                why = "source vocabulary unknown" if mapping is None else "other shape"
                fresh.append(f"{name}: {why}")
                continue
            copied[name] = tensor.clone()
            for i, j in enumerate(mapping):
                if j is not None and j < theirs.shape[0]:
                    copied[name][i] = theirs[j]
            remapped.append(name)
        elif theirs.shape != tensor.shape:
            fresh.append(f"{name}: shape {tuple(theirs.shape)} in the source, {tuple(tensor.shape)} here")
        else:
            copied[name] = theirs
            loaded.append(name)
    model.load_state_dict(copied, strict=False)
    return WarmStart(loaded, remapped, fresh)


def _few(items: list[str], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
