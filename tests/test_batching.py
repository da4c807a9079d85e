"""Tests for speechattn/data/batching.py."""

from __future__ import annotations

import logging
import random

import pytest
import torch

from speechattn.data.batching import BucketBatchSampler, pack_batches, pad_sequence_batch, spread

LENGTHS = [random.Random(7).randint(20, 400) for _ in range(503)]
MAX_FRAMES = 1600


def flat(batches: list[list[int]]) -> list[int]:
    return [index for batch in batches for index in batch]


def test_exact_packing_table() -> None:
    assert pack_batches([5, 3, 8, 2, 3], max_frames=8) == [[2], [0], [1, 4], [3]]
    assert pack_batches([4, 4, 4, 4], max_frames=8) == [[0, 1], [2, 3]]


@pytest.mark.parametrize("shuffle", [True, False])
def test_every_index_once_and_within_budget(shuffle: bool) -> None:
    sampler = BucketBatchSampler(LENGTHS, MAX_FRAMES, shuffle=shuffle, seed=3)
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        assert sorted(flat(batches)) == list(range(len(LENGTHS)))
        assert all(max(LENGTHS[i] for i in b) * len(b) <= MAX_FRAMES for b in batches)
        # Bucketing: lengths within a batch are close (sorted packing), longest first.
        assert all([LENGTHS[i] for i in b] == sorted((LENGTHS[i] for i in b), reverse=True)
                   for b in batches)


def test_greedy_packing_fills_batches() -> None:
    # With a sorted greedy pack, adding the next batch's longest item would break the budget.
    batches = pack_batches(LENGTHS, MAX_FRAMES)
    for batch in batches[:-1]:
        assert LENGTHS[batch[0]] * (len(batch) + 1) > MAX_FRAMES


def test_oversized_item_gets_own_batch_and_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="speechattn.data.batching"):
        sampler = BucketBatchSampler([10, 900, 950, 20], max_frames=100, shuffle=False)
        batches = list(sampler) + list(sampler)
    assert batches[:3] == [[2], [1], [3, 0]]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "2 item(s)" in warnings[0].getMessage()


def test_shuffle_is_deterministic_per_seed_and_epoch() -> None:
    def order(seed: int, epoch: int) -> list[list[int]]:
        sampler = BucketBatchSampler(LENGTHS, MAX_FRAMES, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(0, 0) == order(0, 0)
    assert order(0, 1) == order(0, 1)
    assert order(0, 0) != order(0, 1)
    assert order(0, 0) != order(1, 0)
    assert sorted(map(tuple, order(0, 0))) == sorted(map(tuple, order(0, 1)))  # same batches


def test_resume_mid_epoch_yields_exactly_the_remaining_batches() -> None:
    sampler = BucketBatchSampler(LENGTHS, MAX_FRAMES, seed=5)
    sampler.set_epoch(2)
    full = list(sampler)
    iterator = iter(sampler)
    consumed = [next(iterator) for _ in range(7)]
    state = sampler.state_dict()
    assert consumed == full[:7] and state == {"epoch": 2, "batches_done": 7}

    resumed = BucketBatchSampler(LENGTHS, MAX_FRAMES, seed=5)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # what a trainer does at the top of the epoch: must keep the resume
    assert list(resumed) == full[7:]
    assert resumed.state_dict() == {"epoch": 2, "batches_done": len(full)}
    resumed.set_epoch(3)
    assert len(list(resumed)) == len(full)  # next epoch is whole again


def test_resume_state_can_be_given_by_the_trainer() -> None:
    sampler = BucketBatchSampler(LENGTHS, MAX_FRAMES)
    assert sampler.state_dict(batches_done=4) == {"epoch": 0, "batches_done": 4}
    with pytest.raises(ValueError, match="batches_done=999"):
        sampler.load_state_dict({"epoch": 0, "batches_done": 999})


def test_resume_does_not_leak_into_another_epoch_or_second_pass() -> None:
    sampler = BucketBatchSampler(LENGTHS, MAX_FRAMES)
    sampler.load_state_dict({"epoch": 1, "batches_done": 3})
    assert len(list(sampler)) == len(sampler) - 3
    assert len(list(sampler)) == len(sampler)  # iterating again (e.g. validation) starts over


@pytest.mark.parametrize("drop_last", [False, True])
def test_two_ranks_partition_with_equal_counts(drop_last: bool) -> None:
    ranks = [BucketBatchSampler(LENGTHS, MAX_FRAMES, seed=1, num_replicas=2, rank=r,
                                drop_last=drop_last) for r in (0, 1)]
    for sampler in ranks:
        sampler.set_epoch(4)
    per_rank = [list(sampler) for sampler in ranks]
    num_batches = len(pack_batches(LENGTHS, MAX_FRAMES))
    assert num_batches % 2 == 1  # the interesting case: padding or dropping is needed
    assert len(per_rank[0]) == len(per_rank[1]) == len(ranks[0])
    seen = flat(per_rank[0]) + flat(per_rank[1])
    if drop_last:
        assert len(seen) == len(set(seen)) and len(per_rank[0]) == num_batches // 2
    else:
        assert set(seen) == set(range(len(LENGTHS)))
        assert len(per_rank[0]) == (num_batches + 1) // 2
        # Exactly one batch is repeated to even the ranks out.
        assert len(seen) - len(LENGTHS) == len(per_rank[1][-1])


def test_more_ranks_than_batches_still_gives_every_rank_a_batch() -> None:
    per_rank = [list(BucketBatchSampler([3, 3], 6, num_replicas=3, rank=r)) for r in range(3)]
    assert per_rank == [[[0, 1]]] * 3
    with pytest.raises(ValueError, match="only 1 batches for num_replicas=3"):
        BucketBatchSampler([3, 3], 6, num_replicas=3, drop_last=True)


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"lengths": [], "max_frames": 5}, "empty"),
    ({"lengths": [1], "max_frames": 0}, "max_frames=0"),
    ({"lengths": [1], "max_frames": 5, "rank": 2, "num_replicas": 2}, "rank=2"),
    ({"lengths": [1, -4], "max_frames": 5}, "negative"),
])
def test_bad_arguments(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        BucketBatchSampler(**kwargs)


def test_pad_sequence_batch_values_and_shapes() -> None:
    a = torch.arange(6.0).reshape(3, 2)
    b = torch.full((1, 2), 9.0)
    empty = torch.zeros(0, 2)
    padded, lengths = pad_sequence_batch([a, b, empty], pad_value=-1)
    assert padded.shape == (3, 3, 2) and lengths.tolist() == [3, 1, 0]
    assert lengths.dtype == torch.long
    assert torch.equal(padded[0], a)
    assert padded[1].tolist() == [[9.0, 9.0], [-1.0, -1.0], [-1.0, -1.0]]
    assert (padded[2] == -1).all()
    tokens, _ = pad_sequence_batch([torch.tensor([4, 5]), torch.tensor([6])])
    assert tokens.tolist() == [[4, 5], [6, 0]] and tokens.dtype == torch.int64


def test_pad_sequence_batch_rejects_mismatched_items() -> None:
    with pytest.raises(ValueError, match="tensor 1 has shape \\(2, 3\\)"):
        pad_sequence_batch([torch.zeros(2, 2), torch.zeros(2, 3)])
    with pytest.raises(ValueError, match="empty"):
        pad_sequence_batch([])


def test_works_as_a_dataloader_batch_sampler() -> None:
    lengths = [3, 7, 2, 5, 6, 1]
    items = [torch.full((n,), float(i)) for i, n in enumerate(lengths)]
    sampler = BucketBatchSampler(lengths, max_frames=12, seed=2)
    loader = torch.utils.data.DataLoader(items, batch_sampler=sampler,
                                         collate_fn=pad_sequence_batch)
    seen = []
    for padded, batch_lengths in loader:
        assert padded.shape[0] * padded.shape[1] <= 12
        seen += padded[:, 0].long().tolist()
        assert batch_lengths.tolist() == [lengths[int(i)] for i in padded[:, 0]]
    assert sorted(seen) == list(range(len(lengths)))


def test_spread_picks_evenly_in_order_for_both_directions():
    assert spread(list(range(5)), 10) == [0, 1, 2, 3, 4]
    assert spread(list(range(100)), 4) == [0, 25, 50, 75]
    assert spread(range(7), 3) == [0, 2, 4]  # what the TTS task asks for: indices of its dev set
    assert spread(["a", "b", "c"], 0) == []
