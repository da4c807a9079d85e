"""The attention decoder's step core, shared by the ASR speller and the Tacotron decoder.

Shapes: B batch, T encoder frames, U decoder steps, I per-step input dim (character embedding for
ASR, prenet output for TTS), H decoder hidden units, Dm memory (encoder output) dim.

One step::

    [input_u ; context_{u-1}] -> LSTM cell(s) -> h_u -> attention(h_u, memory) -> context_u
    output_u = [h_u ; context_u]                        # (B, H + Dm), fed to a task head

With ``post_attention_layers`` > 0 (Tacotron 2's "decoder RNN" after its "attention RNN"),
``[h_u ; context_u]`` goes through that many more LSTM cells, and ``output_u = [g_u ; context_u]``
with ``g_u`` the last one's output: the head then sees the current context through a recurrent,
nonlinear layer, not only through its own linear map.

The head is the caller's: a character softmax for ASR, mel and stop projections for TTS. Callers
that feed their own predictions back (greedy/beam search, scheduled sampling, free-running
synthesis) call :meth:`AttentionDecoder.step`; pure teacher forcing can use ``forward``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from speechattn.nn.attention import AttentionConfig, AttentionState, build_attention
from speechattn.nn.encoder import lengths_to_mask

__all__ = ["DecoderConfig", "DecoderState", "StepOutput", "AttentionDecoder"]


@dataclass
class DecoderConfig:
    """Sizes of the decoder core; the input and memory widths are the model's to give (see
    :class:`AttentionDecoder`)."""

    RETIRED_KEYS: ClassVar[tuple[str, ...]] = ("input_dim", "memory_dim")  # derived; once saved

    hidden_dim: int = 512
    num_layers: int = 1
    post_attention_layers: int = 0  # LSTM cells after the attention, fed [h; current context]
    dropout: float = 0.0
    attention: AttentionConfig = field(default_factory=AttentionConfig)


class DecoderState(NamedTuple):
    """Everything carried from one step to the next.

    hidden, cell: (L, B, H) per LSTM layer (``num_layers`` + ``post_attention_layers``);
    context: (B, Dm); attention: the attention's state.
    """

    hidden: Tensor
    cell: Tensor
    context: Tensor
    attention: AttentionState

    def select(self, index: Tensor) -> DecoderState:
        """Rows ``index`` (N,) of every tensor: reorders or repeats hypotheses in beam search."""
        return DecoderState(
            self.hidden[:, index],
            self.cell[:, index],
            self.context[index],
            AttentionState(*(None if t is None else t[index] for t in self.attention)),
        )


class StepOutput(NamedTuple):
    """output: (B, H + Dm) for the task head; weights: (B, T); state: the next DecoderState."""

    output: Tensor
    weights: Tensor
    state: DecoderState


class AttentionDecoder(nn.Module):
    """LSTM cell(s) + attention + context vector, one step at a time, fed (B, Di) inputs and
    attending over a (B, T, Dm) memory: ``input_dim`` Di and ``memory_dim`` Dm."""

    def __init__(self, config: DecoderConfig, input_dim: int, memory_dim: int) -> None:
        super().__init__()
        if input_dim < 1 or memory_dim < 1:
            raise ValueError(f"decoder input_dim={input_dim} and memory_dim={memory_dim} must be >= 1")
        if config.num_layers < 1:
            raise ValueError(f"decoder num_layers must be >= 1, got {config.num_layers}")
        if config.post_attention_layers < 0:
            raise ValueError(
                f"decoder post_attention_layers must be >= 0, got {config.post_attention_layers}"
            )
        self.config = config
        self.input_dim, self.memory_dim = input_dim, memory_dim
        self.cells = self._cells(input_dim + memory_dim, config.num_layers)
        self.post_cells = self._cells(config.hidden_dim + memory_dim, config.post_attention_layers)
        self.attention = build_attention(config.attention, config.hidden_dim, memory_dim)
        self.dropout = nn.Dropout(config.dropout)

    def _cells(self, input_dim: int, count: int) -> nn.ModuleList:
        widths = [input_dim] + [self.config.hidden_dim] * count
        return nn.ModuleList(nn.LSTMCell(widths[i], self.config.hidden_dim) for i in range(count))

    @property
    def output_dim(self) -> int:
        return self.config.hidden_dim + self.memory_dim

    def initial_state(self, memory: Tensor) -> DecoderState:
        """Zero LSTM state and context for a (B, T, Dm) memory."""
        batch = memory.shape[0]
        layers = len(self.cells) + len(self.post_cells)
        zeros = memory.new_zeros(layers, batch, self.config.hidden_dim)
        return DecoderState(
            zeros, zeros, memory.new_zeros(batch, memory.shape[2]),
            self.attention.initial_state(memory),
        )

    def prepare(self, memory: Tensor) -> Tensor:
        """Attention keys (B, T, K), computed once per batch and passed to every step."""
        return self.attention.prepare(memory)

    def step(
        self,
        inputs: Tensor,
        memory: Tensor,
        mask: Tensor,
        state: DecoderState,
        keys: Tensor | None = None,
    ) -> StepOutput:
        """(B, I), (B, T, Dm), (B, T) bool, state -> StepOutput."""
        hidden: list[Tensor] = []
        cell: list[Tensor] = []
        x = self._run(self.cells, torch.cat([inputs, state.context], dim=1), state, hidden, cell)
        context, weights, attention = self.attention(x, memory, mask, state.attention, keys)
        if self.post_cells:
            x = self._run(self.post_cells, torch.cat([x, context], dim=1), state, hidden, cell)
        new_state = DecoderState(torch.stack(hidden), torch.stack(cell), context, attention)
        return StepOutput(torch.cat([x, context], dim=1), weights, new_state)

    def _run(
        self, cells: nn.ModuleList, x: Tensor, state: DecoderState, hidden: list[Tensor],
        cell: list[Tensor],
    ) -> Tensor:
        """Stacked cells on x (B, in); their new states go on ``hidden``/``cell``, which also
        index the layers' previous states in ``state``."""
        for lstm in cells:
            layer = len(hidden)
            h, c = lstm(x, (state.hidden[layer], state.cell[layer]))
            hidden.append(h)
            cell.append(c)
            x = self.dropout(h)
        return x

    def forward(
        self, inputs: Tensor, memory: Tensor, memory_lengths: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Teacher forcing: (B, U, I), (B, T, Dm), (B,) -> outputs (B, U, H + Dm), weights (B, U, T)."""
        mask = lengths_to_mask(memory_lengths.to(memory.device), memory.shape[1])
        keys = self.prepare(memory)
        state = self.initial_state(memory)
        outputs, weights = [], []
        for u in range(inputs.shape[1]):
            out = self.step(inputs[:, u], memory, mask, state, keys)
            outputs.append(out.output)
            weights.append(out.weights)
            state = out.state
        return torch.stack(outputs, dim=1), torch.stack(weights, dim=1)
