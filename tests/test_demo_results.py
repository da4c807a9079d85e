"""Tests for speechattn/demo/results.py: the demo's closing table from the files stages leave."""

import json

from speechattn.demo.results import (
    collect_results,
    format_results,
    training_span,
    tts_intelligibility,
)


def test_training_span_reads_steps_and_minutes_and_skips_a_cut_line(tmp_path):
    log = tmp_path / "log.jsonl"
    events = [{"step": 20, "split": "train", "time": 1000.0}, {"step": 400, "split": "valid", "time": 1600.0},
              {"step": 2000, "split": "train", "time": 2800.0}]
    log.write_text("".join(json.dumps(e) + "\n" for e in events) + '{"step": 20')
    assert training_span(log) == {"steps": 2000, "minutes": 30.0}
    assert training_span(tmp_path / "missing.jsonl") is None


def test_table_takes_training_time_from_the_log_not_the_stamp(tmp_path):
    exp = tmp_path
    (exp / "asr" / "decode" / "test").mkdir(parents=True)
    (exp / "asr" / "decode" / "test" / "summary.json").write_text(json.dumps(
        {"wer": 0.17, "cer": 0.048, "utterances": 80, "rtf": 0.05,
         "alignment": {"focus_rate_mean": 0.6, "monotonicity_mean": 0.998}}))
    (exp / "asr" / "log.jsonl").write_text(
        json.dumps({"step": 20, "time": 0.0}) + "\n" + json.dumps({"step": 2000, "time": 1770.0}) + "\n")
    (exp / "stages").mkdir()
    (exp / "stages" / "asr-train.done").write_text(json.dumps({"seconds": 8.0}))  # a no-op re-run
    results = collect_results(exp)
    assert results["training"] == {"asr": {"steps": 2000, "minutes": 29.5}}
    table = format_results(results, note="a note")
    assert "| test | 17.0% | 4.8% | 0.600 | 0.998 | 0.050 |" in table
    assert "Training (from the logs): ASR 2000 steps in 29.5 min" in table
    assert "Stage timings (last run of each): asr-train 8 s" in table
    assert table.rstrip().endswith("Note: a note")


def test_tts_rows_put_the_voices_own_recordings_beside_the_synthesis():
    results = {"asr": {}, "stages": {}, "training": {}, "tts": {
        "sentences": 20, "focus_rate": 0.686, "monotonicity": 1.0, "rtf": 0.034, "reached_cap": 0,
        "intelligibility": {"wer": 1.029, "cer": 0.603, "sentences": 20,
                            "source_wer": 0.075, "source_cer": 0.02}}}
    table = format_results(results)
    assert "| synthesized | 20 | 102.9% | 60.3% | 0.686 | 1.000 | 0.034 | 0 |" in table
    assert "| the voice's recordings | 20 | 7.5% | 2.0% | - | - | - | - |" in table


def test_intelligibility_cache_is_redone_when_the_synthesis_or_the_recognizer_is_newer(
    tmp_path, monkeypatch
):
    import os

    import speechattn.api

    heard = {"text": "HELLO THERE"}

    class FakeASR:
        @classmethod
        def load(cls, exp_dir):
            return cls()

        def transcribe(self, path):
            return heard["text"]

    monkeypatch.setattr(speechattn.api, "ASR", FakeASR)
    synth = tmp_path / "tts" / "synth"
    synth.mkdir(parents=True)
    (synth / "summary.json").write_text(
        json.dumps({"utterances": [{"text": "hello there.", "wav": "utt-0001.wav"}]})
    )
    (tmp_path / "asr").mkdir()
    (tmp_path / "asr" / "best.pt").write_bytes(b"weights")
    assert tts_intelligibility(tmp_path)["wer"] == 0.0
    heard["text"] = "HELLO"
    assert tts_intelligibility(tmp_path)["wer"] == 0.0  # cached: nothing changed
    later = (synth / "intelligibility.json").stat().st_mtime + 10
    os.utime(tmp_path / "asr" / "best.pt", (later, later))  # a retrained recognizer
    assert tts_intelligibility(tmp_path)["wer"] == 0.5
    heard["text"] = "YELLOW THERE"
    (tmp_path / "asr" / "lm.json").write_text("{}")
    later = (synth / "intelligibility.json").stat().st_mtime + 10
    os.utime(tmp_path / "asr" / "lm.json", (later, later))  # a refitted LM decodes differently
    assert tts_intelligibility(tmp_path)["wer"] == 0.5
    assert json.loads((synth / "intelligibility.json").read_text())["cer"] < 0.5  # recomputed
