"""Stage ``diagnose`` of ``benchmarks/tts.py``: where a voice's words are lost.

The same held-out sentences are recognized at four points of the chain from recording to synthesis,
each adding one thing to the one before:

recording      the voice's own audio (what the recognizer can do at best on this voice)
vocoder        Griffin-Lim of the recording's log-mel (the prepared, trimmed mel): what the
               vocoder and the mel front-end lose, with nothing learned in the way
teacher forced the model's mel (postnet output) when it is fed the recorded frames, as in
               training (prenet dropout as at inference), then the same vocoder: what the
               model's spectra lose when it never sees its own output
free running   plain synthesis (the voice's synthesis settings): what feeding back its own
               frames, and the stop decision, lose on top

Each line prints pocketsphinx's WER and CER (its own US-English model), our recognizer's with
``--asr EXP``, and for the teacher-forced mel its L1 distance to the recording's (normalized
log-mel, the figure training validates). A large step from ``vocoder`` to ``teacher forced`` puts
the loss in the model's spectra; from ``teacher forced`` to ``free running``, in exposure to its own
frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from referee import recognize  # benchmarks/referee.py

from speechattn.audio import load_audio
from speechattn.metrics import error_rates
from speechattn.text import normalize_asr
from speechattn.tts.data import TTSDataset
from speechattn.tts.pretrained import LoadedTTS
from speechattn.tts.synthesize import synthesize
from speechattn.vocoder import build_vocoder

__all__ = ["diagnose"]


def _scores(refs: list[str], hyps: list[str]) -> str:
    rates = error_rates(refs, hyps)
    return f"{100 * rates.wer:6.1f} {100 * rates.cer:6.1f}"


@torch.no_grad()
def diagnose(tts: LoadedTTS, manifest: Path, limit: int, recognizer, asr_exp: Path | None) -> None:
    """Print WER/CER at each point of the chain (module docstring) for the first ``limit`` rows
    of a prepared TTS ``manifest`` (its cached mels, read and batched as training does)."""
    rate = tts.features.sample_rate
    vocoder = build_vocoder(tts.config.vocoder, tts.features)
    dataset = TTSDataset(manifest, tts.vocab, tts.cmvn, cache_in_memory=False)
    rows = dataset.rows[:limit]
    texts = [row["text"] for row in rows]
    waves: dict[str, list[torch.Tensor]] = {"recording": [], "vocoder": [], "teacher forced": []}
    l1 = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(tts.config.seed)  # prenet dropout at inference is random
        for index, row in enumerate(rows):
            waves["recording"].append(load_audio(row["audio"], rate)[0])
            batch = dataset.batch([index])  # one utterance: text (1, T), mels (1, F, M) normalized
            target = batch.mels[0]  # (F, M)
            waves["vocoder"].append(vocoder(tts.cmvn.inverse(target)))
            predicted = tts.model(*batch).mel_after[0, : target.shape[0]]  # fed the recorded frames
            l1.append(float((predicted - target).abs().mean()))
            waves["teacher forced"].append(vocoder(tts.cmvn.inverse(predicted)))
    results = synthesize(tts, texts)
    waves["free running"] = [r.waveform for r in results]
    refs = [normalize_asr(t) for t in texts]
    asr = None
    if asr_exp is not None:
        from speechattn.asr.pretrained import load_asr, transcribe

        asr = load_asr(asr_exp)
    print(f"\n== where the words are lost: {len(rows)} sentences, vocoder {tts.config.vocoder.kind}")
    header = f"  {'':16s} {'pocketsphinx WER':>16s} {'CER':>6s}"
    print(header + (f" {'our ASR WER':>12s} {'CER':>6s}" if asr else "") + "  note")
    for name, audio in waves.items():
        hyps = [normalize_asr(recognize(recognizer, w, rate)) for w in audio]
        line = f"  {name:16s} {_scores(refs, hyps):>23s}"
        if asr is not None:
            line += f" {_scores(refs, transcribe(asr, audio, sample_rate=rate)):>19s}"
        if name == "teacher forced":
            line += f"  mel L1 {np.mean(l1):.3f} (normalized, vs the recording's)"
        if name == "free running":
            ratio = sum(r.info["duration_s"] for r in results) / sum(
                w.numel() / rate for w in waves["vocoder"]
            )
            stopped = sum(r.info["stop_reason"] == "stop_token" for r in results)
            line += f"  {stopped}/{len(results)} by the stop token, length x{ratio:.2f} the trimmed recording"
        print(line)
