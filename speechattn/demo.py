"""`make demo`: the whole toolkit end to end on the offline corpus, in resumable stages.

Usage:
    speechattn demo                       # full: `small` corpus, offline configs (about an hour)
    speechattn demo --mode quick          # `mini` corpus, tiny configs (minutes; numbers not meaningful)
    speechattn demo --stage asr-train     # re-run one stage (and, with --stop-stage, the ones after)
    speechattn demo --list                # the stages, in order

Each stage leaves a stamp in ``EXP/stages/`` when it finishes; a re-run skips stamped stages, so a
killed demo picks up where it stopped (training stages resume from their last checkpoint).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DemoContext", "STAGES", "MODES", "build_parser", "main", "run_demo"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mode:
    corpus_size: str
    asr_config: str
    tts_config: str
    note: str


MODES = {
    "full": Mode("small", "offline", "offline", ""),
    "quick": Mode("mini", "tiny", "tiny", "quick mode: tiny models on the mini corpus, the numbers "
                  "below show the pipeline works and are not meaningful"),
}


@dataclass
class DemoContext:
    """Where the demo reads and writes; passed to every stage."""

    mode: str
    exp: Path
    data: Path
    jobs: int | None

    @property
    def settings(self) -> Mode:
        return MODES[self.mode]

    @property
    def corpus(self) -> Path:
        return self.data / f"offline-{self.settings.corpus_size}"


def stage_corpus(ctx: DemoContext) -> None:
    from speechattn.data.corpus import build_corpus

    build_corpus(ctx.corpus, size=ctx.settings.corpus_size, seed=0, jobs=ctx.jobs)


STAGES: dict[str, Callable[[DemoContext], None]] = {
    "corpus": stage_corpus,
}


def _stamp(ctx: DemoContext, name: str) -> Path:
    return ctx.exp / "stages" / f"{name}.done"


def run_demo(ctx: DemoContext, start: str | None = None, stop: str | None = None) -> list[str]:
    """Run the stages (skipping finished ones unless ``start`` names them); returns those run."""
    names = list(STAGES)
    for given in (start, stop):
        if given is not None and given not in STAGES:
            raise ValueError(f"unknown demo stage {given!r}; stages: {names}")
    first = names.index(start) if start else 0
    last = names.index(stop) if stop else len(names) - 1
    ran = []
    for index, name in enumerate(names[: last + 1]):
        stamp = _stamp(ctx, name)
        forced = start is not None and index >= first
        if index < first or (stamp.is_file() and not forced):
            log.info("stage %s: done before, skipped", name)
            continue
        log.info("stage %s: running", name)
        began = time.perf_counter()
        STAGES[name](ctx)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps({"seconds": round(time.perf_counter() - began, 1)}) + "\n")
        ran.append(name)
    return ran


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="speechattn demo", description="Run the toolkit end to end on the offline corpus."
    )
    parser.add_argument("--mode", choices=sorted(MODES), default="full")
    parser.add_argument("--exp", type=Path, default=Path("exp/demo"), help="output folder")
    parser.add_argument("--data", type=Path, default=Path("data"), help="corpus folder")
    parser.add_argument("--stage", help="first stage to (re-)run")
    parser.add_argument("--stop-stage", help="last stage to run")
    parser.add_argument("--jobs", type=int, default=None, help="parallel jobs (default: all cores)")
    parser.add_argument("--list", action="store_true", help="list the stages and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        print("\n".join(STAGES))
        return 0
    ctx = DemoContext(args.mode, args.exp, args.data, args.jobs)
    if ctx.settings.note:
        log.info(ctx.settings.note)
    run_demo(ctx, args.stage, args.stop_stage)
    return 0
