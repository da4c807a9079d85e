"""LibriSpeech (and the offline corpus, which shares its layout): download, read, prepare.

Layout of a split folder (``dev-clean``, or the offline corpus's ``train``/``dev``/``test``/
``test-unseen-voice``)::

    <split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac
    <split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt   # "<id> <TRANSCRIPT>" per line

Usage (``recipes/asr/prepare.py`` and ``speechattn prepare`` call :func:`main`)::

    python recipes/asr/prepare.py --subsets train-clean-100 dev-clean test-clean \
        --out data/librispeech --download [--download-dir downloads]
    python recipes/asr/prepare.py --subsets train dev test test-unseen-voice \
        --out data/offline --librispeech-dir corpus/asr

:func:`prepare_librispeech` writes, into ``--out``: ``<split>.jsonl`` manifests (rows
``{"id", "audio", "duration", "text", "speaker"}``), ``skipped.tsv`` (every transcript line and
every ``.flac`` of a split that no manifest has, and why), ``vocab.json`` (characters of the
training transcripts) and ``cmvn.json`` (global log-mel mean/std over at most
``cmvn_utterances`` random training utterances). Text for language models
goes to ``lm_text.txt`` (uppercase, one sentence a line): from ``--lm-text FILE`` (LibriSpeech's
``librispeech-lm-norm.txt``, say), or else from an ``lm-text.txt`` beside the split folders (the
offline corpus has one).

Audio whose sample rate is not 16 kHz, or that has more than one channel, is *kept*: its row
carries ``"sample_rate"`` and/or ``"channels"``, and ``speechattn.audio.load_audio(path,
sample_rate=16000)`` resamples and downmixes it when features are made. Rows without those
fields are 16 kHz mono.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import torch
from tqdm import tqdm

from speechattn.audio import FeatureConfig, GlobalCMVN, LogMel, compute_cmvn, load_audio
from speechattn.data.audio_check import AudioInfo, UnusableAudio, probe_audio
from speechattn.data.download import DownloadError, download, extraction_stamp, safe_extract
from speechattn.data.manifest import atomic_write_text, utf8_lines, write_manifest
from speechattn.errors import run_command
from speechattn.fileio import atomic_write, ensure_folder
from speechattn.text import Vocab, normalize_asr, normalize_tts

__all__ = [
    "LIBRISPEECH_MIRROR",
    "LIBRISPEECH_SAMPLE_RATE",
    "LIBRISPEECH_SUBSETS",
    "LM_TEXT_NAME",
    "PREPARED_LM_TEXT",
    "LibriSubset",
    "LibriUtterance",
    "Skipped",
    "build_parser",
    "download_librispeech",
    "find_lm_text",
    "find_split_dir",
    "iter_split",
    "main",
    "prepare_librispeech",
    "write_prepared",
    "scan_split",
    "utterance_rows",
    "write_lm_text",
]

logger = logging.getLogger(__name__)

LIBRISPEECH_MIRROR = "https://www.openslr.org/resources/12/"
LIBRISPEECH_SAMPLE_RATE = 16000
LM_TEXT_NAME = "lm-text.txt"  # a corpus's LM text, beside its split folders
PREPARED_LM_TEXT = "lm_text.txt"  # prepare's copy in the output folder


@dataclass(frozen=True)
class LibriSubset:
    """One downloadable LibriSpeech subset: ``<mirror>/<name>.tar.gz`` and its sha256."""

    name: str
    sha256: str

    @property
    def archive(self) -> str:
        return f"{self.name}.tar.gz"


# sha256 of each OpenSLR archive, as published in torchaudio's
# src/torchaudio/datasets/librispeech.py (_CHECKSUMS; identical in the installed torchaudio 2.11
# and the pytorch/audio repository). The files are the same on every OpenSLR mirror.
LIBRISPEECH_SUBSETS: Mapping[str, LibriSubset] = MappingProxyType({
    subset.name: subset
    for subset in (
        LibriSubset("dev-clean", "76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3"),
        LibriSubset("dev-other", "12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365"),
        LibriSubset("test-clean", "39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23"),
        LibriSubset("test-other", "d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29"),
        LibriSubset("train-clean-100",
                    "d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2"),
        LibriSubset("train-clean-360",
                    "146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf"),
        LibriSubset("train-other-500",
                    "ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2"),
    )
})

_CORPUS_FOLDER = "LibriSpeech"
_AUDIO_SUFFIX = ".flac"
_TRANSCRIPT_SUFFIX = ".trans.txt"


class LibriUtterance(NamedTuple):
    """One utterance of a LibriSpeech-layout split.

    ``id`` is ``<speaker>-<chapter>-<utt>`` (e.g. ``1089-134686-0000``); ``audio_path`` is the
    ``.flac`` file named by the transcript line (it is not checked to exist here); ``transcript``
    is the text after the id, stripped (may be empty: callers decide what to do with that).
    """

    id: str
    audio_path: Path
    transcript: str
    speaker: str
    chapter: str


class Skipped(NamedTuple):
    """An utterance left out of a manifest (one row of ``skipped.tsv``).

    ``id`` is empty for a transcript line whose id cannot be read; ``path`` is then the
    transcript file, otherwise the utterance's audio file.
    """

    split: str
    id: str
    path: Path
    reason: str


def iter_split(split_dir: str | Path) -> Iterator[LibriUtterance]:
    """Yield every utterance listed in the split's ``*.trans.txt`` files, sorted by id.

    Raises ``FileNotFoundError`` when ``split_dir`` is not a folder or holds no transcripts,
    and ``ValueError`` naming ``file:line`` when a transcript line's id does not belong to its
    ``<speaker>-<chapter>`` file or the line is not UTF-8 text (:func:`scan_split` skips such
    lines instead).
    """
    split_dir = Path(split_dir)
    utterances, unreadable = _read_transcripts(split_dir, split_dir.name)
    if unreadable:
        more = f" (and {len(unreadable) - 1} more such lines)" if len(unreadable) > 1 else ""
        raise ValueError(unreadable[0].reason + more)
    yield from utterances


def _read_transcripts(split_dir: Path, split: str) -> tuple[list[LibriUtterance], list[Skipped]]:
    """The utterances of the split's transcript lines sorted by id, and the lines not UTF-8."""
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{split_dir}: split folder not found")
    transcript_files = sorted(split_dir.glob(f"*/*/*{_TRANSCRIPT_SUFFIX}"))
    if not transcript_files:
        raise FileNotFoundError(
            f"{split_dir}: no <speaker>/<chapter>/*{_TRANSCRIPT_SUFFIX} files; "
            "is this a LibriSpeech-layout split folder?"
        )
    utterances: list[LibriUtterance] = []
    unreadable: list[Skipped] = []
    for transcript_file in transcript_files:
        file_utterances, file_unreadable = _read_transcript_file(transcript_file, split)
        utterances += file_utterances
        unreadable += file_unreadable
    utterances.sort(key=lambda utt: utt.id)
    return utterances, unreadable


def _read_transcript_file(path: Path, split: str) -> tuple[list[LibriUtterance], list[Skipped]]:
    speaker = path.parent.parent.name
    chapter = path.parent.name
    prefix = f"{speaker}-{chapter}-"
    utterances: list[LibriUtterance] = []
    unreadable: list[Skipped] = []
    for line in utf8_lines(path):
        fields = line.text.strip().split(maxsplit=1)
        if not fields:
            continue
        utt_id = fields[0]
        belongs = utt_id.startswith(prefix) and utt_id != prefix
        audio_path = path.parent / f"{utt_id}{_AUDIO_SUFFIX}"
        if line.problem:
            # The id is kept when it is readable, so that its flac is accounted for by this skip.
            readable = belongs and utt_id.isprintable() and "\\" not in utt_id
            unreadable.append(Skipped(split, utt_id if readable else "",
                                      audio_path if readable else path,
                                      f"{path}:{line.number}: {line.problem}"))
            continue
        if not belongs:
            raise ValueError(
                f"{path}:{line.number}: id {utt_id!r} does not start with {prefix!r} "
                "(the file must sit in <speaker>/<chapter>/ and list that chapter's ids)"
            )
        transcript = fields[1].strip() if len(fields) > 1 else ""
        utterances.append(LibriUtterance(utt_id, audio_path, transcript, speaker, chapter))
    return utterances, unreadable


def _unlisted_audio(split_dir: Path, split: str, listed: set[Path],
                    unreadable_folders: set[Path]) -> list[Skipped]:
    """Every ``.flac`` under ``split_dir`` that is not in ``listed``, with the reason."""
    # glob follows symlinked speaker/chapter folders, rglob finds flacs outside the layout.
    found = {*split_dir.glob(f"*/*/*{_AUDIO_SUFFIX}"), *split_dir.rglob(f"*{_AUDIO_SUFFIX}")}
    skipped = []
    for audio in sorted(path for path in found - listed if not path.is_dir()):
        folder = audio.parent
        transcripts = sorted(folder.glob(f"*{_TRANSCRIPT_SUFFIX}"))
        names = ", ".join(t.name for t in transcripts)
        if folder.parent.parent != split_dir:
            reason = f"not in a <speaker>/<chapter>/ folder of {split_dir.name}"
        elif not transcripts:
            reason = (f"no {folder.parent.name}-{folder.name}{_TRANSCRIPT_SUFFIX} in the chapter "
                      "folder")
        elif folder in unreadable_folders:
            reason = f"no readable transcript line in {names} (some lines are not UTF-8)"
        elif all(t.stat().st_size == 0 for t in transcripts):
            reason = f"no transcript line in {names} (the file is empty)"
        else:
            reason = f"no transcript line in {names}"
        skipped.append(Skipped(split, audio.stem, audio, reason))
    return skipped


def find_split_dir(root: str | Path, name: str) -> Path:
    """Locate the split folder ``name`` under ``root``.

    ``root`` may be the folder holding ``LibriSpeech/`` (what the tarballs extract to), or the
    folder holding the split folders directly (``LibriSpeech/`` itself, or the offline corpus
    folder with ``train``/``dev``/...). Any split name is accepted. When it is missing, the
    ``FileNotFoundError`` lists the split folders that do exist.
    """
    root = Path(root)
    candidates = [root / _CORPUS_FOLDER / name, root / name]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    found = sorted({p.name for base in (root / _CORPUS_FOLDER, root) for p in _subdirs(base)})
    found_text = ", ".join(found) if found else "nothing"
    raise FileNotFoundError(
        f"split {name!r} not found: looked for {candidates[0]} and {candidates[1]}; "
        f"found {found_text} (pass the folder holding {_CORPUS_FOLDER}/ or the split folders, "
        "or use --download)"
    )


def _subdirs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir()
            if p.is_dir() and p.name != _CORPUS_FOLDER and not p.name.startswith(".")]


# --------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------


def download_librispeech(
    subset: str, download_dir: str | Path, mirror: str = LIBRISPEECH_MIRROR, progress: bool = True
) -> Path:
    """Download (resumably, sha256-verified) and safely extract one subset; return its folder.

    The archive is extracted to ``download_dir/LibriSpeech/<subset>`` and kept in
    ``download_dir``. Once an extraction has completed (its stamp file exists) later calls do
    no network I/O and do not need the archive, so it may be deleted to reclaim space.
    """
    if subset not in LIBRISPEECH_SUBSETS:
        raise ValueError(
            f"no download for subset {subset!r}; downloadable: {', '.join(LIBRISPEECH_SUBSETS)} "
            "(for other corpora in this layout pass --librispeech-dir)"
        )
    info = LIBRISPEECH_SUBSETS[subset]
    download_dir = Path(download_dir)
    url = f"{mirror.rstrip('/')}/{info.archive}"
    archive = download_dir / info.archive
    if not extraction_stamp(archive, download_dir).exists():
        download(url, archive, info.sha256, "sha256", progress)
        safe_extract(archive, download_dir)
    return find_split_dir(download_dir, subset)


# --------------------------------------------------------------------------------------------
# Preparation
# --------------------------------------------------------------------------------------------


def _default_jobs() -> int:
    return min(8, os.cpu_count() or 1)


def _check_utterance(utt: LibriUtterance) -> AudioInfo | str:
    """Audio facts, or the reason(s) the utterance is skipped."""
    reasons = [] if utt.transcript else ["empty transcript"]
    try:
        info = probe_audio(utt.audio_path)
    except UnusableAudio as err:
        reasons.append(str(err))
    return "; ".join(reasons) if reasons else info


def _manifest_row(utt: LibriUtterance, info: AudioInfo, sample_rate: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": utt.id,
        "audio": str(utt.audio_path.resolve()),
        "duration": round(info.frames / info.sample_rate, 4),
        "text": utt.transcript,
        "speaker": utt.speaker,
    }
    if info.sample_rate != sample_rate:
        row["sample_rate"] = info.sample_rate
    if info.channels != 1:
        row["channels"] = info.channels
    return row


def scan_split(
    name: str, split_dir: Path, jobs: int, progress: bool = True,
    sample_rate: int = LIBRISPEECH_SAMPLE_RATE,
) -> tuple[list[dict[str, Any]], list[Skipped]]:
    """Manifest rows for the usable utterances of one split, and the skipped ones (by id).

    Each transcript line, and each ``.flac`` that no line names, is one row or one skip: so
    ``len(rows) + len(skipped)`` is the number of utterances found. A line that is not UTF-8 is
    skipped naming ``file:line``; a line whose id belongs to another chapter is a ``ValueError``.
    """
    utterances, skipped = _read_transcripts(split_dir, name)
    listed = {utt.audio_path for utt in utterances} | {s.path for s in skipped}
    unreadable_folders = {s.path.parent for s in skipped if not s.id}
    skipped += _unlisted_audio(split_dir, name, listed, unreadable_folders)
    rows, unusable = utterance_rows(name, utterances, jobs, progress, sample_rate)
    skipped += unusable
    skipped.sort(key=lambda s: (s.id, str(s.path)))
    return rows, skipped


def utterance_rows(
    name: str, utterances: Sequence[LibriUtterance], jobs: int, progress: bool = True,
    sample_rate: int = LIBRISPEECH_SAMPLE_RATE,
) -> tuple[list[dict[str, Any]], list[Skipped]]:
    """Manifest rows of the ``utterances`` whose audio is usable and whose transcript is not
    empty; the others as skips with the reason (audio probed in ``jobs`` threads). Any corpus
    reader that yields :class:`LibriUtterance` s can use it."""
    rows: list[dict[str, Any]] = []
    skipped: list[Skipped] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = pool.map(_check_utterance, utterances)
        for utt, result in tqdm(zip(utterances, results), total=len(utterances), desc=name,
                                unit="utt", disable=not progress):
            if isinstance(result, str):
                skipped.append(Skipped(name, utt.id, utt.audio_path, result))
            else:
                rows.append(_manifest_row(utt, result, sample_rate))
    return rows, skipped


def _write_skipped(path: Path, skipped: Sequence[Skipped]) -> None:
    def clean(value: object) -> str:
        return " ".join(str(value).split())  # no tabs or newlines inside a field

    lines = ["split\tid\tpath\treason"]
    lines += ["\t".join(clean(v) for v in (s.split, s.id, s.path, s.reason)) for s in skipped]
    atomic_write_text(path, "\n".join(lines) + "\n")


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


def _locate_splits(
    subsets: Sequence[str], librispeech_dir: Path | None, download_dir: Path,
    mirror: str, progress: bool,
) -> dict[str, Path]:
    if librispeech_dir is not None:
        return {name: find_split_dir(librispeech_dir, name) for name in subsets}
    return {name: download_librispeech(name, download_dir, mirror, progress) for name in subsets}


def find_lm_text(split_dirs: Iterable[Path]) -> Path | None:
    """The corpus's LM text: an ``lm-text.txt`` in a folder holding one of ``split_dirs``."""
    for folder in dict.fromkeys(Path(d).parent for d in split_dirs):
        if (folder / LM_TEXT_NAME).is_file():
            return folder / LM_TEXT_NAME
    return None


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
) -> dict[str, Any]:
    """Write manifests, ``skipped.tsv``, ``vocab.json`` and ``cmvn.json`` into ``out_dir``.

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
    split_dirs = _locate_splits(subsets, corpus, Path(download_dir or out_dir / "download"),
                                mirror, progress)
    lm_source = Path(lm_text) if lm_text is not None else find_lm_text(split_dirs.values())
    require_lm_text(lm_source)
    jobs = jobs or _default_jobs()
    scans = {name: scan_split(name, split_dir, jobs, progress) for name, split_dir in split_dirs.items()}
    return write_prepared(out_dir, scans, train, lm_source, jobs, progress, cmvn_utterances, seed)


def write_prepared(
    out_dir: Path,
    scans: Mapping[str, tuple[list[dict[str, Any]], list[Skipped]]],
    train: Sequence[str],
    lm_source: Path | None,
    jobs: int,
    progress: bool = True,
    cmvn_utterances: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """The outputs of :func:`prepare_librispeech` from any corpus reader's ``scans``
    (``{split: (manifest rows, skipped)}``): manifests, ``skipped.tsv``, the vocabulary and CMVN
    of the ``train`` splits, and the LM text copied from ``lm_source``. Returns the summary."""
    ensure_folder(out_dir)
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
    summary["cmvn"] = _save_cmvn(sample, out_dir / "cmvn.json", jobs, progress)
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


def _save_cmvn(rows: Sequence[Mapping[str, Any]], path: Path, jobs: int, progress: bool) -> Path:
    config = FeatureConfig()
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
    parser.add_argument("--jobs", type=int, default=_default_jobs(),
                        help="threads checking audio files (default %(default)s)")
    parser.add_argument("--lm-text", type=Path, metavar="FILE",
                        help=f"text for language models, one sentence a line, copied to "
                        f"OUT/{PREPARED_LM_TEXT} (default: {LM_TEXT_NAME} beside the splits)")
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
    if args.ljspeech_dir is not None:
        from speechattn.data.ljspeech import asr_scans

        require_lm_text(args.lm_text)  # before the scan, which takes a while
        scans = asr_scans(args.ljspeech_dir, args.split_file, args.jobs, not args.no_progress)
        summary = write_prepared(args.out, scans, ["train"], args.lm_text, args.jobs,
                                 not args.no_progress, args.cmvn_utterances)
    else:
        summary = prepare_librispeech(
            args.subsets, args.out, librispeech_dir=args.librispeech_dir,
            download_dir=args.download_dir, jobs=args.jobs, lm_text=args.lm_text,
            train_subsets=args.train_subsets,
            mirror=args.mirror, cmvn_utterances=args.cmvn_utterances,
            progress=not args.no_progress,
        )
    for name, count in summary["utterances"].items():
        print(f"{name}: {summary['found'][name]} utterances found, {count} kept, "
              f"{summary['skipped'][name]} skipped")
    print(f"wrote {summary['vocab']}, {summary['cmvn']} and {summary['skipped_tsv']}")
    if summary["lm_text"] is not None:
        print(f"wrote {summary['lm_sentences']} sentences of LM text to {summary['lm_text']}")
    return 0
