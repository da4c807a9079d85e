"""``speechattn report EXP_DIR``: one self-contained ``report.html`` for an experiment.

What it gathers under ``EXP_DIR`` (a single ASR or TTS experiment, or a folder holding several,
such as ``exp/demo`` with ``asr/`` and ``tts/``):

- every experiment (a folder with ``config.yaml``): its config and training curves from
  ``log.jsonl`` (training loss, validation metrics, alignment measures over steps);
- every ASR scoring folder (``summary.json`` with ``wer``): WER/CER with S/D/I counts, the worst
  utterances with reference vs hypothesis and the errors highlighted, attention images next to
  their transcripts (``alignments/<id>.png``);
- every TTS synthesis folder (``summary.json`` with ``utterances``): an audio player per sentence
  next to its alignment and mel images.

Images and audio are embedded as ``data:`` URIs, so the file can be mailed or archived alone.
"""

from __future__ import annotations

import argparse
import base64
import difflib
import html
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from speechattn.data.manifest import read_log
from speechattn.fileio import write_text_atomic

__all__ = ["build_report", "training_curves", "highlight_errors", "main"]

WORST_UTTERANCES = 10
ALIGNMENT_IMAGES = 6

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:left;vertical-align:top}th{background:#f3f3f3}img{max-width:100%}
pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:.85em;max-height:24em}
.err{background:#fdd;text-decoration:line-through}.ins{background:#dfd}.sub{background:#ffd}
.utt{display:flex;gap:1em;align-items:flex-start;margin:1em 0;flex-wrap:wrap}
.utt>div{flex:1 1 420px}.muted{color:#777}
"""


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _img(data: bytes, alt: str) -> str:
    return f'<img src="{_data_uri(data, "image/png")}" alt="{html.escape(alt)}">'


def _figure_png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def training_curves(exp_dir: str | Path) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Curves from ``exp_dir/log.jsonl`` grouped by figure: {"loss": {name: [(step, value)]}, ...}."""
    groups: dict[str, dict[str, list[tuple[int, float]]]] = {}
    skip = {"step", "split", "time", "lr", "grad_norm", "skipped", "audio_seconds_per_second"}
    for event in read_log(Path(exp_dir) / "log.jsonl"):
        split = event.get("split", "train")
        for key, value in event.items():
            if key in skip or not isinstance(value, int | float) or isinstance(value, bool):
                continue
            group = "alignment" if key in ("focus_rate", "monotonicity", "diagonality") else (
                "loss" if split == "train" else "validation")
            groups.setdefault(group, {}).setdefault(f"{split} {key}", []).append(
                (int(event["step"]), float(value)))
    return groups


def highlight_errors(ref: str, hyp: str) -> tuple[str, str]:
    """HTML of ``ref`` and ``hyp`` with deleted, substituted and inserted words marked."""
    ref_words, hyp_words = ref.split(), hyp.split()
    ref_html, hyp_html = [], []
    matcher = difflib.SequenceMatcher(a=ref_words, b=hyp_words, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        left = html.escape(" ".join(ref_words[i1:i2]))
        right = html.escape(" ".join(hyp_words[j1:j2]))
        if op == "equal":
            ref_html.append(left)
            hyp_html.append(right)
        elif op == "delete":
            ref_html.append(f'<span class="err">{left}</span>')
        elif op == "insert":
            hyp_html.append(f'<span class="ins">{right}</span>')
        else:
            ref_html.append(f'<span class="sub">{left}</span>')
            hyp_html.append(f'<span class="sub">{right}</span>')
    return " ".join(ref_html), " ".join(hyp_html)


def _experiments(root: Path) -> list[Path]:
    found = [p.parent for p in sorted(root.rglob("config.yaml")) if "checkpoints" not in p.parts]
    return found


def _summaries(root: Path, key: str, kind: type = object) -> list[tuple[Path, dict[str, Any]]]:
    """Folders below ``root`` whose summary.json has ``key`` holding a ``kind``."""
    out = []
    for path in sorted(root.rglob("summary.json")):
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, OSError):
            continue
        if isinstance(summary, dict) and isinstance(summary.get(key), kind):
            out.append((path.parent, summary))
    return out


def _experiment_section(exp: Path, root: Path) -> str:
    from speechattn.plot import curves_figure

    parts = [f"<h2>Experiment <code>{html.escape(str(exp.relative_to(root.parent)))}</code></h2>"]
    best = exp / "best.pt"
    parts.append(f"<p class=muted>best checkpoint: {'present' if best.is_file() else 'none yet'}</p>")
    for group, series in training_curves(exp).items():
        figure = curves_figure(series, title=f"{group} over training steps")
        parts.append(_img(_figure_png(figure), f"{group} curves of {exp.name}"))
    config = (exp / "config.yaml").read_text(encoding="utf-8")
    parts.append(f"<details><summary>config.yaml</summary><pre>{html.escape(config)}</pre></details>")
    return "\n".join(parts)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return html.escape(str(value))


def _asr_table(scored: list[tuple[Path, dict[str, Any]]], root: Path) -> str:
    columns = ["wer", "cer", "substitutions", "deletions", "insertions", "ref_words", "utterances"]
    rows = ["<table><tr><th>set</th>" + "".join(f"<th>{c}</th>" for c in columns)
            + "<th>focus rate</th><th>monotonicity</th></tr>"]
    for folder, summary in scored:
        alignment = summary.get("alignment", {})
        cells = "".join(f"<td>{_fmt(summary.get(c, ''))}</td>" for c in columns)
        rows.append(f"<tr><td>{html.escape(str(folder.relative_to(root)))}</td>{cells}"
                    f"<td>{_fmt(alignment.get('focus_rate_mean', ''))}</td>"
                    f"<td>{_fmt(alignment.get('monotonicity_mean', ''))}</td></tr>")
    return "\n".join(rows) + "</table>"


def _asr_section(folder: Path, summary: Mapping[str, Any], root: Path) -> str:
    name = html.escape(str(folder.relative_to(root)))
    parts = [f"<h3>{name}: WER {summary['wer']:.2%}, CER {summary['cer']:.2%}</h3>"]
    per_utt = sorted(read_log(folder / "per_utt.jsonl"), key=lambda r: -float(r.get("cer", 0)))
    worst = [r for r in per_utt if float(r.get("cer", 0)) > 0][:WORST_UTTERANCES]
    if worst:
        parts.append("<table><tr><th>id</th><th>CER</th><th>reference / hypothesis</th></tr>")
        for row in worst:
            ref, hyp = highlight_errors(row.get("ref", ""), row.get("hyp", ""))
            parts.append(f"<tr><td>{html.escape(row['id'])}</td><td>{float(row['cer']):.2%}</td>"
                         f"<td>REF: {ref}<br>HYP: {hyp}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p>No utterance has an error.</p>")
    hyps = {r["id"]: r for r in read_log(folder / "hyps.jsonl")}
    for png in sorted((folder / "alignments").glob("*.png"))[:ALIGNMENT_IMAGES]:
        row = hyps.get(png.stem, {})
        parts.append(
            f'<div class="utt"><div>{_img(png.read_bytes(), "attention of " + png.stem)}</div>'
            f"<div><b>{html.escape(png.stem)}</b><br>REF: {html.escape(str(row.get('ref', '')))}"
            f"<br>HYP: {html.escape(str(row.get('hyp', '')))}</div></div>")
    return "\n".join(parts)


def _mel_png(wav: Path) -> bytes:
    from speechattn.audio import FeatureConfig, LogMel, load_audio
    from speechattn.plot import mel_figure

    config = FeatureConfig.tts()
    wave, _ = load_audio(wav, config.sample_rate)
    return _figure_png(mel_figure(LogMel(config)(wave), title=f"log-mel of {wav.name}"))


def _tts_section(folder: Path, summary: Mapping[str, Any], root: Path) -> str:
    name = html.escape(str(folder.relative_to(root)))
    parts = [f"<h3>{name}: {len(summary['utterances'])} sentences, real-time factor "
             f"{_fmt(summary.get('rtf', ''))}</h3>"]
    for item in summary["utterances"]:
        wav, png = folder / item["wav"], folder / item["alignment"]
        if not wav.is_file():
            parts.append(f"<p class=muted>{html.escape(item['wav'])}: missing</p>")
            continue
        audio = _data_uri(wav.read_bytes(), "audio/wav")
        measures = (f"focus rate {_fmt(item.get('focus_rate', ''))}, monotonicity "
                    f"{_fmt(item.get('monotonicity', ''))}, stop: {html.escape(str(item.get('stop_reason', '')))}")
        images = _img(png.read_bytes(), f"alignment of {item['name']}") if png.is_file() else ""
        parts.append(
            f'<div class="utt"><div><b>{html.escape(item["name"])}</b>: '
            f"{html.escape(str(item.get('text', '')))}<br><span class=muted>{measures}</span><br>"
            f'<audio controls preload="auto" src="{audio}"></audio></div>'
            f"<div>{images}{_img(_mel_png(wav), 'mel of ' + item['name'])}</div></div>")
    return "\n".join(parts)


def _results_table(root: Path) -> str:
    """The demo's own table (``results.md`` written by the demo), when there is one."""
    path = root / "results.md"
    if not path.is_file():
        return ""
    return f"<h2>Results</h2><pre>{html.escape(path.read_text(encoding='utf-8'))}</pre>"


def build_report(exp_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write ``report.html`` for ``exp_dir`` (default: inside it); returns its path."""
    root = Path(exp_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: experiment folder not found")
    experiments = _experiments(root)
    scored = _summaries(root, "wer", float)
    synthesized = _summaries(root, "utterances", list)
    if not (experiments or scored or synthesized):
        raise FileNotFoundError(
            f"{root}: nothing to report (no config.yaml, no decode or synthesis summary.json below it)")
    body = [f"<h1>speechattn report: {html.escape(root.name)}</h1>", _results_table(root)]
    if scored:
        body += ["<h2>Speech recognition</h2>", _asr_table(scored, root)]
        body += [_asr_section(folder, summary, root) for folder, summary in scored]
    if synthesized:
        body.append("<h2>Speech synthesis</h2>")
        body += [_tts_section(folder, summary, root) for folder, summary in synthesized]
    body += [_experiment_section(exp, root) for exp in experiments]
    page = ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>speechattn report: {html.escape(root.name)}</title><style>{STYLE}</style>"
            f"</head><body>{''.join(body)}</body></html>\n")
    path = Path(output) if output else root / "report.html"
    return write_text_atomic(path, page)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speechattn report",
                                     description="Write a self-contained report.html for an experiment.")
    parser.add_argument("exp_dir", type=Path, help="experiment folder (or a folder of several)")
    parser.add_argument("--out", "-o", "--output", dest="output", type=Path, default=None,
                        help="HTML file (default: EXP_DIR/report.html)")
    return parser


def main(argv: Iterable[str] | None = None) -> int:
    args = build_parser().parse_args(None if argv is None else list(argv))
    print(build_report(args.exp_dir, args.output))
    return 0
