"""Learning test: the TTS recipe (prepared folder -> train_tts with the shared trainer -> load_tts ->
synthesize) overfits two sentences of a synthetic character-driven "voice".

The voice: every character has its own fixed 80-bin frame pattern held for 2-5 frames (fixed per
character), with a short transition between characters. The text fully determines the mel, so a
model that learned to read must (a) reproduce the mel under teacher forcing and (b) attend to the
characters in order when it runs freely, and stop at the end.

Bounds (measured over seeds 0-2 after 200 steps: dev mel L1 0.24-0.26, focus rate 0.80-0.90,
monotonicity 1.0, stop within 2 frames of the real length):
- teacher-forced dev mel L1 after the postnet (normalized units) < 0.35;
- free-running alignment: monotonicity >= 0.9, focus rate >= 0.5;
- synthesis stops by the stop token, well before the cap, within 25% of the real length.

A second test reads a text over four times longer than either training sentence in one pass
(bounds: monotonicity >= 0.9, coverage >= 0.95, mel length within 15% of what the voice gives
that text, ended by the stop token).
"""

import dataclasses
import json

import numpy as np
import pytest
import torch

from speechattn.audio import FeatureConfig, GlobalCMVN
from speechattn.config import resolve_config
from speechattn.data.manifest import read_manifest, write_manifest
from speechattn.text import Vocab
from speechattn.tts.pretrained import load_tts
from speechattn.tts.recipe import TTSRecipeConfig
from speechattn.tts.synthesize import synthesize
from speechattn.tts.training import train_tts

pytestmark = pytest.mark.usefixtures("one_thread")

SENTENCES = ["the quick brown fox jumps.", "she sells sea shells by the shore."]
CHARS = "abcdefghijklmnopqrstuvwxyz .,'"

TINY = [
    "model.reduction_factor=3", "model.embedding_dim=32",
    "model.encoder={hidden_dim: 32, num_layers: 1, conv_channels: 32, conv_layers: 2, conv_kernel: 5, dropout: 0.0}",
    "model.prenet.dims=[64, 32]",
    "model.decoder={hidden_dim: 96, num_layers: 1, dropout: 0.0}",
    "model.decoder.attention={attention_dim: 32, location_channels: 8, location_kernel: 15}",
    "model.postnet={channels: 32, layers: 3, kernel: 5, dropout: 0.0}",
    "loss.guided_half_life=null",
    "train={max_steps: 200, lr: 0.005, warmup_steps: 10, decay_steps: 190, min_lr: 0.0005, "
    "grad_clip: 1.0, max_frames: 400, valid_every: 200, checkpoint_every: 200, media_every: 0, "
    "log_every: 50, progress: false}",
    "data={valid_utterances: 2, align_utterances: 2}",
    "synthesis.inference={max_decoder_steps: 120}",
    "synthesis.vocoder.n_iter=4",
]  # fmt: skip


def character_voice(text: str, n_mels: int = 80) -> np.ndarray:
    """(F, M) frames: a fixed pattern per character, held 2-5 frames, blended at the joins."""
    rng = np.random.default_rng(0)
    patterns = {c: rng.normal(size=n_mels) for c in CHARS}
    frames = []
    for c in text:
        frames += [patterns[c]] * (2 + (ord(c) * 7) % 4)
    mel = np.stack(frames)
    mel[1:-1] = 0.25 * mel[:-2] + 0.5 * mel[1:-1] + 0.25 * mel[2:]  # soft transitions
    return mel.astype(np.float32)


@pytest.fixture
def data_dir(tmp_path):
    out = tmp_path / "data"
    (out / "mels").mkdir(parents=True)
    rows = []
    for k, text in enumerate(SENTENCES):
        mel = character_voice(text)
        np.save(out / "mels" / f"u{k}.npy", mel)
        rows.append({"id": f"u{k}", "audio": "", "mel": f"mels/u{k}.npy", "frames": len(mel), "duration": 0.0, "text": text})
    write_manifest(out / "train.jsonl", rows)
    write_manifest(out / "dev.jsonl", rows)
    Vocab.build(SENTENCES).save(out / "vocab.json")
    GlobalCMVN(torch.zeros(80), torch.ones(80)).save(out / "mel_stats.json")
    (out / "features.json").write_text(json.dumps(FeatureConfig.tts().to_dict()))
    return out


@pytest.mark.slow
def test_recipe_overfits_two_sentences_and_synthesizes_them(data_dir, tmp_path):
    torch.manual_seed(0)
    config = resolve_config(TTSRecipeConfig, overrides=TINY)
    exp = tmp_path / "exp"
    result = train_tts(config, data_dir, exp)
    assert result.step == 200
    assert result.best_metric < 0.35, f"teacher-forced dev mel L1 {result.best_metric:.3f}"
    for name in ("config.yaml", "vocab.json", "mel_stats.json", "features.json", "best.pt", "log.jsonl"):
        assert (exp / name).is_file(), name

    tts = load_tts(exp)
    results = synthesize(tts, SENTENCES)
    for text, row, (wave, rate, alignment, info) in zip(SENTENCES, read_manifest(data_dir / "dev.jsonl"), results):
        assert info["stop_reason"] == "stop_token", info
        assert info["decoder_steps"] < 120
        assert abs(info["mel_frames"] - row["frames"]) <= 0.25 * row["frames"], (info["mel_frames"], row["frames"])
        assert info["monotonicity"] >= 0.9, info
        assert info["focus_rate"] >= 0.5, info
        assert alignment.shape == (info["decoder_steps"], len(text) + 1)
        assert rate == 22050 and torch.isfinite(wave).all()


# Words of the training sentences in another order, over four times the longest of them.
LONG_TEXT = (
    "she jumps by the brown shore. the quick fox sells sea shells. the shore jumps by the quick sea. "
    "brown shells sell the fox. she sells the quick brown shells by the sea shore."
)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dca"])  # gmm and location do not pass it: recipes/tts/README.md
def test_location_relative_attention_reads_a_text_four_times_longer(kind, data_dir, tmp_path):
    """Trained on the two sentences, the voice reads a text over 4x longer than either in one
    pass: the attention moves forward (monotonicity), passes over every character (coverage),
    and the mel has the length the character voice gives that text (no word skipped or said
    twice), ended by the stop token."""
    from speechattn.metrics import attention_coverage

    assert len(LONG_TEXT) > 4 * max(len(s) for s in SENTENCES)
    torch.manual_seed(0)
    config = resolve_config(TTSRecipeConfig, overrides=[*TINY, f"model.decoder.attention.kind={kind}"])
    train_tts(config, data_dir, tmp_path / "exp")
    tts = load_tts(tmp_path / "exp")
    settings = dataclasses.replace(
        tts.config, max_text_chars=len(LONG_TEXT) + 1, split_long_text=False,
        inference=dataclasses.replace(tts.config.inference, max_decoder_steps=600),
    )  # fmt: skip
    (_, _, alignment, info), = synthesize(tts, [LONG_TEXT], settings)
    expected = len(character_voice(LONG_TEXT))
    coverage = attention_coverage(alignment)
    print(f"{kind}: {info['mel_frames']} frames (expected {expected}), monotonicity "
          f"{info['monotonicity']:.3f}, coverage {coverage:.3f}, focus {info['focus_rate']:.3f}")
    assert info["stop_reason"] == "stop_token", info
    assert info["monotonicity"] >= 0.9, info
    assert coverage >= 0.95, coverage
    assert abs(info["mel_frames"] - expected) <= 0.15 * expected, (info["mel_frames"], expected)
