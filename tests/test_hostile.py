"""Hostile but fair input, as a careful user (or attacker) would try it: bad API arguments, a
second training on a busy folder, file-system refusals, malformed configs, junk files.

Each case must end in one clear error naming the file or value (a one-line message and exit code
1 on the command line), never a traceback, a silent wrong answer or lost data. Hostile archives
are tabled in test_download.py, bad corpora in test_librispeech.py and test_tts_prepare.py.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from test_asr_pretrained import make_exp

from speechattn.api import ASR
from speechattn.asr.pretrained import _as_wave
from speechattn.audio import AudioError
from speechattn.cli import main as cli
from speechattn.text import Vocab
from speechattn.tts.text_input import clean_text

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "recipes" / "asr" / "conf" / "tiny.yaml"
RATE = 16000


@pytest.fixture(scope="module")
def asr(tmp_path_factory):
    return ASR.load(make_exp(tmp_path_factory.mktemp("hostile") / "exp"))


def _one_line_error(capsys, command):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{command}: error: "), err
    assert "Traceback" not in err[0]
    return err[0]


# ---------------------------------------------------------------- the Python API

SECOND = np.sin(np.linspace(0, 2000, RATE)).astype(np.float32)
BAD_API_INPUTS = {  # case -> (audio, sample_rate, error type, message)
    "rate-0": (SECOND, 0, ValueError, r"sample_rate=0 Hz is not a plausible audio rate"),
    "rate-1": (SECOND, 1, ValueError, r"sample_rate=1 Hz is not a plausible"),
    "rate-negative": (SECOND, -16000, ValueError, r"sample_rate=-16000 Hz"),
    "rate-huge": (SECOND, 10**9, ValueError, r"expected 1000-384000 Hz"),
    "rate-float": (SECOND, 16000.0, TypeError, r"sample_rate=16000.0: expected an integer"),
    "bytes": (SECOND.tobytes(), None, TypeError, r"expected a file path, a numpy array or a torch tensor.*got bytes"),
    "none": (None, None, TypeError, r"got NoneType"),
    "list": ([0.1, 0.2], None, TypeError, r"got list"),
    "bool-samples": (SECOND > 0, None, TypeError, r"torch.bool are not audio"),
    "empty": (np.zeros(0, np.float32), None, ValueError, r"with samples, got shape \(0,\)"),
    "three-dims": (np.zeros((2, 2, 100), np.float32), None, ValueError, r"got shape \(2, 2, 100\)"),
    "nan": (np.full(800, np.nan, np.float32), None, ValueError, r"NaN or infinite"),
}


@pytest.mark.parametrize("case", sorted(BAD_API_INPUTS))
def test_bad_api_input_is_refused_with_a_clear_error(asr, case):
    audio, rate, error, message = BAD_API_INPUTS[case]
    with pytest.raises(error, match=message):
        asr.transcribe(audio, sample_rate=rate)


def test_a_folder_given_as_audio_is_called_a_folder(asr, tmp_path):
    with pytest.raises(AudioError, match="is a folder, not an audio file"):
        asr.transcribe(tmp_path)


@pytest.mark.parametrize("dtype, scale", [(np.int16, 2**15), (np.int32, 2**31)])
def test_integer_pcm_is_scaled_like_the_same_audio_read_from_a_file(asr, tmp_path, dtype, scale):
    pcm = (SECOND * 0.5 * (scale - 1)).astype(dtype)
    path = tmp_path / "a.wav"
    sf.write(path, pcm, RATE, subtype="PCM_16" if dtype == np.int16 else "PCM_32")
    from_file = _as_wave(path, RATE, None)
    from_array = _as_wave(pcm, RATE, RATE)
    torch.testing.assert_close(from_array, from_file, atol=1e-6, rtol=0)
    assert float(from_array.abs().max()) == pytest.approx(0.5, abs=1e-3)
    assert asr.transcribe(pcm, sample_rate=RATE) == asr.transcribe(path)


def test_stereo_either_way_round_is_averaged(asr):
    stereo = np.stack([SECOND, SECOND * 0.5])
    expected = _as_wave(SECOND * 0.75, RATE, RATE)
    torch.testing.assert_close(_as_wave(stereo, RATE, RATE), expected)
    torch.testing.assert_close(_as_wave(stereo.T.copy(), RATE, RATE), expected)


def test_text_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="text: expected a str, got bytes"):
        clean_text(b"hello", Vocab.build(["HELLO"]))


# ---------------------------------------------------------------- a second run on one folder

HOLDER = """
import sys, time
from speechattn.fileio import hold_folder
with hold_folder(sys.argv[1], "training"):
    print("held", flush=True)
    time.sleep(60)
"""


def _fake_data(folder: Path) -> Path:
    """What the ASR train command checks for before it takes the folder (contents unused)."""
    folder.mkdir()
    for name in ("train.jsonl", "dev.jsonl", "vocab.json", "cmvn.json"):
        (folder / name).write_text("")
    return folder


def test_a_second_training_on_a_busy_folder_is_refused_and_writes_nothing(tmp_path, capsys):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text("the first run's config\n")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(exp)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code = cli(["train", "asr", "--config", str(TINY), "--data", str(_fake_data(tmp_path / "d")),
                    "--exp", str(exp)])
        line = _one_line_error(capsys, "speechattn train asr")
    finally:
        holder.kill()
        holder.wait()
    assert code == 1
    assert f"another training (pid {holder.pid}) is using this folder" in line
    assert (exp / "config.yaml").read_text() == "the first run's config\n"
    assert sorted(p.name for p in exp.iterdir()) == [".lock", "config.yaml"]


# ---------------------------------------------------------------- the file system says no

@pytest.fixture
def read_only(tmp_path):
    """A folder nothing can be written into, even by root (``chattr +i``); skipped where neither
    that nor a plain chmod can make one."""
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "exp").mkdir()
    (folder / "exp" / "config.yaml").write_text("model: {}\n")
    folders = [folder, folder / "exp"]
    immutable = shutil.which("chattr") and all(
        subprocess.run(["chattr", "+i", str(f)], capture_output=True).returncode == 0
        for f in folders)
    if not immutable:
        for f in folders:
            f.chmod(0o555)
    try:
        probe = folder / "probe"
        try:
            probe.write_text("x")
        except OSError:
            yield folder
        else:
            probe.unlink()
            pytest.skip("cannot make a read-only folder here")
    finally:
        for f in folders:
            if immutable:
                subprocess.run(["chattr", "-i", str(f)], check=True)
            f.chmod(0o755)


@pytest.fixture
def matrix(tmp_path):
    path = tmp_path / "attention.npy"
    np.save(path, np.eye(6, 4, dtype=np.float32))
    return path


def test_plot_into_a_read_only_folder_is_one_line(read_only, matrix, capsys):
    assert cli(["plot", str(matrix), "-o", str(read_only / "a.png")]) == 1
    line = _one_line_error(capsys, "speechattn plot")
    assert str(read_only / "a.png") in line and ".tmp" not in line
    assert sorted(p.name for p in read_only.iterdir()) == ["exp"]


@pytest.mark.parametrize("exp", ["fresh", "exp"])
def test_training_into_a_read_only_folder_is_one_line(read_only, tmp_path, capsys, exp):
    data = _fake_data(tmp_path / "d")
    code = cli(["train", "asr", "--config", str(TINY), "--data", str(data),
                "--exp", str(read_only / exp)])
    line = _one_line_error(capsys, "speechattn train asr")
    assert code == 1 and str(read_only / exp) in line
    assert (read_only / "exp" / "config.yaml").read_text() == "model: {}\n"


def test_paths_through_a_regular_file_are_one_line(tmp_path, matrix, capsys):
    regular = tmp_path / "notes.txt"
    regular.write_text("keep me")
    assert cli(["plot", str(matrix), "-o", str(regular / "a.png")]) == 1
    assert _one_line_error(capsys, "speechattn plot").endswith(
        f"{regular}: exists and is not a folder")
    code = cli(["train", "asr", "--config", str(TINY), "--data", str(_fake_data(tmp_path / "d")),
                "--exp", str(regular)])
    assert code == 1
    assert _one_line_error(capsys, "speechattn train asr").endswith(
        f"{regular}: exists and is not a folder")
    assert regular.read_text() == "keep me"


# ---------------------------------------------------------------- configs and junk files

def test_malformed_yaml_is_one_line_with_the_line_and_column(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  max_steps: [1, 2\nmodel: {}\n")
    data = _fake_data(tmp_path / "d")
    assert cli(["train", "asr", "--config", str(bad), "--data", str(data),
                "--exp", str(tmp_path / "exp")]) == 1
    line = _one_line_error(capsys, "speechattn train asr")
    assert f"{bad}: not valid YAML (line 3, column 6:" in line
    assert not (tmp_path / "exp").exists()


def test_a_malformed_experiment_config_names_the_file(tmp_path, capsys):
    exp = make_exp(tmp_path / "exp")
    (exp / "config.yaml").write_text("model:\n\tencoder: 1\n")
    assert cli(["transcribe", "--model", str(exp), str(tmp_path / "a.wav")]) == 1
    line = _one_line_error(capsys, "speechattn transcribe")
    assert f"{exp / 'config.yaml'}: not valid YAML (line 2, column 1:" in line


def test_a_wrong_override_is_blamed_on_the_override_not_the_file(tmp_path, capsys):
    data = _fake_data(tmp_path / "d")
    argv = ["train", "asr", "--config", str(TINY), "--data", str(data), "--exp", str(tmp_path / "e")]
    assert cli([*argv, "train.max_steps=lots"]) == 1
    line = _one_line_error(capsys, "speechattn train asr")
    assert "'train.max_steps': expected an integer, got 'lots'" in line
    assert line.endswith("(from the command-line overrides)") and str(TINY) not in line
    assert cli([*argv, "train.max_steps=[1,"]) == 1
    assert "override 'train.max_steps=[1,': the value is not valid YAML" in _one_line_error(
        capsys, "speechattn train asr")


@pytest.mark.parametrize("content, message", [
    (b"junk" * 20, "not a readable .npy array"),
    ("object", r"not a plain numeric array \(it holds Python objects\); it will not be loaded"),
    ("3d", r"expected a 2-D numeric attention matrix .*got \(2, 2, 2\)"),
])
def test_plot_refuses_junk_npy_without_pointing_at_pickle(tmp_path, capsys, content, message):
    path = tmp_path / "junk.npy"
    if content == "object":
        np.save(path, np.array([{"a": 1}], dtype=object))
    elif content == "3d":
        np.save(path, np.zeros((2, 2, 2)))
    else:
        path.write_bytes(content)
    assert cli(["plot", str(path), "-o", str(tmp_path / "a.png")]) == 1
    line = _one_line_error(capsys, "speechattn plot")
    assert f"{path}: " in line and "allow_pickle" not in line
    import re

    assert re.search(message, line)
    assert not (tmp_path / "a.png").exists()


# ---------------------------------------------------------------- several files, some bad

def test_transcribe_reports_bad_files_and_goes_on_with_the_rest(tmp_path, capsys):
    exp = make_exp(tmp_path / "exp")
    good = [tmp_path / "a.wav", tmp_path / "b.wav"]
    for path in good:
        sf.write(path, SECOND, RATE)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    files = [good[0], tmp_path / "missing.wav", empty, tmp_path, good[1]]
    assert cli(["transcribe", "--model", str(exp), *map(str, files)]) == 1
    out, err = capsys.readouterr()
    assert [line.split("\t")[0] for line in out.splitlines()] == [str(p) for p in good]
    errors = err.strip().splitlines()
    assert [line.split(": error: ")[1].split(":")[0] for line in errors[:3]] == [
        str(tmp_path / "missing.wav"), str(empty), str(tmp_path)]
    assert errors[3] == "speechattn transcribe: 3 of 5 file(s) failed"


def test_decoding_into_a_path_under_a_regular_file_is_one_line(tmp_path, capsys):
    exp = make_exp(tmp_path / "exp")
    sf.write(tmp_path / "a.wav", SECOND, RATE)
    regular = tmp_path / "notes.txt"
    regular.write_text("keep me")
    code = cli(["score", "--exp", str(exp), "--audio", str(tmp_path / "a.wav"),
                "--out", str(regular / "decode"), "--no-progress"])
    assert code == 1
    assert _one_line_error(capsys, "speechattn score").endswith(
        f"{regular}: exists and is not a folder")
    assert regular.read_text() == "keep me"
