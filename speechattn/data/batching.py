"""Length-bucketed batches under a padded-frame budget, resumable and DDP-sharded.

Shape letters: B batch, L sequence length (frames or tokens).

``BucketBatchSampler`` sorts items by length (longest first) and packs consecutive items
greedily while ``max length x count <= max_frames``, so every batch costs about the same
memory. Batch *composition* is fixed for the sampler's lifetime (it depends only on the
lengths and ``max_frames``); the *order* of the batches is shuffled per epoch with
``random.Random(seed + epoch)``, identically on every rank, and then dealt round-robin to
the ranks.

Example:
    >>> sampler = BucketBatchSampler([5, 3, 8, 2], max_frames=8, shuffle=False)
    >>> list(sampler)
    [[2], [0], [1, 3]]
    >>> padded, lengths = pad_sequence_batch([torch.ones(2), torch.ones(3)])
    >>> padded.tolist(), lengths.tolist()
    ([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]], [2, 3])
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import Sampler

__all__ = ["BucketBatchSampler", "pack_batches", "pad_sequence_batch", "spread"]

logger = logging.getLogger(__name__)


def pack_batches(lengths: Sequence[int], max_frames: int) -> list[list[int]]:
    """Greedy length-sorted packing: each batch's ``max(length) * len(batch) <= max_frames``.

    Items are taken longest first (ties by index), so each batch lists its longest item first
    (what ``pack_padded_sequence(enforce_sorted=True)`` wants). An item longer than
    ``max_frames`` forms a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda index: (-int(lengths[index]), index))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        # ``current[0]`` is the longest item of the batch being filled.
        if current and int(lengths[current[0]]) * (len(current) + 1) > max_frames:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


class BucketBatchSampler(Sampler[list[int]]):
    """Yield lists of indices of similar length whose padded size fits ``max_frames``.

    Args:
        lengths: length of each item (frames for ASR, mel frames or characters for TTS).
        max_frames: budget for ``max length in batch x batch size``.
        shuffle: shuffle the batch order each epoch (seeded by ``seed + epoch``); when False
            batches come longest first.
        seed: base seed; must be the same on every rank.
        num_replicas, rank: DDP world size and this process's rank.
        drop_last: with several replicas, drop the surplus batches so they divide evenly
            instead of padding. Without it, the epoch's batch list is padded by repeating its
            first batches so that every rank gets ``ceil(num_batches / num_replicas)`` batches
            (a few items are then seen twice in that epoch; needed because DDP ranks that run
            different numbers of steps deadlock in all-reduce). With one replica nothing is
            ever dropped or repeated.

    Resuming: ``state_dict()`` -> ``{"epoch", "batches_done"}``; after ``load_state_dict`` the
    next iteration (of that epoch) yields exactly the batches after ``batches_done``. A
    ``DataLoader`` with workers draws batches ahead of training, so a trainer should pass the
    number of batches it really finished: ``state_dict(batches_done=steps_in_epoch)``.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        max_frames: int,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
    ) -> None:
        super().__init__()
        _check_arguments(lengths, max_frames, num_replicas, rank)
        self.max_frames = max_frames
        self.shuffle = shuffle
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.drop_last = drop_last
        self.batches = pack_batches(lengths, max_frames)
        _warn_oversized(lengths, max_frames)
        if drop_last and len(self.batches) < num_replicas:
            raise ValueError(
                f"only {len(self.batches)} batches for num_replicas={num_replicas} with "
                "drop_last=True: every rank would get none (lower max_frames or drop_last=False)"
            )
        self.epoch = 0
        self._batches_done = 0
        self._resume_at = 0

    def __len__(self) -> int:
        """Batches per epoch on this rank."""
        if self.drop_last:
            return len(self.batches) // self.num_replicas
        return math.ceil(len(self.batches) / self.num_replicas)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's shuffle; a pending resume is kept only for the same epoch."""
        if epoch != self.epoch:
            self._resume_at = 0
            self._batches_done = 0
        self.epoch = epoch

    def epoch_batches(self, epoch: int | None = None) -> list[list[int]]:
        """This rank's batches of ``epoch`` (default: the current one), in order."""
        epoch = self.epoch if epoch is None else epoch
        order = list(range(len(self.batches)))
        if self.shuffle:
            random.Random(self.seed + epoch).shuffle(order)
        total = len(self) * self.num_replicas
        order = (order * math.ceil(total / len(order)))[:total]  # pad by repeating, or trim
        return [self.batches[i] for i in order[self.rank :: self.num_replicas]]

    def __iter__(self) -> Iterator[list[int]]:
        start, self._resume_at = self._resume_at, 0
        self._batches_done = start
        for batch in self.epoch_batches()[start:]:
            self._batches_done += 1
            yield list(batch)

    def state_dict(self, batches_done: int | None = None) -> dict[str, int]:
        """``{"epoch", "batches_done"}``; ``batches_done`` defaults to the batches handed out."""
        done = self._batches_done if batches_done is None else batches_done
        return {"epoch": self.epoch, "batches_done": done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue ``state["epoch"]`` after its first ``state["batches_done"]`` batches."""
        epoch, done = int(state["epoch"]), int(state["batches_done"])
        if not 0 <= done <= len(self):
            raise ValueError(
                f"batches_done={done} but this sampler has {len(self)} batches per epoch: "
                "the checkpoint was made with other data, max_frames or world size"
            )
        self.epoch = epoch
        self._resume_at = done
        self._batches_done = done


def _check_arguments(lengths: Sequence[int], max_frames: int, num_replicas: int,
                     rank: int) -> None:
    if len(lengths) == 0:
        raise ValueError("lengths is empty: no items to batch (is the manifest empty?)")
    if max_frames <= 0:
        raise ValueError(f"max_frames={max_frames}: must be positive")
    if num_replicas < 1 or not 0 <= rank < num_replicas:
        raise ValueError(f"rank={rank}, num_replicas={num_replicas}: need 0 <= rank < replicas")
    shortest = min(int(length) for length in lengths)
    if shortest < 0:
        raise ValueError(f"lengths contains a negative value ({shortest})")


def _warn_oversized(lengths: Sequence[int], max_frames: int) -> None:
    oversized = [int(length) for length in lengths if int(length) > max_frames]
    if oversized:
        logger.warning(
            "%d item(s) longer than max_frames=%d (longest %d) each form a batch of their "
            "own; raise max_frames or filter long utterances to bound memory",
            len(oversized), max_frames, max(oversized),
        )


def pad_sequence_batch(
    tensors: Sequence[torch.Tensor], pad_value: float = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``(L_i, ...)`` tensors into ``(B, Lmax, ...)`` plus ``lengths`` ``(B,)`` (int64).

    All tensors must share trailing dims and dtype; zero-length items are allowed.
    """
    if len(tensors) == 0:
        raise ValueError("pad_sequence_batch: got an empty list of tensors")
    first = tensors[0]
    for position, tensor in enumerate(tensors):
        if tensor.dim() == 0 or tensor.shape[1:] != first.shape[1:] or tensor.dtype != first.dtype:
            raise ValueError(
                f"pad_sequence_batch: tensor {position} has shape {tuple(tensor.shape)} and "
                f"dtype {tensor.dtype}; expected trailing dims {tuple(first.shape[1:])} and "
                f"dtype {first.dtype} like tensor 0"
            )
    lengths = torch.tensor([tensor.shape[0] for tensor in tensors], dtype=torch.long)
    max_length = int(lengths.max())
    padded = first.new_full((len(tensors), max_length, *first.shape[1:]), pad_value)  # (B, Lmax, ...)
    for position, tensor in enumerate(tensors):
        padded[position, : tensor.shape[0]] = tensor
    return padded, lengths


def spread(rows: Sequence[Any], count: int) -> list[Any]:
    """At most ``count`` items evenly spaced over ``rows`` (first one included), in order.

    >>> spread(list(range(10)), 3)
    [0, 3, 6]
    """
    if count >= len(rows):
        return list(rows)
    return [rows[(i * len(rows)) // count] for i in range(count)]
