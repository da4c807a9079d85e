"""ASR data preparation, for any corpus reader: manifests, vocabulary, CMVN, feature settings.

Usage (``recipes/asr/prepare.py`` and ``speechattn prepare asr`` call :func:`main`)::

    python recipes/asr/prepare.py --subsets train-clean-100 dev-clean test-clean \
        --out data/librispeech --download [--download-dir downloads]
    python recipes/asr/prepare.py --subsets train dev test test-unseen-voice \
        --out data/offline --librispeech-dir corpus/asr
    python recipes/asr/prepare.py --ljspeech-dir DIR --split-file FILE --out data/lj

A reader (:mod:`speechattn.data.librispeech`, :mod:`speechattn.data.ljspeech`) turns a corpus
into ``{split: (manifest rows, skipped)}``; :func:`write_prepared` writes, into ``--out``:
``<split>.jsonl`` manifests (rows ``{"id", "audio", "duration", "text", "speaker"}``),
``skipped.tsv`` (everything a reader left out, and why), ``vocab.json`` (characters of the
training transcripts), ``cmvn.json`` (global log-mel mean/std over at most ``cmvn_utterances``
random training utterances), ``features.json`` (the feature settings CMVN was made with; training
refuses a config whose ``data.features`` differ) and ``lm_text.txt`` (text for language models,
uppercase, one sentence a line: from ``--lm-text FILE``, or else from an ``lm-text.txt`` beside
the split folders, which the offline corpus has).
"""

from __future__ import annotations

import argparse
import logging
import random
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from speechattn.asr.recipe import PREPARED_LM_TEXT
from speechattn.audio import (
    FEATURES_FILE,
    FeatureConfig,
    GlobalCMVN,
    LogMel,
    compute_cmvn,
    load_audio,
    record_features,
)
from speechattn.config import resolve_config
from speechattn.data.download import DownloadError
from speechattn.data.librispeech import (
    LIBRISPEECH_MIRROR,
    LM_TEXT_NAME,
    Skipped,
    default_jobs,
    find_lm_text,
    locate_splits,
    scan_split,
)
from speechattn.data.manifest import write_manifest
from speechattn.errors import run_command
from speechattn.fileio import atomic_write, ensure_folder, write_text_atomic
from speechattn.text import Vocab, normalize_asr, normalize_tts

__all__ = [
    "build_parser",
    "main",
    "prepare_librispeech",
    "require_lm_text",
    "write_lm_text",
    "write_prepared",
]

logger = logging.getLogger(__name__)


def _write_skipped(path: Path, skipped: Sequence[Skipped]) -> None:
    def clean(value: object) -> str:
        return " ".join(str(value).split())  # no tabs or newlines inside a field

    lines = ["split\tid\tpath\treason"]
    lines += ["\t".join(clean(v) for v in (s.split, s.id, s.path, s.reason)) for s in skipped]
    write_text_atomic(path, "\n".join(lines) + "\n")


def _resolve_train_subsets(subsets: Sequence[str], train_subsets: Sequence[str] | None) -> list[str]:
    if train_subsets is None:
        return [name for name in subsets if name.startswith("train")] or list(subsets)
    unknown = [name for name in train_subsets if name not in subsets]
    if unknown or not train_subsets:
        raise ValueError(
            f"train_subsets={list(train_subsets)} must be a non-empty selection of the prepared "
            f"subsets {list(subsets)}"
        )
    return list(train_subsets)


def require_lm_text(path: Path | None) -> None:
    """Stop before the corpus is scanned when a given LM text file is missing."""
    if path is not None and not path.is_file():
        raise FileNotFoundError(f"LM text {path} does not exist")


def write_lm_text(source: str | Path, path: str | Path) -> int:
    """Copy ``source`` to ``path`` a line at a time in the transcripts' alphabet (``A-Z``, ``'``,
    spaces: :func:`~speechattn.text.normalize_tts` then :func:`~speechattn.text.normalize_asr`, so
    that "Mr. Smith, 1984" becomes "MISTER SMITH NINETEEN EIGHTY FOUR"), empty lines left out,
    atomically; returns the number of sentences. Text already in that form is unchanged."""
    source, path = Path(source), Path(path)
    count = 0
    try:
        with open(source, encoding="utf-8") as lines, atomic_write(path, text=True) as out:
            for line in lines:
                sentence = normalize_asr(normalize_tts(line))
                if sentence:
                    out.write(sentence + "\n")
                    count += 1
            if count == 0:
                raise ValueError(f"{source}: no sentences in the LM text")
    except UnicodeDecodeError as err:
        raise ValueError(f"{source}: not UTF-8 text ({err})") from None
    return count


def prepare_librispeech(
    subsets: Sequence[str],
    out_dir: str | Path,
    librispeech_dir: str | Path | None = None,
    download_dir: str | Path | None = None,
    jobs: int | None = None,
    *,
    lm_text: str | Path | None = None,
    train_subsets: Sequence[str] | None = None,
    mirror: str = LIBRISPEECH_MIRROR,
    cmvn_utterances: int = 2000,
    seed: int = 0,
    progress: bool = True,
    features: FeatureConfig | None = None,
) -> dict[str, Any]:
    """Read LibriSpeech splits (downloading them when asked) and :func:`write_prepared` them.

    Args:
        subsets: split folder names (``dev-clean``..., or the offline corpus's ``train``...).
        out_dir: where the outputs go.
        librispeech_dir: existing corpus (the folder holding ``LibriSpeech/`` or the split
            folders); when None the subsets are downloaded from ``mirror``.
        download_dir: where archives go and are extracted (default ``out_dir/download``).
        jobs: threads probing audio (default ``min(8, cpu_count)``).
        lm_text: text for language models, one sentence a line, copied to ``lm_text.txt``
            (default: the ``lm-text.txt`` beside the split folders, if there is one).
        train_subsets: splits whose transcripts make the vocabulary and whose audio makes the
            CMVN statistics (default: the subsets starting with ``train``, else all).
        cmvn_utterances: CMVN uses a seeded random sample of at most this many training
            utterances (2000 utterances, about 7 hours of LibriSpeech, pin the statistics well).
        seed: seed of that sample.
        features: the front-end CMVN is computed with (default ``FeatureConfig()``, the
            recipes'); recorded in ``features.json``, which training checks.

    Every transcript line and every ``.flac`` of a split is either in its manifest or listed in
    ``skipped.tsv`` with the reason: unusable audio (missing, empty, unreadable, truncated,
    zero-length), an empty transcript, a transcript line that is not UTF-8 (``file:line``), or
    an audio file that no transcript line names. ``found = utterances + skipped`` per split.

    Returns ``{"manifests": {split: Path}, "found": {split: int}, "utterances": {split: int},
    "skipped": {split: int}, "skipped_tsv": Path, "vocab": Path, "cmvn": Path, "lm_text": Path | None, "lm_sentences":
    int}``.
    """
    if not subsets:
        raise ValueError("no subsets given (e.g. --subsets dev-clean)")
    subsets = list(dict.fromkeys(subsets))
    train = _resolve_train_subsets(subsets, train_subsets)
    out_dir = Path(out_dir)
    ensure_folder(out_dir)
    corpus = Path(librispeech_dir) if librispeech_dir is not None else None
    split_dirs = locate_splits(subsets, corpus, Path(download_dir or out_dir / "download"),
                               mirror, progress)
    lm_source = Path(lm_text) if lm_text is not None else find_lm_text(split_dirs.values())
    require_lm_text(lm_source)
    jobs = jobs or default_jobs()
    scans = {name: scan_split(name, split_dir, jobs, progress) for name, split_dir in split_dirs.items()}
    return write_prepared(out_dir, scans, train, lm_source, jobs, progress, cmvn_utterances, seed,
                          features)


def write_prepared(
    out_dir: Path,
    scans: Mapping[str, tuple[list[dict[str, Any]], list[Skipped]]],
    train: Sequence[str],
    lm_source: Path | None,
    jobs: int,
    progress: bool = True,
    cmvn_utterances: int = 2000,
    seed: int = 0,
    features: FeatureConfig | None = None,
) -> dict[str, Any]:
    """The prepared folder from any corpus reader's ``scans`` (``{split: (manifest rows,
    skipped)}``): manifests, ``skipped.tsv``, the vocabulary and CMVN of the ``train`` splits
    (CMVN with ``features``, default ``FeatureConfig()``, recorded in ``features.json``), and the
    LM text copied from ``lm_source``. Returns the summary."""
    features = features or FeatureConfig()
    ensure_folder(out_dir)
    record_features(out_dir, features)  # before anything is written: a folder never mixes two
    summary: dict[str, Any] = {"manifests": {}, "found": {}, "utterances": {}, "skipped": {}}
    rows_by_split: dict[str, list[dict[str, Any]]] = {}
    all_skipped: list[Skipped] = []
    for name, (rows, skipped) in scans.items():
        summary["manifests"][name] = out_dir / f"{name}.jsonl"
        write_manifest(summary["manifests"][name], rows)
        summary["found"][name] = len(rows) + len(skipped)
        summary["utterances"][name], summary["skipped"][name] = len(rows), len(skipped)
        logger.info("%s: %d utterances found, %d written to %s, %d skipped", name,
                    summary["found"][name], len(rows), summary["manifests"][name], len(skipped))
        rows_by_split[name] = rows
        all_skipped += skipped
    summary["skipped_tsv"] = out_dir / "skipped.tsv"
    _write_skipped(summary["skipped_tsv"], all_skipped)
    if all_skipped:
        logger.warning("%d utterance(s) skipped; reasons in %s", len(all_skipped),
                       summary["skipped_tsv"])
    train_rows = [row for name in train for row in rows_by_split[name]]
    if not train_rows:
        raise ValueError(f"training subsets {train} have no usable utterances; see "
                         f"{summary['skipped_tsv']}")
    summary["vocab"] = _save_vocab(train_rows, out_dir / "vocab.json")
    sample = _cmvn_sample(train_rows, cmvn_utterances, seed)
    summary["cmvn"] = _save_cmvn(sample, out_dir / "cmvn.json", jobs, progress, features)
    summary["lm_text"], summary["lm_sentences"] = None, 0
    if lm_source is not None:
        summary["lm_text"] = out_dir / PREPARED_LM_TEXT
        summary["lm_sentences"] = write_lm_text(lm_source, summary["lm_text"])
        logger.info("%d sentences of LM text from %s written to %s", summary["lm_sentences"],
                    lm_source, summary["lm_text"])
    return summary


def _save_vocab(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    vocab = Vocab.build(row["text"] for row in rows)
    vocab.save(path)
    logger.info("vocabulary of %d symbols written to %s", len(vocab), path)
    return path


def _cmvn_sample(rows: Sequence[Mapping[str, Any]], limit: int, seed: int) -> list[Mapping]:
    if limit <= 0:
        raise ValueError(f"cmvn_utterances={limit}: must be positive")
    if len(rows) <= limit:
        return list(rows)
    return sorted(random.Random(seed).sample(list(rows), limit), key=lambda row: row["id"])


def _save_cmvn(
    rows: Sequence[Mapping[str, Any]], path: Path, jobs: int, progress: bool, config: FeatureConfig
) -> Path:
    log_mel = LogMel(config)

    def load(row: Mapping[str, Any]) -> torch.Tensor:
        return load_audio(row["audio"], sample_rate=config.sample_rate)[0]  # (S,)

    def features(pool: ThreadPoolExecutor) -> Iterator[torch.Tensor]:
        window = 4 * jobs  # waveforms decoded ahead: bounds memory, keeps the threads busy
        bar = tqdm(total=len(rows), desc="cmvn", unit="utt", disable=not progress)
        with bar, torch.no_grad():
            for start in range(0, len(rows), window):
                for wave in pool.map(load, rows[start : start + window]):
                    bar.update()
                    yield log_mel(wave)  # (T, M)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        mean, std = compute_cmvn(features(pool))
    GlobalCMVN(mean, std).save(path)
    logger.info("CMVN statistics over %d utterances written to %s", len(rows), path)
    return path


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """``prepare --subsets NAME... --out DIR (--download [--download-dir D] | --librispeech-dir DIR)``
    or ``prepare --ljspeech-dir DIR --split-file FILE --out DIR``."""
    parser = argparse.ArgumentParser(
        description="Write ASR manifests, skipped.tsv, vocab.json and cmvn.json from LibriSpeech "
        "(or the offline corpus, which shares its layout) or from an LJ Speech-layout corpus.",
    )
    parser.add_argument("--subsets", nargs="+", metavar="NAME",
                        help="split folders, e.g. train-clean-100 dev-clean test-clean")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output folder for manifests, vocab.json and cmvn.json")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--download", action="store_true",
                        help="download the subsets from OpenSLR (sha256-verified, resumable)")
    source.add_argument("--librispeech-dir", type=Path, metavar="DIR",
                        help="existing corpus: the folder holding LibriSpeech/ or the splits")
    source.add_argument("--ljspeech-dir", type=Path, metavar="DIR",
                        help="an LJ Speech-layout corpus (metadata.csv, wavs/); needs --split-file")
    parser.add_argument("--split-file", type=Path, metavar="FILE",
                        help="'<id> <train|dev|test>' lines fixing an LJ corpus's split (unlisted "
                        "ids train), e.g. recipes/ljspeech_real_split.tsv")
    parser.add_argument("--download-dir", type=Path, metavar="D",
                        help="where archives are stored and extracted (default OUT/download)")
    parser.add_argument("--mirror", default=LIBRISPEECH_MIRROR,
                        help=f"OpenSLR mirror base URL (default {LIBRISPEECH_MIRROR})")
    parser.add_argument("--train-subsets", nargs="+", metavar="NAME",
                        help="subsets for vocab and CMVN (default: those starting with 'train')")
    parser.add_argument("--jobs", type=int, default=default_jobs(),
                        help="threads checking audio files (default %(default)s)")
    parser.add_argument("--lm-text", type=Path, metavar="FILE",
                        help=f"text for language models, one sentence a line, copied to "
                        f"OUT/{PREPARED_LM_TEXT} (default: {LM_TEXT_NAME} beside the splits)")
    parser.add_argument("--config", type=Path, metavar="YAML",
                        help="recipe config whose data.features CMVN is made with (default: the "
                        "default features, those of every recipe config in recipes/asr/conf)")
    parser.add_argument("--cmvn-utterances", type=int, default=2000,
                        help="random training utterances for CMVN (default %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run :func:`prepare_librispeech` from the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.download_dir is not None and not args.download:
        parser.error("--download-dir only applies with --download")
    if (args.ljspeech_dir is None) == (args.subsets is None):
        parser.error("give --subsets with --download or --librispeech-dir, or --ljspeech-dir")
    if (args.ljspeech_dir is None) != (args.split_file is None):
        parser.error("--split-file goes with --ljspeech-dir (and --ljspeech-dir needs it)")
    return run_command("prepare", lambda: _prepare(args), (DownloadError,))


def _prepare(args: argparse.Namespace) -> int:
    features = None
    if args.config is not None:
        from speechattn.asr.recipe import ASRRecipeConfig

        features = resolve_config(ASRRecipeConfig, args.config, []).data.features
    if args.ljspeech_dir is not None:
        from speechattn.data.ljspeech import asr_scans

        require_lm_text(args.lm_text)  # before the scan, which takes a while
        scans = asr_scans(args.ljspeech_dir, args.split_file, args.jobs, not args.no_progress)
        summary = write_prepared(args.out, scans, ["train"], args.lm_text, args.jobs,
                                 not args.no_progress, args.cmvn_utterances, features=features)
    else:
        summary = prepare_librispeech(
            args.subsets, args.out, librispeech_dir=args.librispeech_dir,
            download_dir=args.download_dir, jobs=args.jobs, lm_text=args.lm_text,
            train_subsets=args.train_subsets,
            mirror=args.mirror, cmvn_utterances=args.cmvn_utterances,
            progress=not args.no_progress, features=features,
        )
    for name, count in summary["utterances"].items():
        print(f"{name}: {summary['found'][name]} utterances found, {count} kept, "
              f"{summary['skipped'][name]} skipped")
    print(f"wrote {summary['vocab']}, {summary['cmvn']}, {FEATURES_FILE} and {summary['skipped_tsv']}")
    if summary["lm_text"] is not None:
        print(f"wrote {summary['lm_sentences']} sentences of LM text to {summary['lm_text']}")
    return 0
