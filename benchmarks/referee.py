"""The independent referee both benchmarks score against: pocketsphinx with its own US-English
acoustic model (16 kHz, 16-bit), which was trained on neither our corpus nor our voices.

``benchmarks/tts.py`` reads synthesized speech with it; ``benchmarks/asr.py --stages referee``
prints its WER on a test split beside ours.
"""

from __future__ import annotations

import collections
import math
from pathlib import Path

import torch

from speechattn.audio import resample
from speechattn.text import normalize_asr

__all__ = ["RECOGNIZER_RATE", "make_recognizer", "recognize", "write_bigram_lm"]

RECOGNIZER_RATE = 16000


def write_bigram_lm(sentences: list[str], path: Path, discount: float = 0.5) -> Path:
    """An ARPA bigram LM (absolute discounting, backoff to unigrams) of ``sentences``."""
    unigrams, bigrams = collections.Counter(), collections.Counter()
    for sentence in sentences:
        words = ["<s>", *normalize_asr(sentence).lower().split(), "</s>"]
        unigrams.update(words)
        bigrams.update(zip(words[:-1], words[1:]))
    total = sum(unigrams.values())
    p_uni = {w: c / total for w, c in unigrams.items()}
    history = collections.Counter()
    followers: dict[str, list[str]] = collections.defaultdict(list)
    for (a, b), count in bigrams.items():
        history[a] += count
        followers[a].append(b)
    lines = ["\\data\\", f"ngram 1={len(unigrams)}", f"ngram 2={len(bigrams)}", "", "\\1-grams:"]
    for word in sorted(unigrams):
        logp = -99.0 if word == "<s>" else math.log10(p_uni[word])
        backoff = 0.0
        if history[word]:
            left = discount * len(followers[word]) / history[word]
            unseen = max(1.0 - sum(p_uni[b] for b in followers[word]), 1e-9)
            backoff = math.log10(left / unseen)
        lines.append(f"{logp:.5f} {word} {backoff:.5f}")
    lines += ["", "\\2-grams:"]
    for (a, b), count in sorted(bigrams.items()):
        lines.append(f"{math.log10((count - discount) / history[a]):.5f} {a} {b}")
    path.write_text("\n".join([*lines, "", "\\end\\", ""]), encoding="utf-8")
    return path


def make_recognizer(lm: Path | None):
    from pocketsphinx import Decoder

    options = {"samprate": RECOGNIZER_RATE, "loglevel": "FATAL"}
    if lm is not None:
        options["lm"] = str(lm)
    return Decoder(**options)


def recognize(decoder, wave: torch.Tensor, rate: int) -> str:
    """pocketsphinx hypothesis for a float waveform (resampled to 16 kHz, 16-bit)."""
    pcm = resample(wave.float(), rate, RECOGNIZER_RATE).clamp(-1, 1).mul(32767).short().numpy()
    decoder.start_utt()
    decoder.process_raw(pcm.tobytes(), full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


