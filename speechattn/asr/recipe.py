"""The ASR recipe's config and the files an experiment folder holds.

A recipe config composes the components' own configs; it is resolved with
:func:`speechattn.config.resolve_config` (defaults -> YAML -> ``key=value``) and saved as
``exp/config.yaml``. Sections::

    model:      LASConfig        encoder, decoder + attention, embedding_dim, ctc_weight, specaugment
    objective:  ObjectiveConfig  label smoothing, scheduled sampling
    train:      TrainConfig      the shared trainer (steps, lr, batch frames, checkpoints...)
    data:       ASRDataConfig    manifests, duration limit, feature settings
    search:     SearchConfig     decoding defaults (validation is always greedy)
    lm:         LMConfig         the character LM of the training transcripts (+ LM text), if any

Experiment folder: ``config.yaml``, ``vocab.json``, ``cmvn.json`` (copied from the data folder),
``lm.json`` (the character LM, unless ``lm.order=0``), ``best.pt`` / ``checkpoints/`` /
``log.jsonl`` / ``tensorboard/`` (the trainer).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from speechattn import experiment
from speechattn.asr.data import ASRDataConfig, FeatureFrontEnd
from speechattn.asr.decode import SearchConfig
from speechattn.asr.lm import CharNgramLM, LMConfig, fit_texts, read_source, read_texts
from speechattn.asr.loss import ObjectiveConfig
from speechattn.asr.model import LAS, LASConfig
from speechattn.audio import GlobalCMVN
from speechattn.data.librispeech import LM_TEXT_NAME
from speechattn.text import Vocab
from speechattn.train import TrainConfig

__all__ = [
    "ASRRecipeConfig",
    "DATA_FILES",
    "LM_FILE",
    "PREPARED_LM_TEXT",
    "check_data_dir",
    "fit_lm",
    "lm_text_path",
    "copy_data_files",
    "build_model",
    "build_frontend",
    "write_lm",
]

DATA_FILES = ("vocab.json", "cmvn.json")
LM_FILE = "lm.json"
PREPARED_LM_TEXT = "lm_text.txt"  # prepare's copy of a corpus's LM text, in the data folder


@dataclass
class ASRRecipeConfig:
    """Everything one ASR experiment is made of."""

    model: LASConfig = field(default_factory=LASConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: ASRDataConfig = field(default_factory=ASRDataConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    lm: LMConfig = field(default_factory=LMConfig)

    def __post_init__(self) -> None:
        n_mels, model_mels = self.data.features.n_mels, self.model.num_mels
        if n_mels != model_mels:
            raise ValueError(
                f"model.num_mels={model_mels} differs from data.features.n_mels={n_mels}; "
                "set both to the same number of mel bins"
            )
        if self.search.ctc_weight > 0 and self.model.ctc_weight == 0:
            raise ValueError(
                f"search.ctc_weight={self.search.ctc_weight} needs a CTC head: "
                "set model.ctc_weight > 0"
            )
        if self.search.lm_weight > 0 and self.lm.order == 0:
            raise ValueError(
                f"search.lm_weight={self.search.lm_weight} needs a language model: set lm.order > 0"
            )


def check_data_dir(data_dir: Path, config: ASRDataConfig) -> dict[str, Path]:
    """Paths of the files training needs in ``data_dir``; a missing one raises naming the fix."""
    manifests = {"train": config.train, "valid": config.valid}
    return experiment.check_data_dir(data_dir, manifests, DATA_FILES, "recipes/asr/prepare.py")


def copy_data_files(data_dir: Path, exp_dir: Path) -> None:
    """Copy ``vocab.json`` and ``cmvn.json`` into the experiment, refusing to swap them silently."""
    experiment.copy_data_files(data_dir, exp_dir, DATA_FILES)


def build_model(config: ASRRecipeConfig, vocab: Vocab) -> LAS:
    return LAS(config.model, len(vocab))


def build_frontend(config: ASRRecipeConfig, cmvn: GlobalCMVN) -> FeatureFrontEnd:
    return FeatureFrontEnd(config.data.features, cmvn)


def lm_text_path(config: ASRRecipeConfig, data_dir: Path) -> Path | None:
    """The file of ``lm.text`` (relative to ``data_dir`` unless absolute); it must exist."""
    if config.lm.order == 0 or not config.lm.text:
        return None
    path = data_dir / config.lm.text
    if not path.is_file():
        raise FileNotFoundError(
            f"lm.text={config.lm.text!r}: {path} does not exist (recipes/asr/prepare.py writes "
            f"{PREPARED_LM_TEXT} from a corpus's {LM_TEXT_NAME} or --lm-text FILE; lm.text= fits "
            "the transcripts alone)"
        )
    return path


def fit_lm(
    config: ASRRecipeConfig, train_manifest: Path, vocab: Vocab, text: Path | None = None
) -> CharNgramLM:
    """The character LM (``config.lm``) of the training transcripts and the lines of ``text``."""
    texts = read_texts([train_manifest], [text] if text is not None else [])
    return fit_texts(texts, vocab, config.lm)


def write_lm(
    config: ASRRecipeConfig, train_manifest: Path, vocab: Vocab, exp_dir: Path,
    text: Path | None = None,
) -> Path | None:
    """:func:`fit_lm` into ``exp_dir/lm.json``; None when ``lm.order`` is 0, or when the file
    was already fitted with these ``lm`` settings on the same training manifest (a resumed run
    keeps it; a changed ``lm.order``/``discount``/``text`` fits it again)."""
    path = exp_dir / LM_FILE
    source = {**dataclasses.asdict(config.lm), "train": train_manifest.name}
    if config.lm.order == 0 or (path.is_file() and read_source(path) == source):
        return None
    return fit_lm(config, train_manifest, vocab, text).save(path, source)
