"""Subcommands of ``speechattn`` that are not a recipe step of their own: transcribe, synthesize,
plot, and the ``asr``/``tts`` switch in front of prepare and train."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["prepare_main", "train_main", "transcribe_main", "synthesize_main", "plot_main"]

DIRECTIONS = {
    "prepare": {"asr": "speechattn.asr.prepare", "tts": "speechattn.tts.prepare"},
    "train": {"asr": "speechattn.asr.training", "tts": "speechattn.tts.training"},
}


def _by_direction(command: str, argv: list[str]) -> int:
    choices = DIRECTIONS[command]
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: speechattn {command} {{{','.join(choices)}}} [options]\n\n"
              f"{command} for speech recognition (asr) or synthesis (tts); "
              f"'speechattn {command} asr --help' lists the options")
        return 0 if argv else 2
    if argv[0] not in choices:
        print(f"speechattn {command}: choose one of {sorted(choices)}, got {argv[0]!r}", file=sys.stderr)
        return 2
    from speechattn.cli import command_name

    with command_name(f"speechattn {command} {argv[0]}"):
        return int(importlib.import_module(choices[argv[0]]).main(argv[1:]) or 0)


def prepare_main(argv: list[str] | None = None) -> int:
    return _by_direction("prepare", list(argv or []))


def train_main(argv: list[str] | None = None) -> int:
    return _by_direction("train", list(argv or []))


def transcribe_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="speechattn transcribe",
                                     description="Print the transcript of each audio file.")
    parser.add_argument("--exp", "--model", dest="exp", required=True, type=Path,
                        help="ASR experiment folder (--model: its older name)")
    parser.add_argument("--beam", type=int, default=None, help="beam size (default: the model's)")
    parser.add_argument("audio", nargs="+", type=Path, help="wav/flac/ogg files")
    args = parser.parse_args(argv)
    from speechattn.api import ASR
    from speechattn.errors import EXPECTED_ERRORS, describe

    asr = ASR.load(args.exp)
    failed = 0
    for path in args.audio:  # a bad file is reported and skipped; the others are still decoded
        try:
            text = asr.transcribe(path, beam_size=args.beam)
        except EXPECTED_ERRORS as error:
            print(f"{parser.prog}: error: {describe(error)}", file=sys.stderr, flush=True)
            failed += 1
            continue
        print(f"{path}\t{text}", flush=True)
    if failed:
        print(f"{parser.prog}: {failed} of {len(args.audio)} file(s) failed", file=sys.stderr)
    return 1 if failed else 0


def synthesize_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="speechattn synthesize",
                                     description="Speak a text: writes a WAV and an alignment PNG.")
    parser.add_argument("--exp", "--model", dest="exp", required=True, type=Path,
                        help="TTS experiment folder (--model: its older name)")
    parser.add_argument("text", help="the text to speak")
    parser.add_argument("--out", "-o", "--output", dest="out", type=Path, default=Path("speech.wav"),
                        help="WAV file (default speech.wav)")
    args = parser.parse_args(argv)
    from speechattn.api import TTS

    tts = TTS.load(args.exp)
    speech = tts.synthesize(args.text)
    wav, png = tts.save(speech, args.out)
    keys = ("duration_s", "decoder_steps", "stop_reason", "focus_rate", "monotonicity", "rtf")
    info = {k: speech.info[k] for k in keys if k in speech.info}
    print(f"{wav}\t{png}\t{json.dumps(info)}")
    return 0


def plot_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="speechattn plot",
        description="Plot training curves of an experiment (from EXP/log.jsonl) or an attention "
        "matrix saved as .npy (decoder steps x encoder frames).")
    parser.add_argument("source", type=Path, help="experiment folder or .npy attention matrix")
    parser.add_argument("--out", "-o", "--output", dest="out", type=Path, required=True,
                        help="PNG file")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    from speechattn import plot

    if args.source.suffix == ".npy":
        plot.plot_alignment(_load_matrix(args.source), args.out, title=args.title, measures=True)
    else:
        from speechattn.demo.report import training_curves

        series = training_curves(args.source)
        if not series:
            raise FileNotFoundError(f"{args.source / 'log.jsonl'}: no training log to plot")
        plot.plot_curves(series, args.out, title=args.title or str(args.source))
    print(args.out)
    return 0


def _load_matrix(path: Path) -> Any:
    """A 2-D numeric array from a ``.npy`` file; anything else (an object array, which would need
    unpickling, or a file that is no ``.npy``) is refused with a message naming the file."""
    import numpy as np

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such .npy file")
    with path.open("rb") as handle:
        if handle.read(6) != b"\x93NUMPY":
            raise ValueError(f"{path}: not a readable .npy array (no .npy header)")
    try:
        matrix = np.load(path, allow_pickle=False)
    except ValueError as error:
        if "pickle" in str(error):
            raise ValueError(f"{path}: not a plain numeric array (it holds Python objects); "
                             "it will not be loaded") from None
        raise ValueError(f"{path}: not a readable .npy array") from None
    except (OSError, EOFError):
        raise ValueError(f"{path}: not a readable .npy array") from None
    if not isinstance(matrix, np.ndarray) or matrix.ndim != 2 or matrix.dtype.kind not in "biuf":
        what = getattr(matrix, "shape", type(matrix).__name__)
        raise ValueError(f"{path}: expected a 2-D numeric attention matrix (decoder steps x "
                         f"encoder frames), got {what}")
    return matrix
