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

The head is the caller's: a character softmax for ASR, mel and stop projections for TTS.
Training runs every step with :meth:`AttentionDecoder.forward`, one loop for both directions:
teacher forcing (each step fed its reference input), or, with a ``feedback`` probability, each
row's reference input replaced at random by what the model made of its previous step (ASR's
scheduled sampling, TTS's self-fed frames: one mechanism, one schedule,
:class:`FeedbackSchedule`). Decoding loops that only ever feed their own outputs back (greedy and
beam search, free-running synthesis) call :meth:`AttentionDecoder.step`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from speechattn.nn.attention import AttentionConfig, AttentionState, build_attention
from speechattn.nn.encoder import lengths_to_mask

__all__ = ["FeedbackSchedule", "DecoderConfig", "DecoderState", "StepOutput", "AttentionDecoder"]


@dataclass
class FeedbackSchedule:
    """How often training feeds the decoder its own previous output instead of the reference:
    the probability (per utterance and step) is 0 up to step ``start``, rises linearly to
    ``probability`` at ``end``, then stays there. ASR: ``objective.feedback`` (scheduled
    sampling); TTS: ``loss.feedback`` (self-fed frames).

    >>> [FeedbackSchedule(0.4, 100, 300).at(step) for step in (0, 100, 200, 300, 1000)]
    [0.0, 0.0, 0.2, 0.4, 0.4]
    """

    probability: float = 0.0
    start: int = 0
    end: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"feedback.probability={self.probability} must be in [0, 1]")
        if self.end < self.start:
            raise ValueError(f"feedback.end={self.end} is before feedback.start={self.start}")

    def at(self, step: int) -> float:
        """The probability at training step ``step``."""
        if self.probability == 0 or step <= self.start:
            return 0.0
        if step >= self.end:
            return self.probability
        return self.probability * (step - self.start) / (self.end - self.start)


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
        """(B, I), (B, T, Dm), (B, T) bool, state -> StepOutput.

        ``inputs`` and ``state`` may have G rows per memory row (B x G, consecutive per memory
        row), as in beam search; the memory, mask and keys are then not repeated (the attention's
        groups)."""
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
        self,
        inputs: Tensor,
        memory: Tensor,
        memory_lengths: Tensor,
        embed: Callable[[Tensor], Tensor] | None = None,
        own: Callable[[Tensor], Tensor] | None = None,
        feedback: float = 0.0,
        keys: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Every step of a training pass -> outputs (B, U, H + Dm), weights (B, U, T).

        Args:
            inputs: (B, U, ...) each step's reference input: (B, U, I) vectors, or raw inputs
                (character ids (B, U), frames (B, U, M)) that ``embed`` turns into (..., I).
            memory: (B, T, Dm); memory_lengths: (B,).
            embed: raw input (B, ...) or (B, U, ...) -> (B, I) or (B, U, I); None: identity.
            own: a step's output (B, H + Dm) -> the raw input the model itself would feed next
                (its argmax character, its last frame); detached before use.
            feedback: from the second step on, each row takes ``own(previous output)`` instead of
                its reference input with this probability (needs ``own``); 0: teacher forcing.
            keys: ``self.prepare(memory)`` when the caller has it already; None: computed here.
        """
        if not 0.0 <= feedback <= 1.0:
            raise ValueError(f"feedback={feedback} must be in [0, 1]")
        if feedback > 0 and own is None:
            raise ValueError("feedback > 0 needs own: what the model feeds itself")
        embed = embed or (lambda x: x)
        mask = lengths_to_mask(memory_lengths.to(memory.device), memory.shape[1])
        keys = self.prepare(memory) if keys is None else keys
        state = self.initial_state(memory)
        embedded = embed(inputs) if feedback == 0 else None  # (B, U, I) at once when nothing is fed back
        outputs, weights = [], []
        for u in range(inputs.shape[1]):
            if embedded is not None:
                x = embedded[:, u]
            else:
                x = inputs[:, u]  # (B, ...)
                if u > 0:
                    mine = own(outputs[-1]).detach()
                    pick = torch.rand(x.shape[0], device=x.device) < feedback  # (B,)
                    x = torch.where(pick.view(-1, *[1] * (x.dim() - 1)), mine, x)
                x = embed(x)  # (B, I)
            out = self.step(x, memory, mask, state, keys)
            outputs.append(out.output)
            weights.append(out.weights)
            state = out.state
        return torch.stack(outputs, dim=1), torch.stack(weights, dim=1)
