"""Tests for speechattn/data/download.py against a local HTTP server honouring Range requests."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechattn.data.download import (
    ChecksumError,
    UnsafeArchiveError,
    download,
    extraction_stamp,
    file_digest,
    safe_extract,
)


@dataclass
class FileServer:
    """What the test server serves and what it saw."""

    files: dict[str, bytes] = field(default_factory=dict)
    ranges: list[str | None] = field(default_factory=list)  # Range header of each GET
    ignore_range: bool = False
    drop_once_after: int | None = None  # send this many body bytes once, then hang up
    url: str = ""


def _make_handler(state: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            body = state.files.get(self.path)
            range_header = self.headers.get("Range")
            state.ranges.append(range_header)
            if body is None:
                self.send_error(404)
                return
            start = 0
            if range_header and not state.ignore_range:
                start = int(range_header.removeprefix("bytes=").split("-")[0])
                if start >= len(body):
                    self.send_error(416)
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            payload = body[start:]
            if state.drop_once_after is not None:
                payload, state.drop_once_after = payload[: state.drop_once_after], None
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def server() -> Iterator[FileServer]:
    state = FileServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


PAYLOAD = bytes(range(256)) * 4000  # ~1 MB, not all one byte so a wrong offset shows


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_good_download_verifies_and_skips_network_when_present(server: FileServer,
                                                              tmp_path: Path) -> None:
    server.files["/f.bin"] = PAYLOAD
    dest = tmp_path / "dl" / "f.bin"
    assert download(f"{server.url}/f.bin", dest, sha256(PAYLOAD), progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_name("f.bin.part").exists()
    assert server.ranges == [None]
    download(f"{server.url}/f.bin", dest, sha256(PAYLOAD), progress=False)
    assert len(server.ranges) == 1  # no second request


def test_md5_is_supported(server: FileServer, tmp_path: Path) -> None:
    server.files["/f.bin"] = PAYLOAD
    dest = download(f"{server.url}/f.bin", tmp_path / "f.bin", hashlib.md5(PAYLOAD).hexdigest(),
                    algorithm="md5", progress=False)
    assert file_digest(dest, "md5") == hashlib.md5(PAYLOAD).hexdigest()


def test_partial_download_resumes_with_range(server: FileServer, tmp_path: Path) -> None:
    server.files["/f.bin"] = PAYLOAD
    dest = tmp_path / "f.bin"
    half = len(PAYLOAD) // 2
    dest.with_name("f.bin.part").write_bytes(PAYLOAD[:half])
    download(f"{server.url}/f.bin", dest, sha256(PAYLOAD), progress=False)
    assert server.ranges == [f"bytes={half}-"]
    assert file_digest(dest) == sha256(PAYLOAD)


def test_server_ignoring_range_restarts_from_zero(server: FileServer, tmp_path: Path) -> None:
    server.files["/f.bin"] = PAYLOAD
    server.ignore_range = True
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(b"\xff" * 1000)  # wrong bytes: must be discarded
    download(f"{server.url}/f.bin", dest, sha256(PAYLOAD), progress=False)
    assert server.ranges == ["bytes=1000-"]
    assert dest.read_bytes() == PAYLOAD


def test_dropped_connection_is_resumed(server: FileServer, tmp_path: Path) -> None:
    server.files["/f.bin"] = PAYLOAD
    server.drop_once_after = 300_000
    dest = download(f"{server.url}/f.bin", tmp_path / "f.bin", sha256(PAYLOAD), progress=False)
    assert server.ranges == [None, "bytes=300000-"]
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_is_clear_and_file_not_used(server: FileServer, tmp_path: Path) -> None:
    server.files["/dev-clean.tar.gz"] = PAYLOAD
    dest = tmp_path / "dev-clean.tar.gz"
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as info:
        download(f"{server.url}/dev-clean.tar.gz", dest, wrong, progress=False)
    message = str(info.value)
    assert "dev-clean.tar.gz" in message and wrong in message and sha256(PAYLOAD) in message
    assert not dest.exists()
    assert not dest.with_name("dev-clean.tar.gz.part").exists()
    assert dest.with_name("dev-clean.tar.gz.bad").read_bytes() == PAYLOAD


def test_present_file_with_wrong_digest_is_replaced(server: FileServer, tmp_path: Path) -> None:
    server.files["/f.bin"] = PAYLOAD
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"stale")
    download(f"{server.url}/f.bin", dest, sha256(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert dest.with_name("f.bin.bad").read_bytes() == b"stale"


def test_bad_arguments_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="algorithm='sha1'"):
        download("http://127.0.0.1:9/x", tmp_path / "x", None, algorithm="sha1")
    with pytest.raises(ValueError, match="64-digit hex sha256"):
        download("http://127.0.0.1:9/x", tmp_path / "x", "abc")


# ---------------------------------------------------------------- extraction

def _tar_bytes(entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                tar.addfile(info, io.BytesIO(entry[1]))
    return buffer.getvalue()


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    return info


def test_safe_extract_merges_and_stamps(tmp_path: Path) -> None:
    target = tmp_path / "corpus"
    first = tmp_path / "a.tar.gz"
    first.write_bytes(_tar_bytes([("LibriSpeech/README", b"v1"), ("LibriSpeech/dev/x.txt", b"x"),
                                  _link("LibriSpeech/dev/y.txt", "x.txt")]))
    second = tmp_path / "b.tar.gz"
    second.write_bytes(_tar_bytes([("LibriSpeech/README", b"v2"), ("LibriSpeech/test/z", b"z")]))
    safe_extract(first, target)
    safe_extract(second, target)
    base = target / "LibriSpeech"
    assert (base / "README").read_bytes() == b"v2"
    assert (base / "dev" / "y.txt").read_bytes() == b"x"
    assert (base / "test" / "z").read_bytes() == b"z"
    assert extraction_stamp(first, target).exists() and extraction_stamp(second, target).exists()
    assert sorted(p.name for p in target.iterdir()) == [".a.tar.gz.extracted",
                                                        ".b.tar.gz.extracted", "LibriSpeech"]
    (base / "dev" / "x.txt").write_bytes(b"edited")
    safe_extract(first, target)  # stamped: not redone
    assert (base / "dev" / "x.txt").read_bytes() == b"edited"


def test_killed_extraction_is_redone(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(_tar_bytes([("d/x.txt", b"x")]))
    target = tmp_path / "out"
    (target / ".a.tar.gz.partial" / "d").mkdir(parents=True)  # what a kill leaves behind
    (target / ".a.tar.gz.partial" / "d" / "half").write_bytes(b"")
    safe_extract(archive, target)
    assert sorted(p.name for p in target.iterdir()) == [".a.tar.gz.extracted", "d"]
    assert [p.name for p in (target / "d").iterdir()] == ["x.txt"]


HOSTILE = {  # case -> (members after a harmless "good.txt", the reason expected)
    "dotdot": (["../evil.txt"], "escapes the target folder"),
    "nested-dotdot": (["ok/../../evil.txt"], "escapes the target folder"),
    "absolute": (["ABSOLUTE"], "absolute path"),
    "symlink-out": ([_link("ln", "../")], "points outside"),
    "symlink-absolute": ([_link("ln", "/etc/passwd")], "link to absolute path"),
    "symlink-nested-out": ([_link("a/b/ln", "../../../evil.txt")], "points outside"),
    "through-symlink": ([_link("d/ln", ".."), "d/ln/../evil.txt"], "goes through"),
    "link-through-symlink": ([_link("d/ln", ".."), _link("c", "d/ln/../evil.txt")],
                             "goes through a symlink"),
    "hardlink-out": ([_link("hl", "../evil.txt", tarfile.LNKTYPE)], "points outside"),
    "device": ([_device("dev/null")], "device file"),
    # x/y/a -> b/../.. reaches two levels above the target once x/y/b -> ../.. exists.
    "chain-link-first": ([_link("x/y/a", "b/../.."), _link("x/y/b", "../..")],
                         "goes through a symlink"),
    "chain-link-last": ([_link("x/y/b", "../.."), _link("x/y/a", "b/../..")],
                        "goes through a symlink"),
    "symlink-to-symlink": ([_link("a", "b"), _link("b", "good.txt")], "points at a symlink"),
    "hardlink-to-symlink": ([_link("h", "s", tarfile.LNKTYPE), _link("s", "good.txt")],
                            "points at a symlink"),
    "file-then-symlink": (["d.txt", _link("d.txt", "good.txt")], "more than once"),
    "symlink-then-file": ([_link("d.txt", "good.txt"), "d.txt"], "more than once"),
}
FIRST_BAD = {  # cases whose refused member is not the last one
    "chain-link-first": "x/y/a", "symlink-to-symlink": "a", "hardlink-to-symlink": "h"}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_is_refused(tmp_path: Path, case: str) -> None:
    sandbox = tmp_path / "sandbox"
    target = sandbox / "target"
    absolute = tmp_path / "absolute-evil.txt"
    entries: list[tarfile.TarInfo | tuple[str, bytes]] = [("good.txt", b"fine")]
    members, reason = HOSTILE[case]
    for item in members:
        if item == "ABSOLUTE":
            entries.append((str(absolute), b"evil"))
        elif isinstance(item, str):
            entries.append((item, b"evil"))
        else:
            entries.append(item)
    archive = tmp_path / "hostile.tar.gz"
    archive.write_bytes(_tar_bytes(entries))
    last = entries[-1][0] if isinstance(entries[-1], tuple) else entries[-1].name
    bad_name = FIRST_BAD.get(case, last)
    with pytest.raises(UnsafeArchiveError, match=f"member '{bad_name}': .*{reason}"):
        safe_extract(archive, target)
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert written == ["hostile.tar.gz", "sandbox", "sandbox/target"]  # nothing, anywhere
    assert not extraction_stamp(archive, target).exists()


def _tree(root: Path) -> dict[str, bytes | str]:
    """Everything under ``root``, links not followed: path -> bytes, "folder" or "-> target"."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):  # rglob does not descend into symlinked folders
        name = str(path.relative_to(root))
        if path.is_symlink():
            found[name] = f"-> {path.readlink()}"
        else:
            found[name] = "folder" if path.is_dir() else path.read_bytes()
    return found


def _archive(path: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    path.write_bytes(_tar_bytes(entries))
    return path


def _folder(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


@pytest.mark.parametrize("member", [("LibriSpeech", b"not a folder"),
                                    _link("LibriSpeech", "elsewhere")],
                         ids=["file", "symlink"])
def test_member_never_replaces_an_existing_folder(
        tmp_path: Path, member: tarfile.TarInfo | tuple[str, bytes]) -> None:
    target = tmp_path / "download"
    safe_extract(_archive(tmp_path / "dev.tar.gz", [("LibriSpeech/README", b"v1"),
                                                    ("LibriSpeech/dev/x.flac", b"x")]), target)
    before = _tree(target)
    second = _archive(tmp_path / "test.tar.gz", [("AAA.txt", b"first in the merge"), member])
    with pytest.raises(UnsafeArchiveError, match=r"test\.tar\.gz: refusing to extract member "
                       r"'LibriSpeech': would replace the existing folder .*download/LibriSpeech"):
        safe_extract(second, target)
    assert _tree(target) == before
    assert not extraction_stamp(second, target).exists()


@pytest.mark.parametrize("member", [_folder("notes"), ("notes/x.txt", b"x")],
                         ids=["folder", "file-in-folder"])
def test_folder_member_never_replaces_an_existing_file(
        tmp_path: Path, member: tarfile.TarInfo | tuple[str, bytes]) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "notes").write_bytes(b"mine")
    archive = _archive(tmp_path / "a.tar.gz", [("AAA.txt", b"first in the merge"), member])
    name = member[0] if isinstance(member, tuple) else member.name
    with pytest.raises(UnsafeArchiveError,
                       match=f"member '{name}': needs a folder where the target has the file"):
        safe_extract(archive, target)
    assert _tree(target) == {"notes": b"mine"}


@pytest.mark.parametrize("member", [("x/y/a/FILE", b"evil"), _link("x/y/c", "a/FILE")],
                         ids=["path", "link-target"])
def test_member_never_goes_through_a_link_already_in_the_target(
        tmp_path: Path, member: tarfile.TarInfo | tuple[str, bytes]) -> None:
    # What a first archive's x/y/a -> b/../.. plus x/y/b -> ../.. used to leave behind.
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "sandbox" / "target"
    (target / "x" / "y").mkdir(parents=True)
    (target / "x" / "y" / "a").symlink_to(outside)
    before = _tree(target)
    archive = _archive(tmp_path / "second.tar.gz", [member])
    name = member[0] if isinstance(member, tuple) else member.name
    with pytest.raises(UnsafeArchiveError,
                       match=f"member '{name}': .*goes through the existing symlink .*x/y/a"):
        safe_extract(archive, target)
    assert list(outside.iterdir()) == []
    assert _tree(target) == before
    assert not extraction_stamp(archive, target).exists()


def test_merge_refuses_even_when_the_target_changed_after_the_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from speechattn.data import download as module

    monkeypatch.setattr(module, "_target_problem", lambda member, target: None)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    (target / "LibriSpeech" / "dev").mkdir(parents=True)
    (target / "LibriSpeech" / "dev" / "x.flac").write_bytes(b"x")
    (target / "ln").symlink_to(outside)
    before = _tree(target)
    for member, existing in [(("LibriSpeech", b"file"), "folder"),
                             (("ln/evil.txt", b"evil"), "file or symlink")]:
        archive = _archive(tmp_path / "late.tar.gz", [member])
        with pytest.raises(UnsafeArchiveError, match=f"would replace the existing {existing} "
                           ".*the target changed during extraction"):
            safe_extract(archive, target)
    assert _tree(target) == before
    assert list(outside.iterdir()) == []


# ---------------------------------------------------------------- end to end

def _tiny_librispeech_split(split: Path) -> dict[str, str]:
    """Two chapters of short 16 kHz sine flacs plus trans.txt; returns id -> transcript."""
    texts = {"1089-134686-0000": "HE HOPED THERE WOULD BE STEW FOR DINNER",
             "1089-134686-0001": "STUFF IT INTO YOU",
             "121-121726-0000": "ALSO A POPULAR CONTRIVANCE"}
    t = np.arange(4000) / 16000
    for number, (utt_id, text) in enumerate(texts.items()):
        speaker, chapter, _ = utt_id.split("-")
        folder = split / speaker / chapter
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{utt_id}.flac", 0.3 * np.sin(2 * np.pi * (300 + 90 * number) * t),
                 16000)
        with (folder / f"{speaker}-{chapter}.trans.txt").open("a") as handle:
            handle.write(f"{utt_id} {text}\n")
    return texts


def test_download_extract_prepare_end_to_end(server: FileServer, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from test_librispeech import make_tiny_split

    from speechattn.asr import prepare as asr_prepare
    from speechattn.data import librispeech
    from speechattn.data.manifest import read_manifest

    staging = tmp_path / "staging"
    expected = make_tiny_split(staging / "LibriSpeech" / "dev-clean")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(staging / "LibriSpeech", arcname="LibriSpeech")
    archive = buffer.getvalue()
    server.files["/mirror/dev-clean.tar.gz"] = archive
    # The real table holds OpenSLR's digest; point it at our tiny archive's.
    table = dict(librispeech.LIBRISPEECH_SUBSETS)
    table["dev-clean"] = librispeech.LibriSubset("dev-clean", sha256(archive))
    monkeypatch.setattr(librispeech, "LIBRISPEECH_SUBSETS", table)

    downloads, out = tmp_path / "downloads", tmp_path / "out"
    for _ in range(2):  # the second run reuses the verified archive and the extraction
        summary = asr_prepare.prepare_librispeech(
            ["dev-clean"], out, download_dir=downloads, mirror=f"{server.url}/mirror/",
            progress=False)
    assert server.ranges == [None]
    assert (downloads / "dev-clean.tar.gz").read_bytes() == archive
    (downloads / "dev-clean.tar.gz").unlink()  # extracted: the archive is no longer needed
    asr_prepare.prepare_librispeech(["dev-clean"], out, download_dir=downloads,
                                    mirror=f"{server.url}/mirror/", progress=False)
    assert server.ranges == [None]
    rows = read_manifest(summary["manifests"]["dev-clean"])
    assert {row["id"]: row["text"] for row in rows} == expected
    split = downloads / "LibriSpeech" / "dev-clean"
    assert all(Path(row["audio"]).is_relative_to(split.resolve()) for row in rows)
    assert summary["skipped"] == {"dev-clean": 0}


def test_unknown_subset_cannot_be_downloaded(tmp_path: Path) -> None:
    from speechattn.data.librispeech import download_librispeech

    with pytest.raises(ValueError, match="no download for subset 'train'.*dev-clean"):
        download_librispeech("train", tmp_path)


# ---------------------------------------------------------------- LJSpeech

LJ_METADATA = (
    'LJ001-0001|Printing, in the only sense with which we are at present concerned, differs|'
    'Printing, in the only sense with which we are at present concerned, differs\n'
    'LJ001-0002|"in 1840," he said|"in eighteen forty," he said\n'
    'LJ001-0003|no audio|no audio\n'
    'LJ001-0004|  |  \n'
    'LJ001-0005|two columns only\n'
    'LJ001-0002|repeated|repeated\n'
    '../../evil|sneaky|sneaky\n'
)


def _tiny_ljspeech(corpus: Path) -> None:
    (corpus / "wavs").mkdir(parents=True)
    (corpus / "metadata.csv").write_text(LJ_METADATA, encoding="utf-8")
    t = np.arange(2205) / 22050
    for utt_id in ("LJ001-0001", "LJ001-0002", "LJ001-0004", "LJ001-0005"):
        sf.write(corpus / "wavs" / f"{utt_id}.wav", 0.3 * np.sin(2 * np.pi * 220 * t), 22050)


def test_download_ljspeech_and_read_metadata(server: FileServer, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    from speechattn.data.ljspeech import LJRow, download_ljspeech, read_metadata, scan_metadata

    _tiny_ljspeech(tmp_path / "staging" / "LJSpeech-1.1")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:bz2") as tar:
        tar.add(tmp_path / "staging" / "LJSpeech-1.1", arcname="LJSpeech-1.1")
    server.files["/data/LJSpeech-1.1.tar.bz2"] = buffer.getvalue()
    dest = tmp_path / "dl"
    corpus = download_ljspeech(dest, f"{server.url}/data/LJSpeech-1.1.tar.bz2",
                               sha256(buffer.getvalue()), progress=False)
    assert corpus == dest / "LJSpeech-1.1"
    assert (dest / "LJSpeech-1.1.tar.bz2").is_file()

    rows, skipped = scan_metadata(dest)
    assert rows == [
        LJRow("LJ001-0001", corpus / "wavs/LJ001-0001.wav",
              "Printing, in the only sense with which we are at present concerned, differs",
              "Printing, in the only sense with which we are at present concerned, differs"),
        LJRow("LJ001-0002", corpus / "wavs/LJ001-0002.wav", '"in 1840," he said',
              '"in eighteen forty," he said'),  # quotes kept: quoting is off
        LJRow("LJ001-0005", corpus / "wavs/LJ001-0005.wav", "two columns only",
              "two columns only"),
    ]
    assert [(s.id, s.reason) for s in skipped] == [
        ("LJ001-0003", "missing audio file"), ("LJ001-0004", "empty text"),
        ("LJ001-0002", "duplicate id"), ("../../evil", "bad id '../../evil'")]
    with caplog.at_level("WARNING"):
        assert read_metadata(corpus) == rows
    assert "4 line(s) skipped" in caplog.text


def test_find_ljspeech_dir_shapes_and_errors(tmp_path: Path) -> None:
    from speechattn.data.ljspeech import find_ljspeech_dir, scan_metadata

    for corpus in (tmp_path / "a" / "LJSpeech-1.1", tmp_path / "b" / "tts"):
        corpus.mkdir(parents=True)
        (corpus / "metadata.csv").write_text("")
        assert find_ljspeech_dir(corpus.parent) == corpus
        assert find_ljspeech_dir(corpus) == corpus
    with pytest.raises(FileNotFoundError, match="no metadata.csv in .*holds a, b"):
        find_ljspeech_dir(tmp_path)
    (tmp_path / "a" / "LJSpeech-1.1" / "metadata.csv").write_text("ok|fine|fine\nbroken\n")
    with pytest.raises(ValueError, match=r"metadata\.csv:2: expected 'id\|raw text"):
        scan_metadata(tmp_path / "a")
