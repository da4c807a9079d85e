"""Tests for speechattn/train.py on a toy task: exact resume, skipped batches, checkpoints."""

import json
import logging
import math

import pytest
import torch
from torch import nn

from speechattn.train import (
    TrainConfig,
    Trainer,
    load_checkpoint,
    lr_factor,
    save_atomic,
)


class ToyTask:
    """Regress the sum of a variable-length sequence; dropout makes the RNG state matter."""

    metric = "mse"
    metric_mode = "min"

    def __init__(self, poison_steps=()):
        torch.manual_seed(123)
        self.model = nn.Sequential(nn.Linear(3, 16), nn.Dropout(0.3), nn.Tanh(), nn.Linear(16, 1))
        generator = torch.Generator().manual_seed(7)
        self.lengths = torch.randint(2, 9, (40,), generator=generator).tolist()
        self.inputs = [torch.randn(n, 3, generator=generator) for n in self.lengths]
        self.targets = [x.sum() for x in self.inputs]
        self.poison_steps = set(poison_steps)

    def train_lengths(self):
        return self.lengths

    def make_batch(self, indices):
        x = nn.utils.rnn.pad_sequence([self.inputs[i] for i in indices], batch_first=True)
        return x, torch.stack([self.targets[i] for i in indices])

    def training_step(self, model, batch, step):
        x, y = batch
        noise = torch.randn_like(x) * 0.01  # consumes the global RNG like SpecAugment would
        loss = (model(x + noise).sum(dim=(1, 2)) - y).pow(2).mean()
        if step in self.poison_steps:
            loss = loss * float("nan")
        return loss, {"noise": float(noise.abs().mean())}

    def validate(self, model, step):
        x, y = self.make_batch(range(10))
        return {"mse": float((model(x).sum(dim=(1, 2)) - y).pow(2).mean())}

    def log_media(self, writer, model, step):
        pass

    def batch_seconds(self, batch):
        return float(batch[0].shape[0])


def config(**overrides):
    base = dict(max_steps=12, lr=1e-2, warmup_steps=3, max_frames=24, checkpoint_every=5,
                valid_every=4, log_every=2, media_every=0, progress=False, seed=3)
    base.update(overrides)
    return TrainConfig(**base)


def weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    straight = ToyTask()
    Trainer(straight, config(max_steps=14), tmp_path / "a").fit()

    first = ToyTask()
    Trainer(first, config(max_steps=7, checkpoint_every=7), tmp_path / "b").fit()
    second = ToyTask()
    result = Trainer(second, config(max_steps=14, checkpoint_every=7), tmp_path / "b").fit()
    assert result.resumed_from == 7 and result.step == 14
    # Same batches, dropout masks and noise in the same order: equal to float rounding.
    torch.testing.assert_close(weights(second.model), weights(straight.model), atol=1e-6, rtol=0)
    assert not torch.allclose(weights(second.model), weights(ToyTask().model))


def test_rerun_at_max_steps_does_nothing_and_says_so(tmp_path, caplog):
    Trainer(ToyTask(), config(max_steps=5), tmp_path).fit()
    before = load_checkpoint(tmp_path / "checkpoints" / "step-0000005.pt")["model"]
    with caplog.at_level(logging.INFO, logger="speechattn.train"):
        result = Trainer(ToyTask(), config(max_steps=5), tmp_path).fit()
    assert result.step == 5 and "nothing to do" in caplog.text
    after = load_checkpoint(tmp_path / "checkpoints" / "step-0000005.pt")["model"]
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_resumed_run_takes_the_new_learning_rate(tmp_path, caplog):
    Trainer(ToyTask(), config(max_steps=5), tmp_path).fit()
    changed = config(max_steps=8, lr=1e-3, decay_steps=20)
    trainer = Trainer(ToyTask(), changed, tmp_path)
    with caplog.at_level(logging.INFO, logger="speechattn.train"):
        assert trainer.resume() == 5
    assert "train.lr changed from 0.01 to 0.001" in caplog.text
    # The step the run resumes with uses the new base rate on the new schedule, and so do the next.
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * lr_factor(5, changed))
    trainer.fit()
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * lr_factor(8, changed))


def test_non_finite_loss_skips_the_batch_without_touching_weights(tmp_path, caplog):
    task = ToyTask(poison_steps={0, 1, 2})
    trainer = Trainer(task, config(max_steps=3, valid_every=100, checkpoint_every=100), tmp_path)
    initial = weights(task.model).clone()
    with caplog.at_level(logging.WARNING, logger="speechattn.train"):
        trainer.fit()
    assert trainer.skipped == 3 and "non-finite loss" in caplog.text
    assert torch.equal(weights(task.model), initial)
    assert torch.isfinite(weights(task.model)).all()


def test_checkpoints_best_and_logs_are_written(tmp_path):
    trainer = Trainer(ToyTask(), config(max_steps=12, keep_checkpoints=2), tmp_path)
    trainer.fit()
    names = [p.name for p in trainer.checkpoints()]
    assert names == ["step-0000010.pt", "step-0000012.pt"]  # every 5, plus the final step, keep 2
    best = load_checkpoint(tmp_path / "best.pt")
    events = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    valid = [e for e in events if e["split"] == "valid"]
    assert [e["step"] for e in valid] == [4, 8, 12]
    assert best["metric"]["mse"] == pytest.approx(min(e["mse"] for e in valid))
    train = [e for e in events if e["split"] == "train"]
    assert [e["step"] for e in train] == [2, 4, 6, 8, 10, 12]
    assert all(math.isfinite(e["loss"]) and e["audio_seconds_per_second"] > 0 for e in train)
    assert not list(tmp_path.rglob("*.tmp*"))


def test_the_final_checkpoint_knows_the_final_validation(tmp_path):
    # Step 10 is a checkpoint step but not a validation step: it is validated before it is saved.
    Trainer(ToyTask(), config(max_steps=10, valid_every=4, checkpoint_every=5), tmp_path).fit()
    events = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    valid = [e for e in events if e["split"] == "valid"]
    assert [e["step"] for e in valid] == [4, 8, 10]
    final = load_checkpoint(tmp_path / "checkpoints" / "step-0000010.pt")
    assert final["best"] == pytest.approx(min(e["mse"] for e in valid))
    result = Trainer(ToyTask(), config(max_steps=10, valid_every=4, checkpoint_every=5), tmp_path).fit()
    assert result.best_metric == final["best"]


def test_load_checkpoint_rejects_foreign_and_truncated_files(tmp_path):
    foreign = tmp_path / "foreign.pt"
    save_atomic({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match="foreign.pt: not a speechattn checkpoint"):
        load_checkpoint(foreign)
    good = save_atomic({"model": {"w": torch.zeros(100)}}, tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:50])
    with pytest.raises(ValueError, match="truncated.pt"):
        load_checkpoint(truncated)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_load_checkpoint_refuses_pickled_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": Evil()}, path)
    with pytest.raises(ValueError, match="evil.pt"):
        load_checkpoint(path)


def test_resume_into_a_different_model_is_a_clear_error(tmp_path):
    Trainer(ToyTask(), config(max_steps=5), tmp_path).fit()
    other = ToyTask()
    other.model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.3), nn.Tanh(), nn.Linear(8, 1))
    with pytest.raises(ValueError, match="does not match this model"):
        Trainer(other, config(max_steps=10), tmp_path).fit()


def test_lr_schedule_warms_up_then_decays_to_min_lr():
    cosine = TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=4, decay_steps=10)
    factors = [lr_factor(s, cosine) for s in range(16)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[4] == pytest.approx(1.0)
    assert factors[9] == pytest.approx(0.1 + 0.9 * 0.5)  # half way through the cosine
    assert factors[14] == pytest.approx(0.1) and factors[15] == pytest.approx(0.1)
    inverse_sqrt = TrainConfig(lr=1.0, min_lr=0.3, warmup_steps=4, decay_steps=None)
    assert lr_factor(3, inverse_sqrt) == 1.0
    assert lr_factor(15, inverse_sqrt) == pytest.approx(0.5)  # sqrt(4 / 16)
    assert lr_factor(1000, inverse_sqrt) == pytest.approx(0.3)


class Crash(RuntimeError):
    pass


def test_a_crashed_run_resumes_from_its_last_checkpoint(tmp_path):
    straight = ToyTask()
    Trainer(straight, config(max_steps=12), tmp_path / "a").fit()

    crashing = ToyTask()
    original = crashing.training_step

    def crash_at_8(model, batch, step):
        if step == 8:
            raise Crash("killed")
        return original(model, batch, step)

    crashing.training_step = crash_at_8
    trainer = Trainer(crashing, config(max_steps=12), tmp_path / "b")
    with pytest.raises(Crash):
        trainer.fit()
    assert [p.name for p in trainer.checkpoints()] == ["step-0000005.pt"]
    resumed = ToyTask()
    result = Trainer(resumed, config(max_steps=12), tmp_path / "b").fit()
    assert result.resumed_from == 5
    torch.testing.assert_close(weights(resumed.model), weights(straight.model), atol=1e-6, rtol=0)


def _log_steps(exp, split):
    rows = [json.loads(line) for line in (exp / "log.jsonl").read_text().splitlines()]
    return [row["step"] for row in rows if row["split"] == split]


def test_a_resume_logs_each_replayed_step_once(tmp_path):
    """Killed after step 7 with the last checkpoint at 5: steps 6-7 are trained again, and their
    rows replace the first run's instead of following them (curves never double back)."""
    Trainer(ToyTask(), config(max_steps=7), tmp_path).fit()
    (tmp_path / "checkpoints" / "step-0000007.pt").unlink()  # as if killed before that write
    with (tmp_path / "log.jsonl").open("a") as log:
        log.write('{"step": 7, "split": "tr')  # a row torn by the kill
    Trainer(ToyTask(), config(max_steps=12), tmp_path).fit()
    assert _log_steps(tmp_path, "train") == [2, 4, 6, 8, 10, 12]
    assert _log_steps(tmp_path, "valid") == [4, 8, 12]


def test_temp_files_of_an_interrupted_checkpoint_write_are_removed(tmp_path, caplog):
    Trainer(ToyTask(), config(max_steps=5), tmp_path).fit()
    leftovers = [tmp_path / "checkpoints" / ".step-0000010.pt.k3j2.tmp",
                 tmp_path / "checkpoints" / ".step-0000010.pt.tmp4242",  # earlier versions' name
                 tmp_path / ".best.pt.a8x.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a checkpoint")
    keep = tmp_path / ".notes.txt.tmp"
    keep.write_text("not ours")
    with caplog.at_level(logging.INFO, logger="speechattn.train"):
        Trainer(ToyTask(), config(max_steps=10), tmp_path).fit()
    assert not any(path.exists() for path in leftovers) and keep.exists()
    assert "left by an interrupted checkpoint write" in caplog.text


def test_a_damaged_newest_checkpoint_falls_back_to_the_older_one(tmp_path, caplog):
    straight = ToyTask()
    Trainer(straight, config(max_steps=10), tmp_path / "a").fit()
    Trainer(ToyTask(), config(max_steps=10), tmp_path / "b").fit()
    newest = tmp_path / "b" / "checkpoints" / "step-0000010.pt"
    newest.write_bytes(newest.read_bytes()[:1000])
    resumed = ToyTask()
    with caplog.at_level(logging.WARNING, logger="speechattn.train"):
        result = Trainer(resumed, config(max_steps=10), tmp_path / "b").fit()
    assert result.resumed_from == 5 and result.step == 10
    assert "step-0000010.pt: not a loadable" in caplog.text and "resuming from" in caplog.text
    assert newest.with_name("step-0000010.pt.damaged").read_bytes() != b""
    torch.testing.assert_close(weights(resumed.model), weights(straight.model), atol=1e-6, rtol=0)


def test_when_no_checkpoint_loads_the_resume_stops_and_keeps_them(tmp_path):
    Trainer(ToyTask(), config(max_steps=10), tmp_path).fit()
    for path in (tmp_path / "checkpoints").glob("step-*.pt"):
        path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"none of the 2 checkpoint\(s\) loads"):
        Trainer(ToyTask(), config(max_steps=12), tmp_path).fit()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step-0000005.pt", "step-0000010.pt"]


def test_a_mismatched_checkpoint_names_the_keys_and_shapes(tmp_path):
    Trainer(ToyTask(), config(max_steps=5), tmp_path).fit()
    other = ToyTask()
    other.model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.3), nn.Tanh(), nn.Linear(8, 1),
                                nn.Linear(1, 1))
    with pytest.raises(ValueError) as error:
        Trainer(other, config(max_steps=10), tmp_path).fit()
    message = str(error.value)
    assert "missing 4.weight, 4.bias" in message
    assert "0.weight (16, 3) vs (8, 3)" in message and "3.weight (1, 16) vs (1, 8)" in message


def test_a_refused_checkpoint_never_suggests_unsafe_loading(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": Evil()}, path)
    with pytest.raises(ValueError) as error:
        load_checkpoint(path)
    assert "not a plain tensor file" in str(error.value)
    assert "weights_only" not in str(error.value)


def test_init_from_loads_matching_tensors_and_lists_the_rest(tmp_path, caplog):
    source = ToyTask()
    Trainer(source, config(max_steps=5), tmp_path / "source").fit()
    saved = load_checkpoint(tmp_path / "source" / "best.pt")["model"]
    target = ToyTask()
    target.model[3] = nn.Linear(16, 2)  # another output layer: 3.weight / 3.bias stay fresh
    fresh = {k: v.clone() for k, v in target.model.state_dict().items()}
    trainer = Trainer(target, config(max_steps=0, init_from=str(tmp_path / "source")),
                      tmp_path / "target")
    with caplog.at_level(logging.INFO, logger="speechattn.train"):
        trainer.fit()
    state = target.model.state_dict()
    for name in ("0.weight", "0.bias"):
        assert torch.equal(state[name], saved[name]), name
    for name in ("3.weight", "3.bias"):
        assert torch.equal(state[name], fresh[name]), name
    assert "2 tensors loaded, 0 mapped by character; 2 left as initialized" in caplog.text
    assert "3.weight: shape (1, 16) in the source, (2, 16) here" in caplog.text


def test_a_resumed_run_never_warm_starts_again(tmp_path):
    Trainer(ToyTask(), config(max_steps=5), tmp_path / "source").fit()
    warm = config(max_steps=5, init_from=str(tmp_path / "source"))
    first = ToyTask()
    Trainer(first, warm, tmp_path / "exp").fit()
    again = ToyTask()
    result = Trainer(again, warm, tmp_path / "exp").fit()
    assert result.resumed_from == 5
    torch.testing.assert_close(weights(again.model), weights(first.model), atol=0, rtol=0)
    source = load_checkpoint(tmp_path / "source" / "best.pt")["model"]
    assert not torch.equal(again.model.state_dict()["0.weight"], source["0.weight"])


def test_warm_start_maps_vocabulary_rows_by_character():
    from speechattn.text import Vocab
    from speechattn.train import warm_start

    old, new = Vocab(["A", "B", "C"]), Vocab(["B", "C", "D"])
    source = nn.Embedding(len(old), 2)
    target = nn.Embedding(len(new), 2)
    before = target.weight.detach().clone()
    done = warm_start(target, source.state_dict(), {"weight": new.rows_from(old)})
    assert done.remapped == ["weight"] and done.loaded == [] and done.fresh == []
    w, s = target.weight.detach(), source.weight.detach()
    for char in "BC":
        assert torch.equal(w[new.encode(char)[0]], s[old.encode(char)[0]])
    assert torch.equal(w[:4], s[:4])  # the reserved ids keep their rows
    assert torch.equal(w[new.encode("D")[0]], before[new.encode("D")[0]])  # unknown to the source
    unknown = warm_start(nn.Embedding(len(new), 2), source.state_dict(), {"weight": None})
    assert unknown.fresh == ["weight: source vocabulary unknown"]


def test_init_from_a_model_of_another_kind_is_refused(tmp_path):
    save_atomic({"model": {"encoder.weight": torch.zeros(3)}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: train.init_from shares no tensor"):
        Trainer(ToyTask(), config(max_steps=1, init_from=str(tmp_path / "other.pt")),
                tmp_path / "exp").fit()
