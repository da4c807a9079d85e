"""Tests for speechattn/data/manifest.py."""

from pathlib import Path

import pytest

from speechattn.data.manifest import ManifestError, read_log, read_manifest, write_manifest

ROWS = [
    {"id": "1089-134686-0000", "audio": "/a/b.flac", "duration": 10.435, "text": "HE HOPED",
     "speaker": "1089"},
    {"id": "LJ001-0001", "audio": "/c.wav", "mel": "/c.pt", "frames": 812, "duration": 9.65,
     "text": "Printing, in the only sense — «unicode»"},
]


def test_round_trip_keeps_values_and_order(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dev.jsonl"
    write_manifest(path, ROWS)
    assert read_manifest(path) == ROWS
    assert path.read_text(encoding="utf-8").count("\n") == 2
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temp file left behind


def test_blank_lines_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"id": "a"}\n\n   \n{"id": "b"}\n', encoding="utf-8")
    assert [row["id"] for row in read_manifest(path)] == ["a", "b"]


@pytest.mark.parametrize(("bad_line", "needle"), [('{"id": "b",', "not valid JSON"),
                                                  ("[1, 2]", "expected a JSON object per line, got list")])
def test_bad_line_names_file_and_line_number(tmp_path: Path, bad_line: str, needle: str) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"id": "a"}\n\n' + bad_line + "\n", encoding="utf-8")
    with pytest.raises(ManifestError, match=rf"m\.jsonl:3: {needle}"):
        read_manifest(path)


def test_failed_write_leaves_old_manifest_untouched(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    write_manifest(path, ROWS[:1])
    with pytest.raises(TypeError, match="row 1"):
        write_manifest(path, [ROWS[0], {"audio": Path("/x.flac")}])
    assert read_manifest(path) == ROWS[:1]
    assert len(list(tmp_path.iterdir())) == 1


def test_missing_manifest_says_run_prepare(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="prepare"):
        read_manifest(tmp_path / "nope.jsonl")


def test_read_log_skips_a_cut_line_and_a_missing_file_is_empty(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"step": 1, "loss": 2.0}\n\n{"step": 2, "loss": 1.5}\n{"step": 3, "lo')
    assert read_log(log) == [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}]
    assert read_log(tmp_path / "missing.jsonl") == []


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    import os
    import stat

    from speechattn.fileio import write_text_atomic

    umask = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644  # not mkstemp's 0600


def test_read_json_names_the_file_line_and_column(tmp_path):
    from speechattn.data.manifest import read_json

    path = tmp_path / "features.json"
    path.write_text('{"a": 1,\n "b": }\n')
    with pytest.raises(ValueError, match=r"features.json: not valid JSON \(line 2, column 7: "):
        read_json(path)
    path.write_bytes(b'{"a": "\xe9"}')
    with pytest.raises(ValueError, match=r"features.json: not UTF-8 text \(byte 7\)"):
        read_json(path)
    path.write_text('{"a": [1, 2]}')
    assert read_json(path) == {"a": [1, 2]}
