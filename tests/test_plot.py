"""Tests for speechattn/plot.py: PNGs written and readable, labels and titles, no pyplot leaks."""

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from speechattn.metrics import AlignmentMeasures
from speechattn.plot import (
    MAX_ALIGNMENT_CELLS,
    alignment_figure,
    alignment_title,
    curves_figure,
    figure_to_array,
    mel_figure,
    plot_alignment,
    plot_curves,
    plot_mel,
)


def _read_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return mpimg.imread(path)


def test_alignment_title_wraps_and_adds_measures():
    title = alignment_title("a b c d e f", AlignmentMeasures(0.25, 1.0, 0.875), width=5)
    assert title == "a b c\nd e f\nfocus 0.250  monotonic 1.000  diagonal 0.875"
    assert alignment_title("hi") == "hi"
    assert alignment_title() == ""
    lines = alignment_title("word " * 4000, AlignmentMeasures(1.0, 1.0, 1.0), width=20).split("\n")
    assert len(lines) == 6 + 1 and lines[-2] == "word word word [...]"  # a long text's title is cut
    assert lines[-1] == "focus 1.000  monotonic 1.000  diagonal 1.000"


def test_plot_alignment_png(tmp_path):
    path = plot_alignment(torch.eye(12, 30), tmp_path / "figs" / "align.png", title="HELLO")
    image = _read_png(path)
    assert image.shape == (500, 700, 4)  # 7 x 5 inches at 100 dpi, RGBA
    assert [p.name for p in path.parent.iterdir()] == ["align.png"]


def test_alignment_figure_labels_title_and_origin():
    figure = alignment_figure(np.eye(4), title="THE CAT", measures=True)
    axes = figure.axes[0]
    assert axes.get_xlabel() == "encoder frames" and axes.get_ylabel() == "decoder steps"
    assert axes.get_title() == "THE CAT\nfocus 1.000  monotonic 1.000  diagonal 1.000"
    assert axes.images[0].origin == "lower"
    assert len(figure.axes) == 2  # the heatmap and its colorbar
    assert alignment_figure(np.eye(3)).axes[0].get_title() == ""


def test_long_alignment_is_drawn_max_pooled_from_a_bounded_image(tmp_path):
    """A long text's attention (tens of thousands of steps) must not need an image its size."""
    att = np.random.default_rng(0).random((4321, 1001), dtype=np.float32)
    axes = alignment_figure(att, title="long").axes[0]
    shown = axes.images[0].get_array()
    assert MAX_ALIGNMENT_CELLS == 1000 and shown.shape == (865, 501)  # blocks of 5 x 2
    padded = np.full((865 * 5, 501 * 2), -np.inf, dtype=np.float32)
    padded[:4321, :1001] = att
    np.testing.assert_array_equal(shown, padded.reshape(865, 5, 501, 2).max(axis=(1, 3)))
    assert axes.images[0].get_extent() == [-0.5, 1001.5, -0.5, 4324.5]  # in steps and frames
    note = "4321 x 1001 shown as the maxima of blocks of 5 steps x 2 frames"
    assert axes.get_title() == f"long\n{note}"
    assert _read_png(plot_alignment(att, tmp_path / "long.png")).shape == (500, 700, 4)
    path = np.zeros((3000, 40))
    path[np.arange(3000), np.arange(3000) * 40 // 3000] = 1.0  # one-hot steps along the diagonal
    tall = alignment_figure(path, measures=True).axes[0]
    assert tall.images[0].get_array().shape == (1000, 40) and tall.images[0].get_array().min() == 0
    assert tall.images[0].get_array().max(axis=1).tolist() == [1.0] * 1000  # the path stays
    *_, measures, note = tall.get_title().split("\n")  # measures of the whole matrix, then the note
    assert measures.startswith("focus 1.000") and note.startswith("3000 x 40 shown as the maxima")


def test_plot_mel_png(tmp_path):
    mel = torch.randn(120, 80)
    image = _read_png(plot_mel(mel, tmp_path / "mel.png", title="utt-1"))
    assert image.shape == (350, 800, 4)
    figure = mel_figure(mel, title="utt-1")
    assert figure.axes[0].get_title() == "utt-1"
    assert figure.axes[0].images[0].get_array().shape == (80, 120)  # mel bins up, frames across


def test_plot_curves_png_and_legend(tmp_path):
    series = {"train loss": [(0, 3.0), (10, 2.0), (20, 1.5)], "valid loss": [(10, 2.5), (20, 2.0)]}
    image = _read_png(plot_curves(series, tmp_path / "curves.png", title="loss"))
    assert image.shape == (400, 700, 4)
    axes = curves_figure(series, title="loss", log_y=True).axes[0]
    assert axes.get_title() == "loss" and axes.get_yscale() == "log"
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["train loss", "valid loss"]
    assert axes.lines[0].get_xdata().tolist() == [0, 10, 20]
    with pytest.raises(ValueError, match="no series"):
        curves_figure({})


def test_figure_to_array_and_no_pyplot_figures(tmp_path):
    before = plt.get_fignums()
    pixels = figure_to_array(alignment_figure(np.eye(3)))
    assert pixels.shape == (500, 700, 3) and pixels.dtype == np.uint8
    plot_mel(np.zeros((5, 4)), tmp_path / "m.png")
    assert plt.get_fignums() == before


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="\\(U, T\\) attention"):
        alignment_figure(np.zeros(5))
    with pytest.raises(ValueError, match="\\(T, M\\) mel"):
        mel_figure(np.zeros((0, 80)))
