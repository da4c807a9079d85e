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

from speechattn.fileio import ensure_folder, write_text_atomic

__all__ = ["DemoContext", "STAGES", "MODES", "build_parser", "main", "run_demo"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mode:
    corpus_size: str
    asr_config: str
    tts_config: str
    beam: int
    tts_sentences: int
    note: str


MODES = {
    "full": Mode("small", "offline", "offline", 10, 20, ""),
    "quick": Mode("mini", "tiny", "tiny", 4, 4, "quick mode: tiny models trained for minutes on "
                  "the mini corpus; the numbers show the pipeline works and are not meaningful"),
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


RECIPES = Path(__file__).resolve().parents[2] / "recipes"
# the offline corpus's test splits: grammar and prose sentences, training and unseen voices
ASR_TEST_SPLITS = ("test", "test-unseen-voice", "test-prose", "test-prose-unseen-voice")


def _run(module: str, argv: list[str]) -> None:
    """Call a recipe step's ``main(argv)``; a non-zero exit stops the demo at this stage."""
    import importlib

    code = importlib.import_module(module).main([str(a) for a in argv])
    if code:
        raise RuntimeError(f"{module} {' '.join(map(str, argv))} exited with {code}")


def stage_corpus(ctx: DemoContext) -> None:
    from speechattn.offline.corpus import build_corpus

    build_corpus(ctx.corpus, size=ctx.settings.corpus_size, seed=0, jobs=ctx.jobs)


def stage_asr_prepare(ctx: DemoContext) -> None:
    _run("speechattn.asr.prepare", [
        "--subsets", "train", "dev", *ASR_TEST_SPLITS, "--librispeech-dir", ctx.corpus / "asr",
        "--out", ctx.exp / "data" / "asr"])


def stage_asr_train(ctx: DemoContext) -> None:
    config = RECIPES / "asr" / "conf" / f"{ctx.settings.asr_config}.yaml"
    _run("speechattn.asr.training", [
        "--config", config, "--data", ctx.exp / "data" / "asr", "--exp", ctx.exp / "asr"])


def stage_asr_decode(ctx: DemoContext) -> None:
    for split in ASR_TEST_SPLITS:
        _run("speechattn.asr.infer", [
            "--exp", ctx.exp / "asr", "--manifest", ctx.exp / "data" / "asr" / f"{split}.jsonl",
            "--beam", ctx.settings.beam, "--plot", 6, "--out", ctx.exp / "asr" / "decode" / split,
            "--no-progress"])


def stage_tts_prepare(ctx: DemoContext) -> None:
    _run("speechattn.tts.prepare", [
        "--ljspeech-dir", ctx.corpus / "tts", "--out", ctx.exp / "data" / "tts", "--no-progress"])


def stage_tts_train(ctx: DemoContext) -> None:
    config = RECIPES / "tts" / "conf" / f"{ctx.settings.tts_config}.yaml"
    _run("speechattn.tts.training", [
        "--config", config, "--data", ctx.exp / "data" / "tts", "--exp", ctx.exp / "tts"])


def stage_tts_synthesize(ctx: DemoContext) -> None:
    from speechattn.data.manifest import read_manifest

    rows = read_manifest(ctx.exp / "data" / "tts" / "test.jsonl")[: ctx.settings.tts_sentences]
    texts = ctx.exp / "tts" / "test_sentences.txt"
    write_text_atomic(texts, "".join(row["text"] + "\n" for row in rows))
    _run("speechattn.tts.infer", [
        "--exp", ctx.exp / "tts", "--text-file", texts, "--out", ctx.exp / "tts" / "synth"])


def stage_report(ctx: DemoContext) -> None:
    from speechattn.demo.report import build_report
    from speechattn.demo.results import write_results

    write_results(ctx.exp, ctx.settings.note)
    build_report(ctx.exp)


STAGES: dict[str, Callable[[DemoContext], None]] = {
    "corpus": stage_corpus,
    "asr-prepare": stage_asr_prepare,
    "asr-train": stage_asr_train,
    "asr-decode": stage_asr_decode,
    "tts-prepare": stage_tts_prepare,
    "tts-train": stage_tts_train,
    "tts-synthesize": stage_tts_synthesize,
    "report": stage_report,
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
        ensure_folder(stamp.parent)
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
    results, report = ctx.exp / "results.md", ctx.exp / "report.html"
    if results.is_file() and report.is_file():
        print(results.read_text(encoding="utf-8"))
        print(f"report: {report.resolve()}")
    return 0
