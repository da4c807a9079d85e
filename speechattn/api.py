"""The Python API: a trained recognizer and a trained voice, each loaded from its experiment folder.

>>> from speechattn import ASR, TTS
>>> asr = ASR.load("exp/demo/asr")                                   # doctest: +SKIP
>>> asr.transcribe("hello.wav")                                      # doctest: +SKIP
'HELLO THERE'
>>> text, attention = asr.transcribe(wave, sample_rate=22050, return_attention=True)  # doctest: +SKIP
>>> tts = TTS.load("exp/demo/tts")                                   # doctest: +SKIP
>>> speech = tts.synthesize("Hello there.")                          # doctest: +SKIP
>>> speech.waveform.shape, speech.sample_rate, speech.alignment.shape  # doctest: +SKIP
((41216,), 22050, (70, 13))

Loading reads the checkpoint with ``torch.load(weights_only=True)`` and checks it against the
experiment's config and vocabulary; a missing or mismatched file raises an error naming it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from torch import Tensor

__all__ = ["ASR", "TTS", "Speech"]

AudioInput = str | os.PathLike | np.ndarray | Tensor


class ASR:
    """A trained Listen-Attend-Spell recognizer (a thin face on
    :class:`speechattn.asr.pretrained.LoadedASR`, which does the work)."""

    def __init__(self, loaded: Any) -> None:
        self.loaded = loaded

    @classmethod
    def load(cls, exp_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
             device: str = "cpu", lexicon: str | os.PathLike | None = None) -> ASR:
        """Load ``exp_dir`` (config.yaml, vocab.json, cmvn.json, best.pt); ``lexicon``: a word
        list that beam search holds hypotheses to (as ``infer.py --lexicon``)."""
        from speechattn.asr.pretrained import load_asr

        return cls(load_asr(exp_dir, checkpoint, device, lexicon=lexicon))

    @property
    def words(self) -> Any:
        return self.loaded.words  # a speechattn.asr.wordlist.WordList, or None

    @property
    def sample_rate(self) -> int:
        return self.loaded.sample_rate

    def transcribe(self, audio: AudioInput, sample_rate: int | None = None, beam_size: int | None = None,
                   return_attention: bool = False) -> str | tuple[str, np.ndarray]:
        """Text of one audio file or array; with ``return_attention`` also its (U, T') attention.

        ``sample_rate`` is the rate of an array input (default: the model's; 1 kHz to 384 kHz);
        files carry their own. Integer PCM arrays (int16, int32, uint8) are scaled to [-1, 1];
        anything but a path, an array or a tensor raises ``TypeError``.
        """
        from dataclasses import replace

        search = self.loaded.config.search
        if beam_size is not None:
            search = replace(search, beam_size=beam_size)
        (result,) = self.loaded.recognize([audio], search, sample_rate, return_attention)
        if return_attention:
            return result.text, result.attention.cpu().numpy()
        return result.text


class Speech(NamedTuple):
    """A synthesized utterance: waveform (S,), its rate, attention (U, T) and a summary dict."""

    waveform: np.ndarray
    sample_rate: int
    alignment: np.ndarray
    info: dict


class TTS:
    """A trained Tacotron voice with its vocoder (`synthesis.vocoder`, Griffin-Lim by default)."""

    def __init__(self, loaded: Any) -> None:
        self.loaded = loaded

    @classmethod
    def load(cls, exp_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
             device: str = "cpu") -> TTS:
        """Load ``exp_dir`` (config.yaml, vocab.json, mel_stats.json, best.pt)."""
        from speechattn.tts.pretrained import load_tts

        return cls(load_tts(exp_dir, checkpoint, device))

    def synthesize(self, text: str) -> Speech:
        """Speak ``text``; empty or unspeakable text raises ``ValueError``."""
        from speechattn.tts.synthesize import synthesize

        (result,) = synthesize(self.loaded, [text])
        wave, rate, alignment, info = result
        return Speech(
            np.asarray(wave.cpu() if isinstance(wave, Tensor) else wave, dtype=np.float32),
            int(rate),
            np.asarray(alignment.cpu() if isinstance(alignment, Tensor) else alignment),
            dict(info),
        )

    def save(self, speech: Speech, path: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``speech`` as a 16-bit WAV and its alignment as a PNG beside it."""
        from speechattn.audio import save_audio
        from speechattn.metrics import AlignmentMeasures
        from speechattn.plot import plot_alignment

        wav = save_audio(path, speech.waveform, speech.sample_rate)
        # The utterance's measures (of each chunk, for a long text), not those of the stacked matrix
        measures = AlignmentMeasures(*(speech.info[k] for k in AlignmentMeasures._fields))
        png = plot_alignment(speech.alignment, Path(path).with_suffix(".png"),
                             title=speech.info.get("text"), measures=measures)
        return Path(wav), Path(png)
