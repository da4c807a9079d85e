"""The ``speechattn`` command: one subcommand per recipe step, each with its own ``--help``.

Every subcommand lives in a module that exposes ``main(argv) -> int``; this file only dispatches,
importing a module when its subcommand runs so that ``speechattn --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from typing import NamedTuple

from speechattn.errors import run_command

__all__ = ["SUBCOMMANDS", "command_name", "main"]


class Subcommand(NamedTuple):
    module: str
    summary: str
    function: str = "main"


SUBCOMMANDS: dict[str, Subcommand] = {
    "corpus": Subcommand("speechattn.offline.corpus", "synthesize the offline speech corpus"),
    "prepare": Subcommand("speechattn.commands", "prepare asr|tts data: manifests, vocab, stats",
                          "prepare_main"),
    "train": Subcommand("speechattn.commands", "train asr|tts from a config (resumable)",
                        "train_main"),
    "score": Subcommand("speechattn.asr.infer", "decode an ASR manifest and score WER/CER"),
    "transcribe": Subcommand("speechattn.commands", "print the transcript of audio files",
                             "transcribe_main"),
    "synthesize": Subcommand("speechattn.commands", "speak a text to a WAV + alignment PNG",
                             "synthesize_main"),
    "plot": Subcommand("speechattn.commands", "plot training curves or an attention matrix",
                       "plot_main"),
    "report": Subcommand("speechattn.demo.report", "write an experiment's self-contained report.html"),
    "demo": Subcommand("speechattn.demo.pipeline", "run everything end to end on the offline corpus"),
}


def _usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = [
        "usage: speechattn <command> [options]   (or: python -m speechattn <command>)",
        "",
        "attention-based speech recognition and synthesis",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {sub.summary}" for name, sub in SUBCOMMANDS.items()]
    lines += ["", "run 'speechattn <command> --help' for the options of one command"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``argv`` (default: ``sys.argv[1:]``) to a subcommand; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from speechattn import __version__

        print(f"speechattn {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"speechattn: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    sub = SUBCOMMANDS[name]
    entry = getattr(importlib.import_module(sub.module), sub.function)
    with command_name(f"speechattn {name}"):
        # Expected user-facing failures: one clear line, no traceback (speechattn.errors);
        # RuntimeError too, for the synthesizer and download failures.
        return run_command(f"speechattn {name}", lambda: entry(rest), (RuntimeError,))


@contextlib.contextmanager
def command_name(name: str) -> Iterator[None]:
    """Let argparse's default ``prog`` (from ``sys.argv[0]``) read ``name`` in usage and errors.

    The recipe scripts share their parsers with the subcommands: run as ``recipes/asr/train.py``
    the usage says ``train.py``, run as ``speechattn train asr`` it says that.
    """
    saved = sys.argv[0] if sys.argv else ""
    if not sys.argv:
        sys.argv.append("")
    sys.argv[0] = name
    try:
        yield
    finally:
        sys.argv[0] = saved
