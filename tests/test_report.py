"""Tests for speechattn/demo/report.py: contents, error highlighting, and rendering in real Chromium."""

import json
from pathlib import Path

import numpy as np
import pytest

from speechattn.audio import save_audio
from speechattn.demo.report import build_report, highlight_errors, training_curves
from speechattn.plot import plot_alignment


def make_experiment(root: Path) -> Path:
    """A demo-shaped folder: an ASR experiment with a scored decode, a TTS synthesis folder."""
    asr = root / "asr"
    asr.mkdir(parents=True)
    (asr / "config.yaml").write_text("model:\n  attention: location\n")
    events = [{"step": s, "split": "train", "loss": 3.0 / s, "lr": 1e-3} for s in (1, 2, 3)]
    events += [{"step": 3, "split": "valid", "cer": 0.25, "focus_rate": 0.7}]
    (asr / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events) + '{"step": 4, "spl')
    scored = asr / "decode" / "test"
    (scored / "alignments").mkdir(parents=True)
    plot_alignment(np.eye(5), scored / "alignments" / "u1.png", title="u1")
    (scored / "summary.json").write_text(json.dumps(
        {"wer": 0.5, "cer": 0.2, "substitutions": 1, "deletions": 1, "insertions": 0,
         "ref_words": 4, "utterances": 1, "alignment": {"focus_rate_mean": 0.9}}))
    row = {"id": "u1", "ref": "THE CAT SAT DOWN", "hyp": "THE BAT SAT", "cer": 0.2}
    (scored / "per_utt.jsonl").write_text(json.dumps(row) + "\n")
    (scored / "hyps.jsonl").write_text(json.dumps(row) + "\n")
    synth = root / "tts" / "synth"
    synth.mkdir(parents=True)
    t = np.arange(22050) / 22050
    save_audio(synth / "utt-0001.wav", 0.3 * np.sin(2 * np.pi * 220 * t).astype(np.float32), 22050)
    plot_alignment(np.eye(4), synth / "utt-0001.png")
    (synth / "summary.json").write_text(json.dumps({"rtf": 0.1, "utterances": [
        {"name": "utt-0001", "wav": "utt-0001.wav", "alignment": "utt-0001.png",
         "text": "hello there.", "focus_rate": 0.8, "monotonicity": 1.0, "stop_reason": "stop_token"}]}))
    return root


def test_highlight_errors_marks_substitutions_deletions_insertions():
    ref, hyp = highlight_errors("the cat sat down", "the bat sat down now")
    assert ref == 'the <span class="sub">cat</span> sat down'
    assert hyp == 'the <span class="sub">bat</span> sat down <span class="ins">now</span>'
    ref, _ = highlight_errors("a b c", "a c")
    assert ref == 'a <span class="err">b</span> c'


def test_training_curves_groups_and_skips_a_cut_line(tmp_path):
    curves = training_curves(make_experiment(tmp_path) / "asr")
    assert curves["loss"]["train loss"] == [(1, 3.0), (2, 1.5), (3, 1.0)]
    assert curves["validation"]["valid cer"] == [(3, 0.25)]
    assert curves["alignment"]["valid focus_rate"] == [(3, 0.7)]


def test_report_contains_every_section_and_is_self_contained(tmp_path):
    page = build_report(make_experiment(tmp_path)).read_text()
    for text in ["Speech recognition", "WER 50.00%", "THE CAT SAT DOWN", "Speech synthesis",
                 "hello there.", "config.yaml", '<span class="err">DOWN</span>']:
        assert text in page, text
    assert page.count("<audio") == 1
    assert page.count("<img") == 6  # 2 curves, 1 ASR attention, TTS alignment + mel
    sources = [s.split('"')[0] for s in page.split('src="')[1:]]
    assert sources and all(s.startswith("data:") for s in sources)


def test_report_of_an_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing to report"):
        build_report(tmp_path)


def test_report_renders_in_headless_chromium_with_every_image_and_audio_loaded(tmp_path,
                                                                          load_in_chromium):
    found = load_in_chromium(build_report(make_experiment(tmp_path / "exp")))
    assert len(found["widths"]) == 6 and all(w > 0 for w in found["widths"]), found
    assert found["durations"] and all(d == pytest.approx(1.0, abs=0.05) for d in found["durations"]), found
    assert found["links"] == []
