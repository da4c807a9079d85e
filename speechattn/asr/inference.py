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
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor
from tqdm import tqdm

from speechattn import experiment
from speechattn.asr.data import ASRDataset, FeatureFrontEnd
from speechattn.asr.lm import CharNgramLM
from speechattn.asr.model import LAS
from speechattn.asr.recipe import LM_FILE, ASRRecipeConfig, build_frontend, build_model
from speechattn.asr.search import SearchConfig, decode
from speechattn.asr.wordlist import WordList
from speechattn.audio import GlobalCMVN, as_waveform, check_sample_rate, load_audio, resample
from speechattn.config import load_config
from speechattn.data.batching import pad_sequence_batch
from speechattn.text import Vocab
from speechattn.train import load_checkpoint, load_model_state

__all__ = [
    "LoadedASR",
    "Decoded",
    "load_asr",
    "find_checkpoint",
    "transcribe",
    "decode_dataset",
    "iter_decoded",
]


class LoadedASR(NamedTuple):
    """A trained recognizer: unpacks as ``model, vocab, cmvn, config, lm`` (``lm``: None when
    the experiment has no ``lm.json``)."""

    model: LAS
    vocab: Vocab
    cmvn: GlobalCMVN
    config: ASRRecipeConfig
    lm: CharNgramLM | None = None

    @property
    def frontend(self) -> FeatureFrontEnd:
        return build_frontend(self.config, self.cmvn)


class Decoded(NamedTuple):
    """One decoded utterance; ``attention`` (U, T') only when asked for."""

    id: str
    ref: str | None
    hyp: str
    score: float
    seconds: float
    attention: Tensor | None


def find_checkpoint(exp_dir: Path) -> Path:
    """``exp/best.pt``, else the newest ``exp/checkpoints/step-*.pt``."""
    return experiment.find_checkpoint(exp_dir, "recipes/asr/train.py")


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: {what} not found; is {path.parent} a finished ASR --exp folder?"
        )
    return path


def load_asr(
    exp_dir: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    lm: str | os.PathLike | None = None,
) -> LoadedASR:
    """Load ``exp_dir``'s config, vocab, CMVN, weights (``best.pt`` unless ``checkpoint``) and
    character LM (``lm.json`` unless ``lm``; none if that file does not exist)."""
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise FileNotFoundError(f"{exp_dir}: experiment folder not found")
    config_path = _require(exp_dir / "config.yaml", "config")
    try:
        config = load_config(ASRRecipeConfig, config_path)
    except ValueError as err:
        raise ValueError(f"{config_path}: not an ASR recipe config ({err})") from None
    vocab = Vocab.load(_require(exp_dir / "vocab.json", "vocabulary"))
    cmvn = GlobalCMVN.load(_require(exp_dir / "cmvn.json", "CMVN stats"))
    path = Path(checkpoint) if checkpoint is not None else find_checkpoint(exp_dir)
    state = load_checkpoint(path)["model"]
    model = build_model(config, vocab)
    load_model_state(
        model, state, path, "use the checkpoint of this experiment",
        f"weights do not fit the model in {config_path} and {exp_dir / 'vocab.json'}",
    )  # fmt: skip
    lm_path = Path(lm) if lm is not None else exp_dir / LM_FILE
    if lm is not None and not lm_path.is_file():
        raise FileNotFoundError(f"{lm_path}: language model not found")
    language_model = CharNgramLM.load(lm_path, len(vocab)) if lm_path.is_file() else None
    return LoadedASR(model.eval().to(device), vocab, cmvn, config, language_model)


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


@torch.no_grad()
def transcribe(
    asr: LoadedASR,
    waves: Sequence[Tensor | str | os.PathLike],
    search: SearchConfig | None = None,
    sample_rate: int | None = None,
) -> list[str]:
    """Transcripts of ``waves``: audio file paths, or (S,) / (C, S) tensors at ``sample_rate``
    (default: the model's rate). Decoding uses ``search`` (default: the experiment's)."""
    search = search or asr.config.search
    frontend = asr.frontend.to(_device(asr.model))
    rate = asr.config.data.features.sample_rate
    features = [frontend(_as_wave(w, rate, sample_rate).to(_device(asr.model))) for w in waves]
    order = sorted(range(len(features)), key=lambda i: -features[i].shape[0])
    texts: dict[int, str] = {}
    for start in range(0, len(order), search.batch_size):
        chunk = order[start : start + search.batch_size]
        padded, lengths = pad_sequence_batch([features[i] for i in chunk])  # (B, T, M)
        hyps = decode(asr.model, padded, lengths, search, lm=asr.lm)
        for i, hyp in zip(chunk, hyps, strict=True):
            texts[i] = asr.vocab.decode(hyp.tokens)
    return [texts[i] for i in range(len(features))]


def iter_decoded(
    model: LAS,
    dataset: ASRDataset,
    search: SearchConfig,
    keep_attention: bool = False,
    progress: bool = False,
    lm: CharNgramLM | None = None,
    words: WordList | None = None,
) -> Iterator[Decoded]:
    """Decode every usable utterance of ``dataset`` in length-sorted batches, yielded as decoded.

    Utterances whose audio fails to load are left out (the dataset logs them).
    """
    model.eval()
    device = _device(model)
    order = sorted(range(len(dataset)), key=lambda i: -dataset.lengths[i])
    chunks = [order[s : s + search.batch_size] for s in range(0, len(order), search.batch_size)]
    for chunk in tqdm(chunks, desc="decode", unit="batch", disable=not progress):
        batch = dataset.batch(chunk, stand_in=False)
        if batch is None:
            continue
        with torch.no_grad():
            hyps = decode(model, batch.features.to(device), batch.lengths.to(device), search,
                          keep_attention, lm, words)  # fmt: skip
        for utt_id, hyp in zip(batch.ids, hyps, strict=True):
            row = dataset.row(utt_id)
            yield Decoded(
                utt_id, row.get("text"), dataset.vocab.decode(hyp.tokens), hyp.score,
                row["duration"], hyp.attention,
            )  # fmt: skip


def decode_dataset(
    model: LAS,
    dataset: ASRDataset,
    search: SearchConfig,
    keep_attention: bool = False,
    progress: bool = False,
    lm: CharNgramLM | None = None,
    words: WordList | None = None,
) -> list[Decoded]:
    """:func:`iter_decoded` collected in dataset order."""
    decoded = iter_decoded(model, dataset, search, keep_attention, progress, lm, words)
    results = {d.id: d for d in decoded}
    return [results[row["id"]] for row in dataset.rows if row["id"] in results]
