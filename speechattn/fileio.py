"""File-system helpers every module shares: the one atomic writer, and a folder's exclusive lock.

:func:`atomic_write` is how the project writes a file that someone may read or that a kill may
interrupt (checkpoints, configs, manifests, audio, figures, reports): the bytes go to a temporary
file beside the target (``.NAME.<random>.tmp``), are flushed to disk, get the mode a plain
``open()`` would give them under the current umask, and only then replace the target in one
rename. A reader sees the old file or the whole new one; a killed writer leaves at most a temp
file, which :func:`remove_stale_temps` clears on the next start.

:func:`hold_folder` takes an exclusive ``flock`` on ``FOLDER/.lock`` for a run. The kernel drops
the lock when the process dies, so ``kill -9`` leaves nothing stale; a second holder is refused
at once with :class:`FolderBusyError` naming the first one's pid.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "FolderBusyError",
    "TEMP_SUFFIX",
    "atomic_write",
    "ensure_folder",
    "hold_folder",
    "remove_stale_temps",
    "write_text_atomic",
]

TEMP_SUFFIX = ".tmp"
LOCK_NAME = ".lock"
_held: dict[Path, int] = {}  # folder -> depth; the lock is re-entrant within one process


class FolderBusyError(BlockingIOError):
    """Another process holds the folder's lock (an ``OSError``, so commands print it as one line)."""


def ensure_folder(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` (and its parents) unless it exists; a path that is, or lies under, a
    regular file raises ``NotADirectoryError`` naming that file."""
    folder = Path(folder)
    if folder.is_dir():
        return folder
    for part in (folder, *folder.parents):
        if part.exists() and not part.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder", str(part))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _umask_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], text: bool = False) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing (binary, or UTF-8 text with ``text``);
    when the block ends without an exception it is synced and renamed onto ``path``, otherwise it
    is removed and ``path`` is left as it was.

    >>> import tempfile; folder = Path(tempfile.mkdtemp())
    >>> with atomic_write(folder / "a.txt", text=True) as handle:
    ...     _ = handle.write("hello")
    >>> (folder / "a.txt").read_text(), sorted(p.name for p in folder.iterdir())
    ('hello', ['a.txt'])
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, expected a file name", str(path))
    ensure_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    except OSError as error:  # name the file the caller asked for, not our temporary name
        raise type(error)(error.errno, error.strerror, str(path)) from None
    try:
        os.fchmod(fd, _umask_mode())  # mkstemp makes 0600; give the file the usual mode
        mode, encoding = ("w", "utf-8") if text else ("wb", None)
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_write`."""
    with atomic_write(path, text=True) as handle:
        handle.write(text)
    return Path(path)


def remove_stale_temps(folder: str | os.PathLike[str], pattern: str = "*") -> list[Path]:
    """Delete the temporary files :func:`atomic_write` left in ``folder`` for targets matching
    ``pattern`` (a glob on the target's name); returns what was removed.

    Only call it while holding the folder (:func:`hold_folder`): a live writer's temp file would
    go too.
    """
    removed = []
    for tmp in Path(folder).glob(f".{pattern}.*{TEMP_SUFFIX}"):
        if tmp.is_file() and not tmp.is_symlink():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


@contextlib.contextmanager
def hold_folder(folder: str | os.PathLike[str], what: str = "run") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if needed) for the block.

    Raises :class:`FolderBusyError` naming the holder's pid when another process has it. Nested
    calls in one process on the same folder share the lock.
    """
    folder = ensure_folder(folder)
    key = folder.resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield folder
        finally:
            _held[key] -= 1
        return
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, _umask_mode())
    except OSError as error:
        raise type(error)(error.errno, f"{error.strerror} (cannot write the folder)", str(folder)) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise FolderBusyError(
                f"{folder}: another {what} (pid {holder}) is using this folder; wait for it to "
                "end or use another folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held[key] = 1
        try:
            yield folder
        finally:
            del _held[key]
    finally:
        os.close(fd)  # closing the descriptor releases the lock
