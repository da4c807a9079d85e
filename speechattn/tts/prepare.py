"""TTS data preparation: an LJSpeech-layout corpus -> cached log-mels, statistics, manifests.

Input (LJSpeech 1.1, or the offline corpus's ``tts/`` folder, see :mod:`speechattn.data.ljspeech`)::

    metadata.csv          "<id>|<raw text>|<normalized text>"
    wavs/<id>.wav         22.05 kHz mono
    test_sentences.txt    optional: "<id>|<raw text>" rows held out as the test split

Output folder::

    mels/<id>.npy         float32 (F, M) natural-log mel of the trimmed audio (not normalized)
    features.json         the FeatureConfig the mels were made with (a re-run must match it)
    mel_stats.json        per-bin mean/std over the train split (speechattn.audio.GlobalCMVN)
    vocab.json            characters of the normalized train texts (speechattn.text.Vocab)
    train.jsonl dev.jsonl test.jsonl   rows {"id", "audio", "mel", "frames", "duration", "text"}
    skipped.tsv           "<id>\\t<reason>" for every metadata line and every wav left out
    prepare.json          utterances found, counts per split, skipped, and the settings used

Every non-blank line of ``metadata.csv`` and every ``wavs/*.wav`` that no line names is found once
and ends in one manifest or in ``skipped.tsv`` (found = train + dev + test + skipped). A reason
found while reading ``metadata.csv`` starts with ``metadata.csv:<line>:`` (a line that is not UTF-8
is one of them: skipped, not fatal), one for a wav that no line names with ``wavs/<id>.wav:``.

``mel`` paths in the manifests are relative to the output folder; ``duration`` is the trimmed
audio's length (frames * hop / sample rate). Text is normalized with
:func:`speechattn.text.normalize_tts` from the metadata's normalized column. Leading and trailing
silence quieter than ``trim_top_db`` below the peak is cut (keeping ``trim_margin`` seconds).

Each mel is written under a temporary name and renamed, so a killed run leaves no half-written
file; a re-run reuses every cached mel (idempotent) and only redoes the manifests and statistics.
Test = the held-out list when the corpus has one, else ``num_test`` rows; dev = ``num_dev`` rows
chosen with ``seed`` among the rest. ``split_file=FILE`` fixes the split by id instead (ids it
does not list train), e.g. ``recipes/ljspeech_real_split.tsv`` for the real LJ Speech clips. Neither takes more than a tenth of the rows (at least one), so
a small corpus keeps most of its sentences for training.

Usage (what ``recipes/tts/prepare.py`` runs):
    python recipes/tts/prepare.py --ljspeech-dir data/corpus_small --out data/tts_small
    python recipes/tts/prepare.py --download --download-dir data/downloads --out data/tts_lj workers=8
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from speechattn.audio import (
    AudioError,
    FeatureConfig,
    GlobalCMVN,
    LogMel,
    compute_cmvn,
    load_audio,
    record_features,
)
from speechattn.config import resolve_config
from speechattn.data.download import DownloadError
from speechattn.data.ljspeech import download_ljspeech, find_ljspeech_dir, scan_metadata
from speechattn.data.manifest import (
    SPLITS,
    read_split_file,
    read_text_lines,
    write_manifest,
)
from speechattn.errors import run_command
from speechattn.fileio import atomic_write, ensure_folder, write_text_atomic
from speechattn.text import Vocab, normalize_tts

__all__ = [
    "PrepareConfig",
    "PrepareSummary",
    "prepare_tts",
    "read_held_out",
    "voiced_bounds",
    "build_parser",
    "main",
]

log = logging.getLogger(__name__)

HELD_OUT_FILE = "test_sentences.txt"
_SILENT_PEAK = 1e-4  # a recording whose loudest sample is below this holds no speech


@dataclass
class PrepareConfig:
    """How the corpus becomes training data."""

    features: FeatureConfig = field(default_factory=FeatureConfig.tts)
    trim_top_db: float | None = 40.0  # None: no silence trimming
    trim_margin: float = 0.05  # seconds of the trimmed-off silence kept on each side
    min_frames: int = 8  # shorter (after trimming) -> skipped
    max_seconds: float | None = None  # longer (after trimming) -> skipped
    num_dev: int = 50
    num_test: int = 50  # only when the corpus has no test_sentences.txt
    # A fixed split ("<id> <train|dev|test>" lines, e.g. recipes/ljspeech_real_split.tsv): it
    # decides the split of every id it lists, unlisted ids train; num_dev / num_test are unused.
    split_file: str | None = None
    seed: int = 0
    workers: int = 1


class _Job(NamedTuple):
    id: str
    wav: str
    mel: str


class _Outcome(NamedTuple):
    id: str
    frames: int  # 0 when skipped
    reason: str


class PrepareSummary(NamedTuple):
    """Counts per split, the skipped rows (id, reason) and the output folder."""

    out_dir: Path
    counts: dict[str, int]
    skipped: list[tuple[str, str]]
    computed: int  # mels computed in this run (the rest came from the cache)
    found: int  # metadata lines and unnamed wavs, each kept or skipped once


def read_held_out(corpus: Path) -> set[str] | None:
    """Ids listed in ``corpus/test_sentences.txt`` ("<id>|<raw text>" lines), or None.

    A file that is not UTF-8 is a ``ValueError`` naming it: skipping a line would move that
    sentence into training.
    """
    path = corpus / HELD_OUT_FILE
    if not path.is_file():
        return None
    ids = {line.split("|", 1)[0].strip() for line in read_text_lines(path)}
    return {i for i in ids if i}


def voiced_bounds(wave: np.ndarray, top_db: float, frame_length: int, hop_length: int) -> tuple[int, int]:
    """Sample range ``[start, end)`` of the frames louder than ``top_db`` below the loudest one.

    Frames are centred on multiples of ``hop_length`` (zero padding at the edges); loudness is the
    mean power of a frame. All-silent audio gives ``(0, 0)``.
    """
    padded = np.pad(wave, frame_length // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop_length]  # (N, W)
    power = np.square(frames, dtype=np.float64).mean(axis=1)  # (N,)
    loudest = power.max()
    if loudest <= 0:
        return 0, 0
    loud = np.flatnonzero(10 * np.log10(np.maximum(power, 1e-20) / loudest) > -top_db)
    return int(loud[0]) * hop_length, min(len(wave), (int(loud[-1]) + 1) * hop_length)


def _trim(wave: np.ndarray, config: PrepareConfig) -> np.ndarray:
    if config.trim_top_db is None:
        return wave
    start, end = voiced_bounds(
        wave, config.trim_top_db, config.features.win_length, config.features.hop_length
    )
    margin = int(config.trim_margin * config.features.sample_rate)
    return wave[max(0, start - margin) : min(len(wave), end + margin)]


def _save_npy(path: Path, array: np.ndarray) -> None:
    """Atomic (:func:`speechattn.fileio.atomic_write`)."""
    with atomic_write(path) as handle:
        np.save(handle, array)


def _process(jobs: list[_Job], config: PrepareConfig) -> list[_Outcome]:
    """Compute (or reuse) the mel of each job; problems become skip reasons, never exceptions."""
    torch.set_num_threads(1)
    log_mel = LogMel(config.features)
    outcomes = []
    for job in jobs:
        try:
            wave, _ = load_audio(job.wav, config.features.sample_rate)
        except AudioError as err:
            outcomes.append(_Outcome(job.id, 0, f"unreadable audio: {err}"))
            continue
        peak = float(wave.abs().max())
        if peak < _SILENT_PEAK:
            outcomes.append(_Outcome(job.id, 0, f"silent audio (peak {peak:.1e})"))
            continue
        trimmed = _trim(wave.numpy(), config)
        if len(trimmed) <= config.features.n_fft // 2:
            outcomes.append(_Outcome(job.id, 0, "no audio left after trimming silence"))
            continue
        mel = log_mel(torch.from_numpy(np.ascontiguousarray(trimmed))).numpy()  # (F, M)
        _save_npy(Path(job.mel), mel.astype(np.float32))
        outcomes.append(_Outcome(job.id, mel.shape[0], ""))
    return outcomes


def _cached_frames(path: Path, n_mels: int) -> int:
    """Frames of a cached mel, or 0 when it is absent or unreadable (then it is recomputed)."""
    try:
        mel = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return 0
    return mel.shape[0] if mel.ndim == 2 and mel.shape[1] == n_mels else 0


def _chunks(jobs: list[_Job], size: int) -> Iterator[list[_Job]]:
    for start in range(0, len(jobs), size):
        yield jobs[start : start + size]


def _compute(jobs: list[_Job], config: PrepareConfig, progress: bool) -> list[_Outcome]:
    groups = list(_chunks(jobs, 32))
    bar = tqdm(total=len(jobs), desc="mels", unit="utt", disable=not progress)
    outcomes: list[_Outcome] = []
    if config.workers <= 1:
        for group in groups:
            outcomes += _process(group, config)
            bar.update(len(group))
    else:
        with ProcessPoolExecutor(config.workers) as pool:
            for group_outcomes in pool.map(_process, groups, [config] * len(groups)):
                outcomes += group_outcomes
                bar.update(len(group_outcomes))
    bar.close()
    return outcomes


def _held_out_size(wanted: int, available: int) -> int:
    """At most ``wanted`` rows and a tenth of ``available`` (at least 1), leaving one for training."""
    if available < 2:
        return 0
    return min(wanted, max(1, available // 10), available - 1)


def _split(ids: list[str], held_out: set[str] | None, config: PrepareConfig) -> dict[str, list[str]]:
    if config.split_file is not None:
        fixed = read_split_file(config.split_file)
        return {split: [i for i in ids if fixed.get(i, "train") == split] for split in SPLITS}
    rest = [i for i in ids if held_out is None or i not in held_out]
    rng = random.Random(config.seed)
    if held_out is None:
        shuffled = rng.sample(rest, len(rest))
        test = set(shuffled[: _held_out_size(config.num_test, len(rest) - 1)])
        rest = [i for i in rest if i not in test]
    else:
        test = {i for i in ids if i in held_out}
    dev = set(rng.sample(rest, _held_out_size(config.num_dev, len(rest))))
    return {
        "train": [i for i in rest if i not in dev],
        "dev": [i for i in rest if i in dev],
        "test": [i for i in ids if i in test],
    }


def _length_problem(frames: int, config: PrepareConfig) -> str:
    if frames < config.min_frames:
        return f"too short: {frames} frames after trimming (min_frames={config.min_frames})"
    seconds = frames * config.features.hop_length / config.features.sample_rate
    if config.max_seconds is not None and seconds > config.max_seconds:
        return f"too long: {seconds:.1f} s (max_seconds={config.max_seconds})"
    return ""


def prepare_tts(
    corpus_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: PrepareConfig | None = None,
    progress: bool = True,
) -> PrepareSummary:
    """Prepare ``corpus_dir`` (see :func:`find_ljspeech_dir`) into ``out_dir``; see the module doc."""
    config = config or PrepareConfig()
    corpus, out_dir = find_ljspeech_dir(corpus_dir), Path(out_dir)
    ensure_folder(out_dir / "mels")
    record_features(out_dir, config.features)
    rows, skipped_rows = scan_metadata(corpus)
    skipped = [(s.id, s.describe()) for s in skipped_rows]
    texts = {row.id: normalize_tts(row.text) for row in rows}
    speakable = [row for row in rows if any(c.isalpha() for c in texts[row.id])]
    skipped += [
        (row.id, "no letters in the text after normalization")
        for row in rows
        if row not in speakable
    ]
    mel_path = {row.id: out_dir / "mels" / f"{row.id}.npy" for row in speakable}
    frames = {row.id: _cached_frames(mel_path[row.id], config.features.n_mels) for row in speakable}
    jobs = [_Job(r.id, str(r.wav_path), str(mel_path[r.id])) for r in speakable if not frames[r.id]]
    failed = set()
    for outcome in _compute(jobs, config, progress):
        frames[outcome.id] = outcome.frames
        if outcome.reason:
            skipped.append((outcome.id, outcome.reason))
            failed.add(outcome.id)
    kept = []
    for row in (r for r in speakable if r.id not in failed):
        problem = _length_problem(frames[row.id], config)
        if problem:
            skipped.append((row.id, problem))
        else:
            kept.append(row)
    splits = _split([r.id for r in kept], read_held_out(corpus), config)
    return _write_outputs(out_dir, kept, texts, frames, splits, skipped, config, len(jobs))


def _write_outputs(
    out_dir: Path,
    kept: list,
    texts: dict[str, str],
    frames: dict[str, int],
    splits: dict[str, list[str]],
    skipped: list[tuple[str, str]],
    config: PrepareConfig,
    computed: int,
) -> PrepareSummary:
    # Written first, so that the error below can point at it.
    write_text_atomic(
        out_dir / "skipped.tsv", "".join(f"{i}\t{reason}\n" for i, reason in sorted(skipped))
    )
    if not splits["train"]:
        raise ValueError(
            f"{out_dir}: no usable training utterances ({len(skipped)} skipped, see skipped.tsv)"
        )
    seconds_per_frame = config.features.hop_length / config.features.sample_rate
    by_id = {row.id: row for row in kept}
    for split, ids in splits.items():
        write_manifest(
            out_dir / f"{split}.jsonl",
            [
                {
                    "id": i,
                    "audio": str(by_id[i].wav_path),
                    "mel": f"mels/{i}.npy",
                    "frames": frames[i],
                    "duration": round(frames[i] * seconds_per_frame, 3),
                    "text": texts[i],
                }
                for i in ids
            ],
        )
    Vocab.build(texts[i] for i in splits["train"]).save(out_dir / "vocab.json")
    mean, std = compute_cmvn(
        torch.from_numpy(np.load(out_dir / "mels" / f"{i}.npy")) for i in splits["train"]
    )
    GlobalCMVN(mean, std).save(out_dir / "mel_stats.json")
    counts = {split: len(ids) for split, ids in splits.items()}
    found = sum(counts.values()) + len(skipped)
    report = {"found": found, "counts": counts, "skipped": len(skipped), "config": asdict(config)}
    write_text_atomic(out_dir / "prepare.json", json.dumps(report, indent=1) + "\n")
    if skipped:
        log.warning("%d row(s) skipped, reasons in %s", len(skipped), out_dir / "skipped.tsv")
    return PrepareSummary(out_dir, counts, sorted(skipped), computed, found)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Prepare LJSpeech (or a corpus in its layout) for TTS training.",
        epilog="Overrides: PrepareConfig keys, e.g. workers=4 num_dev=100 trim_top_db=30",
    )  # fmt: skip
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--download", action="store_true", help="download LJSpeech 1.1 first")
    source.add_argument("--ljspeech-dir", type=Path, help="corpus folder (LJSpeech-1.1/, or the offline corpus)")
    parser.add_argument("--download-dir", type=Path, default=Path("data/downloads"), help="where --download puts LJSpeech")
    parser.add_argument("--out", type=Path, required=True, help="output folder (mels, manifests, stats, vocab)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="PrepareConfig overrides")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("prepare", lambda: _prepare(args), (DownloadError,))


def _prepare(args: argparse.Namespace) -> int:
    config = resolve_config(PrepareConfig, None, args.overrides)
    corpus = download_ljspeech(args.download_dir) if args.download else args.ljspeech_dir
    summary = prepare_tts(corpus, args.out, config, progress=not args.no_progress)
    counts = ", ".join(f"{split} {count}" for split, count in summary.counts.items())
    print(
        f"{summary.out_dir}: {summary.found} utterances found: {counts} kept, "
        f"{len(summary.skipped)} skipped (see skipped.tsv); {summary.computed} mels computed"
    )
    return 0
