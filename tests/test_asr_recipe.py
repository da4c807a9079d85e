"""The ASR recipe end to end on the offline mini corpus: prepare, train (overfit), infer, score.

The overfit bound: the tiny config memorizes 8 short utterances to a greedy CER below 5% within
120 steps (it reached 0% by step 100 for 6 of 6 seeds while the config was tuned).
"""

import json
import shutil
from pathlib import Path

import pytest
import torch

from speechattn.asr import infer, training
from speechattn.asr.decode import SearchConfig
from speechattn.asr.lm import CharNgramLM
from speechattn.asr.pretrained import load_asr, transcribe
from speechattn.asr.recipe import ASRRecipeConfig, lm_text_path, write_lm
from speechattn.asr.training import build_task
from speechattn.config import resolve_config
from speechattn.data.manifest import read_manifest, write_manifest
from speechattn.offline.corpus import SPLITS, plan_corpus
from speechattn.text import Vocab

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "recipes" / "asr" / "conf" / "tiny.yaml"
OVERFIT_STEPS = 120


@pytest.fixture(scope="module")
def mini_data(mini_corpus, tmp_path_factory) -> Path:
    """The offline mini corpus, prepared by the recipe's prepare script."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("asr_prepare", ROOT / "recipes/asr/prepare.py")
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    root = tmp_path_factory.mktemp("asr_mini")
    (root / "corpus").symlink_to(mini_corpus)  # where --offline-corpus looks for it
    code = prepare.main(["--offline-corpus", "mini", "--stage", "prepare", "--out", str(root),
                         "--no-progress"])  # fmt: skip
    assert code == 0
    return root


@pytest.fixture(scope="module")
def eight_utterances(mini_data, tmp_path_factory) -> Path:
    """A data folder whose train and dev sets are the 8 shortest training utterances."""
    data = tmp_path_factory.mktemp("asr_overfit")
    rows = sorted(read_manifest(mini_data / "train.jsonl"), key=lambda r: r["duration"])[:8]
    for split in ("train", "dev"):
        write_manifest(data / f"{split}.jsonl", rows)
    for name in ("vocab.json", "cmvn.json"):
        shutil.copyfile(mini_data / name, data / name)
    return data


@pytest.fixture(scope="module")
def overfit(eight_utterances, tmp_path_factory, one_thread):
    """Train the tiny config on the 8 utterances."""
    data = eight_utterances
    exp = tmp_path_factory.mktemp("asr_overfit_exp")
    argv = ["--config", str(TINY), "--data", str(data), "--exp", str(exp),
            f"train.max_steps={OVERFIT_STEPS}", "train.progress=false"]  # fmt: skip
    assert training.main(argv) == 0
    return data, exp, argv


def _valid_log(exp: Path) -> list[dict]:
    lines = (exp / "log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["split"] == "valid"]


def test_prepare_writes_manifests(mini_data):
    for split in SPLITS:
        rows = read_manifest(mini_data / f"{split}.jsonl")
        assert rows and {"id", "audio", "duration", "text", "speaker"} <= set(rows[0])
    assert (mini_data / "vocab.json").is_file() and (mini_data / "cmvn.json").is_file()
    lm_text = (mini_data / "lm_text.txt").read_text(encoding="utf-8").splitlines()
    assert lm_text == list(plan_corpus("mini", seed=0).lm_text)  # the corpus's, found by prepare


def test_tiny_model_overfits_eight_utterances(overfit):
    data, exp, _ = overfit
    valid = _valid_log(exp)
    assert valid[-1]["step"] == OVERFIT_STEPS
    assert valid[-1]["cer"] < 0.05, valid
    # it really learned: the first validation (step 40) was far off the last
    assert valid[0]["cer"] >= valid[-1]["cer"] + 0.1, valid
    for name in ("config.yaml", "vocab.json", "cmvn.json", "best.pt"):
        assert (exp / name).is_file()
    assert list((exp / "tensorboard").iterdir())


def test_rerun_resumes_and_refuses_changed_model(overfit, capsys):
    data, exp, argv = overfit
    assert training.main(argv) == 0  # already at max_steps: nothing to train
    assert len(_valid_log(exp)) == OVERFIT_STEPS // 40
    assert training.main([*argv, "model.embedding_dim=8"]) == 1
    assert "other model settings" in capsys.readouterr().err


def test_infer_greedy_and_beam_on_the_overfit_model(overfit, tmp_path):
    data, exp, _ = overfit
    manifest = data / "dev.jsonl"
    greedy_out, beam_out = tmp_path / "greedy", tmp_path / "beam"
    common = ["--exp", str(exp), "--manifest", str(manifest), "--no-progress"]
    assert infer.main([*common, "--out", str(greedy_out), "--beam", "1", "--plot", "2"]) == 0
    assert infer.main([*common, "--out", str(beam_out), "--beam", "4", "--batch-size", "3"]) == 0
    summary = json.loads((greedy_out / "summary.json").read_text())
    assert summary["cer"] < 0.05 and summary["utterances"] == 8
    assert {"wer", "substitutions", "deletions", "insertions", "rtf"} <= set(summary)
    assert 0.0 < summary["alignment"]["focus_rate_mean"] <= 1.0
    assert len(list((greedy_out / "alignments").glob("*.png"))) == 2
    assert len((greedy_out / "per_utt.tsv").read_text().splitlines()) == 9  # header + 8
    assert json.loads((beam_out / "summary.json").read_text())["cer"] < 0.05
    hyps = (greedy_out / "hyp.txt").read_text().splitlines()
    assert [h.split(" ", 1)[0] for h in hyps] == [r["id"] for r in read_manifest(manifest)]


def test_training_fits_the_lm_and_infer_fuses_it(overfit, tmp_path):
    data, exp, _ = overfit
    lm = CharNgramLM.load(exp / "lm.json")  # fitted on the training transcripts by train
    texts = [r["text"] for r in read_manifest(data / "train.jsonl")]
    assert lm.perplexity([Vocab.load(exp / "vocab.json").encode(t) for t in texts]) < 3.0
    out = tmp_path / "fused"
    argv = ["--exp", str(exp), "--manifest", str(data / "dev.jsonl"), "--no-progress",
            "--out", str(out), "--beam", "4", "--lm-weight", "0.3"]  # fmt: skip
    assert infer.main(argv) == 0
    record = json.loads((out / "decode.json").read_text())
    assert record["search"]["lm_weight"] == 0.3 and record["lm"] == str(exp / "lm.json")
    assert json.loads((out / "summary.json").read_text())["cer"] < 0.05
    assert infer.main([*argv[:-4], "--out", str(tmp_path / "x"), "--lm", str(tmp_path / "no.json")]) == 1


def test_lm_text_is_fitted_with_the_transcripts(eight_utterances, tmp_path, capsys):
    data, vocab = eight_utterances, Vocab.load(eight_utterances / "vocab.json")
    text = tmp_path / "more.txt"
    text.write_text("A WORD THE TRANSCRIPTS NEVER SAY\n" * 3, encoding="utf-8")
    unseen = [vocab.encode("A WORD THE TRANSCRIPTS NEVER SAY")]
    perplexity, exp = {}, tmp_path / "lm"
    for name, setting in (("plain", ""), ("more", str(text)), ("more again", str(text))):
        config = resolve_config(ASRRecipeConfig, TINY, ["lm.order=4", f"lm.text={setting}"])
        source = lm_text_path(config, data)
        assert source == (text if setting else None)
        written = write_lm(config, data / "train.jsonl", vocab, exp, source)
        # fitted when the lm settings change, kept when a run resumes with the same ones
        assert (written is None) == (name == "more again")
        perplexity[name] = CharNgramLM.load(exp / "lm.json").perplexity(unseen)
    assert perplexity["more"] == perplexity["more again"] < 2.0 < perplexity["plain"]
    # a missing LM text stops training before the experiment folder is made
    exp = tmp_path / "exp"
    argv = ["--config", str(TINY), "--data", str(data), "--exp", str(exp), "lm.order=4",
            "lm.text=lm_text.txt"]  # fmt: skip
    assert training.main(argv) == 1
    assert "lm_text.txt does not exist" in capsys.readouterr().err and not exp.exists()


def test_validation_stays_greedy_when_the_config_decodes_with_an_lm(eight_utterances):
    config = resolve_config(ASRRecipeConfig, TINY, ["search.lm_weight=0.3", "search.beam_size=4"])
    task = build_task(config, eight_utterances)
    assert task.search.lm_weight == 0 and task.search.beam_size == 1
    assert 0.0 <= task.validate(task.model, step=0)["cer"]  # an LM weight here once crashed training


def test_training_step_feeds_the_configured_objective_to_the_model(eight_utterances):
    overrides = ["objective.token_noise=0.25", "objective.feedback.probability=0.5"]
    task = build_task(resolve_config(ASRRecipeConfig, TINY, overrides), eight_utterances)
    calls = []

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return task.model(*args, **kwargs)

    loss, _ = task.training_step(spy, task.make_batch([0, 1]), step=10)
    assert calls == [{"feedback": 0.5, "token_noise": 0.25}] and loss.item() > 0


def test_load_asr_and_transcribe_files_and_tensors(overfit):
    data, exp, _ = overfit
    asr = load_asr(exp)
    assert not asr.model.training and len(asr.vocab) == asr.model.vocab_size
    rows = read_manifest(data / "dev.jsonl")[:3]
    texts = transcribe(asr, [r["audio"] for r in rows], SearchConfig(beam_size=2))
    assert sum(t == r["text"] for t, r in zip(texts, rows, strict=True)) >= 2
    import soundfile

    wave, rate = soundfile.read(rows[0]["audio"], dtype="float32")
    assert transcribe(asr, [torch.from_numpy(wave)], sample_rate=rate) == texts[:1]


def test_cli_transcribe_prints_one_line_per_file(overfit, capsys):
    """``speechattn transcribe --exp EXP a.flac b.flac``: one ``path<TAB>text`` line per file,
    the same text as the Python API, and the overfit utterances come back nearly verbatim."""
    from speechattn.api import ASR
    from speechattn.cli import main
    from speechattn.metrics import error_rates

    data, exp, _ = overfit
    rows = read_manifest(data / "dev.jsonl")[:3]
    assert main(["transcribe", "--exp", str(exp), *(r["audio"] for r in rows)]) == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [line[0] for line in lines] == [r["audio"] for r in rows]
    texts = [line[1] for line in lines]
    assert texts == [ASR.load(exp).transcribe(r["audio"]) for r in rows]
    assert error_rates([r["text"] for r in rows], texts).cer < 0.1


def test_interrupted_training_resumes_exactly(eight_utterances, tmp_path, one_thread):
    """2 steps, stop, resume to 4 == 4 steps straight (with dropout, SpecAugment, scheduled
    sampling and token noise drawing random numbers, and a learning-rate schedule that does not
    depend on max_steps)."""
    common = ["--config", str(TINY), "--data", str(eight_utterances), "train.progress=false",
              "train.checkpoint_every=2", "train.valid_every=1000", "train.decay_steps=50",
              "model.encoder.dropout=0.2", "model.decoder.dropout=0.2",
              "model.specaugment.freq_masks=1", "model.specaugment.time_masks=1",
              "objective.feedback.probability=0.5", "objective.feedback.end=2", "objective.token_noise=0.2",
              "search.max_length_offset=2", "search.max_length_ratio=0.5"]  # fmt: skip
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert training.main([*common, "--exp", str(straight), "train.max_steps=4"]) == 0
    assert training.main([*common, "--exp", str(resumed), "train.max_steps=2"]) == 0
    assert training.main([*common, "--exp", str(resumed), "train.max_steps=4"]) == 0
    final = [
        torch.load(p / "checkpoints" / "step-0000004.pt", weights_only=True)
        for p in (straight, resumed)
    ]
    assert final[0]["model"].keys() == final[1]["model"].keys()
    for name, value in final[0]["model"].items():
        torch.testing.assert_close(final[1]["model"][name], value, msg=name)
