"""Integration tier: ``make demo DEMO=quick`` (its stages, called in-process) on the mini corpus.

Every stage runs for real: corpus synthesis, ASR prepare/train/decode, TTS prepare/train/synthesize,
the results table and the report, which must load in Chromium with every image and audio present.
The numbers themselves are not checked against targets (quick mode trains tiny models for minutes).
"""

import json
import math

import pytest

from speechattn.demo import pipeline as demo

pytestmark = pytest.mark.slow


def test_quick_demo_runs_every_stage_and_writes_a_complete_report(tmp_path, one_thread, capsys,
                                                                  mini_corpus, load_in_chromium):
    exp = tmp_path / "exp"
    (tmp_path / "data").mkdir()
    # the session's corpus where the demo keeps it: its corpus stage finds it complete and only reads
    (tmp_path / "data" / "offline-mini").symlink_to(mini_corpus)
    assert demo.main(["--mode", "quick", "--exp", str(exp), "--data", str(tmp_path / "data"),
                      "--jobs", "2"]) == 0
    printed = capsys.readouterr().out
    assert all(f"| {split} |" in printed for split in demo.ASR_TEST_SPLITS)
    assert f"report: {(exp / 'report.html').resolve()}" in printed
    assert sorted(p.stem for p in (exp / "stages").glob("*.done")) == sorted(demo.STAGES)

    results = json.loads((exp / "results.json").read_text())
    assert set(results["asr"]) == {"test", "test-unseen-voice", "test-prose", "test-prose-unseen-voice"}
    for split in results["asr"].values():
        assert split["utterances"] > 0
        assert 0 <= split["cer"] and math.isfinite(split["wer"])
        assert 0 <= split["focus_rate"] <= 1 and 0 <= split["monotonicity"] <= 1
    sentences = demo.MODES["quick"].tts_sentences
    assert results["tts"]["sentences"] == sentences
    assert results["tts"]["intelligibility"]["sentences"] == sentences

    page = exp / "report.html"
    html = page.read_text(encoding="utf-8")
    assert html.count("<audio") == sentences
    for heading in ("Speech recognition", "Speech synthesis", "test-unseen-voice", "test-prose"):
        assert heading in html
    found = load_in_chromium(page)
    # curves of both trainings, ASR attention plots, TTS alignment + mel per sentence
    assert len(found["widths"]) >= 2 * sentences + 4 and all(w > 0 for w in found["widths"]), found
    assert len(found["durations"]) == sentences and all(d > 0.2 for d in found["durations"]), found
    assert found["links"] == []

    # a second run finds every stage stamped: nothing runs again, the table is printed again
    stamps = {p.name: p.stat().st_mtime_ns for p in (exp / "stages").glob("*.done")}
    assert demo.main(["--mode", "quick", "--exp", str(exp), "--data", str(tmp_path / "data")]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (exp / "stages").glob("*.done")} == stamps
    assert "| test |" in capsys.readouterr().out
