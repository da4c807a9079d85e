"""Writing and scoring decoded utterances: hypotheses, per-utterance errors, summary, alignments.

Files written into an output folder:

- ``hyp.txt``: ``<id> <hypothesis>`` per line, in manifest order;
- ``hyps.jsonl``: one object per utterance: id, ref, hyp, score, seconds and the attention's
  focus_rate / monotonicity / diagonality (:func:`speechattn.metrics.alignment_measures`);
- ``per_utt.tsv`` / ``per_utt.jsonl``: word and character errors of each utterance;
- ``summary.json``: corpus WER and CER with S/D/I counts (:func:`speechattn.metrics.error_rates`),
  WER and CER per speaker when the rows name more than one, the alignment measures averaged over
  the set, and whatever the decode stage recorded (search settings, real-time factor, skipped
  utterances);
- ``alignments/<id>.png``: attention plots, measures in the title (``--plot N``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from speechattn.asr.decode import Decoded
from speechattn.data.manifest import read_manifest, write_manifest
from speechattn.fileio import write_text_atomic
from speechattn.metrics import AlignmentMeasures, alignment_measures, error_rates, utterance_errors
from speechattn.plot import plot_alignment

__all__ = [
    "MEASURES",
    "decoded_row",
    "write_hypotheses",
    "alignment_summary",
    "save_alignment_plot",
    "score_hypotheses",
    "speaker_rates",
]

MEASURES = AlignmentMeasures._fields
_TSV_COLUMNS = (
    "id",
    "wer",
    "cer",
    "word_errors",
    "ref_words",
    "char_errors",
    "ref_chars",
    "ref",
    "hyp",
)


def decoded_row(decoded: Decoded) -> dict[str, Any]:
    """The ``hyps.jsonl`` row of one utterance (alignment measures when its attention is kept)."""
    row: dict[str, Any] = {
        "id": decoded.id, "ref": decoded.ref, "hyp": decoded.hyp,
        "score": round(decoded.score, 4), "seconds": round(decoded.seconds, 4),
    }  # fmt: skip
    if decoded.attention is not None and decoded.attention.numel() > 0:
        measures = alignment_measures(decoded.attention)
        row.update({name: round(value, 4) for name, value in measures._asdict().items()})
    return row


def write_hypotheses(rows: Sequence[Mapping[str, Any]], out_dir: Path) -> None:
    """``hyp.txt`` and ``hyps.jsonl`` for ``rows`` (from :func:`decoded_row`)."""
    write_text_atomic(out_dir / "hyp.txt", "".join(f"{r['id']} {r['hyp']}\n" for r in rows))
    write_manifest(out_dir / "hyps.jsonl", rows)


def alignment_summary(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Mean and minimum of each alignment measure over the rows that have them."""
    values = {name: [float(r[name]) for r in rows if name in r] for name in MEASURES}
    summary: dict[str, float] = {}
    for name, series in values.items():
        if series:
            summary[f"{name}_mean"] = round(sum(series) / len(series), 4)
            summary[f"{name}_min"] = round(min(series), 4)
    return summary


def speaker_rates(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float | int]]:
    """``{speaker: {"wer", "cer", "utterances"}}`` of scored rows that carry a ``speaker``.

    >>> rows = [{"speaker": 7, "ref": "A B", "hyp": "A C"}, {"speaker": 8, "ref": "AB", "hyp": "AB"}]
    >>> speaker_rates(rows)
    {'7': {'wer': 0.5, 'cer': 0.3333, 'utterances': 1}, '8': {'wer': 0.0, 'cer': 0.0, 'utterances': 1}}
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        if row.get("speaker") is not None:
            groups.setdefault(str(row["speaker"]), []).append(row)
    result = {}
    for speaker in sorted(groups):
        rates = error_rates([r["ref"] for r in groups[speaker]], [r["hyp"] for r in groups[speaker]])
        result[speaker] = {
            "wer": round(rates.wer, 4), "cer": round(rates.cer, 4), "utterances": rates.utterances,
        }  # fmt: skip
    return result


def save_alignment_plot(decoded: Decoded, out_dir: Path) -> Path:
    """``alignments/<id>.png``: the attention with the hypothesis and its measures as title."""
    title = f"{decoded.id}: {decoded.hyp}"
    return plot_alignment(decoded.attention, out_dir / "alignments" / f"{decoded.id}.png",
                          title=title, measures=True)  # fmt: skip


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def score_hypotheses(out_dir: Path, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Score ``out_dir/hyps.jsonl`` against its references; write per-utterance files and summary.

    Utterances without a reference (``ref`` null) are not scored. Returns the summary.
    """
    rows = read_manifest(out_dir / "hyps.jsonl")
    scored = [r for r in rows if r.get("ref") is not None]
    if not scored:
        raise ValueError(
            f"{out_dir / 'hyps.jsonl'}: no utterance has a reference transcript to score against "
            "(decode a manifest with 'text' fields, or skip the score stage)"
        )
    per_utt = [{"id": r["id"], **utterance_errors(r["ref"], r["hyp"])} for r in scored]
    lines = ["\t".join(_TSV_COLUMNS)]
    for row in per_utt:
        lines.append("\t".join(_tsv_value(row[c]) for c in _TSV_COLUMNS))
    write_text_atomic(out_dir / "per_utt.tsv", "\n".join(lines) + "\n")
    write_manifest(out_dir / "per_utt.jsonl", per_utt)
    rates = error_rates([r["ref"] for r in scored], [r["hyp"] for r in scored])
    summary = {
        **{k: _finite(v) if isinstance(v, float) else v for k, v in rates.to_dict().items()},
        "unscored": len(rows) - len(scored),
        "alignment": alignment_summary(rows),
        **({"speakers": speakers} if len(speakers := speaker_rates(scored)) > 1 else {}),
        **(extra or {}),
    }
    write_text_atomic(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _tsv_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).replace("\t", " ")
