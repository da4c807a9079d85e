"""Tacotron-2-style text-to-mel model built from the shared ``speechattn.nn`` core.

Shapes: B batch, T text characters (encoder frames), U decoder steps, r reduction factor,
F mel frames (F = U * r once padded), M mel bins, P prenet output dim, E encoder output dim,
H decoder hidden units.

Data flow::

    characters (B, T) -> embedding (B, T, D) -> conv stack + BiLSTM (BiLSTMEncoder) -> memory (B, T, E)
    previous frame (B, M) -> prenet (B, P) -> AttentionDecoder step (LSTM, location attention,
        LSTM fed [h; context] when post_attention_layers = 1, as Tacotron 2) -> (B, H + E)
        -> mel projection (B, r * M) -> r frames;  stop projection (B, 1): one stop decision per step
    all frames (B, F, M) -> conv postnet -> residual: mel_after = mel_before + postnet(mel_before)

The text encoder is the same :class:`~speechattn.nn.encoder.BiLSTMEncoder` the ASR listener uses
(its conv front-end is the Tacotron conv stack) and the decoder step is the same
:class:`~speechattn.nn.decoder.AttentionDecoder` the ASR speller uses: no second copy of either.

Decoder step ``u`` is fed the last frame of step ``u - 1``'s group of ``r`` frames (a zero
"go" frame at ``u = 0``). Mels are expected normalized (zero mean, unit variance per bin), so
the go frame and the zero padding sit at the corpus mean. In training that frame is the recorded
one (teacher forcing), or with probability ``feedback`` per utterance and step the model's own
prediction (self-fed frames, detached), so that it learns to continue from its own output as it
must in synthesis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional

from speechattn.nn.attention import AttentionConfig
from speechattn.nn.decoder import AttentionDecoder, DecoderConfig, DecoderState
from speechattn.nn.encoder import EncoderConfig, build_encoder, lengths_to_mask

__all__ = [
    "PrenetConfig",
    "PostnetConfig",
    "TacotronConfig",
    "TacotronOutput",
    "StepResult",
    "Prenet",
    "Postnet",
    "Tacotron",
    "num_decoder_steps",
]


@dataclass
class PrenetConfig:
    """FC + ReLU + dropout layers applied to the previous frame."""

    dims: list[int] = field(default_factory=lambda: [256, 256])
    dropout: float = 0.5
    # Tacotron 2 keeps prenet dropout on at inference: it is the model's only source of variation
    # and without it the decoder tends to repeat itself.
    dropout_at_inference: bool = True


@dataclass
class PostnetConfig:
    """Conv1d + BatchNorm (+ tanh, except the last) layers predicting a residual."""

    channels: int = 512
    layers: int = 5
    kernel: int = 5
    dropout: float = 0.5


def _default_encoder() -> EncoderConfig:
    return EncoderConfig(
        hidden_dim=256, num_layers=1, conv_channels=512, conv_layers=3, conv_kernel=5, dropout=0.5
    )


def _default_decoder() -> DecoderConfig:
    attention = AttentionConfig(
        kind="location", attention_dim=128, location_channels=32, location_kernel=31
    )
    # Tacotron 2: an "attention" LSTM before the attention, a "decoder" LSTM after it
    return DecoderConfig(
        hidden_dim=1024, num_layers=1, post_attention_layers=1, dropout=0.1, attention=attention
    )


@dataclass
class TacotronConfig:
    """The whole model; the encoder's and decoder's input widths follow from the sizes below."""

    num_mels: int = 80
    reduction_factor: int = 2
    embedding_dim: int = 512
    encoder: EncoderConfig = field(default_factory=_default_encoder)
    prenet: PrenetConfig = field(default_factory=PrenetConfig)
    decoder: DecoderConfig = field(default_factory=_default_decoder)
    postnet: PostnetConfig = field(default_factory=PostnetConfig)


class TacotronOutput(NamedTuple):
    """Teacher-forced outputs.

    mel_before: (B, F, M) decoder frames; mel_after: (B, F, M) after the postnet residual (both
    zero beyond each length); stop_logits: (B, U); alignments: (B, U, T).
    """

    mel_before: Tensor
    mel_after: Tensor
    stop_logits: Tensor
    alignments: Tensor


class StepResult(NamedTuple):
    """One free-running step: frames (B, r, M), stop_logit (B,), weights (B, T), next state."""

    frames: Tensor
    stop_logit: Tensor
    weights: Tensor
    state: DecoderState


def num_decoder_steps(mel_lengths: Tensor, reduction_factor: int) -> Tensor:
    """Decoder steps needed for (B,) frame counts: ceil(F / r)."""
    return torch.div(mel_lengths + reduction_factor - 1, reduction_factor, rounding_mode="floor")


class Prenet(nn.Module):
    """(..., M) -> (..., P): the bottleneck the previous frame passes through."""

    def __init__(self, config: PrenetConfig, input_dim: int) -> None:
        super().__init__()
        if not config.dims:
            raise ValueError("prenet.dims must list at least one layer size, got []")
        if not 0.0 <= config.dropout < 1.0:
            raise ValueError(f"prenet.dropout must be in [0, 1), got {config.dropout}")
        widths = [input_dim, *config.dims]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.p = config.dropout

    @property
    def output_dim(self) -> int:
        return self.layers[-1].out_features

    def forward(self, x: Tensor, dropout: bool = True) -> Tensor:
        """``dropout`` decides on its own, independent of train/eval mode."""
        for layer in self.layers:
            x = functional.dropout(torch.relu(layer(x)), self.p, training=dropout)
        return x


class Postnet(nn.Module):
    """(B, F, M) -> (B, F, M) residual; frames outside ``mask`` are zeroed between layers."""

    def __init__(self, config: PostnetConfig, num_mels: int) -> None:
        super().__init__()
        if config.kernel % 2 != 1:
            raise ValueError(f"postnet.kernel must be odd, got {config.kernel}")
        if config.layers < 1:
            raise ValueError(f"postnet.layers must be >= 1, got {config.layers}")
        widths = [num_mels] + [config.channels] * (config.layers - 1) + [num_mels]
        self.convs = nn.ModuleList(
            nn.Conv1d(a, b, config.kernel, padding=config.kernel // 2)
            for a, b in zip(widths[:-1], widths[1:])
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in widths[1:])
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, mel: Tensor, mask: Tensor) -> Tensor:
        keep = mask.unsqueeze(1).to(mel.dtype)  # (B, 1, F)
        x = mel.transpose(1, 2) * keep  # (B, M, F)
        last = len(self.convs) - 1
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = norm(conv(x))
            x = self.dropout(x if i == last else torch.tanh(x)) * keep
        return x.transpose(1, 2)  # (B, F, M)


class Tacotron(nn.Module):
    """Characters -> normalized log-mel frames, with attention alignments and stop logits."""

    # Tensors whose first dimension is indexed by vocabulary id (see LAS.VOCAB_TENSORS).
    VOCAB_TENSORS = ("embedding.weight",)

    def __init__(self, config: TacotronConfig, vocab_size: int) -> None:
        super().__init__()
        if config.reduction_factor < 1:
            raise ValueError(f"reduction_factor must be >= 1, got {config.reduction_factor}")
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
        self.config = config
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, config.embedding_dim, padding_idx=0)
        self.encoder = build_encoder(config.encoder, config.embedding_dim)
        probe = torch.tensor([7])
        if not torch.equal(self.encoder.output_lengths(probe), probe):
            raise ValueError(
                "TTS needs one encoder frame per character: encoder.pyramid and "
                "encoder.input_halvings must be 0"
            )
        self.prenet = Prenet(config.prenet, config.num_mels)
        self.decoder = AttentionDecoder(config.decoder, self.prenet.output_dim, self.encoder.output_dim)
        r, m = config.reduction_factor, config.num_mels
        self.mel_proj = nn.Linear(self.decoder.output_dim, r * m)
        self.stop_proj = nn.Linear(self.decoder.output_dim, 1)
        self.postnet = Postnet(config.postnet, m)

    @property
    def reduction_factor(self) -> int:
        return self.config.reduction_factor

    def prenet_dropout(self, override: bool | None = None) -> bool:
        """Whether the prenet drops units now: always in training, else the config (or override)."""
        if self.training:
            return True
        return self.config.prenet.dropout_at_inference if override is None else override

    def encode(self, text: Tensor, text_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T) ids, (B,) lengths -> memory (B, T, E) zero on padding, lengths (B,)."""
        return self.encoder(self.embedding(text), text_lengths)

    def project(self, outputs: Tensor) -> tuple[Tensor, Tensor]:
        """(B, U, H + E) -> frames (B, U * r, M), stop logits (B, U)."""
        batch, steps, _ = outputs.shape
        frames = self.mel_proj(outputs).reshape(batch, steps * self.reduction_factor, -1)  # (B, F, M)
        return frames, self.stop_proj(outputs).squeeze(2)

    def refine(self, mel_before: Tensor, mel_lengths: Tensor) -> Tensor:
        """Postnet residual on (B, F, M); frames at or beyond ``mel_lengths`` (B,) become zero."""
        mask = lengths_to_mask(mel_lengths.to(mel_before.device), mel_before.shape[1])  # (B, F)
        keep = mask.unsqueeze(2).to(mel_before.dtype)
        mel_before = mel_before * keep
        return (mel_before + self.postnet(mel_before, mask)) * keep

    def teacher_inputs(self, mels: Tensor) -> Tensor:
        """(B, F, M) targets -> (B, U, M) decoder inputs: go frame, then each group's last frame."""
        r = self.reduction_factor
        mels = functional.pad(mels, (0, 0, 0, (-mels.shape[1]) % r))  # (B, U * r, M)
        last_of_group = mels[:, r - 1 :: r]  # (B, U, M)
        go = torch.zeros_like(last_of_group[:, :1])
        return torch.cat([go, last_of_group[:, :-1]], dim=1)

    def forward(
        self,
        text: Tensor,
        text_lengths: Tensor,
        mels: Tensor,
        mel_lengths: Tensor,
        feedback: float = 0.0,
    ) -> TacotronOutput:
        """Teacher forcing: (B, T), (B,), (B, F, M), (B,) -> :class:`TacotronOutput`.

        ``feedback`` in [0, 1]: probability, per utterance and step, of feeding the decoder its own
        previous frame instead of the recorded one. The output time axis is ``ceil(F / r) * r``
        (targets are padded to a multiple of r).
        """
        memory, memory_lengths = self.encode(text, text_lengths)
        inputs = self.teacher_inputs(mels)  # (B, U, M)
        dropout = self.prenet_dropout()
        outputs, alignments = self.decoder(
            inputs, memory, memory_lengths, embed=lambda frames: self.prenet(frames, dropout),
            own=lambda output: self.project(output.unsqueeze(1))[0][:, -1], feedback=feedback,
        )  # (B, U, H + E), (B, U, T); own: the last of a step's r frames (B, M)
        mel_before, stop_logits = self.project(outputs)
        mel_lengths = mel_lengths.to(mel_before.device)
        mel_before = mel_before * lengths_to_mask(mel_lengths, mel_before.shape[1]).unsqueeze(2)
        mel_after = self.refine(mel_before, mel_lengths)
        return TacotronOutput(mel_before, mel_after, stop_logits, alignments)

    def step(
        self,
        previous_frame: Tensor,
        memory: Tensor,
        mask: Tensor,
        state: DecoderState,
        keys: Tensor,
        prenet_dropout: bool,
    ) -> StepResult:
        """One free-running step from the previous frame (B, M)."""
        out = self.decoder.step(self.prenet(previous_frame, prenet_dropout), memory, mask, state, keys)
        frames, stop = self.project(out.output.unsqueeze(1))  # (B, r, M), (B, 1)
        return StepResult(frames, stop.squeeze(1), out.weights, out.state)
