"""LibriSpeech (and the offline corpus, which shares its layout): reading splits.

Layout of a split folder (``dev-clean``, or the offline corpus's ``train``/``dev``/``test``/
``test-unseen-voice``)::

    <split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac
    <split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt   # "<id> <TRANSCRIPT>" per line
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "LibriUtterance",
    "iter_split",
    "find_split_dir",
]

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


def iter_split(split_dir: str | Path) -> Iterator[LibriUtterance]:
    """Yield every utterance listed in the split's ``*.trans.txt`` files, sorted by id.

    Raises ``FileNotFoundError`` when ``split_dir`` is not a folder or holds no transcripts,
    and ``ValueError`` naming ``file:line`` when a transcript line's id does not belong to its
    ``<speaker>-<chapter>`` file.
    """
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{split_dir}: split folder not found")
    transcript_files = sorted(split_dir.glob(f"*/*/*{_TRANSCRIPT_SUFFIX}"))
    if not transcript_files:
        raise FileNotFoundError(
            f"{split_dir}: no <speaker>/<chapter>/*{_TRANSCRIPT_SUFFIX} files; "
            "is this a LibriSpeech-layout split folder?"
        )
    utterances: list[LibriUtterance] = []
    for transcript_file in transcript_files:
        utterances.extend(_read_transcript_file(transcript_file))
    utterances.sort(key=lambda utt: utt.id)
    yield from utterances


def _read_transcript_file(path: Path) -> list[LibriUtterance]:
    speaker = path.parent.parent.name
    chapter = path.parent.name
    prefix = f"{speaker}-{chapter}-"
    utterances = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.strip().split(maxsplit=1)
            if not fields:
                continue
            utt_id = fields[0]
            if not utt_id.startswith(prefix) or utt_id == prefix:
                raise ValueError(
                    f"{path}:{line_number}: id {utt_id!r} does not start with {prefix!r} "
                    "(the file must sit in <speaker>/<chapter>/ and list that chapter's ids)"
                )
            transcript = fields[1].strip() if len(fields) > 1 else ""
            audio_path = path.parent / f"{utt_id}{_AUDIO_SUFFIX}"
            utterances.append(LibriUtterance(utt_id, audio_path, transcript, speaker, chapter))
    return utterances


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
    return [p for p in folder.iterdir() if p.is_dir() and p.name != _CORPUS_FOLDER]
