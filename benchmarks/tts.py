"""TTS benchmark: intelligibility, alignment, synthesis speed and Griffin-Lim quality. Prints figures;
never asserts on time.

Usage:
    python benchmarks/tts.py --exp exp/tts_offline --data data/tts_small
    python benchmarks/tts.py --exp exp/tts_offline --data data/tts_small --stages rtf griffinlim --limit 10
    python benchmarks/tts.py --exp exp/tts_lj --data data/tts_lj --threads 8

Stages (``--stages``, default all):
  intelligibility  synthesize the held-out sentences (``DATA/test.jsonl``), recognize them with an
                   independent recognizer (pocketsphinx's own US-English model, 16 kHz 16-bit mono;
                   ``--lm train`` swaps its LM for a bigram of the training text)
                   and score WER against the input text, next to the same recognizer's WER on the
                   source voice's recordings of the same sentences (target: ours <= 1.5x source);
                   also the alignment focus rate / monotonicity (targets >= 0.8 / >= 0.95) and how
                   many utterances ended by the stop token. ``--asr EXP`` adds WER and CER by
                   the project's own recognizer (a trained ASR experiment, its own search
                   settings), on the synthesis and on the recordings.
  rtf              real-time factor of synthesis, model and Griffin-Lim separately (target: total
                   <= 0.2 on 2 CPU cores), one utterance at a time and batched, next to torchaudio's
                   ``Tacotron2`` built at the closest sizes decoding the same number of frames.
  griffinlim       our Griffin-Lim vs ``librosa.griffinlim`` (same iterations, momentum 0.99, zero
                   initial phase): spectral convergence against the recording and time, both from
                   the true magnitude and from the log-mel (inverse mel included).
  diagnose         the same sentences recognized at four points from recording to synthesis:
                   the recording, Griffin-Lim of its log-mel, the model's teacher-forced mel,
                   free-running synthesis (``benchmarks/tts_diagnose.py``): where the words are lost.
  long             paragraphs of 400+ characters in one pass vs sentence by sentence (``--asr``
                   needed; see ``benchmarks/tts_runs.py``).
  seeds            train ``--config`` once per ``--seeds`` value into ``EXP/seed-N`` and print the
                   spread of dev mel L1, our ASR's WER/CER, focus rate and stop-token endings
                   (``--asr`` needed; no other stage beside it).

    python benchmarks/tts.py --exp exp/tts_seeds --data data/tts_small --stages seeds \
        --config recipes/tts/conf/offline.yaml --seeds 1 2 3 --asr exp/asr_offline
    python benchmarks/tts.py --exp exp/tts_offline --data data/tts_small --stages long --asr exp/asr_offline
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import librosa
import torch
import torchaudio
from referee import make_recognizer, recognize, write_bigram_lm  # benchmarks/referee.py
from tts_diagnose import diagnose  # benchmarks/tts_diagnose.py
from tts_runs import long_input, seeds  # benchmarks/tts_runs.py

from speechattn.audio import LogMel, load_audio
from speechattn.config import config_from_dict, config_to_dict, merge_override, parse_override
from speechattn.data.manifest import read_manifest
from speechattn.metrics import error_rates
from speechattn.text import normalize_asr
from speechattn.tts.pretrained import LoadedTTS, load_tts
from speechattn.tts.synthesize import SynthesisConfig, SynthesisResult, synthesize
from speechattn.vocoder import VocoderConfig
from speechattn.vocoder.griffin_lim import (
    GriffinLimVocoder,
    linear_spectrogram,
    spectral_convergence,
)

STAGES = ("intelligibility", "diagnose", "rtf", "griffinlim", "long", "seeds")
DEFAULT_STAGES = ["intelligibility", "rtf", "griffinlim"]


def our_asr_intelligibility(asr_exp: Path, rows: list[dict], results: list[SynthesisResult]) -> None:
    """WER/CER of the project's recognizer on the synthesis and on the voice's recordings."""
    from speechattn.asr.pretrained import load_asr, transcribe

    asr = load_asr(asr_exp)
    refs = [normalize_asr(row["text"]) for row in rows]
    synthesized = [transcribe(asr, [r.waveform.float()], sample_rate=r.sample_rate)[0] for r in results]
    recorded = transcribe(asr, [row["audio"] for row in rows])
    ours, source = error_rates(refs, synthesized), error_rates(refs, recorded)
    search = asr.config.search
    print(f"\n== intelligibility: our ASR ({asr_exp}, beam {search.beam_size}, CTC weight "
          f"{search.ctc_weight}, LM weight {search.lm_weight if asr.lm else 0}) on {len(rows)} sentences")
    print(f"  synthesized      WER {ours.wer:7.3f}  CER {ours.cer:7.3f}")
    print(f"  source recording WER {source.wer:7.3f}  CER {source.cer:7.3f}")
    print(f"  ratio ours/source WER {ours.wer / max(source.wer, 1e-9):6.2f}  "
          f"CER {ours.cer / max(source.cer, 1e-9):6.2f}")
    for ref, hyp in list(zip(refs, synthesized, strict=True))[:3]:
        print(f"    REF  {ref}\n    OURS {hyp}")


def intelligibility(
    tts: LoadedTTS, rows: list[dict], lm: Path | None, asr_exp: Path | None = None
) -> list[SynthesisResult]:
    decoder = make_recognizer(lm)
    results = synthesize(tts, [row["text"] for row in rows])
    if asr_exp is not None:
        our_asr_intelligibility(asr_exp, rows, results)
    refs = [normalize_asr(row["text"]) for row in rows]
    ours = [normalize_asr(recognize(decoder, r.waveform, r.sample_rate)) for r in results]
    source = []
    for row in rows:
        wave, rate = load_audio(row["audio"])
        source.append(normalize_asr(recognize(decoder, wave, rate)))
    ours_wer, source_wer = error_rates(refs, ours).wer, error_rates(refs, source).wer
    model = "pocketsphinx en-us" + (" + bigram LM of the training text" if lm else "")
    print(f"\n== intelligibility: {model} on {len(rows)} held-out sentences")
    print(f"  WER synthesized      {ours_wer:7.3f}")
    print(f"  WER source recording {source_wer:7.3f}")
    print(f"  ratio ours/source    {ours_wer / max(source_wer, 1e-9):7.2f}   (target <= 1.5)")
    for ref, hyp_ours, hyp_src in list(zip(refs, ours, source))[:3]:
        print(f"    REF  {ref}\n    OURS {hyp_ours}\n    SRC  {hyp_src}")
    infos = [r.info for r in results]
    print(f"\n== alignment over {len(infos)} sentences (free running, synthesis settings)")
    print(f"  focus rate   mean {statistics.mean(i['focus_rate'] for i in infos):.3f}   (target >= 0.8)")
    print(f"  monotonicity mean {statistics.mean(i['monotonicity'] for i in infos):.3f}   (target >= 0.95)")
    stopped = sum(i["stop_reason"] == "stop_token" for i in infos)
    print(f"  ended by the stop token: {stopped}/{len(infos)}")
    return results


def _rtf(results: list[SynthesisResult]) -> tuple[float, float, float]:
    audio = sum(r.info["duration_s"] for r in results)
    model = sum(r.info["model_s"] for r in results)
    vocoder = sum(r.info["vocoder_s"] for r in results)
    return model / audio, vocoder / audio, audio


def torchaudio_twin(tts: LoadedTTS, max_steps: int) -> torch.nn.Module:
    """torchaudio's Tacotron2 at the sizes closest to ours (it ties embedding, conv and encoder
    widths, always has two decoder LSTMs and decodes one frame per step); it never stops early."""
    c = tts.model.config
    width = 2 * c.encoder.hidden_dim
    model = torchaudio.models.Tacotron2(
        n_mels=c.num_mels, n_symbol=len(tts.vocab), symbol_embedding_dim=width,
        encoder_embedding_dim=width, encoder_n_convolution=c.encoder.conv_layers,
        encoder_kernel_size=c.encoder.conv_kernel, decoder_rnn_dim=c.decoder.hidden_dim,
        attention_rnn_dim=c.decoder.hidden_dim, attention_hidden_dim=c.decoder.attention.attention_dim,
        attention_location_n_filter=c.decoder.attention.location_channels,
        attention_location_kernel_size=c.decoder.attention.location_kernel,
        prenet_dim=c.prenet.dims[-1], postnet_n_convolution=c.postnet.layers,
        postnet_kernel_size=c.postnet.kernel, postnet_embedding_dim=c.postnet.channels,
        decoder_max_step=max_steps, gate_threshold=1.0,
    )  # fmt: skip
    return model.eval()


def rtf(tts: LoadedTTS, rows: list[dict]) -> None:
    texts = [row["text"] for row in rows]
    single = [synthesize(tts, [text])[0] for text in texts]
    batched = synthesize(tts, texts)
    hop, rate = tts.features.hop_length, tts.features.sample_rate
    print(f"\n== real-time factor ({torch.get_num_threads()} threads, {len(texts)} sentences)")
    print(f"  {'':34s} {'model':>8s} {'vocoder':>8s} {'total':>8s} {'ms/step':>8s}")
    for name, results in (("ours, one at a time", single), (f"ours, batches of {tts.config.batch_size}", batched)):
        model, vocoder, _ = _rtf(results)
        steps = sum(r.info["decoder_steps"] for r in results)
        per_step = 1000 * sum(r.info["model_s"] for r in results) / steps
        print(f"  {name:34s} {model:8.3f} {vocoder:8.3f} {model + vocoder:8.3f} {per_step:8.2f}")
    seconds = frames = 0.0
    for text, ours in zip(texts, single):
        twin = torchaudio_twin(tts, ours.info["mel_frames"])
        tokens = torch.tensor([tts.vocab.encode(text, add_eos=True)])
        start = time.perf_counter()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            twin.infer(tokens, torch.tensor([tokens.shape[1]]))
        seconds += time.perf_counter() - start
        frames += ours.info["mel_frames"]
    twin_rtf = seconds / (frames * hop / rate)
    print(f"  {'torchaudio Tacotron2 (r=1), 1 by 1':34s} {twin_rtf:8.3f} {'':8s} {'':8s} {1000 * seconds / frames:8.2f}")
    print(f"  (same output frames; target total <= 0.2. ours decodes r={tts.model.reduction_factor} frames per step)")


def _vocoders(features, n_iter: int) -> dict:
    """name -> (label, run(reference magnitude (F, T), log-mel (T, M)) -> waveform (S,))."""
    f = features
    ours = GriffinLimVocoder(VocoderConfig(n_iter=n_iter, momentum=0.99, power=1.0), f)

    def librosa_mag(reference, mel):
        return librosa.griffinlim(
            reference.numpy(), n_iter=n_iter, hop_length=f.hop_length, win_length=f.win_length,
            n_fft=f.n_fft, momentum=0.99, init=None, pad_mode=f.pad_mode,
        )  # fmt: skip

    def librosa_mel(reference, mel):
        return librosa.feature.inverse.mel_to_audio(
            mel.exp().T.numpy(), sr=f.sample_rate, n_fft=f.n_fft, hop_length=f.hop_length,
            win_length=f.win_length, power=f.power, n_iter=n_iter, fmin=f.f_min,
            fmax=f.max_frequency, htk=f.mel_scale == "htk", norm=f.norm, pad_mode=f.pad_mode,
        )  # fmt: skip

    return {
        "ours_mag": ("ours, true magnitude", lambda reference, mel: ours.linear_to_wave(reference)),
        "librosa_mag": ("librosa, true magnitude", librosa_mag),
        "ours_mel": ("ours, from log-mel (pinv)", lambda reference, mel: ours(mel)),
        "librosa_mel": ("librosa, from mel (NNLS)", librosa_mel),
    }


def griffinlim(tts: LoadedTTS, rows: list[dict], n_iter: int) -> None:
    f = tts.features
    vocoders = _vocoders(f, n_iter)
    log_mel = LogMel(f)
    convergence = {key: [] for key in vocoders}
    times = dict.fromkeys(vocoders, 0.0)
    audio = 0.0
    for row in rows:
        wave, _ = load_audio(row["audio"], f.sample_rate)
        audio += wave.numel() / f.sample_rate
        reference = linear_spectrogram(wave, f)  # (F, T)
        mel = log_mel(wave)  # (T, M)
        for key, (_, run) in vocoders.items():
            start = time.perf_counter()
            out = torch.as_tensor(run(reference, mel)).float()
            times[key] += time.perf_counter() - start
            estimate = linear_spectrogram(out, f)
            frames = min(estimate.shape[-1], reference.shape[-1])
            convergence[key].append(
                spectral_convergence(reference[:, :frames], estimate[:, :frames])
            )
    print(f"\n== Griffin-Lim, {n_iter} iterations, {len(rows)} recordings ({audio:.1f} s)")
    print(f"  {'':32s} {'spectral conv.':>15s} {'RTF':>8s}")
    for key, (label, _) in vocoders.items():
        print(f"  {label:32s} {statistics.mean(convergence[key]):15.4f} {times[key] / audio:8.3f}")


def synthesis_overrides(config: SynthesisConfig, overrides: list[str]) -> SynthesisConfig:
    """The voice's synthesis settings with ``synthesis.KEY=VALUE`` overrides applied."""
    values = config_to_dict(config)
    for item in overrides:
        path, value = parse_override(item)
        if path[0] != "synthesis" or len(path) < 2:
            raise SystemExit(f"{item}: only synthesis.* settings can be overridden for a trained voice")
        merge_override(values, path[1:], value)
    return config_from_dict(SynthesisConfig, values)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="TTS benchmark (prints figures).")
    parser.add_argument(
        "--exp", type=Path, required=True,
        help="trained experiment folder (seeds: the folder of the seeds' experiments)",
    )  # fmt: skip
    parser.add_argument("--data", type=Path, required=True, help="prepared data folder (test.jsonl)")
    parser.add_argument("--split", default="test", help="manifest to use (default: test)")
    parser.add_argument("--limit", type=int, default=50, help="at most this many sentences")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    parser.add_argument("--griffin-lim-iters", type=int, default=32)
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=DEFAULT_STAGES)
    parser.add_argument(
        "--lm", choices=("default", "train"), default="default",
        help="recognizer LM: pocketsphinx's own, or a bigram of DATA/train.jsonl's text (never "
        "the test sentences): sharper and faster on the small offline vocabulary",
    )  # fmt: skip
    parser.add_argument("--asr", type=Path, help="also score with this trained ASR experiment")
    parser.add_argument("--config", type=Path, help="seeds: the recipe config to train")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="seeds: train.seed values")
    parser.add_argument("--paragraphs", type=int, default=3, help="long: how many paragraphs")
    parser.add_argument("--min-chars", type=int, default=400, help="long: characters per paragraph")
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value",
        help="seeds: recipe config overrides; other stages: synthesis.* settings of the voice",
    )  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if {"long", "seeds"} & set(args.stages) and args.asr is None:
        parser.error("--stages long and seeds score with our recognizer: give --asr EXP")
    if "seeds" in args.stages and (args.config is None or len(args.stages) > 1):
        parser.error("--stages seeds trains, alone: give --config RECIPE.yaml and no other stage")
    torch.set_num_threads(args.threads)
    rows = read_manifest(args.data / f"{args.split}.jsonl")[: args.limit]
    if "seeds" in args.stages:
        texts, audio = [row["text"] for row in rows], [row["audio"] for row in rows]
        seeds(args.config, args.overrides, args.data, args.exp, args.seeds, texts, args.asr, audio)
        return 0
    tts = load_tts(args.exp)
    if args.overrides:
        tts.config = synthesis_overrides(tts.config, args.overrides)
    print(f"{args.exp}: {sum(p.numel() for p in tts.model.parameters()) / 1e6:.2f}M parameters; "
          f"{len(rows)} sentences from {args.data / args.split}.jsonl")  # fmt: skip
    lm = None
    if args.lm == "train" and {"intelligibility", "diagnose"} & set(args.stages):
        train_text = [row["text"] for row in read_manifest(args.data / "train.jsonl")]
        lm = write_bigram_lm(train_text, Path(tempfile.mkdtemp()) / "train.arpa")
    if "intelligibility" in args.stages:
        intelligibility(tts, rows, lm, args.asr)
    if "diagnose" in args.stages:
        diagnose(tts, args.data / f"{args.split}.jsonl", args.limit, make_recognizer(lm), args.asr)
    if "rtf" in args.stages:
        rtf(tts, rows)
    if "griffinlim" in args.stages:
        griffinlim(tts, rows[: min(len(rows), 10)], args.griffin_lim_iters)
    if "long" in args.stages:
        long_input(tts, [row["text"] for row in rows], args.asr, args.min_chars, args.paragraphs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
