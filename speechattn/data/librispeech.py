"""LibriSpeech (and the offline corpus, which shares its layout): download, locate and read.

Layout of a split folder (``dev-clean``, or the offline corpus's ``train``/``dev``/``test``/
``test-unseen-voice``)::

    <split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac
    <split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt   # "<id> <TRANSCRIPT>" per line

:func:`scan_split` turns a split folder into manifest rows (``{"id", "audio", "duration", "text",
"speaker"}``) and the list of what it skipped and why: every transcript line and every ``.flac``
of a split is in one or the other. Writing the prepared folder (manifests, ``vocab.json``,
``cmvn.json``, ...) is :mod:`speechattn.asr.prepare`'s job, for any corpus reader.

Audio whose sample rate is not 16 kHz, or that has more than one channel, is *kept*: its row
carries ``"sample_rate"`` and/or ``"channels"``, and ``speechattn.audio.load_audio(path,
sample_rate=16000)`` resamples and downmixes it when features are made. Rows without those
fields are 16 kHz mono.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from tqdm import tqdm

from speechattn.data.audio_check import AudioInfo, UnusableAudio, probe_audio
from speechattn.data.download import download, extraction_stamp, safe_extract
from speechattn.data.manifest import utf8_lines

__all__ = [
    "LIBRISPEECH_MIRROR",
    "LIBRISPEECH_SAMPLE_RATE",
    "LIBRISPEECH_SUBSETS",
    "LM_TEXT_NAME",
    "LibriSubset",
    "LibriUtterance",
    "Skipped",
    "default_jobs",
    "download_librispeech",
    "find_lm_text",
    "find_split_dir",
    "iter_split",
    "locate_splits",
    "scan_split",
    "utterance_rows",
]

logger = logging.getLogger(__name__)

LIBRISPEECH_MIRROR = "https://www.openslr.org/resources/12/"
LIBRISPEECH_SAMPLE_RATE = 16000
LM_TEXT_NAME = "lm-text.txt"  # a corpus's LM text, beside its split folders


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


def default_jobs() -> int:
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


def locate_splits(
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
