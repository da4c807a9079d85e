"""Figures: attention alignments, mel spectrograms and training curves, written as PNG.

Shapes: U decoder steps, T encoder (or mel) frames, M mel bins.

Figures are built as ``matplotlib.figure.Figure`` objects drawn by the Agg canvas directly, never
through ``pyplot``: nothing needs a display, nothing changes matplotlib's global backend, and no
figure is kept alive in pyplot's registry (so nothing leaks and nothing needs closing). The
``*_figure`` builders return the figure for callers that want to add to it or render it with
:func:`figure_to_array` (e.g. for TensorBoard); the ``plot_*`` functions save a PNG atomically.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from speechattn.fileio import atomic_write
from speechattn.metrics import AlignmentMeasures, alignment_measures

__all__ = [
    "MAX_ALIGNMENT_CELLS",
    "alignment_figure",
    "alignment_title",
    "curves_figure",
    "figure_to_array",
    "mel_figure",
    "plot_alignment",
    "plot_curves",
    "plot_mel",
    "save_figure",
]

ArrayLike = torch.Tensor | np.ndarray | Sequence


def _matrix(values: ArrayLike, name: str, what: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().float().numpy()
    matrix = np.asarray(values, dtype=np.float32)
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise ValueError(f"{name}: expected a non-empty {what} matrix, got shape {matrix.shape}")
    return matrix


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: str | os.PathLike) -> Path:
    """Write ``figure`` to ``path`` as PNG: a temporary name first, then an atomic rename."""
    path = Path(path)
    with atomic_write(path) as handle:
        figure.savefig(handle, format="png")
    return path


def figure_to_array(figure: Figure) -> np.ndarray:
    """Render ``figure`` to an (H, W, 3) uint8 RGB array (TensorBoard's ``dataformats="HWC"``)."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


# --------------------------------------------------------------------------------------------
# Alignment
# --------------------------------------------------------------------------------------------

# Rows and columns of an alignment image at most: a figure has fewer pixels than this anyway, and
# the attention of a long text (tens of thousands of steps) must not need an image its size.
MAX_ALIGNMENT_CELLS = 1000


def _bounded(matrix: np.ndarray) -> tuple[np.ndarray, tuple[float, ...] | None, str]:
    """The image of ``matrix`` (U, T): itself, or at most :data:`MAX_ALIGNMENT_CELLS` a side with
    each cell the maximum of a block (so a thin attention path stays visible). Also returns the
    ``imshow`` extent that keeps the axes in steps and frames, and a note for the title."""
    blocks = [-(-n // MAX_ALIGNMENT_CELLS) for n in matrix.shape]  # rows, columns; ceil division
    if blocks == [1, 1]:
        return matrix, None, ""
    shown = matrix
    for axis, size in enumerate(blocks):
        if size > 1:
            shown = np.maximum.reduceat(shown, np.arange(0, shown.shape[axis], size), axis=axis)
    extent = (-0.5, shown.shape[1] * blocks[1] - 0.5, -0.5, shown.shape[0] * blocks[0] - 0.5)
    note = (
        f"{matrix.shape[0]} x {matrix.shape[1]} shown as the maxima of blocks of {blocks[0]} "
        f"steps x {blocks[1]} frames"
    )
    return shown, extent, note


def alignment_title(
    transcript: str | None = None,
    measures: AlignmentMeasures | None = None,
    width: int = 70,
    max_lines: int = 6,
) -> str:
    """Title text: ``transcript`` wrapped to ``width`` characters, then the measures on a line.

    A transcript longer than ``max_lines`` lines is cut there and ends in ``[...]`` (a long text's
    title would otherwise leave no room for the plot).

    >>> print(alignment_title("the quick brown fox", AlignmentMeasures(0.5, 1.0, 0.25), width=10))
    the quick
    brown fox
    focus 0.500  monotonic 1.000  diagonal 0.250
    """
    lines = textwrap.wrap(transcript, width, max_lines=max_lines) if transcript else []
    if measures is not None:
        lines.append(str(measures))
    return "\n".join(lines)


def alignment_figure(
    att: ArrayLike,
    title: str | None = None,
    measures: AlignmentMeasures | bool | None = None,
) -> Figure:
    """Heatmap of attention weights ``att`` (U, T): encoder frames across, decoder steps up.

    ``title`` is typically the transcript; ``measures=True`` computes the alignment measures of
    ``att`` and adds them under it. A matrix over :data:`MAX_ALIGNMENT_CELLS` rows or columns is
    shown max-pooled over blocks (the title says so), its axes still counting steps and frames.
    """
    matrix = _matrix(att, "alignment_figure", "(U, T) attention")
    if measures is True:
        measures = alignment_measures(matrix)
    shown, extent, note = _bounded(matrix)
    figure = _new_figure(7.0, 5.0)
    axes = figure.add_subplot()
    image = axes.imshow(
        shown, origin="lower", aspect="auto", interpolation="none", cmap="viridis", extent=extent
    )
    figure.colorbar(image, ax=axes, label="attention weight")
    axes.set_xlabel("encoder frames")
    axes.set_ylabel("decoder steps")
    text = "\n".join(line for line in (alignment_title(title, measures or None), note) if line)
    if text:
        axes.set_title(text, fontsize=9)
    return figure


def plot_alignment(
    att: ArrayLike,
    path: str | os.PathLike,
    title: str | None = None,
    measures: AlignmentMeasures | bool | None = None,
) -> Path:
    """Save :func:`alignment_figure` of ``att`` (U, T) as a PNG at ``path``; returns the path."""
    return save_figure(alignment_figure(att, title, measures), path)


# --------------------------------------------------------------------------------------------
# Mel spectrogram
# --------------------------------------------------------------------------------------------


def mel_figure(mel: ArrayLike, title: str | None = None) -> Figure:
    """Image of log-mel frames ``mel`` (T, M): frames across, mel bins up."""
    matrix = _matrix(mel, "mel_figure", "(T, M) mel")
    figure = _new_figure(8.0, 3.5)
    axes = figure.add_subplot()
    image = axes.imshow(matrix.T, origin="lower", aspect="auto", interpolation="none", cmap="magma")
    figure.colorbar(image, ax=axes, label="log mel")
    axes.set_xlabel("frames")
    axes.set_ylabel("mel bins")
    if title:
        axes.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=9)
    return figure


def plot_mel(mel: ArrayLike, path: str | os.PathLike, title: str | None = None) -> Path:
    """Save :func:`mel_figure` of ``mel`` (T, M) as a PNG at ``path``; returns the path."""
    return save_figure(mel_figure(mel, title), path)


# --------------------------------------------------------------------------------------------
# Training curves
# --------------------------------------------------------------------------------------------


def curves_figure(
    series: Mapping[str, Sequence[tuple[int, float]]],
    title: str | None = None,
    log_y: bool = False,
) -> Figure:
    """One line per name in ``series``, each a list of ``(step, value)`` points."""
    if not series:
        raise ValueError("curves_figure: no series to plot (pass {'train loss': [(step, v), ...]})")
    figure = _new_figure(7.0, 4.0)
    axes = figure.add_subplot()
    for name, points in series.items():
        points = list(points)
        if not points:
            continue
        steps, values = zip(*points)
        axes.plot(steps, values, label=name, marker="." if len(points) < 30 else None)
    if log_y:
        axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel("value")
    axes.grid(alpha=0.3)
    if axes.lines:
        axes.legend()
    if title:
        axes.set_title(title)
    return figure


def plot_curves(
    series: Mapping[str, Sequence[tuple[int, float]]],
    path: str | os.PathLike,
    title: str | None = None,
    log_y: bool = False,
) -> Path:
    """Save :func:`curves_figure` of ``series`` as a PNG at ``path``; returns the path."""
    return save_figure(curves_figure(series, title, log_y), path)
