"""Listen, Attend and Spell: a pyramidal BiLSTM listener, an attention speller, optional joint CTC.

Shapes: B batch, T input frames, M mel bins, T' encoder frames (T / 2**(input_halvings + pyramid)),
E encoder width (2 x encoder hidden), H decoder hidden units, U output steps (characters + EOS),
V vocabulary size.

- Listener: :class:`~speechattn.nn.encoder.BiLSTMEncoder` over CMVN-normalized log-mel frames,
  ``pyramid=3`` halvings by default (T' = T / 8), behind :class:`SpecAugment` (training only).
- Speller: :class:`~speechattn.nn.decoder.AttentionDecoder` fed the embedding of the previous
  character (EOS doubles as SOS), then a linear layer to character logits over
  :class:`speechattn.text.Vocab` ids.
- CTC head (when ``ctc_weight > 0``): a linear layer on the encoder outputs, blank =
  ``Vocab.blank_id``; trained jointly and usable in beam search.

Decoding lives in :mod:`speechattn.asr.decode`; this module only runs the network.

>>> model = LAS(LASConfig.tiny(num_mels=8), vocab_size=10).eval()
>>> out = model(torch.randn(2, 40, 8), torch.tensor([40, 33]), torch.tensor([[5, 6, 1], [7, 1, 0]]))
>>> tuple(out.logits.shape), tuple(out.attention.shape), out.encoder_lengths.tolist()
((2, 3, 10), (2, 3, 5), [5, 5])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from speechattn.asr.specaugment import SpecAugment, SpecAugmentConfig
from speechattn.audio import subtract_utterance_mean
from speechattn.nn.attention import AttentionConfig
from speechattn.nn.decoder import AttentionDecoder, DecoderConfig, DecoderState
from speechattn.nn.encoder import EncoderConfig, build_encoder, lengths_to_mask
from speechattn.text import BLANK, EOS, PAD

__all__ = ["LASConfig", "LAS", "LASOutput", "SpeechMemory", "noisy_tokens"]


def _default_encoder() -> EncoderConfig:
    return EncoderConfig(hidden_dim=256, num_layers=4, pyramid=3, dropout=0.1)


def _default_decoder() -> DecoderConfig:
    return DecoderConfig(hidden_dim=512, num_layers=1, dropout=0.1, attention=AttentionConfig())


@dataclass
class LASConfig:
    """The LAS network; ``num_mels`` is the width of its input frames (the recipe checks it
    against ``data.features.n_mels``), the other widths follow from the sizes below."""

    RENAMED_KEYS: ClassVar[dict[str, str]] = {"embed_dim": "embedding_dim"}  # as TTS names it

    num_mels: int = 80
    encoder: EncoderConfig = field(default_factory=_default_encoder)
    decoder: DecoderConfig = field(default_factory=_default_decoder)
    embedding_dim: int = 128
    ctc_weight: float = 0.0  # > 0 adds a CTC head on the encoder, weighted this much in the loss
    specaugment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    # subtract each utterance's own mean log-mel per bin (after global CMVN) before the listener:
    # a voice's fixed spectral colouring is then not something the encoder must learn to ignore
    utterance_mean_norm: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.ctc_weight < 1.0:
            raise ValueError(f"model.ctc_weight={self.ctc_weight} must be in [0, 1)")
        if self.embedding_dim < 1:
            raise ValueError(f"model.embedding_dim={self.embedding_dim} must be >= 1")
        if self.num_mels < 1:
            raise ValueError(f"model.num_mels={self.num_mels} must be >= 1")

    @classmethod
    def tiny(cls, num_mels: int = 80, ctc_weight: float = 0.0) -> LASConfig:
        """A few-thousand-parameter model for tests and smoke runs (pyramid 3, no SpecAugment)."""
        return cls(
            num_mels=num_mels,
            encoder=EncoderConfig(hidden_dim=16, num_layers=4, pyramid=3),
            decoder=DecoderConfig(
                hidden_dim=32,
                attention=AttentionConfig(attention_dim=16, location_channels=4, location_kernel=5),
            ),
            embedding_dim=16,
            ctc_weight=ctc_weight,
            specaugment=SpecAugmentConfig(freq_masks=0, time_masks=0),
        )


class LASOutput(NamedTuple):
    """What a teacher-forced forward pass returns.

    logits: (B, U, V); attention: (B, U, T'); encoder_lengths: (B,);
    ctc_log_probs: (B, T', V) log-softmax of the CTC head, or None without one.
    """

    logits: Tensor
    attention: Tensor
    encoder_lengths: Tensor
    ctc_log_probs: Tensor | None


class SpeechMemory(NamedTuple):
    """Encoder outputs ready for decoding: memory (B, T', E), lengths (B,), mask (B, T'), keys."""

    memory: Tensor
    lengths: Tensor
    mask: Tensor
    keys: Tensor

    def select(self, index: Tensor) -> SpeechMemory:
        """Rows ``index`` (a (b,) bool mask or ids): drops the utterances beam search finished."""
        return SpeechMemory(
            self.memory[index], self.lengths[index.to(self.lengths.device)], self.mask[index],
            self.keys[index],
        )  # fmt: skip


def noisy_tokens(targets: Tensor, probability: float, vocab_size: int) -> Tensor:
    """A copy of targets (B, U) with each character id replaced, with ``probability``, by one drawn
    uniformly from the characters; EOS, PAD and the other reserved ids are kept."""
    first = BLANK + 1  # the first character id
    chars = targets >= first
    swap = chars & (torch.rand(targets.shape, device=targets.device) < probability)
    drawn = torch.randint_like(targets, first, vocab_size)
    return torch.where(swap, drawn, targets)


class LAS(nn.Module):
    """Listener + speller (+ CTC head) over a ``vocab_size``-symbol character vocabulary."""

    # Tensors whose first dimension is indexed by vocabulary id (a warm start maps their rows
    # by character when the vocabularies differ).
    VOCAB_TENSORS = ("embedding.weight", "classifier.weight", "classifier.bias",
                     "ctc_head.weight", "ctc_head.bias")

    def __init__(self, config: LASConfig, vocab_size: int) -> None:
        super().__init__()
        if vocab_size <= max(PAD, EOS) + 1:
            raise ValueError(f"vocab_size={vocab_size}: need the reserved ids plus characters")
        self.config = config
        self.vocab_size = vocab_size
        self.specaugment = SpecAugment(config.specaugment)
        self.encoder = build_encoder(config.encoder, config.num_mels)
        self.embedding = nn.Embedding(vocab_size, config.embedding_dim, padding_idx=PAD)
        self.decoder = AttentionDecoder(config.decoder, config.embedding_dim, self.encoder.output_dim)
        self.classifier = nn.Linear(self.decoder.output_dim, vocab_size)
        self.ctc_head = (
            nn.Linear(self.encoder.output_dim, vocab_size) if config.ctc_weight > 0 else None
        )

    @property
    def has_ctc(self) -> bool:
        return self.ctc_head is not None

    # ---- listener ------------------------------------------------------------------------------
    def encode(self, features: Tensor, lengths: Tensor) -> SpeechMemory:
        """(B, T, M) normalized log-mels, (B,) frame counts -> :class:`SpeechMemory`."""
        if features.shape[-1] != self.config.num_mels:
            raise ValueError(
                f"LAS: features have {features.shape[-1]} mel bins, the model expects "
                f"model.num_mels={self.config.num_mels}"
            )
        if self.config.utterance_mean_norm:
            features = subtract_utterance_mean(features, lengths)
        x, lengths = self.specaugment.augment(features, lengths)  # (B, T, M), (B,)
        memory, memory_lengths = self.encoder(x, lengths)  # (B, T', E), (B,)
        memory_lengths = memory_lengths.to(memory.device)
        mask = lengths_to_mask(memory_lengths, memory.shape[1])  # (B, T')
        return SpeechMemory(memory, memory_lengths, mask, self.decoder.prepare(memory))

    def ctc_log_probs(self, memory: Tensor) -> Tensor:
        """(B, T', E) -> (B, T', V) CTC log-probabilities (needs ``ctc_weight > 0``)."""
        if self.ctc_head is None:
            raise ValueError("this model has no CTC head (trained with model.ctc_weight=0)")
        return torch.log_softmax(self.ctc_head(memory).float(), dim=-1)

    # ---- speller -------------------------------------------------------------------------------
    def initial_state(self, speech: SpeechMemory) -> DecoderState:
        return self.decoder.initial_state(speech.memory)

    def step(
        self, tokens: Tensor, speech: SpeechMemory, state: DecoderState
    ) -> tuple[Tensor, Tensor, DecoderState]:
        """One speller step: previous tokens (B,) -> logits (B, V), attention (B, T'), state.

        Beam search passes B x K tokens and states, K consecutive rows per utterance of ``speech``
        (the attention's groups, :mod:`speechattn.nn.attention`); everything returned has B x K
        rows then."""
        out = self.decoder.step(
            self.embedding(tokens), speech.memory, speech.mask, state, speech.keys
        )
        return self.classifier(out.output), out.weights, out.state

    def forward(
        self,
        features: Tensor,
        lengths: Tensor,
        targets: Tensor,
        feedback: float = 0.0,
        token_noise: float = 0.0,
    ) -> LASOutput:
        """Training pass: (B, T, M), (B,), targets (B, U) ending in EOS, PAD after.

        The speller is fed SOS and then the reference characters (teacher forcing). With
        ``feedback > 0`` each row feeds back its own previous argmax instead, with that
        probability, independently per step (scheduled sampling; the decoder's one loop,
        :meth:`~speechattn.nn.decoder.AttentionDecoder.forward`). With ``token_noise > 0`` each
        reference character fed back is replaced by a uniformly drawn character with that
        probability (the targets scored are unchanged).
        """
        speech = self.encode(features, lengths)
        fed = noisy_tokens(targets, token_noise, self.vocab_size) if token_noise > 0 else targets
        sos = fed.new_full((fed.shape[0], 1), EOS)
        inputs = torch.cat([sos, fed[:, :-1]], dim=1)  # (B, U): SOS, then the characters fed back
        outputs, weights = self.decoder(
            inputs, speech.memory, speech.lengths, embed=self.embedding,
            own=lambda output: self.classifier(output).argmax(dim=-1), feedback=feedback,
            keys=speech.keys,  # encode prepared them; not a second projection of the memory
        )  # fmt: skip
        logits = self.classifier(outputs)  # (B, U, H + E) -> (B, U, V)
        ctc = self.ctc_log_probs(speech.memory) if self.has_ctc else None
        return LASOutput(logits, weights, speech.lengths, ctc)
