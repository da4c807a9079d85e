"""The one trainer both recipes use: batching, optimization, checkpoints, exact resume, DDP, logs.

A recipe hands the trainer a :class:`Task` (the model plus how to batch, score and validate it)
and a :class:`TrainConfig`. The trainer owns everything else:

- length-bucketed batches under a frames budget (:class:`~speechattn.data.batching.BucketBatchSampler`);
- Adam(W) with linear warmup then cosine decay to ``min_lr``; gradient clipping; AMP when asked;
- a non-finite loss or gradient skips the batch with a warning, so the weights are never poisoned;
- ``exp/checkpoints/step-XXXXXXX.pt`` every ``checkpoint_every`` steps, written atomically, holding
  model, optimizer, scheduler, RNG states and sampler position: re-running on the same exp dir resumes
  exactly where the last checkpoint left off (a killed run loses at most ``checkpoint_every`` steps);
- ``exp/best.pt`` kept by the task's validation metric (e.g. dev CER);
- a tqdm bar with loss and rate, ``exp/log.jsonl`` and TensorBoard scalars and media;
- DistributedDataParallel when started by ``torchrun`` (gloo on CPU, nccl on GPUs).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from speechattn.checkpoint import (
    WarmStart,
    load_checkpoint,
    load_model_state,
    save_atomic,
    warm_start,
)
from speechattn.data.batching import BucketBatchSampler
from speechattn.experiment import find_checkpoint, hold_experiment
from speechattn.fileio import (
    ensure_folder,
    remove_stale_temps,
    write_text_atomic,
)

__all__ = [
    "TrainConfig",
    "Task",
    "TrainResult",
    "Trainer",
    "load_checkpoint",
    "load_model_state",
    "WarmStart",
    "warm_start",
    "save_atomic",
    "to_device",
    "lr_factor",
]

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = "speechattn-train-v1"
MODEL_FORMAT = "speechattn-model-v1"


@dataclass
class TrainConfig:
    """Optimization and bookkeeping settings shared by every recipe."""

    max_steps: int = 1000
    lr: float = 1e-3
    warmup_steps: int = 200
    min_lr: float = 1e-5
    # After warmup: None -> inverse square root decay (independent of max_steps, so a run resumed
    # with a larger max_steps continues the same schedule); N -> cosine decay over N steps.
    decay_steps: int | None = None
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    max_frames: int = 20000  # padded input frames per batch
    checkpoint_every: int = 200
    valid_every: int = 200
    keep_checkpoints: int = 3
    log_every: int = 10
    media_every: int = 500
    amp: bool = False
    seed: int = 0
    progress: bool = True
    # Warm start: an experiment folder (its best.pt, else its newest checkpoint) or a checkpoint
    # file whose weights a FRESH run starts from (same name and shape; vocabulary rows mapped by
    # character); optimizer and step start afresh. A run with checkpoints resumes from them.
    init_from: str | None = None


class Task(Protocol):
    """What a recipe gives the trainer. ``model`` may be wrapped in DDP by the trainer."""

    model: nn.Module
    metric: str
    metric_mode: str

    def train_lengths(self) -> list[int]: ...

    def make_batch(self, indices: list[int]) -> Any: ...

    def training_step(self, model: nn.Module, batch: Any, step: int) -> tuple[Tensor, dict]: ...

    def validate(self, model: nn.Module, step: int) -> dict[str, float]: ...

    def log_media(self, writer: Any, model: nn.Module, step: int) -> None: ...

    def batch_seconds(self, batch: Any) -> float: ...

    # Optional: ``vocab_rows(source_checkpoint) -> {tensor name: row map or None}`` for a warm
    # start (see :func:`warm_start`); a task without it gets plain name-and-shape loading.


class TrainResult(NamedTuple):
    step: int
    best_metric: float | None
    resumed_from: int | None


def lr_factor(step: int, config: TrainConfig) -> float:
    """Multiplier of ``config.lr`` at ``step``: linear warmup, then decay, never below ``min_lr``."""
    warmup = max(config.warmup_steps, 1)
    if step < warmup:
        return (step + 1) / warmup
    floor = config.min_lr / config.lr
    if config.decay_steps is None:
        return max(math.sqrt(warmup / (step + 1)), floor)
    progress = min((step - warmup) / max(config.decay_steps, 1), 1.0)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor inside tuples, lists, dicts, NamedTuples and dataclasses to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(to_device(x, device) for x in batch))
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(x, device) for x in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if hasattr(batch, "__dataclass_fields__"):
        return type(batch)(**{k: to_device(getattr(batch, k), device) for k in batch.__dataclass_fields__})
    return batch


def _rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [x.tolist() if isinstance(x, np.ndarray) else x for x in np.random.get_state()],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _init_distributed() -> tuple[int, int, torch.device]:
    """(rank, world size, device); starts the process group when run under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    rank = dist.get_rank() if dist.is_initialized() else 0
    return rank, world, device


class Trainer:
    """Trains ``task.model`` into ``exp_dir``; see the module docstring."""

    def __init__(self, task: Task, config: TrainConfig, exp_dir: str | Path) -> None:
        if config.max_steps < 0:
            raise ValueError(f"max_steps must be >= 0, got {config.max_steps}")
        if task.metric_mode not in ("min", "max"):
            raise ValueError(f"task.metric_mode must be 'min' or 'max', got {task.metric_mode!r}")
        self.task, self.config, self.exp_dir = task, config, Path(exp_dir)
        self.rank, self.world, self.device = _init_distributed()
        self.model = task.model.to(self.device)
        self.wrapped: nn.Module = self.model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.wrapped = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        optimizer_cls = torch.optim.AdamW if config.weight_decay > 0 else torch.optim.Adam
        self.optimizer = optimizer_cls(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, config)
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.amp and self.device.type == "cuda")
        self.sampler = BucketBatchSampler(
            task.train_lengths(), config.max_frames, shuffle=True, seed=config.seed,
            num_replicas=self.world, rank=self.rank,
        )
        self.step = self.epoch = self.batches_done = self.skipped = 0
        self.best: float | None = None
        self.resumed_from: Path | None = None
        self._writer: Any = None

    # -- bookkeeping ---------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.exp_dir / "checkpoints"

    def checkpoints(self) -> list[Path]:
        """Saved checkpoints, oldest first."""
        return sorted(self.checkpoint_dir.glob("step-*.pt"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def _log_event(self, split: str, values: dict[str, float]) -> None:
        if not self.is_main:
            return
        record = {"step": self.step, "split": split, **values, "time": round(time.time(), 3)}
        with open(self.exp_dir / "log.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        writer = self.writer
        if writer is not None:
            for key, value in values.items():
                writer.add_scalar(f"{split}/{key}", value, self.step)

    @property
    def writer(self) -> Any:
        if self._writer is None and self.is_main:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # TensorBoard is optional for users who bring their own env
                self._writer = False
            else:
                self._writer = SummaryWriter(str(self.exp_dir / "tensorboard"))
        return self._writer or None

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batches_done": self.batches_done,
            "best": self.best,
            "skipped": self.skipped,
            "rng": _rng_state(),
        }

    def save_checkpoint(self) -> Path | None:
        if not self.is_main:
            return None
        path = save_atomic(self.state_dict(), self.checkpoint_dir / f"step-{self.step:07d}.pt")
        for old in self.checkpoints()[: -self.config.keep_checkpoints]:
            old.unlink(missing_ok=True)
        return path

    def resume(self) -> int | None:
        """Load the newest checkpoint in ``exp_dir`` that loads; returns its step, or None for a
        fresh run. Damaged newer ones are renamed to ``*.pt.damaged`` with a warning."""
        checkpoints = self.checkpoints()
        if not checkpoints:
            return None
        state, path = self._newest_loadable(checkpoints)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path}: not a speechattn training checkpoint")
        load_model_state(self.model, state["model"], path,
                         "use a new --exp folder or the config it was trained with",
                         "does not match this model's config")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self._apply_config_lr()
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch = state["step"], state["epoch"]
        self.batches_done, self.best = state["batches_done"], state["best"]
        self.skipped = state.get("skipped", 0)
        _set_rng_state(state["rng"])
        self.resumed_from = path
        return self.step

    def _newest_loadable(self, checkpoints: list[Path]) -> tuple[dict[str, Any], Path]:
        damaged: list[tuple[Path, str]] = []
        for path in reversed(checkpoints):
            try:
                state = load_checkpoint(path)
            except ValueError as error:
                damaged.append((path, str(error)))
                continue
            for bad, reason in damaged:
                aside = bad.with_name(bad.name + ".damaged")
                if self.is_main:
                    os.replace(bad, aside)
                log.warning("%s; renamed to %s, resuming from %s instead", reason, aside.name, path)
            return state, path
        raise ValueError(
            f"{self.checkpoint_dir}: none of the {len(checkpoints)} checkpoint(s) loads "
            f"(newest: {damaged[0][1]}); move them away to start afresh, or use a new --exp folder"
        )

    def _apply_config_lr(self) -> None:
        """After loading optimizer and scheduler states: the config's ``lr`` and ``weight_decay``
        win over the saved ones (a resumed run may change them), the schedule's step is kept."""
        config, saved = self.config, self.scheduler.base_lrs[0]
        if saved != config.lr:
            log.info("train.lr changed from %g to %g: the schedule goes on from step %d with it",
                     saved, config.lr, self.scheduler.last_epoch)
        self.scheduler.base_lrs = [config.lr] * len(self.optimizer.param_groups)
        for group in self.optimizer.param_groups:
            group["initial_lr"] = config.lr
            group["lr"] = config.lr * lr_factor(self.scheduler.last_epoch, config)
            group["weight_decay"] = config.weight_decay

    # -- training ------------------------------------------------------------------------------
    def _all_ranks_finite(self, value: Tensor) -> bool:
        finite = torch.isfinite(value.detach()).all().float().reshape(1)
        if self.world > 1:
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        return bool(finite.item())

    def train_step(self, batch: Any) -> dict[str, float] | None:
        """One optimizer update; returns the logs, or None when the batch was skipped."""
        self.wrapped.train()
        self.optimizer.zero_grad(set_to_none=True)
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        with torch.autocast(self.device.type, dtype=dtype, enabled=self.config.amp):
            loss, logs = self.task.training_step(self.wrapped, batch, self.step)
        if not self._all_ranks_finite(loss):
            log.warning("step %d: non-finite loss %s, batch skipped", self.step, loss.item())
            return None
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        if not self._all_ranks_finite(norm):
            log.warning("step %d: non-finite gradient norm, batch skipped", self.step)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.update()
            return None
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return {"loss": float(loss.detach()), "grad_norm": float(norm), **logs}

    def _batches(self) -> Iterator[list[int]]:
        """Batches from the current sampler position onwards, across epochs."""
        while True:
            self.sampler.set_epoch(self.epoch)
            self.sampler.load_state_dict({"epoch": self.epoch, "batches_done": self.batches_done})
            for indices in self.sampler:
                self.batches_done += 1
                yield indices
            self.epoch += 1
            self.batches_done = 0

    def validate(self) -> dict[str, float]:
        """Run the task's validation without touching the training RNG streams."""
        self.model.eval()
        devices = [self.device.index] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            metrics = self.task.validate(self.model, self.step)
        if self.task.metric not in metrics:
            raise KeyError(f"task.validate returned {sorted(metrics)}, without {self.task.metric!r}")
        self._log_event("valid", metrics)
        value = metrics[self.task.metric]
        better = self.best is None or (
            value < self.best if self.task.metric_mode == "min" else value > self.best
        )
        if better:
            self.best = value
            save_atomic(
                {"format": MODEL_FORMAT, "model": self.model.state_dict(), "step": self.step,
                 "metric": {self.task.metric: value}},
                self.exp_dir / "best.pt",
            )
        log.info("step %d: %s (best %s %.4f)", self.step, _fmt(metrics), self.task.metric, self.best)
        return metrics

    def _after_step(self, logs: dict[str, float], window: dict[str, float]) -> None:
        config = self.config
        if self.step % config.log_every == 0 and window["steps"]:
            elapsed = max(time.perf_counter() - window["start"], 1e-9)
            self._log_event("train", {
                **{k: float(v) for k, v in logs.items()},
                "lr": self.scheduler.get_last_lr()[0],
                "audio_seconds_per_second": window["seconds"] / elapsed,
                "skipped": self.skipped,
            })
            window.update(start=time.perf_counter(), seconds=0.0, steps=0)
        last = self.step == config.max_steps
        if self.is_main and (self.step % config.valid_every == 0 or last):
            self.validate()
        if self.is_main and config.media_every and self.step % config.media_every == 0 and self.writer:
            self.model.eval()
            with torch.random.fork_rng(devices=[]), torch.no_grad():
                self.task.log_media(self.writer, self.model, self.step)
        # The final step is validated before it is saved, so its checkpoint knows the final best.
        if self.step % config.checkpoint_every == 0 or last:
            self.save_checkpoint()
        if self.world > 1:
            dist.barrier()

    def fit(self) -> TrainResult:
        """Train until ``max_steps`` (resuming first if ``exp_dir`` holds checkpoints).

        The main process holds ``exp_dir`` (:func:`speechattn.fileio.hold_folder`) for the whole
        run: a second training on the same folder is refused, naming this one's pid."""
        ensure_folder(self.exp_dir)
        with hold_experiment(self.exp_dir):
            if self.is_main:
                self._clean_interrupted_writes()
            return self._fit()

    def _fit(self) -> TrainResult:
        torch.manual_seed(self.config.seed)
        random.seed(self.config.seed)
        np.random.seed(self.config.seed)
        resumed = self.resume()
        if resumed is None and self.config.init_from:
            self._warm_start(Path(self.config.init_from))
        if self.is_main:
            self._truncate_log(-1 if resumed is None else resumed)
        if resumed is not None:
            log.info("resuming from %s at step %d (max_steps=%d)",
                     self.resumed_from, resumed, self.config.max_steps)
        if self.step >= self.config.max_steps:
            log.info("already trained to step %d >= max_steps=%d: nothing to do",
                     self.step, self.config.max_steps)
            if not (self.exp_dir / "best.pt").is_file() and self.is_main:
                self.validate()
            return TrainResult(self.step, self.best, resumed)
        self._loop()
        return TrainResult(self.step, self.best, resumed)

    def _warm_start(self, source: Path) -> None:
        """Start a fresh run from ``source``'s weights (``train.init_from``); log what was not
        loaded. Every rank does the same, so the replicas start equal."""
        path = find_checkpoint(source) if source.is_dir() else source
        state = load_checkpoint(path)["model"]
        rows = self.task.vocab_rows(path) if hasattr(self.task, "vocab_rows") else None
        done = warm_start(self.model, state, rows)
        if not done.loaded and not done.remapped:
            raise ValueError(f"{path}: train.init_from shares no tensor with this model; "
                             "check that it is a model of the same kind")
        log.info("warm start from %s: %d tensors loaded, %d mapped by character; %d left as "
                 "initialized%s", path, len(done.loaded), len(done.remapped), len(done.fresh),
                 (": " + "; ".join(done.fresh)) if done.fresh else "")

    def _clean_interrupted_writes(self) -> None:
        """Temp files of checkpoint writes that a kill interrupted (each a whole checkpoint)."""
        removed = remove_stale_temps(self.exp_dir, "*.pt") + remove_stale_temps(
            self.checkpoint_dir, "step-*.pt")
        # The names earlier versions gave them: .step-0000200.pt.tmp<pid>
        for legacy in [*self.exp_dir.glob(".*.pt.tmp[0-9]*"),
                       *self.checkpoint_dir.glob(".step-*.pt.tmp[0-9]*")]:
            legacy.unlink(missing_ok=True)
            removed.append(legacy)
        for path in removed:
            log.info("removed %s, left by an interrupted checkpoint write", path)

    def _truncate_log(self, step: int) -> None:
        """Drop ``log.jsonl`` rows after ``step`` (-1: all): the steps about to be replayed would
        log them again, and the curves would double back."""
        path = self.exp_dir / "log.jsonl"
        if not path.is_file():
            return
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if _log_step(line) <= step]
        if len(kept) != len(lines):
            write_text_atomic(path, "".join(kept))
            log.info("%s: dropped %d row(s) after step %d, which this run replays",
                     path, len(lines) - len(kept), step)

    def _loop(self) -> None:
        from tqdm import tqdm

        config = self.config
        bar = tqdm(total=config.max_steps, initial=self.step, desc="train", unit="step",
                   disable=not (config.progress and self.is_main), dynamic_ncols=True)
        window = {"start": time.perf_counter(), "seconds": 0.0, "steps": 0}
        batches = self._batches()
        last_logs: dict[str, float] = {}
        while self.step < config.max_steps:
            batch = self.task.make_batch(next(batches))
            window["seconds"] += self.task.batch_seconds(batch)
            logs = self.train_step(to_device(batch, self.device))
            if logs is None:
                self.skipped += 1
            else:
                last_logs = logs
            with warnings.catch_warnings():
                # A skipped first batch calls the scheduler before any optimizer step: harmless.
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
                self.scheduler.step()
            self.step += 1
            window["steps"] += 1
            bar.update(1)
            if last_logs:
                rate = window["seconds"] / max(time.perf_counter() - window["start"], 1e-9)
                bar.set_postfix(loss=f"{last_logs['loss']:.3f}", audio_x=f"{rate:.1f}")
            self._after_step(last_logs, window)
        bar.close()


def _log_step(line: str) -> float:
    """The step of one ``log.jsonl`` row; a torn or foreign row counts as after every step."""
    try:
        step = json.loads(line).get("step")
    except (json.JSONDecodeError, AttributeError):
        return math.inf
    return step if isinstance(step, int) else math.inf


def _fmt(values: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
