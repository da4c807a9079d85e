"""Tests for speechattn/fileio.py: the one atomic writer and the folder lock."""

import os
import stat
import subprocess
import sys
import time

import pytest

from speechattn.errors import describe
from speechattn.fileio import (
    FolderBusyError,
    atomic_write,
    ensure_folder,
    hold_folder,
    remove_stale_temps,
    write_text_atomic,
)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_written_files_get_the_umask_mode_not_0600(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = write_text_atomic(tmp_path / "a.txt", "x")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    assert _mode(path) == _mode(plain) == 0o666 & ~umask


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = write_text_atomic(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(path, text=True) as handle:
        handle.write("half")
        raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_errors_name_the_path_asked_for(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError) as error:
        write_text_atomic(tmp_path / "file" / "sub" / "a.txt", "x")
    assert describe(error.value) == f"{tmp_path / 'file'}: exists and is not a folder"
    with pytest.raises(IsADirectoryError) as error:
        write_text_atomic(tmp_path, "x")
    assert describe(error.value) == f"{tmp_path}: is a folder, expected a file name"
    with pytest.raises(NotADirectoryError):
        ensure_folder(tmp_path / "file")


def test_remove_stale_temps_only_touches_temps_of_matching_targets(tmp_path):
    for name in (".step-1.pt.abc.tmp", ".best.pt.x1.tmp", ".log.jsonl.zz.tmp", "step-1.pt", "a.tmp"):
        (tmp_path / name).write_text("x")
    removed = remove_stale_temps(tmp_path, "*.pt")
    assert sorted(p.name for p in removed) == [".best.pt.x1.tmp", ".step-1.pt.abc.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".log.jsonl.zz.tmp", "a.tmp", "step-1.pt"]


HOLDER = """
import sys, time
from speechattn.fileio import hold_folder
with hold_folder(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def _start_holder(folder):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_holder_is_refused_with_the_pid_and_kill_9_frees_the_folder(tmp_path):
    proc = _start_holder(tmp_path / "exp")
    try:
        with pytest.raises(FolderBusyError, match=rf"exp: another run \(pid {proc.pid}\)"):
            with hold_folder(tmp_path / "exp"):
                pass
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10
    while True:  # the kernel drops the lock with the process; nothing stale is left
        try:
            with hold_folder(tmp_path / "exp"):
                break
        except FolderBusyError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    with hold_folder(tmp_path), hold_folder(tmp_path):
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())
    with hold_folder(tmp_path):  # released after the outer block
        pass
