"""Two-process DistributedDataParallel on CPU gives the gradients of one process on the whole batch.

The LAS loss is summed over characters and divided by the number of utterances, so the average
DDP takes over two equal shards equals the loss of the joined batch, whatever the lengths.
"""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from speechattn.asr.loss import las_loss
from speechattn.asr.model import LAS, LASConfig
from speechattn.text import EOS, PAD

pytestmark = pytest.mark.slow

VOCAB, CTC_WEIGHT, SMOOTHING = 12, 0.3, 0.1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _batch():
    torch.manual_seed(1)
    lengths = torch.tensor([61, 40, 23, 57])
    features = torch.randn(4, 61, 8) * (torch.arange(61) < lengths.unsqueeze(1)).unsqueeze(2)
    targets = torch.tensor([
        [5, 6, 7, 8, 9, EOS],
        [9, 4, EOS, PAD, PAD, PAD],
        [10, 11, 5, EOS, PAD, PAD],
        [4, EOS, PAD, PAD, PAD, PAD],
    ])  # fmt: skip
    return features, lengths, targets


def _model() -> LAS:
    torch.manual_seed(0)
    return LAS(LASConfig.tiny(num_mels=8, ctc_weight=CTC_WEIGHT), VOCAB).train()


def _shard(rank: int, world: int):
    """This rank's utterances, padded only to their own longest (as a real shard would be)."""
    features, lengths, targets = _batch()
    rows = slice(rank * len(lengths) // world, (rank + 1) * len(lengths) // world)
    lengths, targets = lengths[rows], targets[rows]
    steps = int((targets != PAD).sum(dim=1).max())
    return features[rows, : int(lengths.max())], lengths, targets[:, :steps]


def _loss(model, features, lengths, targets):
    return las_loss(model(features, lengths, targets), targets, CTC_WEIGHT, SMOOTHING)[0]


def _worker(rank: int, world: int, port: int, out_path: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = _model()
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        _loss(ddp, *_shard(rank, world)).backward()
        if rank == 0:
            torch.save({name: p.grad for name, p in model.named_parameters()}, out_path)
    finally:
        dist.destroy_process_group()


def test_two_process_ddp_gradients_equal_one_process(tmp_path):
    out_path = str(tmp_path / "ddp_grads.pt")
    # torch.multiprocessing's spawn API with the "fork" start method: a spawned interpreter would
    # import torch and torch._dynamo (which DDP pulls in) again, about 40 CPU seconds per process
    # when bytecode is not cached; forked children inherit them. The children use one thread each,
    # so no OpenMP pool crosses the fork.
    import torch._dynamo  # noqa: F401  (imported once here, before the fork)

    mp.start_processes(_worker, args=(2, _free_port(), out_path), nprocs=2, join=True,
                       start_method="fork")  # fmt: skip
    ddp_grads = torch.load(out_path, weights_only=True)
    model = _model()
    _loss(model, *_batch()).backward()
    assert set(ddp_grads) == {name for name, _ in model.named_parameters()}
    for name, param in model.named_parameters():
        assert param.grad.abs().sum() > 0, name
        torch.testing.assert_close(ddp_grads[name], param.grad, atol=1e-5, rtol=1e-4, msg=name)
