"""LJSpeech 1.1 (and the offline corpus's ``tts/`` folder): download and metadata reading.

Layout::

    LJSpeech-1.1/metadata.csv     # "<id>|<raw text>|<normalized text>" per line, no quoting
    LJSpeech-1.1/wavs/<id>.wav    # 22050 Hz mono 16-bit

The TTS prepare step (mel caching) builds on :func:`read_metadata`; this module only finds,
downloads and reads the corpus.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

from speechattn.data.download import download, safe_extract

__all__ = [
    "LJSPEECH_FOLDER",
    "LJSPEECH_SAMPLE_RATE",
    "LJSPEECH_SHA256",
    "LJSPEECH_URL",
    "LJRow",
    "LJSkipped",
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
    """A metadata line left out, with the reason."""

    id: str
    path: Path
    reason: str


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

    Lines whose wav is missing or empty, whose text is empty, whose id is repeated or could
    name a file outside ``wavs/`` are returned as :class:`LJSkipped`. A line without 2 or 3
    ``|``-separated columns raises ``ValueError`` naming ``file:line``.
    """
    corpus = find_ljspeech_dir(root)
    metadata = corpus / _METADATA
    rows: list[LJRow] = []
    skipped: list[LJSkipped] = []
    seen: set[str] = set()
    # Quoting off: LJSpeech texts contain '"' characters that csv quoting would swallow.
    with metadata.open(encoding="utf-8", newline="") as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            row = _parse_line(metadata, line_number, line, corpus)
            reason = _problem(row, seen)
            seen.add(row.id)
            if reason:
                skipped.append(LJSkipped(row.id, row.wav_path, reason))
            else:
                rows.append(row)
    return rows, skipped


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


def _problem(row: LJRow, seen: set[str]) -> str | None:
    if not row.id or "/" in row.id or "\\" in row.id or row.id.startswith("."):
        return f"bad id {row.id!r}"
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
    """The usable rows of :func:`scan_metadata`; skipped lines are logged (one warning)."""
    rows, skipped = scan_metadata(root)
    if skipped:
        examples = "; ".join(f"{s.id}: {s.reason}" for s in skipped[:3])
        logger.warning("LJSpeech: %d line(s) skipped (%s%s)", len(skipped), examples,
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
