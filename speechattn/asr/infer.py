"""``infer``: decode a manifest or audio files with a trained experiment, then score (stage 3).

Usage:
    python recipes/asr/infer.py --exp exp/asr_offline --manifest data/asr_small/test.jsonl \\
        --out exp/asr_offline/decode_test --beam 10 --plot 5
    python recipes/asr/infer.py --exp exp/asr_offline --audio a.wav b.flac --out /tmp/hyps
    python recipes/asr/infer.py ... --stages score        # re-score an existing decode

Stages: ``decode`` writes hyp.txt, hyps.jsonl (with per-utterance alignment measures), decode.json
(search settings, real-time factor, skipped files) and ``--plot N`` alignment PNGs; ``score``
writes per_utt.tsv, per_utt.jsonl and summary.json (see :mod:`speechattn.asr.scoring`).
Files that cannot be used (corrupt, empty, too short) are skipped and listed in decode.json;
stereo and other sample rates are converted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from speechattn.asr.data import ASRDataset
from speechattn.asr.decode import SearchConfig
from speechattn.asr.pretrained import LoadedASR, find_checkpoint, load_asr
from speechattn.asr.recipe import LM_FILE
from speechattn.asr.scoring import (
    decoded_row,
    save_alignment_plot,
    score_hypotheses,
    write_hypotheses,
)
from speechattn.data.manifest import read_manifest
from speechattn.errors import run_command
from speechattn.fileio import ensure_folder, write_text_atomic

__all__ = ["audio_rows", "search_from_args", "run_decode", "build_parser", "main"]

log = logging.getLogger(__name__)
STAGES = ("decode", "score")


def audio_rows(paths: list[Path]) -> list[dict[str, Any]]:
    """Manifest rows (no reference text) for loose audio files; ids from file names, made unique."""
    rows, seen = [], set()
    for path in paths:
        utt_id, n = path.stem, 1
        while utt_id in seen:
            n += 1
            utt_id = f"{path.stem}-{n}"
        seen.add(utt_id)
        rows.append({"id": utt_id, "audio": str(path)})
    return rows


def search_from_args(base: SearchConfig, args: argparse.Namespace) -> SearchConfig:
    """The experiment's search config with the command line's changes."""
    changes = {
        "beam_size": args.beam, "ctc_weight": args.ctc_weight,
        "length_penalty": args.length_penalty, "batch_size": args.batch_size,
        "max_length_ratio": args.max_length_ratio, "lm_weight": args.lm_weight,
        "lexicon_penalty": args.lexicon_penalty, "word_penalty": args.word_penalty,
    }  # fmt: skip
    return dataclasses.replace(base, **{k: v for k, v in changes.items() if v is not None})


def run_decode(
    asr: LoadedASR,
    rows: list[dict[str, Any]],
    search: SearchConfig,
    out_dir: Path,
    plot: int = 0,
    name: str = "input",
    progress: bool = True,
) -> dict[str, Any]:
    """Decode ``rows`` with ``asr`` (its LM and word list) into ``out_dir`` (hyp.txt, hyps.jsonl,
    decode.json, alignment PNGs)."""
    ensure_folder(out_dir)
    dataset = ASRDataset(rows, asr.vocab, asr.frontend, name, cache=False)
    to_plot = {row["id"] for row in dataset.rows[:plot]}
    by_id: dict[str, dict[str, Any]] = {}
    start = time.perf_counter()
    decoded_rows = asr.iter_decoded(dataset, search, keep_attention=True, progress=progress)
    for decoded in decoded_rows:
        by_id[decoded.id] = decoded_row(decoded)
        if decoded.id in to_plot:
            save_alignment_plot(decoded, out_dir)
    elapsed = time.perf_counter() - start
    ordered = [  # the manifest's speaker goes along, for per-speaker error rates
        {**by_id[row["id"]], **({"speaker": row["speaker"]} if "speaker" in row else {})}
        for row in dataset.rows
        if row["id"] in by_id
    ]
    write_hypotheses(ordered, out_dir)
    audio_seconds = sum(r["seconds"] for r in ordered)
    skipped = dataset.skipped + [
        (row["id"], "audio failed to load") for row in dataset.rows if row["id"] not in by_id
    ]
    record = {
        "search": dataclasses.asdict(search), "utterances": len(ordered),
        "skipped": [{"id": i, "reason": reason} for i, reason in skipped],
        "decode_seconds": round(elapsed, 3), "audio_seconds": round(audio_seconds, 3),
        "rtf": round(elapsed / audio_seconds, 4) if audio_seconds else None,
        "device": str(next(asr.model.parameters()).device),
    }  # fmt: skip
    write_text_atomic(out_dir / "decode.json", json.dumps(record, indent=2) + "\n")
    return record


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Decode and score with a trained LAS model."
    )
    parser.add_argument("--exp", type=Path, required=True, help="experiment folder of train")
    parser.add_argument("--checkpoint", type=Path, help="weights (default: EXP/best.pt)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest", type=Path, help="JSONL manifest to decode (and score)")
    source.add_argument("--audio", type=Path, nargs="+", help="audio files to transcribe")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--beam", type=int, help="beam size (1: greedy; default: the config's)")
    parser.add_argument("--ctc-weight", type=float, help="joint CTC weight in beam search")
    parser.add_argument("--lm", type=Path, help="character LM (default: EXP/lm.json if present)")
    parser.add_argument(
        "--lm-weight", type=float, help="LM weight in beam search (0: no LM; default: the config's)"
    )
    parser.add_argument(
        "--lexicon", type=Path, help="word list (one word per line, or a CMUdict-style dictionary)"
    )
    parser.add_argument(
        "--lexicon-penalty", type=float, help="nats for leaving the listed words (default 3)"
    )
    parser.add_argument(
        "--word-penalty", type=float, help="nats per word, with --lexicon (default 2)"
    )
    parser.add_argument("--length-penalty", type=float, help="rank by score / length ** this")
    parser.add_argument(
        "--max-length-ratio", type=float, help="output steps per encoder frame, at most"
    )
    parser.add_argument("--batch-size", type=int, help="utterances decoded together")
    parser.add_argument(
        "--plot", type=int, default=0, metavar="N", help="alignment PNGs of N utterances"
    )
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def _stage_decode(args: argparse.Namespace) -> None:
    asr = load_asr(args.exp, args.checkpoint, args.device, args.lm, args.lexicon)
    search = search_from_args(asr.config.search, args)
    rows = read_manifest(args.manifest) if args.manifest else audio_rows(args.audio)
    name = str(args.manifest) if args.manifest else "--audio"
    record = run_decode(asr, rows, search, args.out, args.plot, name, not args.no_progress)
    record["checkpoint"] = str(args.checkpoint or find_checkpoint(args.exp))
    fused = asr.lm is not None and search.lm_weight > 0
    record["lm"] = str(args.lm or args.exp / LM_FILE) if fused else None
    record["lexicon"] = f"{args.lexicon} ({len(asr.words)} words)" if asr.words else None
    write_text_atomic(args.out / "decode.json", json.dumps(record, indent=2) + "\n")
    print(f"decoded {record['utterances']} utterance(s), {len(record['skipped'])} skipped, "
          f"RTF {record['rtf']} -> {args.out / 'hyp.txt'}")  # fmt: skip
    if args.audio:
        print((args.out / "hyp.txt").read_text(encoding="utf-8"), end="")


def _stage_score(args: argparse.Namespace) -> None:
    decode_json = args.out / "decode.json"
    extra = json.loads(decode_json.read_text(encoding="utf-8")) if decode_json.is_file() else {}
    summary = score_hypotheses(args.out, extra)
    print(f"WER {100 * summary['wer']:.2f}%  CER {100 * summary['cer']:.2f}%  "
          f"(S {summary['substitutions']} D {summary['deletions']} I {summary['insertions']}, "
          f"{summary['utterances']} utterances) -> {args.out / 'summary.json'}")  # fmt: skip
    for speaker, rates in summary.get("speakers", {}).items():
        print(f"  speaker {speaker}: WER {100 * rates['wer']:.2f}%  CER {100 * rates['cer']:.2f}%  "
              f"({rates['utterances']} utterances)")  # fmt: skip
    alignment = summary["alignment"]
    if alignment:
        means = [alignment[f"{m}_mean"] for m in ("focus_rate", "monotonicity", "diagonality")]
        print("attention: focus rate {:.3f}, monotonicity {:.3f}, diagonality {:.3f} "
              "(means over the set)".format(*means))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stages = [s for s in STAGES if s in args.stages]
    if args.audio and "score" in stages:
        stages.remove("score")  # loose audio files have no reference to score against
    def body() -> None:
        for stage in stages:
            {"decode": _stage_decode, "score": _stage_score}[stage](args)

    return run_command("infer", body)
