"""Stacked bidirectional LSTM encoder with optional conv front-end and pyramidal time reduction.

Shapes: B batch, T input frames, D input dim, H hidden units per direction, T' output frames.

The same encoder serves both directions: the ASR listener (log-mel frames in, ``pyramid=3`` so
T' = T / 8 as in Listen-Attend-Spell) and the Tacotron text encoder (character embeddings in, a
conv front-end, no reduction).

A pyramid step concatenates neighbouring frames (2t, 2t+1) before a layer, halving the time axis
and doubling the feature dim. An odd-length sequence is padded with one zero frame first, so every
reduction maps a length L to ceil(L / 2) and no sequence ever becomes empty. ``input_halvings``
does the same to the input frames before the first layer (frame stacking): every layer then runs
over fewer time steps, which is where a BiLSTM spends its time.

Two exact ways to run a BiLSTM layer over a padded batch (same weights, same outputs):

- packed sequences (``pack_padded_sequence``), used on GPUs where cuDNN handles them well;
- on CPU, each direction as a plain LSTM over the padded tensor, the backward direction over each
  sequence reversed within its own length. PyTorch's CPU backward over *packed* sequences fills a
  full-size gradient for every time step, which makes it quadratic in
  T; the padded path avoids it.

Encoders are chosen by ``EncoderConfig.kind`` from ``ENCODERS`` (``bilstm`` today) and follow
:class:`Encoder`: ``forward(x (B, T, D), lengths (B,)) -> (outputs (B, T', E), lengths (B,))``,
zero on padding, with ``output_dim`` (E) and ``output_lengths(lengths)``. Adding a kind (a
Transformer, say) is one new module with its class and one line in ``ENCODERS``; like the
attention kinds, they share one config whose fields say which kind reads them.

>>> encoder = build_encoder(EncoderConfig(hidden_dim=3, num_layers=3, pyramid=2), input_dim=4)
>>> outputs, lengths = encoder(torch.zeros(2, 9, 4), torch.tensor([9, 5]))
>>> tuple(outputs.shape), lengths.tolist(), encoder.output_dim
((2, 3, 6), [3, 2], 6)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = [
    "ENCODERS",
    "Encoder",
    "EncoderConfig",
    "BiLSTMEncoder",
    "build_encoder",
    "ConvFrontEnd",
    "reduced_lengths",
    "lengths_to_mask",
    "packed_bilstm",
    "padded_bilstm",
]

_LSTM_WEIGHTS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


@dataclass
class EncoderConfig:
    """Which encoder and its sizes (the input width D is the model's to give, see
    :func:`build_encoder`). ``bilstm``: ``pyramid`` halvings are applied before layers
    1..pyramid, ``input_halvings`` before layer 0: T' = T / 2 ** (input_halvings + pyramid)."""

    RETIRED_KEYS: ClassVar[tuple[str, ...]] = ("input_dim",)  # derived; older configs saved it

    kind: str = "bilstm"
    hidden_dim: int = 256  # per direction: outputs are 2 * hidden_dim wide
    num_layers: int = 3
    pyramid: int = 0
    input_halvings: int = 0
    dropout: float = 0.0
    conv_channels: int = 0  # 0: no conv front-end
    conv_layers: int = 3
    conv_kernel: int = 5


def lengths_to_mask(lengths: Tensor, max_length: int | None = None) -> Tensor:
    """(B,) lengths -> (B, T) bool mask, True on real frames."""
    max_length = int(lengths.max()) if max_length is None else max_length
    frames = torch.arange(max_length, device=lengths.device)
    return frames.unsqueeze(0) < lengths.unsqueeze(1)


def reduced_lengths(lengths: Tensor, pyramid: int) -> Tensor:
    """Lengths after ``pyramid`` halvings: ceil(L / 2) each time."""
    for _ in range(pyramid):
        lengths = torch.div(lengths + 1, 2, rounding_mode="floor")
    return lengths


def _halve(x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """Concatenate frames (2t, 2t+1): (B, T, D) -> (B, ceil(T/2), 2D)."""
    if x.shape[1] % 2:
        x = nn.functional.pad(x, (0, 0, 0, 1))  # one zero frame at the end of time
    batch, time, dim = x.shape
    return x.reshape(batch, time // 2, 2 * dim), reduced_lengths(lengths, 1)


def packed_bilstm(lstm: nn.LSTM, x: Tensor, lengths: Tensor) -> Tensor:
    """Bidirectional ``lstm`` over padded (B, T, D) via packed sequences -> (B, T, 2H), padding 0."""
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    output, _ = lstm(packed)
    return pad_packed_sequence(output, batch_first=True, total_length=x.shape[1])[0]


def _reverse_within_length(lengths: Tensor, steps: int) -> Tensor:
    """(B, T) index reversing frames [0, L) of each row, leaving the padding where it is."""
    frames = torch.arange(steps, device=lengths.device)  # (T,)
    lengths = lengths.unsqueeze(1)  # (B, 1)
    return torch.where(frames < lengths, lengths - 1 - frames, frames)


def padded_bilstm(lstm: nn.LSTM, x: Tensor, lengths: Tensor) -> Tensor:
    """Same result as :func:`packed_bilstm`, running each direction over the padded tensor.

    Exact because padding sits at the end: the forward direction's output at t < L only sees
    frames <= t, and the backward direction runs over each sequence reversed within its length.
    """
    if not (lstm.bidirectional and lstm.num_layers == 1 and lstm.batch_first and lstm.bias):
        raise ValueError("padded_bilstm needs a 1-layer, batch_first, bidirectional LSTM with biases")
    # A weightless module, called with the layer's own parameters: gradients land on ``lstm``.
    one_way = nn.LSTM(lstm.input_size, lstm.hidden_size, batch_first=True, device="meta")
    lengths = lengths.to(x.device)
    forward_weights = {name: getattr(lstm, name) for name in _LSTM_WEIGHTS}
    backward_weights = {name: getattr(lstm, f"{name}_reverse") for name in _LSTM_WEIGHTS}
    forward, _ = functional_call(one_way, forward_weights, (x,))  # (B, T, H)
    index = _reverse_within_length(lengths, x.shape[1]).unsqueeze(2)  # (B, T, 1)
    backward, _ = functional_call(
        one_way, backward_weights, (x.gather(1, index.expand(-1, -1, x.shape[2])),)
    )  # (B, T, H) in reversed time
    backward = backward.gather(1, index.expand(-1, -1, backward.shape[2]))  # (B, T, H)
    mask = lengths_to_mask(lengths, x.shape[1]).unsqueeze(2).to(x.dtype)  # (B, T, 1)
    return torch.cat([forward, backward], dim=2) * mask  # (B, T, 2H)


class ConvFrontEnd(nn.Module):
    """Conv1d -> BatchNorm -> ReLU -> dropout layers over time; padded frames are zeroed."""

    def __init__(self, input_dim: int, channels: int, layers: int, kernel: int, dropout: float):
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"conv_kernel must be odd, got {kernel}")
        blocks = []
        for i in range(layers):
            blocks.append(
                nn.ModuleDict(
                    {
                        "conv": nn.Conv1d(
                            input_dim if i == 0 else channels, channels, kernel, padding=kernel // 2
                        ),
                        "norm": nn.BatchNorm1d(channels),
                    }
                )
            )
        self.blocks = nn.ModuleList(blocks)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """(B, T, D), (B, T) -> (B, T, C)."""
        keep = mask.unsqueeze(2).to(x.dtype)  # (B, T, 1)
        x = (x * keep).transpose(1, 2)  # (B, D, T)
        for block in self.blocks:
            x = self.dropout(torch.relu(block["norm"](block["conv"](x))))
            x = x * keep.transpose(1, 2)  # padding must stay zero for the next conv
        return x.transpose(1, 2)


class BiLSTMEncoder(nn.Module):
    """Stacked BiLSTM over padded batches (packed sequences); returns outputs and lengths."""

    def __init__(self, config: EncoderConfig, input_dim: int) -> None:
        super().__init__()
        if input_dim < 1:
            raise ValueError(f"input_dim must be >= 1, got {input_dim}")
        if config.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {config.num_layers}")
        if not 0 <= config.pyramid < config.num_layers:
            raise ValueError(
                f"pyramid must be in [0, num_layers - 1] = [0, {config.num_layers - 1}], "
                f"got {config.pyramid}"
            )
        if config.input_halvings < 0:
            raise ValueError(f"input_halvings must be >= 0, got {config.input_halvings}")
        self.config = config
        self.input_dim = input_dim
        self.front_end = None
        width = input_dim
        if config.conv_channels > 0:
            self.front_end = ConvFrontEnd(
                width, config.conv_channels, config.conv_layers, config.conv_kernel, config.dropout
            )
            width = config.conv_channels
        width *= 2**config.input_halvings
        layers = []
        for i in range(config.num_layers):
            if 1 <= i <= config.pyramid:
                width *= 2
            layers.append(nn.LSTM(width, config.hidden_dim, batch_first=True, bidirectional=True))
            width = 2 * config.hidden_dim
        self.layers = nn.ModuleList(layers)
        self.dropout = nn.Dropout(config.dropout)

    @property
    def output_dim(self) -> int:
        return 2 * self.config.hidden_dim

    def output_lengths(self, lengths: Tensor) -> Tensor:
        return reduced_lengths(lengths, self.config.input_halvings + self.config.pyramid)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T, D), (B,) -> outputs (B, T', 2H) zero on padding, output lengths (B,)."""
        lengths = lengths.to("cpu", torch.int64)
        if int(lengths.min()) < 1:
            raise ValueError(f"every sequence needs at least one frame, got lengths {lengths.tolist()}")
        if self.front_end is not None:
            x = self.front_end(x, lengths_to_mask(lengths, x.shape[1]).to(x.device))
        for _ in range(self.config.input_halvings):
            x, lengths = _halve(x, lengths)
        for i, lstm in enumerate(self.layers):
            if 1 <= i <= self.config.pyramid:
                x, lengths = _halve(x, lengths)
            run = packed_bilstm if x.is_cuda else padded_bilstm
            x = run(lstm, x, lengths)
            if i < len(self.layers) - 1:
                x = self.dropout(x)
        return x, lengths


@runtime_checkable
class Encoder(Protocol):
    """What both models need from an encoder (see the module docstring)."""

    output_dim: int

    def output_lengths(self, lengths: Tensor) -> Tensor: ...

    def __call__(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]: ...


ENCODERS: dict[str, type[nn.Module]] = {
    "bilstm": BiLSTMEncoder,
}


def build_encoder(config: EncoderConfig, input_dim: int) -> nn.Module:
    """The encoder named by ``config.kind`` over ``input_dim``-wide frames."""
    try:
        cls = ENCODERS[config.kind]
    except KeyError:
        raise ValueError(
            f"unknown encoder kind {config.kind!r}; choose one of {sorted(ENCODERS)}"
        ) from None
    return cls(config, input_dim)
