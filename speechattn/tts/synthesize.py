"""Text -> waveform: batched Tacotron decoding, inverse mel + Griffin-Lim, alignment measures.

Shapes: B batch, T characters, U decoder steps, F mel frames, M mel bins, S samples.

>>> tts = load_tts("exp/tts_offline")  # speechattn.tts.pretrained                       # doctest: +SKIP
>>> (wave, sample_rate, alignment, info), = synthesize(tts, ["Hello there."])   # doctest: +SKIP

Each result is a :class:`SynthesisResult` (unpacks as ``(waveform, sample_rate, alignment, info)``):
``waveform`` (S,) float32, ``alignment`` the attention of the utterance, ``info`` a JSON-ready
dict: text, normalized chunks, duration, decoder steps (also per chunk), stop reason
(``"stop_token"`` or ``"max_decoder_steps"``), focus rate, monotonicity, diagonality, model /
vocoder seconds and real-time factors. Seconds of a batch are shared among its items in proportion
to their decoder steps.

A text that fits in one chunk has its plain (U, T) ``alignment``. A long text split into chunks
(T_i characters and EOS, U_i decoder steps each) has the chunks' alignments one above the other,
``(sum U_i, max T_i)`` with each chunk's rows starting at its own first character, so memory grows
with the length of the text, not with its square (a block-diagonal matrix would be
``sum U_i x sum T_i``: gigabytes for a few thousand characters). ``result.alignments`` gives the
chunks' (U_i, T_i) views; the alignment measures are those of the chunks, weighted by their decoder
steps.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from speechattn.audio import save_audio
from speechattn.fileio import write_text_atomic
from speechattn.metrics import alignment_measures, mean_measures
from speechattn.plot import plot_alignment
from speechattn.tts.decode import InferenceConfig, infer
from speechattn.tts.text_input import prepare_texts
from speechattn.vocoder import Vocoder, VocoderConfig, build_vocoder

if TYPE_CHECKING:
    from speechattn.tts.pretrained import LoadedTTS

__all__ = [
    "SynthesisConfig",
    "SynthesisResult",
    "synthesize",
    "save_results",
]

_log = logging.getLogger(__name__)


@dataclass
class SynthesisConfig:
    """Inference defaults saved with a voice; any field can be overridden per call."""

    inference: InferenceConfig = field(default_factory=InferenceConfig)
    vocoder: VocoderConfig = field(default_factory=VocoderConfig)
    max_text_chars: int = 200  # per chunk, after normalization
    split_long_text: bool = True  # False: longer text is an error
    chunk_pause: float = 0.15  # seconds of silence between the chunks of a split text
    batch_size: int = 16
    seed: int = 0  # prenet dropout at inference is random: fixed seed, reproducible audio


class SynthesisResult(NamedTuple):
    """One utterance; see the module docstring (``alignment`` is (U, T), or stacked chunks)."""

    waveform: Tensor  # (S,)
    sample_rate: int
    alignment: Tensor  # (sum U_i, max T_i)
    info: dict[str, Any]

    @property
    def alignments(self) -> list[Tensor]:
        """The (U_i, T_i) attention of each chunk: views of ``alignment``, in text order."""
        views, first = [], 0
        for steps, chunk in zip(self.info["chunk_steps"], self.info["normalized"]):
            views.append(self.alignment[first : first + steps, : len(chunk) + 1])  # + EOS
            first += steps
        return views


class _Chunk(NamedTuple):
    mel: Tensor  # (F, M) log-mel, de-normalized
    alignment: Tensor  # (U, T)
    steps: int
    reached_cap: bool
    model_seconds: float


def _decode_batch(tts: LoadedTTS, chunks: list[str], config: SynthesisConfig) -> list[_Chunk]:
    """Decode one batch of text chunks with a shared attention window and stop logic."""
    device = next(tts.model.parameters()).device
    ids = [torch.tensor(tts.vocab.encode(c, add_eos=True)) for c in chunks]
    lengths = torch.tensor([len(i) for i in ids])
    text = pad_sequence(ids, batch_first=True, padding_value=tts.vocab.pad_id).to(device)  # (B, T)
    start = time.perf_counter()
    out = infer(tts.model, text, lengths, config.inference)
    seconds = time.perf_counter() - start
    total_steps = float(out.decoder_steps.sum())
    mels = tts.cmvn.inverse(out.mels.cpu())  # (B, F, M); stats and vocoder stay on the CPU
    results = []
    for b in range(len(chunks)):
        steps = int(out.decoder_steps[b])
        results.append(
            _Chunk(
                mels[b, : int(out.mel_lengths[b])],
                out.alignments[b, :steps, : int(lengths[b])].cpu(),
                steps,
                bool(out.reached_cap[b]),
                seconds * steps / total_steps,
            )
        )
    return results


def _decode_all(tts: LoadedTTS, chunks: list[str], config: SynthesisConfig) -> list[_Chunk]:
    """Chunks sorted by length into batches (less padding), results in input order."""
    order = sorted(range(len(chunks)), key=lambda i: len(chunks[i]))
    decoded: dict[int, _Chunk] = {}
    size = max(1, config.batch_size)
    for first in range(0, len(order), size):
        batch = order[first : first + size]
        for index, chunk in zip(batch, _decode_batch(tts, [chunks[i] for i in batch], config)):
            decoded[index] = chunk
    return [decoded[i] for i in range(len(chunks))]


def _vocode(
    vocoder: Vocoder, parts: list[_Chunk], pause: int
) -> tuple[Tensor, float]:
    """Waveforms of the chunks joined by ``pause`` zero samples; returns (S,), seconds."""
    start = time.perf_counter()
    waves = []
    for i, part in enumerate(parts):
        if i:
            waves.append(torch.zeros(pause))
        waves.append(vocoder(part.mel).cpu())  # (F, M) -> (S,)
    return torch.cat(waves), time.perf_counter() - start


def _stack(alignments: list[Tensor]) -> Tensor:
    """(U_i, T_i) per chunk -> (sum U_i, max T_i), zero beyond each chunk's T_i."""
    rows = sum(a.shape[0] for a in alignments)
    stacked = alignments[0].new_zeros(rows, max(a.shape[1] for a in alignments))
    first = 0
    for alignment in alignments:
        steps, chars = alignment.shape
        stacked[first : first + steps, :chars] = alignment
        first += steps
    return stacked


def _result(
    text: str, chunks: list[str], parts: list[_Chunk], wave: Tensor, vocoder_s: float, rate: int
) -> SynthesisResult:
    measures = mean_measures(
        [alignment_measures(p.alignment) for p in parts], [p.steps for p in parts]
    )
    duration = wave.numel() / rate
    model_s = sum(p.model_seconds for p in parts)
    capped = any(p.reached_cap for p in parts)
    info = {
        "text": text,
        "normalized": chunks,
        "chunks": len(chunks),
        "duration_s": round(duration, 4),
        "decoder_steps": sum(p.steps for p in parts),
        "chunk_steps": [p.steps for p in parts],
        "mel_frames": sum(p.mel.shape[0] for p in parts),
        "stop_reason": "max_decoder_steps" if capped else "stop_token",
        "focus_rate": round(measures.focus_rate, 4),
        "monotonicity": round(measures.monotonicity, 4),
        "diagonality": round(measures.diagonality, 4),
        "model_s": round(model_s, 4),
        "vocoder_s": round(vocoder_s, 4),
        "rtf_model": round(model_s / duration, 4),
        "rtf_vocoder": round(vocoder_s / duration, 4),
        "rtf": round((model_s + vocoder_s) / duration, 4),
    }
    return SynthesisResult(wave, rate, _stack([p.alignment for p in parts]), info)


def synthesize(
    tts: LoadedTTS, texts: str | list[str], config: SynthesisConfig | None = None
) -> list[SynthesisResult]:
    """Synthesize every text (batched); see the module docstring for what comes back.

    Raises :class:`~speechattn.tts.text_input.TextInputError` for empty text, text with no
    speakable characters, or (with ``split_long_text=False``) text over ``max_text_chars``.
    """
    config = config or tts.config
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise ValueError("synthesize: no texts given")
    prepared = prepare_texts(texts, tts.vocab, config.max_text_chars, config.split_long_text)
    flat = [chunk for chunks in prepared for chunk in chunks]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        decoded = _decode_all(tts, flat, config)
    vocoder = build_vocoder(config.vocoder, tts.features)
    pause = int(config.chunk_pause * tts.features.sample_rate)
    results, position = [], 0
    for text, chunks in zip(texts, prepared):
        parts = decoded[position : position + len(chunks)]
        position += len(chunks)
        wave, vocoder_s = _vocode(vocoder, parts, pause)
        result = _result(text, chunks, parts, wave, vocoder_s, tts.features.sample_rate)
        if result.info["stop_reason"] == "max_decoder_steps":
            _log.warning(
                "%s: no stop token within max_decoder_steps=%d; the audio is cut there (raise "
                "synthesis.inference.max_decoder_steps, or the voice needs more training)",
                repr(text[:40]),
                config.inference.max_decoder_steps,
            )
        results.append(result)
    return results


def save_results(
    results: list[SynthesisResult], out_dir: str | os.PathLike, names: list[str] | None = None
) -> Path:
    """Write ``<name>.wav`` (16-bit), ``<name>.png`` (alignment) per result and ``summary.json``.

    Returns the summary path. Names default to ``utt-0001``, ``utt-0002``, ...
    """
    out_dir = Path(out_dir)
    names = names or [f"utt-{i + 1:04d}" for i in range(len(results))]
    if len(names) != len(results):
        raise ValueError(f"save_results: {len(names)} names for {len(results)} results")
    items = []
    for name, (wave, rate, alignment, info) in zip(names, results):
        save_audio(out_dir / f"{name}.wav", wave, rate)
        title = (
            f"{name}: focus rate {info['focus_rate']:.3f}, monotonicity {info['monotonicity']:.3f}"
            f" ({info['stop_reason']})"
        )
        if info["chunks"] > 1:
            title += f"; {info['chunks']} chunks stacked, each from its first character"
        plot_alignment(alignment, out_dir / f"{name}.png", title=title)
        items.append({"name": name, "wav": f"{name}.wav", "alignment": f"{name}.png", **info})
    total_audio = sum(item["duration_s"] for item in items)
    total_time = sum(item["model_s"] + item["vocoder_s"] for item in items)
    summary = {
        "utterances": items,
        "total_duration_s": round(total_audio, 3),
        "rtf": round(total_time / max(total_audio, 1e-9), 4),
        "reached_cap": [item["name"] for item in items if item["stop_reason"] != "stop_token"],
    }
    return write_text_atomic(out_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
