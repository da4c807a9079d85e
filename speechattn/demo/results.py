"""The demo's closing table: WER/CER per split, TTS intelligibility and alignment, timings.

Written to ``EXP/results.md`` (and ``results.json``) from the files the stages left behind, so the
table can be regenerated at any time: ``python -m speechattn.demo.results exp/demo``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from speechattn.data.manifest import read_log, read_manifest

__all__ = [
    "collect_results",
    "format_results",
    "training_span",
    "tts_intelligibility",
    "write_results",
]


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _source_recordings(exp: Path, texts: list[str]) -> list[Path] | None:
    """The recordings of ``texts`` in the demo's TTS test manifest, or None if any is missing."""
    manifest = exp / "data" / "tts" / "test.jsonl"
    if not manifest.is_file():
        return None
    audio = {row["text"]: Path(row["audio"]) for row in read_manifest(manifest)}
    paths = [audio.get(text) for text in texts]
    return None if any(p is None or not p.is_file() for p in paths) else paths


def tts_intelligibility(exp: Path) -> dict[str, float] | None:
    """CER/WER of the demo's own ASR model on the synthesized held-out sentences, and on the TTS
    voice's own recordings of the same sentences (``source_cer``/``source_wer``, the yardstick).

    The 22.05 kHz audio is resampled to the recognizer's rate. Cached in
    ``tts/synth/intelligibility.json``, which is recomputed when the synthesis (its summary.json)
    or the recognizer (``asr/best.pt``, and its ``config.yaml`` and ``lm.json`` where they exist) is
    newer.
    """
    cache = exp / "tts" / "synth" / "intelligibility.json"
    summary_path, model_path = exp / "tts" / "synth" / "summary.json", exp / "asr" / "best.pt"
    summary = _load(summary_path)
    if not summary or not model_path.is_file():
        return None
    recognizer = [model_path, exp / "asr" / "config.yaml", exp / "asr" / "lm.json"]
    inputs = [summary_path, *(path for path in recognizer if path.is_file())]
    inputs_time = max(path.stat().st_mtime for path in inputs)
    if cache.is_file() and cache.stat().st_mtime >= inputs_time:
        return _load(cache)
    from speechattn.api import ASR
    from speechattn.metrics import error_rates
    from speechattn.text import normalize_asr

    asr = ASR.load(exp / "asr")
    items = summary["utterances"]
    refs = [normalize_asr(item["text"]) for item in items]
    hyps = [asr.transcribe(exp / "tts" / "synth" / item["wav"]) for item in items]
    rates = error_rates(refs, hyps)
    result = {"cer": rates.cer, "wer": rates.wer, "sentences": len(items)}
    recordings = _source_recordings(exp, [item["text"] for item in items])
    if recordings is not None:
        source = error_rates(refs, [asr.transcribe(path) for path in recordings])
        result.update(source_cer=source.cer, source_wer=source.wer)
    cache.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


def training_span(log_path: Path) -> dict[str, float] | None:
    """Steps and wall-clock minutes a training log covers (its first to its last event).

    Read from ``log.jsonl`` rather than the stage stamp, which a re-run of the stage (resuming a
    finished training does nothing) overwrites with its own few seconds. The first ``log_every``
    steps come before the first event and are not counted.
    """
    timed = [e for e in read_log(log_path) if "time" in e and "step" in e]
    if len(timed) < 2:
        return None
    return {"steps": max(e["step"] for e in timed),
            "minutes": (timed[-1]["time"] - timed[0]["time"]) / 60}


def collect_results(exp: str | Path) -> dict[str, Any]:
    exp = Path(exp)
    results: dict[str, Any] = {"asr": {}, "tts": {}, "stages": {}, "training": {}}
    for direction in ("asr", "tts"):
        span = training_span(exp / direction / "log.jsonl")
        if span:
            results["training"][direction] = span
    for summary_path in sorted((exp / "asr" / "decode").glob("*/summary.json")):
        summary = _load(summary_path) or {}
        align = summary.get("alignment", {})
        results["asr"][summary_path.parent.name] = {
            "wer": summary.get("wer"), "cer": summary.get("cer"),
            "utterances": summary.get("utterances"), "rtf": summary.get("rtf"),
            "focus_rate": align.get("focus_rate_mean"), "monotonicity": align.get("monotonicity_mean"),
        }
    synth = _load(exp / "tts" / "synth" / "summary.json")
    if synth:
        items = synth["utterances"]
        results["tts"] = {
            "sentences": len(items),
            "focus_rate": sum(i["focus_rate"] for i in items) / max(len(items), 1),
            "monotonicity": sum(i["monotonicity"] for i in items) / max(len(items), 1),
            "rtf": synth.get("rtf"),
            "reached_cap": len(synth.get("reached_cap", [])),
            "intelligibility": tts_intelligibility(exp),
        }
    for stamp in sorted((exp / "stages").glob("*.done")):
        results["stages"][stamp.stem] = (_load(stamp) or {}).get("seconds")
    return results


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_results(results: dict[str, Any], note: str = "") -> str:
    lines = ["| ASR split | WER | CER | focus rate | monotonicity | RTF |", "|---|---|---|---|---|---|"]
    for split, r in results["asr"].items():
        lines.append(f"| {split} | {_pct(r['wer'])} | {_pct(r['cer'])} | {_num(r['focus_rate'])} "
                     f"| {_num(r['monotonicity'])} | {_num(r['rtf'])} |")
    tts = results["tts"]
    if tts:
        intel = tts.get("intelligibility") or {}
        lines += ["", "| TTS held-out | sentences | our-ASR WER | our-ASR CER | focus rate "
                  "| monotonicity | RTF | hit step cap |", "|---|---|---|---|---|---|---|---|",
                  f"| synthesized | {tts['sentences']} | {_pct(intel.get('wer'))} "
                  f"| {_pct(intel.get('cer'))} | {_num(tts['focus_rate'])} | {_num(tts['monotonicity'])} "
                  f"| {_num(tts['rtf'])} | {tts['reached_cap']} |"]
        if intel.get("source_wer") is not None:
            lines.append(f"| the voice's recordings | {tts['sentences']} | {_pct(intel['source_wer'])} "
                         f"| {_pct(intel['source_cer'])} | - | - | - | - |")
    if results.get("training"):
        spans = ", ".join(f"{direction.upper()} {span['steps']} steps in {span['minutes']:.1f} min"
                          for direction, span in results["training"].items())
        lines += ["", f"Training (from the logs): {spans}"]
    if results["stages"]:
        timings = ", ".join(f"{k} {v:.0f} s" for k, v in results["stages"].items() if v is not None)
        lines += ["", f"Stage timings (last run of each): {timings}"]
    if note:
        lines += ["", f"Note: {note}"]
    return "\n".join(lines) + "\n"


def write_results(exp: str | Path, note: str = "") -> str:
    exp = Path(exp)
    results = collect_results(exp)
    table = format_results(results, note)
    (exp / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    (exp / "results.md").write_text(table, encoding="utf-8")
    return table


if __name__ == "__main__":
    print(write_results(sys.argv[1] if len(sys.argv) > 1 else "exp/demo"))
