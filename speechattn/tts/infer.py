"""``infer``: text -> WAV files, alignment PNGs and a JSON summary (``recipes/tts/synthesize.py``).

Usage:
    python recipes/tts/synthesize.py --exp exp/tts_offline --text "Hello there." --out out/tts
    python recipes/tts/synthesize.py --exp exp/tts_offline --text-file sentences.txt --out out/tts \\
        synthesis.inference.window=null synthesis.vocoder.n_iter=60

Each non-blank line of ``--text-file`` is one utterance (``utt-0001.wav``, ``utt-0001.png``, ...);
``summary.json`` lists duration, decoder steps, stop reason, alignment measures and real-time
factors per utterance. Overrides (``synthesis.*`` keys) change the experiment's saved synthesis
settings for this run only. Text longer than ``synthesis.max_text_chars`` is split at sentence
boundaries (``synthesis.split_long_text=false`` makes it an error instead).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from speechattn.config import config_from_dict, config_to_dict, merge_override, parse_override
from speechattn.errors import run_command
from speechattn.tts.pretrained import load_tts
from speechattn.tts.synthesize import SynthesisConfig, save_results, synthesize
from speechattn.tts.text_input import read_text_file

__all__ = ["build_parser", "main", "synthesis_overrides"]


def synthesis_overrides(base: SynthesisConfig, overrides: list[str]) -> SynthesisConfig:
    """``base`` with ``synthesis.key=value`` overrides applied; types and keys are checked."""
    values = config_to_dict(base)
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not sep or not key.startswith("synthesis."):
            raise ValueError(
                f"override {item!r}: expected synthesis.key=value (only synthesis settings can "
                "change at synthesis time)"
            )
        key_path, value = parse_override(item)
        merge_override(values, key_path[1:], value)
    try:
        return config_from_dict(SynthesisConfig, values, prefix="synthesis.")
    except ValueError as error:
        raise ValueError(f"{error} (from the command line)") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Speak text with a trained Tacotron voice.")
    parser.add_argument("--exp", type=Path, required=True, help="experiment folder (config.yaml, best.pt, ...)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="one utterance")
    source.add_argument("--text-file", type=Path, help="UTF-8 file, one utterance per line")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--checkpoint", type=Path, help="checkpoint to use (default: EXP/best.pt)")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("overrides", nargs="*", metavar="synthesis.key=value", help="setting overrides")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("synthesize", lambda: _synthesize(args))


def _synthesize(args: argparse.Namespace) -> int:
    texts = [args.text] if args.text is not None else read_text_file(args.text_file)
    tts = load_tts(args.exp, args.checkpoint, args.device)
    config = synthesis_overrides(tts.config, args.overrides)
    results = synthesize(tts, texts, config)
    summary = save_results(results, args.out)
    for name, (_, _, _, info) in zip((f"utt-{i + 1:04d}" for i in range(len(results))), results):
        print(
            f"{name}: {info['duration_s']:.2f} s, {info['decoder_steps']} steps, {info['stop_reason']}, "
            f"focus {info['focus_rate']:.3f}, monotonicity {info['monotonicity']:.3f}, RTF {info['rtf']:.3f}"
        )
    print(f"wrote {len(results)} utterance(s) and {summary}")
    return 0
