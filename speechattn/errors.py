"""How every command turns an expected failure into one line on stderr and a non-zero exit code.

Expected failures are the ones a user can fix: bad input or config (``ValueError`` and its
subclasses) and anything the file system refuses (``OSError``: a read-only folder, a path under
a regular file, a full disk, a busy experiment). They are printed as ``PROG: error: MESSAGE``
with no traceback; an ``OSError`` is shown as ``PATH: what went wrong``. Anything else is a bug
and keeps its traceback. Every command's logging is set up here too, once, the same way.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

__all__ = ["EXPECTED_ERRORS", "describe", "run_command", "setup_logging"]

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


def describe(error: BaseException) -> str:
    """One line for ``error``; an ``OSError`` names its path(s) first.

    >>> describe(PermissionError(13, "Permission denied", "exp/a/config.yaml"))
    'exp/a/config.yaml: Permission denied'
    >>> describe(ValueError("bad value\\nsecond line"))
    'bad value; second line'
    """
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        paths = " -> ".join(str(p) for p in (error.filename, error.filename2) if p is not None)
        return f"{paths}: {error.strerror}"
    text = str(error) or type(error).__name__
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def setup_logging() -> None:
    """INFO and above to stderr as ``HH:MM:SS module: message``; a no-op when the program (or a
    test) has configured logging already."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )


def run_command(
    prog: str, body: Callable[[], int | None], expected: tuple[type[BaseException], ...] = ()
) -> int:
    """Run ``body``; its return value (None counts as 0) is the exit code, and an expected
    failure (:data:`EXPECTED_ERRORS` plus ``expected``) is one line on stderr and exit code 1.

    The line starts with ``prog``, or with the subcommand's name (``speechattn score``) when
    :func:`speechattn.cli.command_name` set it, as for argparse's own errors.
    """
    setup_logging()
    try:
        return int(body() or 0)
    except (*EXPECTED_ERRORS, *expected) as error:
        name = sys.argv[0] if sys.argv and sys.argv[0].startswith("speechattn ") else prog
        print(f"{name}: error: {describe(error)}", file=sys.stderr)
        return 1
