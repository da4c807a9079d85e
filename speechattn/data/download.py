"""Resumable, checksum-verified downloads and safe tar extraction.

``download`` streams to ``<dest>.part``, resumes a partial ``.part`` with an HTTP
``Range: bytes=N-`` request (restarting from zero when the server ignores it), verifies the
digest and only then renames ``.part`` to ``dest``. A file that fails verification is moved
aside to ``<dest>.bad`` and never left at ``dest``.

``safe_extract`` validates every member of a tar archive before writing anything: against the
target folder, against all the archive's links (in either order), and against what the target
already holds. It refuses paths that escape, links that point outside, at or through another
link, paths through a link (the archive's or one already in the target), a name given to a link
and to another member, device files, and any member that would replace an existing folder or
need a folder where a file is. It then extracts into a temporary folder inside the target,
merges it into place without following links or deleting anything, and writes a stamp file
last: a killed extraction leaves no stamp and is redone on the next call.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import stat
import tarfile
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tqdm import tqdm

from speechattn.fileio import ensure_folder

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
    """An archive member could write outside the target folder, is a device file, or would
    replace or go through what the target folder already holds."""


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
    ensure_folder(dest.parent)
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
    :class:`UnsafeArchiveError` naming the member when one

    - has an absolute path or a ``..`` that escapes the target, or is a device file / FIFO;
    - is a symlink or hard link pointing outside the target, at another link of the archive
      or through one;
    - has a path through any link of the archive (earlier or later in it), or shares its
      name with another member while one of them is a link;
    - would go through a symlink already in ``target_dir`` (a link's target too), would
      replace a folder already there with a file or link, or needs a folder where a file is.

    Extraction goes to a temporary folder inside ``target_dir`` (so a later rename stays on one
    file system) and is merged into place without following links. Existing files and symlinks
    are overwritten (LibriSpeech archives share ``LibriSpeech/README``); existing folders are
    merged into, never deleted. The stamp from :func:`extraction_stamp` is written last. A
    present stamp means done: the call returns at once.
    """
    archive = Path(archive)
    target = Path(target_dir)
    stamp = extraction_stamp(archive, target)
    if stamp.exists():
        logger.info("%s: already extracted into %s", archive, target)
        return target
    ensure_folder(target)
    staging = target / f".{archive.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)  # left over from a killed run
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            check_members(members, archive, target)
            staging.mkdir()
            # Our checks above are the explicit policy; the "data" filter is a second layer
            # that also drops setuid bits and resolves links against the real file system.
            tar.extractall(staging, members=members, filter="data")
        _merge_into(staging, target, archive, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    stamp.write_text(f"{archive.resolve()}\n")
    return target


def check_members(
    members: list[tarfile.TarInfo], archive: Path, target: Path | None = None
) -> None:
    """Raise :class:`UnsafeArchiveError` for the first member unsafe to extract (into ``target``).

    Two passes: the first collects all the archive's links, the second checks every member
    against all of them (a link placed later counts as much as an earlier one) and, when
    ``target`` is given, against what already exists there.
    """
    links = {_normalized(m.name): _link_kind(m) for m in members if m.issym() or m.islnk()}
    occurrences = Counter(_normalized(m.name) for m in members)
    for member in members:
        reason = _member_problem(member, links, occurrences[_normalized(member.name)])
        if reason:
            raise UnsafeArchiveError(_refusal(archive, member.name, reason))
        reason = _target_problem(member, target) if target is not None else None
        if reason:
            raise UnsafeArchiveError(_refusal(
                archive, member.name, reason,
                f"the archive does not fit what {target} holds; nothing was extracted"))


def _refusal(
    archive: Path, name: str, reason: str,
    outcome: str = "the archive is damaged or hostile; nothing was extracted",
) -> str:
    return f"{archive}: refusing to extract member {name!r}: {reason} ({outcome})"


def _link_kind(member: tarfile.TarInfo) -> str:
    return "symlink" if member.issym() else "hard link"


def _member_problem(
    member: tarfile.TarInfo, links: dict[PurePosixPath, str], occurrences: int
) -> str | None:
    """What makes ``member`` unsafe on its own or against the archive's ``links``, if anything."""
    name = member.name
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    path = _normalized(name)
    if _escapes(path):
        return "path escapes the target folder through '..'"
    if member.ischr() or member.isblk() or member.isfifo():
        return "device file or FIFO"
    if occurrences > 1 and path in links:
        return "the name occurs more than once in the archive, at least once as a link"
    folders = _prefixes(name)[:-1]
    index = _first_link(folders, links)
    if index is not None:
        crossed = folders[index]
        return f"path goes through a {links[crossed]} from the same archive ({str(crossed)!r})"
    if member.issym() or member.islnk():
        return _link_problem(member, path, links)
    return None


def _link_problem(
    member: tarfile.TarInfo, path: PurePosixPath, links: dict[PurePosixPath, str]
) -> str | None:
    link = member.linkname
    if link.startswith(("/", "\\")):
        return f"link to absolute path {link!r}"
    resolved = _link_path(member, path)
    if _escapes(_normalized(resolved)):
        return f"link to {link!r} points outside the target folder"
    # A link to a link (or through one) is refused whatever the order: checking chains
    # lexically is only sound when no component of the target is itself a link.
    steps = _prefixes(resolved)
    index = _first_link(steps, links)
    if index is None:
        return None
    how, crossed = "points at" if index == len(steps) - 1 else "goes through", steps[index]
    return f"link to {link!r} {how} a {links[crossed]} from the same archive ({str(crossed)!r})"


def _link_path(member: tarfile.TarInfo, path: PurePosixPath) -> str:
    # Symlinks resolve against their own folder, hard links against the archive root.
    base = path.parent if member.issym() else PurePosixPath()
    return str(base / member.linkname)


def _first_link(steps: list[PurePosixPath], links: dict[PurePosixPath, str]) -> int | None:
    return next((i for i, step in enumerate(steps) if step in links), None)


def _target_problem(member: tarfile.TarInfo, target: Path) -> str | None:
    """What in the existing ``target`` stops ``member`` from being merged, if anything.

    The merge never follows links, so an existing symlink where a folder is needed, an
    existing folder where a file or link would go, or an existing file where a folder is
    needed is refused here, before anything is written. Existing files and symlinks at the
    member's own path are simply replaced.
    """
    steps = _prefixes(member.name) or [PurePosixPath()]
    for folder in steps[:-1]:
        clash = _clash(target / folder, wants_folder=True)
        if clash:
            return clash
    clash = _clash(target / steps[-1], wants_folder=member.isdir())
    if clash or not (member.issym() or member.islnk()):
        return clash
    for step in _prefixes(_link_path(member, _normalized(member.name))):
        if (target / step).is_symlink():
            return f"link to {member.linkname!r} goes through the existing symlink {target / step}"
    return None


def _clash(existing: Path, wants_folder: bool) -> str | None:
    mode = _lstat_mode(existing)
    if mode is None:
        return None
    if stat.S_ISLNK(mode):
        return f"path goes through the existing symlink {existing}" if wants_folder else None
    if stat.S_ISDIR(mode) and not wants_folder:
        return f"would replace the existing folder {existing}"
    if wants_folder and not stat.S_ISDIR(mode):
        return f"needs a folder where the target has the file {existing}"
    return None


def _lstat_mode(path: Path) -> int | None:
    """``path``'s own mode (a symlink is not followed), or None when nothing is there."""
    try:
        return path.lstat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None


def _prefixes(name: str) -> list[PurePosixPath]:
    """Normalized paths of ``name``'s leading raw components: ``d/ln/../x`` -> d, d/ln, d, d/x.

    Raw, because the file system follows a symlink ``d/ln`` before it applies ``..``.
    """
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
    return [_normalized("/".join(parts[:i])) for i in range(1, len(parts) + 1)]


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


def _merge_into(source: Path, target: Path, archive: Path, staging: Path) -> None:
    """Move ``source``'s entries into ``target``: whole folders by rename where possible.

    Never follows a link and never deletes: a folder is merged only into a real folder, and an
    entry that would replace a folder, or a folder that meets a file or symlink, raises.
    :func:`check_members` refuses those cases before extraction; this guards against a target
    that changed since.
    """
    for entry in sorted(source.iterdir()):
        destination = target / entry.name
        entry_is_folder = entry.is_dir() and not entry.is_symlink()
        existing = _lstat_mode(destination)
        if entry_is_folder and existing is not None and stat.S_ISDIR(existing):
            _merge_into(entry, destination, archive, staging)
        elif existing is not None and (entry_is_folder or stat.S_ISDIR(existing)):
            kind = "folder" if stat.S_ISDIR(existing) else "file or symlink"
            raise UnsafeArchiveError(_refusal(
                archive, entry.relative_to(staging).as_posix(),
                f"would replace the existing {kind} {destination}",
                "the target changed during extraction; the merge stopped, nothing was deleted"))
        else:
            os.replace(entry, destination)  # replaces a file or symlink itself, never follows
