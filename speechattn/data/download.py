"""Resumable, checksum-verified downloads and safe tar extraction.

``download`` streams to ``<dest>.part``, resumes a partial ``.part`` with an HTTP
``Range: bytes=N-`` request (restarting from zero when the server ignores it), verifies the
digest and only then renames ``.part`` to ``dest``. A file that fails verification is moved
aside to ``<dest>.bad`` and never left at ``dest``.

``safe_extract`` validates every member of a tar archive before writing anything, extracts
into a temporary folder inside the target, merges it into place, and writes a stamp file last:
a killed extraction leaves no stamp and is redone on the next call.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tqdm import tqdm

__all__ = [
    "ChecksumError",
    "DownloadError",
    "UnsafeArchiveError",
    "download",
    "file_digest",
    "safe_extract",
    "extraction_stamp",
]

logger = logging.getLogger(__name__)

_DIGEST_LENGTHS = {"sha256": 64, "md5": 32}
_CHUNK_BYTES = 1 << 20


class DownloadError(RuntimeError):
    """The transfer failed; the message says whether re-running resumes it."""


class ChecksumError(DownloadError):
    """The downloaded file's digest differs from the published one."""


class UnsafeArchiveError(ValueError):
    """An archive member would write outside the target folder or is a device file."""


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    hasher = hashlib.new(_check_algorithm(algorithm))
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def _check_algorithm(algorithm: str) -> str:
    if algorithm not in _DIGEST_LENGTHS:
        raise ValueError(f"algorithm={algorithm!r}: expected one of {sorted(_DIGEST_LENGTHS)}")
    return algorithm


def _check_checksum(checksum: str | None, algorithm: str) -> str | None:
    _check_algorithm(algorithm)
    if checksum is None:
        return None
    checksum = checksum.strip().lower()
    length = _DIGEST_LENGTHS[algorithm]
    if len(checksum) != length or any(c not in "0123456789abcdef" for c in checksum):
        raise ValueError(f"checksum={checksum!r} is not a {length}-digit hex {algorithm} digest")
    return checksum


def download(
    url: str,
    dest: str | os.PathLike[str],
    checksum: str | None = None,
    algorithm: str = "sha256",
    progress: bool = True,
    *,
    retries: int = 3,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` and return ``dest``.

    Args:
        url: http(s) (or file) URL.
        dest: final path; the transfer goes to ``<dest>.part`` first.
        checksum: expected hex digest, or None to skip verification (not recommended).
        algorithm: ``"sha256"`` or ``"md5"``.
        progress: show a tqdm bar.
        retries: how many times a dropped connection is resumed before giving up.
        timeout: socket timeout in seconds.

    A present ``dest`` whose digest matches (or any present ``dest`` when ``checksum`` is None)
    is returned without touching the network; one that does not match is moved to
    ``<dest>.bad`` and downloaded again. Raises :class:`ChecksumError` when the downloaded
    bytes do not match (the file is moved to ``<dest>.bad``), :class:`DownloadError` when the
    transfer keeps failing (the ``.part`` file is kept so that a re-run resumes).
    """
    dest = Path(dest)
    checksum = _check_checksum(checksum, algorithm)
    if dest.exists():
        if checksum is None or file_digest(dest, algorithm) == checksum:
            logger.info("%s: already present, not downloading", dest)
            return dest
        bad = _move_aside(dest)
        logger.warning("%s: digest mismatch, moved to %s and downloading again", dest, bad)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = _fetch_with_retries(url, part, algorithm, progress, retries, timeout)
    if checksum is not None and digest != checksum:
        bad = _move_aside(part, dest.with_name(dest.name + ".bad"))
        raise ChecksumError(
            f"{dest.name}: {algorithm} mismatch for {url}: expected {checksum}, got {digest}; "
            f"the file was moved to {bad} and not used (delete it and re-run; if it fails "
            "again the mirror or the published checksum is wrong)"
        )
    os.replace(part, dest)
    return dest


def _move_aside(path: Path, bad: Path | None = None) -> Path:
    bad = bad or path.with_name(path.name + ".bad")
    os.replace(path, bad)
    return bad


def _fetch_with_retries(
    url: str, part: Path, algorithm: str, progress: bool, retries: int, timeout: float
) -> str:
    """Fill ``part`` with the whole resource, resuming after drops; return its digest."""
    for attempt in range(retries + 1):
        try:
            return _fetch(url, part, algorithm, progress, timeout)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            if isinstance(err, urllib.error.HTTPError) and err.code < 500:
                raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from err
            if attempt == retries:
                raise DownloadError(
                    f"{url}: transfer failed after {retries + 1} attempts ({err}); "
                    f"{part} is kept, re-run to resume"
                ) from err
            logger.warning("%s: %s; resuming (attempt %d)", url, err, attempt + 2)
    raise AssertionError("unreachable")


def _fetch(url: str, part: Path, algorithm: str, progress: bool, timeout: float) -> str:
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "speechattn"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            # Nothing left past our offset: the .part is complete or longer than the
            # resource. Restart from zero; the checksum decides either way.
            logger.warning("%s: server refused range from byte %d; restarting", url, offset)
            part.unlink()
            return _fetch(url, part, algorithm, progress, timeout)
        raise
    with response:
        if offset and response.status != 206:
            logger.warning("%s: server ignored the Range request; restarting from zero", url)
            offset = 0
        elif offset:
            _check_content_range(url, response.headers.get("Content-Range"), offset)
        hasher = hashlib.new(algorithm)
        if offset:
            with part.open("rb") as existing:
                for chunk in iter(lambda: existing.read(_CHUNK_BYTES), b""):
                    hasher.update(chunk)
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        with part.open("ab" if offset else "wb") as out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name.removesuffix(".part"), disable=not progress,
        ) as bar:
            written = _copy_stream(response, out, hasher, bar)
        if total is not None and offset + written != total:
            raise http.client.IncompleteRead(b"", total - offset - written)
    return hasher.hexdigest()


def _check_content_range(url: str, content_range: str | None, offset: int) -> None:
    # "bytes START-END/TOTAL": the body must start exactly where our .part ends.
    if content_range is None or not content_range.startswith(f"bytes {offset}-"):
        raise DownloadError(
            f"{url}: asked for bytes from {offset} but the server sent {content_range!r}; "
            "delete the .part file and re-run"
        )


def _copy_stream(source: BinaryIO, out: BinaryIO, hasher: hashlib._Hash, bar: tqdm) -> int:
    written = 0
    for chunk in iter(lambda: source.read(_CHUNK_BYTES), b""):
        out.write(chunk)
        hasher.update(chunk)
        bar.update(len(chunk))
        written += len(chunk)
    return written


def extraction_stamp(archive: str | os.PathLike[str], target_dir: str | os.PathLike[str]) -> Path:
    """Path of the stamp file marking ``archive`` as completely extracted into ``target_dir``."""
    return Path(target_dir) / f".{Path(archive).name}.extracted"


def safe_extract(archive: str | os.PathLike[str], target_dir: str | os.PathLike[str]) -> Path:
    """Extract a tar (plain, gz, bz2, xz) archive into ``target_dir`` and return ``target_dir``.

    Every member is checked before anything is written; the whole archive is refused with
    :class:`UnsafeArchiveError` naming the member when one has an absolute path, a ``..``
    that escapes the target, a path through one of the archive's own symlinks, a symlink or
    hard link pointing outside the target, or is a device file / FIFO. Extraction goes to a
    temporary folder inside ``target_dir`` (so a later rename stays on one file system),
    is merged into place (existing files are overwritten: LibriSpeech archives share the
    top-level ``LibriSpeech/`` folder), and the stamp from :func:`extraction_stamp` is written
    last. A present stamp means done: the call returns at once.
    """
    archive = Path(archive)
    target = Path(target_dir)
    stamp = extraction_stamp(archive, target)
    if stamp.exists():
        logger.info("%s: already extracted into %s", archive, target)
        return target
    target.mkdir(parents=True, exist_ok=True)
    staging = target / f".{archive.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)  # left over from a killed run
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            check_members(members, archive)
            staging.mkdir()
            # Our checks above are the explicit policy; the "data" filter is a second layer
            # that also drops setuid bits and resolves links against the real file system.
            tar.extractall(staging, members=members, filter="data")
        _merge_into(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    stamp.write_text(f"{archive.resolve()}\n")
    return target


def check_members(members: list[tarfile.TarInfo], archive: Path) -> None:
    """Raise :class:`UnsafeArchiveError` for the first member that is unsafe to extract."""
    symlinks: set[PurePosixPath] = set()
    for member in members:
        reason = _member_problem(member, symlinks)
        if reason:
            raise UnsafeArchiveError(
                f"{archive}: refusing to extract member {member.name!r}: {reason} "
                "(the archive is damaged or hostile; nothing was extracted)"
            )
        if member.issym():
            symlinks.add(_normalized(member.name))


def _member_problem(member: tarfile.TarInfo, symlinks: set[PurePosixPath]) -> str | None:
    name = member.name
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    path = _normalized(name)
    if _escapes(path):
        return "path escapes the target folder through '..'"
    if _through_symlink(name, symlinks):
        return "path goes through (or replaces) a symlink from the same archive"
    if member.ischr() or member.isblk() or member.isfifo():
        return "device file or FIFO"
    if member.issym() or member.islnk():
        link = member.linkname
        if link.startswith(("/", "\\")):
            return f"link to absolute path {link!r}"
        # Symlinks resolve against their own folder, hard links against the archive root.
        base = path.parent if member.issym() else PurePosixPath()
        if _escapes(_normalized(str(base / link))):
            return f"link to {link!r} points outside the target folder"
        if _through_symlink(str(base / link), symlinks):
            return f"link to {link!r} goes through a symlink from the same archive"
    return None


def _through_symlink(name: str, symlinks: set[PurePosixPath]) -> bool:
    # Walk the raw components left to right: "d/ln/../x" normalizes to "d/x", but the
    # file system would follow the symlink "d/ln" before applying "..".
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
    return any(_normalized("/".join(parts[:i])) in symlinks for i in range(1, len(parts) + 1))


def _normalized(name: str) -> PurePosixPath:
    """Lexically normalize ``name`` (``a/./b/../c`` -> ``a/c``), keeping leading ``..``."""
    parts: list[str] = []
    for part in name.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == ".." and parts and parts[-1] != "..":
            parts.pop()
        else:
            parts.append(part)
    return PurePosixPath(*parts)


def _escapes(path: PurePosixPath) -> bool:
    return bool(path.parts) and path.parts[0] == ".."


def _merge_into(source: Path, target: Path) -> None:
    """Move ``source``'s entries into ``target``: whole folders by rename where possible."""
    for entry in sorted(source.iterdir()):
        destination = target / entry.name
        if entry.is_dir() and not entry.is_symlink() and destination.is_dir():
            _merge_into(entry, destination)
        else:
            if destination.is_dir() and not destination.is_symlink():
                shutil.rmtree(destination)
            os.replace(entry, destination)
