"""Tests for speechattn/cli.py and speechattn/demo/pipeline.py's stage runner."""

import re
import subprocess
import sys

import pytest

from speechattn.cli import SUBCOMMANDS, main
from speechattn.demo import pipeline as demo

HELP = [[name] for name in sorted(SUBCOMMANDS) if name not in ("prepare", "train")]
HELP += [[name, direction] for name in ("prepare", "train") for direction in ("asr", "tts")]


@pytest.mark.parametrize("words", HELP, ids=" ".join)
def test_every_subcommand_has_help(words, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*words, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: speechattn {' '.join(words)} ") and len(out.splitlines()) > 2


def test_top_level_help_lists_every_subcommand(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name}" in out for name in SUBCOMMANDS)


def test_prepare_and_train_ask_for_a_direction(capsys):
    assert main(["train", "--help"]) == 0
    assert "{asr,tts}" in capsys.readouterr().out
    assert main(["train", "mt"]) == 2
    assert "choose one of ['asr', 'tts']" in capsys.readouterr().err


def test_unknown_command_exits_2(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "speechattn", "--version"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.startswith("speechattn ")


def test_demo_stages_skip_when_done_and_rerun_when_asked(tmp_path, monkeypatch):
    calls = []
    stages = {name: (lambda ctx, n=name: calls.append(n)) for name in ["a", "b", "c"]}
    monkeypatch.setattr(demo, "STAGES", stages)
    ctx = demo.DemoContext("quick", tmp_path / "exp", tmp_path / "data", jobs=1)
    assert demo.run_demo(ctx) == ["a", "b", "c"]
    assert demo.run_demo(ctx) == []  # everything stamped
    assert demo.run_demo(ctx, start="b", stop="b") == ["b"]
    assert demo.run_demo(ctx, start="b") == ["b", "c"]
    assert calls == ["a", "b", "c", "b", "b", "c"]
    with pytest.raises(ValueError, match="unknown demo stage 'z'"):
        demo.run_demo(ctx, start="z")


def test_a_failed_stage_is_not_stamped(tmp_path, monkeypatch):
    def boom(ctx):
        raise RuntimeError("stage failed")

    monkeypatch.setattr(demo, "STAGES", {"ok": lambda ctx: None, "boom": boom})
    ctx = demo.DemoContext("quick", tmp_path, tmp_path, jobs=1)
    with pytest.raises(RuntimeError):
        demo.run_demo(ctx)
    assert (tmp_path / "stages" / "ok.done").is_file()
    assert not (tmp_path / "stages" / "boom.done").exists()


def test_every_command_logs_info_lines_in_one_format():
    """Logging is set up once, by run_command, for the recipe scripts and the subcommands alike."""
    code = (
        "import logging; from speechattn.errors import run_command; "
        "raise SystemExit(run_command('x', lambda: logging.getLogger('speechattn.m').info('hi')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert re.fullmatch(r"\d\d:\d\d:\d\d speechattn\.m: hi\n", out.stderr)
