"""Using a trained ASR experiment: load it, transcribe waveforms, decode a whole dataset.

>>> asr = load_asr("exp/asr_offline")                            # doctest: +SKIP
>>> transcribe(asr, ["a.wav", "b.flac"], SearchConfig(beam_size=10))  # doctest: +SKIP
['HELLO WORLD', 'GOOD MORNING']

``load_asr`` validates everything it reads: the config against :class:`ASRRecipeConfig`, the
checkpoint with ``torch.load(weights_only=True)``, and the weights against the network the config
describes; each failure names the file and what to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from speechattn import experiment
from speechattn.asr import decode as decoding
from speechattn.asr.data import ASRDataset, FeatureFrontEnd
from speechattn.asr.decode import Decoded, SearchConfig, decode
from speechattn.asr.lm import CharNgramLM
from speechattn.asr.model import LAS
from speechattn.asr.recipe import LM_FILE, ASRRecipeConfig, build_frontend, build_model
from speechattn.asr.wordlist import WordList
from speechattn.audio import GlobalCMVN, as_waveform, check_sample_rate, load_audio, resample
from speechattn.data.batching import pad_sequence_batch
from speechattn.text import Vocab

__all__ = ["LoadedASR", "Recognized", "load_asr", "find_checkpoint", "transcribe"]


class Recognized(NamedTuple):
    """One transcribed input: its text, log score and attention (U, T') when asked for."""

    text: str
    score: float
    attention: Tensor | None


@dataclass
class LoadedASR:
    """A trained recognizer: the model (eval mode) with everything decoding needs: vocabulary,
    CMVN, recipe config (its ``search`` settings are the default), character LM (None when the
    experiment has no ``lm.json``) and word list (None: no lexicon-constrained search)."""

    model: LAS
    vocab: Vocab
    cmvn: GlobalCMVN
    config: ASRRecipeConfig
    lm: CharNgramLM | None = None
    words: WordList | None = None
    source: str = ""  # where it was loaded from, for messages

    @property
    def frontend(self) -> FeatureFrontEnd:
        return build_frontend(self.config, self.cmvn)

    @property
    def sample_rate(self) -> int:
        return self.config.data.features.sample_rate

    @torch.no_grad()
    def recognize(
        self,
        waves: Sequence[object],
        search: SearchConfig | None = None,
        sample_rate: int | None = None,
        keep_attention: bool = False,
    ) -> list[Recognized]:
        """Decode ``waves`` (audio file paths, or samples at ``sample_rate``, default the model's)
        in length-sorted batches of ``search.batch_size`` with this recognizer's LM and word list;
        one :class:`Recognized` per input, in input order."""
        search = search or self.config.search
        device = _device(self.model)
        frontend = self.frontend.to(device)
        features = [frontend(_as_wave(w, self.sample_rate, sample_rate).to(device)) for w in waves]
        order = sorted(range(len(features)), key=lambda i: -features[i].shape[0])
        results: dict[int, Recognized] = {}
        for start in range(0, len(order), search.batch_size):
            chunk = order[start : start + search.batch_size]
            padded, lengths = pad_sequence_batch([features[i] for i in chunk])  # (B, T, M)
            hyps = decode(self.model, padded, lengths, search, keep_attention, self.lm, self.words)
            for i, hyp in zip(chunk, hyps, strict=True):
                results[i] = Recognized(self.vocab.decode(hyp.tokens), hyp.score, hyp.attention)
        return [results[i] for i in range(len(features))]

    def iter_decoded(
        self,
        dataset: ASRDataset,
        search: SearchConfig | None = None,
        keep_attention: bool = False,
        progress: bool = False,
    ) -> Iterator[Decoded]:
        """Every usable utterance of ``dataset`` decoded with this recognizer's LM and word list
        (:func:`speechattn.asr.decode.iter_decoded`), ``search`` defaulting to the experiment's."""
        return decoding.iter_decoded(
            self.model, dataset, search or self.config.search, keep_attention, progress, self.lm,
            self.words,
        )  # fmt: skip


TRAIN_SCRIPT = "recipes/asr/train.py"


def find_checkpoint(exp_dir: Path) -> Path:
    """``exp/best.pt``, else the newest ``exp/checkpoints/step-*.pt``."""
    return experiment.find_checkpoint(exp_dir, TRAIN_SCRIPT)


def load_asr(
    exp_dir: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    lm: str | os.PathLike | None = None,
    lexicon: str | os.PathLike | None = None,
) -> LoadedASR:
    """Load ``exp_dir``'s config, vocab, CMVN, weights (``best.pt`` unless ``checkpoint``) and
    character LM (``lm.json`` unless ``lm``; none if that file does not exist); ``lexicon``: a
    word list that beam search holds hypotheses to."""
    loaded = experiment.load_experiment(
        exp_dir, ASRRecipeConfig, "cmvn.json", lambda config, vocab, _: build_model(config, vocab),
        "ASR", TRAIN_SCRIPT, checkpoint, device,
    )  # fmt: skip
    lm_path = Path(lm) if lm is not None else Path(exp_dir) / LM_FILE
    if lm is not None and not lm_path.is_file():
        raise FileNotFoundError(f"{lm_path}: language model not found")
    language_model = CharNgramLM.load(lm_path, len(loaded.vocab)) if lm_path.is_file() else None
    words = WordList.load(lexicon, loaded.vocab) if lexicon is not None else None
    return LoadedASR(
        loaded.model, loaded.vocab, loaded.stats, loaded.config, language_model, words,
        str(exp_dir),
    )  # fmt: skip


def _device(model: LAS) -> torch.device:
    return next(model.parameters()).device


def _as_wave(item: object, sample_rate: int, input_rate: int | None) -> Tensor:
    """(S,) at ``sample_rate`` from a file path, or from samples (array or tensor, integer PCM
    scaled) at ``input_rate`` (None: already at ``sample_rate``)."""
    if isinstance(item, str | os.PathLike):
        return load_audio(item, sample_rate)[0]
    wave = as_waveform(item)
    rate = sample_rate if input_rate is None else check_sample_rate(input_rate)
    return resample(wave, rate, sample_rate)


def transcribe(
    asr: LoadedASR,
    waves: Sequence[Tensor | str | os.PathLike],
    search: SearchConfig | None = None,
    sample_rate: int | None = None,
) -> list[str]:
    """Transcripts of ``waves``: audio file paths, or (S,) / (C, S) tensors at ``sample_rate``
    (default: the model's rate). Decoding uses ``search`` (default: the experiment's)."""
    return [r.text for r in asr.recognize(waves, search, sample_rate)]
