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

import codecs
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from speechattn.fileio import write_text_atomic

__all__ = [
    "ManifestError",
    "read_log",
    "read_manifest",
    "read_json",
    "read_split_file",
    "read_text_lines",
    "TextLine",
    "utf8_lines",
    "write_manifest",
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
    write_text_atomic(path, "".join(line + "\n" for line in lines))


class TextLine(NamedTuple):
    """One line of a text file, from :func:`utf8_lines`."""

    number: int  # 1-based
    text: str  # without the line end; bytes that are not UTF-8 appear as \xNN escapes
    problem: str  # why the line is not usable text ("" when it is)


def utf8_lines(path: Path) -> Iterator[TextLine]:
    """The lines of ``path``, decoded one at a time so that one bad line costs only itself.

    A UTF-8 byte-order mark at the start is dropped. A line that is not UTF-8 (Latin-1, UTF-16,
    ...) or holds a NUL character comes with a ``problem`` naming the byte and the fix; its
    ``text`` keeps the undecodable bytes as escapes, so that callers can still show its id.
    """
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            raw = raw.rstrip(b"\r\n")
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                text, problem = raw.decode("utf-8"), ""
            except UnicodeDecodeError as err:
                text = raw.decode("utf-8", "backslashreplace")
                problem = (f"not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start} "
                           "of the line); re-save the file as UTF-8")
            if not problem and "\x00" in text:
                problem = "NUL characters in the line (UTF-16 text?); re-save the file as UTF-8"
            yield TextLine(number, text, problem)


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON value in ``path``; text that is not UTF-8 or not JSON is a ``ValueError`` naming
    the file (and the line and column)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: "
                         f"{err.msg}); re-create the file") from None


SPLITS = ("train", "dev", "test")


def read_split_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{id: split}`` from a file of ``<id><TAB or spaces><train|dev|test>`` lines (``#`` starts
    a comment): a fixed split that makes figures reproducible. A malformed line, an unknown split
    or an id listed twice is a ``ValueError`` naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: split file not found")
    splits: dict[str, str] = {}
    for number, line in enumerate(read_text_lines(path), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in SPLITS:
            raise ValueError(f"{path}:{number}: expected '<id> <{'|'.join(SPLITS)}>', got {line!r}")
        if fields[0] in splits:
            raise ValueError(f"{path}:{number}: {fields[0]} is listed twice")
        splits[fields[0]] = fields[1]
    return splits


def read_text_lines(path: str | os.PathLike[str]) -> list[str]:
    """The lines of a UTF-8 text file; other encodings are a ``ValueError`` naming the byte."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (byte {err.start})") from None
