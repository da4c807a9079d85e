"""Peer benchmark: our LAS speller and beam search against SpeechBrain's equivalent modules, same
sizes, same inputs, measured alternately in one process. Prints ratios; never asserts on time.

Usage:
    python benchmarks/peers.py                                   # offline.yaml and librispeech100.yaml
    python benchmarks/peers.py --configs recipes/asr/conf/offline.yaml --threads 1 2 --repeats 7
    python benchmarks/peers.py --tts-exp exp/tts_offline --tts-data data/tts_small   # + Tacotron2

What is compared (``ours / theirs`` time is printed as a speed ratio ``theirs / ours``: above 1 we
are faster):
  train   one teacher-forced training step, forward + backward (no optimizer step), on a random
          batch (``--batch`` utterances of ``--frames`` frames, ``--chars`` characters). Both sides
          share one listener (our pyramidal BiLSTM, a copy with the same weights) and a CTC head
          with the recipe's CTC weight; SpecAugment is off on both. "whole" is the step; "decoder"
          is the speller alone (embedding, attention decoder, output layer, cross-entropy) on a
          fixed encoder output that takes gradients.
          Ours: speechattn's AttentionDecoder with ``location`` attention. Theirs: SpeechBrain's
          ``AttentionalRNNDecoder(rnn_type="lstm", attn_type="location")`` at the same hidden,
          attention, filter and kernel sizes (its context is projected to the attention width
          and its output to the hidden width, as SpeechBrain builds it).
  beam    beam search, beam 10, for the same batch, listener included, without and with CTC prefix
          scoring (our CTCPrefixScorer against SpeechBrain's ``CTCScorer``, full vocabulary, no
          window). Step counts are made equal: the end symbol is suppressed on both sides (a
          -1e4 bias on its logit, both output layers), so both run to the same maximum length
          (``--beam-steps`` steps); the step counts are printed. Random weights: this measures
          the search's cost per step, not its results (tests/test_beam_pin.py pins those).
  tanh    the kernel behind most of both sides' attention time, the energies ``v . tanh(h)``:
          ``torch.tanh`` and the product against ``speechattn.nn.functional.tanh_energies``
          (``2 v . sigmoid(2h) - sum(v)`` in place, what our attention uses) on the energies'
          shape in training (B, T', A) and in beam search (10 B, T', A).
  tts     with ``--tts-exp``: benchmarks/tts.py's real-time factor stage (ours against
          torchaudio's ``Tacotron2`` at the closest sizes, decoding the same number of frames).
Each figure is the median of ``--repeats`` alternating runs (ours, theirs, ours, ...) after one
warm-up each; the spread (min-max of the per-repeat ratios) is printed next to it.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from speechattn.asr.decode import SearchConfig, beam_search
from speechattn.asr.loss import las_loss
from speechattn.asr.model import LAS
from speechattn.asr.recipe import ASRRecipeConfig
from speechattn.config import resolve_config
from speechattn.nn.functional import tanh_energies
from speechattn.text import BLANK, EOS, PAD, UNK

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [ROOT / "recipes/asr/conf/offline.yaml", ROOT / "recipes/asr/conf/librispeech100.yaml"]
VOCAB = 32  # reserved ids + 28 characters, about the recipes' character sets
SUPPRESSED = -1.0e4


def speechbrain_modules():
    """SpeechBrain's decoder, beam searcher and CTC scorer classes, or exit with a clear message."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from speechbrain.decoders.scorer import CTCScorer, ScorerBuilder
            from speechbrain.decoders.seq2seq import S2SRNNBeamSearcher
            from speechbrain.nnet.linear import Linear
            from speechbrain.nnet.RNN import AttentionalRNNDecoder
    except ImportError as error:
        sys.exit(
            f"peers.py: SpeechBrain is not installed ({error}); make setup installs the bench extra"
        )
    return AttentionalRNNDecoder, S2SRNNBeamSearcher, CTCScorer, ScorerBuilder, Linear


class SpeechBrainSpeller(nn.Module):
    """SpeechBrain's LAS speller at our sizes, on our listener's output: embedding ->
    AttentionalRNNDecoder (LSTM, location-aware) -> linear over the characters."""

    def __init__(self, ours: LAS) -> None:
        super().__init__()
        decoder_class, *_, linear_class = speechbrain_modules()
        c = ours.config.decoder
        self.embedding = nn.Embedding(ours.vocab_size, ours.config.embedding_dim, padding_idx=PAD)
        self.decoder = decoder_class(
            rnn_type="lstm", attn_type="location", hidden_size=c.hidden_dim,
            attn_dim=c.attention.attention_dim, num_layers=c.num_layers,
            enc_dim=ours.encoder.output_dim, input_size=ours.config.embedding_dim,
            channels=c.attention.location_channels, kernel_size=c.attention.location_kernel,
            dropout=c.dropout,
        )  # fmt: skip
        self.classifier = linear_class(input_size=c.hidden_dim, n_neurons=ours.vocab_size)
        # its CTC head: SpeechBrain's linear layer holding a copy of ours (same weights)
        self.ctc_head = None
        if ours.has_ctc:
            self.ctc_head = linear_class(
                input_size=ours.encoder.output_dim, n_neurons=ours.vocab_size
            )
            self.ctc_head.w.load_state_dict(ours.ctc_head.state_dict())

    def forward(self, memory: Tensor, relative_lengths: Tensor, inputs: Tensor) -> Tensor:
        outputs, _ = self.decoder(self.embedding(inputs), memory, relative_lengths)
        return self.classifier(outputs)  # (B, U, V)


def build(config_path: Path) -> tuple[LAS, SpeechBrainSpeller]:
    config = resolve_config(ASRRecipeConfig, config_path, ["model.specaugment.freq_masks=0",
                            "model.specaugment.time_masks=0", "model.specaugment.freq_warp=0",
                            "model.specaugment.time_stretch=0"])  # fmt: skip
    torch.manual_seed(0)
    ours = LAS(config.model, VOCAB)
    return ours, SpeechBrainSpeller(ours)


def batch(model: LAS, size: int, frames: int, chars: int):
    torch.manual_seed(1)
    features = torch.randn(size, frames, model.config.num_mels)
    lengths = torch.linspace(frames, frames * 0.7, size).long()
    lengths[0] = frames
    targets = torch.randint(BLANK + 1, VOCAB, (size, chars))
    targets[:, -1] = EOS
    return features, lengths, targets


def alternate(ours: Callable[[], object], theirs: Callable[[], object], repeats: int):
    """Median seconds of each side and the (min, max) of theirs / ours over the repeats."""
    ours(), theirs()  # warm-up
    mine, other = [], []
    for _ in range(repeats):
        for fn, times in ((ours, mine), (theirs, other)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    ratios = [b / a for a, b in zip(mine, other)]
    return statistics.median(mine), statistics.median(other), (min(ratios), max(ratios))


def report(label: str, result) -> None:
    ours, theirs, (low, high) = result
    print(
        f"  {label:34s} {1000 * ours:9.1f} {1000 * theirs:9.1f} {theirs / ours:7.2f}x  [{low:.2f}-{high:.2f}]"
    )


def stage_train(ours: LAS, theirs: SpeechBrainSpeller, data, repeats: int) -> None:
    features, lengths, targets = data
    ctc_weight = ours.config.ctc_weight
    listener = copy.deepcopy(ours.encoder)  # theirs runs the same listener, its own copy
    inputs = torch.cat([targets.new_full((targets.shape[0], 1), EOS), targets[:, :-1]], dim=1)
    ours.train(), theirs.train(), listener.train()

    def our_step() -> None:
        loss, _ = las_loss(ours(features, lengths, targets), targets, ctc_weight)
        ours.zero_grad(set_to_none=True)
        loss.backward()

    def their_loss(memory: Tensor, memory_lengths: Tensor) -> Tensor:
        relative = memory_lengths.float() / memory.shape[1]
        logits = theirs(memory, relative, inputs)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1), ignore_index=PAD,
                               reduction="sum") / targets.shape[0]  # fmt: skip
        if theirs.ctc_head is not None:
            log_probs = torch.log_softmax(theirs.ctc_head(memory), dim=-1).transpose(0, 1)
            ctc = F.ctc_loss(log_probs, targets, memory_lengths, (targets != PAD).sum(1) - 1,
                             blank=BLANK, reduction="sum", zero_infinity=True) / targets.shape[0]  # fmt: skip
            loss = (1 - ctc_weight) * loss + ctc_weight * ctc
        return loss

    def their_step() -> None:
        memory, memory_lengths = listener(features, lengths)
        loss = their_loss(memory, memory_lengths.to(memory.device))
        theirs.zero_grad(set_to_none=True)
        listener.zero_grad(set_to_none=True)
        loss.backward()

    with torch.no_grad():
        memory, memory_lengths = ours.encoder(features, lengths)
    memory = memory.detach().requires_grad_(True)
    memory_lengths = memory_lengths.to(memory.device)

    def our_decoder() -> None:
        outputs, _ = ours.decoder(inputs, memory, memory_lengths, embed=ours.embedding)
        logits = ours.classifier(outputs)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1), ignore_index=PAD,
                               reduction="sum") / targets.shape[0]  # fmt: skip
        ours.zero_grad(set_to_none=True)
        memory.grad = None
        loss.backward()

    def their_decoder() -> None:
        relative = memory_lengths.float() / memory.shape[1]
        logits = theirs(memory, relative, inputs)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1), ignore_index=PAD,
                               reduction="sum") / targets.shape[0]  # fmt: skip
        theirs.zero_grad(set_to_none=True)
        memory.grad = None
        loss.backward()

    report("training step, whole", alternate(our_step, their_step, repeats))
    report("training step, decoder part", alternate(our_decoder, their_decoder, repeats))


class Counted:
    """Wraps a step function and counts its calls."""

    def __init__(self, fn: Callable) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


def stage_beam(ours: LAS, theirs: SpeechBrainSpeller, data, steps: int, repeats: int) -> None:
    _, beam_searcher_class, ctc_scorer_class, scorer_builder_class, _ = speechbrain_modules()
    features, lengths, _ = data
    ours.eval(), theirs.eval()
    listener = copy.deepcopy(ours.encoder).eval()
    with torch.no_grad():  # the end symbol can never win: both sides run to their bound
        ours.classifier.bias[EOS] = SUPPRESSED
        theirs.classifier.w.bias[EOS] = SUPPRESSED
        encoder_frames = int(ours.encoder(features, lengths)[1].max())
    for ctc_weight in (0.0, ours.config.ctc_weight) if ours.has_ctc else (0.0,):
        # ours: at most ceil(T' * ratio) + offset steps; a tiny ratio makes that 1 + offset
        search = SearchConfig(beam_size=10, ctc_weight=ctc_weight, max_length_ratio=1e-9,
                              max_length_offset=steps - 1, batch_size=len(lengths))  # fmt: skip
        scorer = None
        if ctc_weight > 0:
            ctc = ctc_scorer_class(theirs.ctc_head, blank_index=BLANK, eos_index=EOS)
            scorer = scorer_builder_class(weights={"ctc": ctc_weight}, full_scorers=[ctc])
        searcher = beam_searcher_class(
            embedding=theirs.embedding, decoder=theirs.decoder, linear=theirs.classifier,
            bos_index=UNK, eos_index=EOS, min_decode_ratio=0.0,  # SpeechBrain wants bos != eos with CTC
            max_decode_ratio=(steps + 0.5) / encoder_frames, beam_size=10, scorer=scorer,
        )  # fmt: skip
        ours_count = Counted(ours.step)
        theirs_count = Counted(theirs.decoder.forward_step)
        ours.step, theirs.decoder.forward_step = ours_count, theirs_count

        def our_search(search=search) -> None:
            beam_search(ours, features, lengths, search)

        def their_search(searcher=searcher) -> None:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                memory, memory_lengths = listener(features, lengths)
                searcher(memory, memory_lengths.float() / memory.shape[1])

        result = alternate(our_search, their_search, repeats)
        runs = repeats + 1
        label = f"beam 10, {'CTC ' + str(ctc_weight) if ctc_weight else 'no CTC'}"
        report(label, result)
        print(f"  {'':34s} decoder steps per search: ours {ours_count.calls // runs}, "
              f"theirs {theirs_count.calls // runs}")  # fmt: skip
        del ours.step, theirs.decoder.forward_step  # back to the class methods


def stage_tanh(model: LAS, batch_size: int, frames: int, repeats: int) -> None:
    encoder_frames = int(model.encoder(torch.randn(1, frames, model.config.num_mels),
                                       torch.tensor([frames]))[1][0])  # fmt: skip
    width = model.config.decoder.attention.attention_dim
    print("  (for tanh: 'ours' is speechattn.nn.functional.tanh_energies, 'SB' is torch.tanh "
          "and the product, as SpeechBrain computes them; both on a fresh copy)")  # fmt: skip
    weight = torch.randn(1, width)
    for label, rows in (("training", batch_size), ("beam 10", 10 * batch_size)):
        x = torch.randn(rows, encoder_frames, width)
        result = alternate(lambda x=x: tanh_energies(x.clone(), weight),
                           lambda x=x: torch.tanh(x.clone()) @ weight[0], repeats)  # fmt: skip
        report(f"energies, {label} ({rows}x{encoder_frames}x{width})", result)


def stage_tts(exp: Path, data: Path, limit: int) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import tts as tts_bench  # benchmarks/tts.py

    from speechattn.data.manifest import read_manifest
    from speechattn.tts.pretrained import load_tts

    tts_bench.rtf(load_tts(exp), read_manifest(data / "test.jsonl")[:limit])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Peer benchmark (prints ratios).")
    parser.add_argument(
        "--configs", nargs="+", type=Path, default=CONFIGS, help="ASR recipe configs"
    )
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5, help="alternating runs per figure")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--chars", type=int, default=60)
    parser.add_argument("--beam-steps", type=int, default=50)
    parser.add_argument(
        "--stages", nargs="+", choices=("train", "beam", "tanh"), default=["train", "beam", "tanh"]
    )
    parser.add_argument(
        "--tts-exp", type=Path, help="a trained TTS experiment: compare with torchaudio"
    )
    parser.add_argument("--tts-data", type=Path, help="its prepared data folder (test.jsonl)")
    parser.add_argument("--tts-limit", type=int, default=10)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    speechbrain_modules()
    import speechbrain

    print(f"torch {torch.__version__}, speechbrain {speechbrain.__version__}; batch {args.batch} x "
          f"{args.frames} frames, {args.chars} characters; median of {args.repeats} alternating runs")  # fmt: skip
    for config_path in args.configs:
        for threads in args.threads:
            torch.set_num_threads(threads)
            ours, theirs = build(config_path)
            data = batch(ours, args.batch, args.frames, args.chars)
            print(f"\n== {config_path.name}, {threads} thread(s): ours {sum(p.numel() for p in ours.parameters()) / 1e6:.2f}M "
                  f"parameters, SpeechBrain speller {sum(p.numel() for p in theirs.parameters()) / 1e6:.2f}M")  # fmt: skip
            print(f"  {'':34s} {'ours ms':>9s} {'SB ms':>9s} {'speed':>8s}  [spread]")
            if "train" in args.stages:
                stage_train(ours, theirs, data, args.repeats)
            if "beam" in args.stages:
                stage_beam(ours, theirs, data, args.beam_steps, args.repeats)
            if "tanh" in args.stages:
                with torch.no_grad():
                    stage_tanh(ours, args.batch, args.frames, args.repeats)
    if args.tts_exp:
        if args.tts_data is None:
            sys.exit("peers.py: --tts-exp needs --tts-data (the prepared folder with test.jsonl)")
        torch.set_num_threads(max(args.threads))
        stage_tts(args.tts_exp, args.tts_data, args.tts_limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
