"""JSON-lines manifests: one utterance per line, written atomically.

ASR rows look like ``{"id", "audio", "duration", "text", "speaker"}`` (plus optional
``"sample_rate"`` / ``"channels"`` when a file differs from the expected format); TTS rows
look like ``{"id", "audio", "mel", "frames", "duration", "text"}``. This module does not
enforce a schema: it only guarantees that every line is one JSON object and that a
half-written manifest never replaces a good one.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "dev.jsonl"
    >>> write_manifest(path, [{"id": "a", "duration": 1.5, "text": "HI"}])
    >>> read_manifest(path)
    [{'id': 'a', 'duration': 1.5, 'text': 'HI'}]
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "ManifestError",
    "read_log",
    "read_manifest",
    "read_text_lines",
    "write_manifest",
    "atomic_write_text",
]


class ManifestError(ValueError):
    """A manifest line is not a JSON object; the message names the file and line number."""


def read_manifest(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSONL manifest into a list of dicts.

    Blank lines are ignored. A line that is not valid JSON, or is JSON but not an object,
    raises :class:`ManifestError` naming ``path:line``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: manifest not found (run the prepare step first)")
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if line.strip():
                rows.append(_parse_line(path, line_number, line))
    return rows


def _parse_line(path: Path, line_number: int, line: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise ManifestError(
            f"{path}:{line_number}: not valid JSON ({err.msg} at column {err.colno}); "
            "fix or delete the line, or re-run the prepare step"
        ) from None
    if not isinstance(row, dict):
        raise ManifestError(
            f"{path}:{line_number}: expected a JSON object per line, got {type(row).__name__}; "
            "re-run the prepare step"
        )
    return row


def read_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Events of a JSON-lines log (the trainer's ``log.jsonl``, a decode's ``per_utt.jsonl``).

    Unlike :func:`read_manifest` it is lenient: a missing file gives ``[]`` and a line that is not
    JSON (cut short by a killed run) is skipped, because the rest of a log is still worth reading.
    """
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def write_manifest(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Write ``rows`` as JSONL to ``path`` atomically (temp file in the same folder, then rename).

    Values must be JSON-serialisable (convert ``Path`` objects with ``str`` first); a row that
    is not raises ``TypeError`` naming its position and the manifest, and ``path`` is untouched.
    """
    path = Path(path)
    lines = []
    for position, row in enumerate(rows):
        try:
            lines.append(json.dumps(dict(row), ensure_ascii=False))
        except TypeError as err:
            raise TypeError(f"{path}: row {position} is not JSON-serialisable ({err})") from None
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def read_text_lines(path: str | os.PathLike[str]) -> list[str]:
    """The lines of a UTF-8 text file; other encodings are a ``ValueError`` naming the byte."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (byte {err.start})") from None


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder and ``os.replace``.

    Readers see either the old file or the complete new one, never a partial write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
