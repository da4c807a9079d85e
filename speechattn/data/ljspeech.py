"""LJSpeech 1.1 (and the offline corpus's ``tts/`` folder): download and metadata reading.

Layout::

    LJSpeech-1.1/metadata.csv     # "<id>|<raw text>|<normalized text>" per line, no quoting
    LJSpeech-1.1/wavs/<id>.wav    # 22050 Hz mono 16-bit

The TTS prepare step (mel caching) builds on :func:`scan_metadata`; this module only finds,
downloads and reads the corpus. Lines are read with :func:`speechattn.data.manifest.utf8_lines`,
as LibriSpeech's ``*.trans.txt`` are: a line that is not UTF-8 costs only itself, not the file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple

from speechattn.data.download import download, safe_extract
from speechattn.data.librispeech import (
    LIBRISPEECH_SAMPLE_RATE,
    LibriUtterance,
    Skipped,
    utterance_rows,
)
from speechattn.data.manifest import SPLITS, TextLine, read_split_file, utf8_lines
from speechattn.text import normalize_asr, normalize_tts

__all__ = [
    "LJSPEECH_FOLDER",
    "LJSPEECH_SAMPLE_RATE",
    "LJSPEECH_SHA256",
    "LJSPEECH_URL",
    "LJRow",
    "LJSkipped",
    "asr_scans",
    "download_ljspeech",
    "find_ljspeech_dir",
    "read_metadata",
    "scan_metadata",
]

logger = logging.getLogger(__name__)

LJSPEECH_URL = "https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2"
# sha256 of LJSpeech-1.1.tar.bz2 as published in torchaudio's src/torchaudio/datasets/ljspeech.py
# (_RELEASE_CONFIGS["release1"]["checksum"], read from the installed torchaudio 2.11).
LJSPEECH_SHA256 = "be1a30453f28eb8dd26af4101ae40cbf2c50413b1bb21936cbcdc6fae3de8aa5"
LJSPEECH_FOLDER = "LJSpeech-1.1"
LJSPEECH_SAMPLE_RATE = 22050

_METADATA = "metadata.csv"


class LJRow(NamedTuple):
    """One line of ``metadata.csv``: ``text`` is the normalized column (``raw_text`` when the
    line has only two columns)."""

    id: str
    wav_path: Path
    raw_text: str
    text: str


class LJSkipped(NamedTuple):
    """A metadata line, or a wav that no line names, left out, with the reason.

    ``id`` is empty when a line is not UTF-8 and its id cannot be read; ``path`` is then
    ``metadata.csv``, otherwise the wav. ``line`` is the 1-based line of ``metadata.csv``, 0 for a
    wav that no line names.
    """

    id: str
    path: Path
    reason: str
    line: int = 0

    def describe(self) -> str:
        """``metadata.csv:<line>: <reason>``, or ``wavs/<id>.wav: <reason>`` when no line names it."""
        where = f"{_METADATA}:{self.line}" if self.line else f"{self.path.parent.name}/{self.path.name}"
        return f"{where}: {self.reason}"


def find_ljspeech_dir(root: str | Path) -> Path:
    """The folder holding ``metadata.csv``: ``root`` itself, ``root/LJSpeech-1.1`` or
    ``root/tts`` (the offline corpus). Raises ``FileNotFoundError`` listing what was found."""
    root = Path(root)
    candidates = [root, root / LJSPEECH_FOLDER, root / "tts"]
    for candidate in candidates:
        if (candidate / _METADATA).is_file():
            return candidate
    found = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    raise FileNotFoundError(
        f"no {_METADATA} in {', '.join(map(str, candidates))}; {root} holds "
        f"{', '.join(found) or 'nothing'} (pass the folder holding {LJSPEECH_FOLDER}/, the "
        "corpus folder itself, or the offline corpus root; or download it)"
    )


def scan_metadata(root: str | Path) -> tuple[list[LJRow], list[LJSkipped]]:
    """Read ``metadata.csv`` under :func:`find_ljspeech_dir` ``(root)``.

    Every non-blank line becomes a row or an :class:`LJSkipped`, and so does every
    ``wavs/*.wav`` that no line names. Lines that are not UTF-8, whose wav is missing or empty,
    whose text is empty, whose id is repeated or could name a file outside ``wavs/`` are
    skipped with the reason and their line number. A line without 2 or 3 ``|``-separated
    columns raises ``ValueError`` naming ``file:line``.
    """
    corpus = find_ljspeech_dir(root)
    metadata = corpus / _METADATA
    rows: list[LJRow] = []
    skipped: list[LJSkipped] = []
    seen: set[str] = set()
    # Quoting off: LJSpeech texts contain '"' characters that csv quoting would swallow.
    for line in utf8_lines(metadata):
        if not line.text.strip():
            continue
        if line.problem:
            skipped.append(_undecodable(line, metadata, corpus))
            seen.add(skipped[-1].id)
            continue
        row = _parse_line(metadata, line.number, line.text, corpus)
        reason = _problem(row, seen)
        seen.add(row.id)
        if reason:
            skipped.append(LJSkipped(row.id, row.wav_path, reason, line.number))
        else:
            rows.append(row)
    unnamed = f"no row in {_METADATA}"
    if any(not s.id for s in skipped):
        unnamed = f"no readable row in {_METADATA} (some lines are not UTF-8)"
    skipped += [LJSkipped(wav.stem, wav, unnamed)
                for wav in sorted((corpus / "wavs").glob("*.wav")) if wav.stem not in seen]
    return rows, skipped


def _undecodable(line: TextLine, metadata: Path, corpus: Path) -> LJSkipped:
    """The skip of a line that is not text; it keeps the line's id when that much is readable."""
    utt_id = line.text.split("|", 1)[0].strip()
    if utt_id.isprintable() and _bad_id(utt_id) is None:  # no \xNN escapes, no path
        return LJSkipped(utt_id, corpus / "wavs" / f"{utt_id}.wav", line.problem, line.number)
    return LJSkipped("", metadata, line.problem, line.number)


def _parse_line(metadata: Path, line_number: int, line: str, corpus: Path) -> LJRow:
    fields = line.split("|")
    if len(fields) not in (2, 3):
        raise ValueError(
            f"{metadata}:{line_number}: expected 'id|raw text|normalized text', got "
            f"{len(fields)} column(s); fix the line"
        )
    utt_id, raw = fields[0].strip(), fields[1].strip()
    text = fields[2].strip() if len(fields) == 3 else raw
    return LJRow(utt_id, corpus / "wavs" / f"{utt_id}.wav", raw, text)


def _bad_id(utt_id: str) -> str | None:
    if not utt_id or "/" in utt_id or "\\" in utt_id or utt_id.startswith("."):
        return f"bad id {utt_id!r}"
    return None


def _problem(row: LJRow, seen: set[str]) -> str | None:
    if bad := _bad_id(row.id):
        return bad
    if row.id in seen:
        return "duplicate id"
    if not row.text:
        return "empty text"
    if not row.wav_path.is_file():
        return "missing audio file"
    if row.wav_path.stat().st_size == 0:
        return "empty file (0 bytes)"
    return None


def read_metadata(root: str | Path) -> list[LJRow]:
    """The usable rows of :func:`scan_metadata`; what it skipped is logged (one warning)."""
    rows, skipped = scan_metadata(root)
    if skipped:
        lines = sum(1 for s in skipped if s.line)
        wavs = f" and {len(skipped) - lines} wav(s) that no line names" if lines < len(skipped) else ""
        examples = "; ".join(f"{s.id}: {s.describe()}" for s in skipped[:3])
        logger.warning("LJSpeech: %d line(s)%s skipped (%s%s)", lines, wavs, examples,
                       "; ..." if len(skipped) > 3 else "")
    return rows


def download_ljspeech(
    dest_dir: str | Path,
    url: str = LJSPEECH_URL,
    checksum: str | None = LJSPEECH_SHA256,
    progress: bool = True,
) -> Path:
    """Download (resumable, sha256-verified) and safely extract LJSpeech into ``dest_dir``.

    Returns the corpus folder (``dest_dir/LJSpeech-1.1``). The 2.6 GB archive is kept in
    ``dest_dir``; a second call verifies it and does no network I/O.
    """
    dest_dir = Path(dest_dir)
    archive = download(url, dest_dir / url.rsplit("/", 1)[-1], checksum, "sha256", progress)
    safe_extract(archive, dest_dir)
    return find_ljspeech_dir(dest_dir)


def asr_scans(
    root: str | Path, split_file: str | Path, jobs: int = 1, progress: bool = True,
    sample_rate: int = LIBRISPEECH_SAMPLE_RATE,
) -> dict[str, tuple[list[dict[str, Any]], list[Skipped]]]:
    """ASR manifest rows of an LJ Speech-layout corpus, split by ``split_file``
    (:func:`speechattn.data.manifest.read_split_file`; ids it does not list train), for
    :func:`speechattn.asr.prepare.write_prepared`.

    The reference text is the metadata's normalized column through
    :func:`~speechattn.text.normalize_tts` (which reads "Mr." as spoken, "mister") and then
    :func:`~speechattn.text.normalize_asr`. Rows keep the wavs' own rate (``"sample_rate":
    22050``): features resample them. Every metadata line and every unnamed wav is a row or a
    skip, as in :func:`scan_metadata`.
    """
    rows, lj_skipped = scan_metadata(root)
    fixed = read_split_file(split_file)
    by_split: dict[str, list[LibriUtterance]] = {split: [] for split in SPLITS}
    for row in rows:
        text = normalize_asr(normalize_tts(row.text))
        utterance = LibriUtterance(row.id, row.wav_path, text, "LJ", row.id.split("-")[0])
        by_split[fixed.get(row.id, "train")].append(utterance)
    scans = {}
    for split, utterances in by_split.items():
        kept, skipped = utterance_rows(split, utterances, jobs, progress, sample_rate)
        skipped += [Skipped(split, s.id, s.path, s.describe()) for s in lj_skipped
                    if fixed.get(s.id, "train") == split]
        scans[split] = (kept, sorted(skipped, key=lambda s: (s.id, str(s.path))))
    return scans
