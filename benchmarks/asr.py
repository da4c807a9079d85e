"""ASR benchmark: training throughput, decoding real-time factor, peak memory, where a step's time
goes, and (``full``) the offline recipe's accuracy. Prints figures; never asserts on time.

Usage:
    python benchmarks/asr.py --data data/asr_small                          # speed stages, offline.yaml
    python benchmarks/asr.py --data data/asr_small --stages decode breakdown --trained exp/asr   # its weights
    python benchmarks/asr.py --data data/asr_mini --config recipes/asr/conf/tiny.yaml --threads 1
    python benchmarks/asr.py --corpus small --stages full --threads 2        # build, train, decode
    python benchmarks/asr.py --data DIR --exp EXP --stages full --lexicon WORDS   # + word-list decoding
    python benchmarks/asr.py --data DIR --exp EXP --stages words   # misses by the words' training count
    python benchmarks/asr.py --data data/libri100 --config recipes/asr/conf/librispeech100.yaml

Stages (``--stages``, default ``train decode breakdown``):
  train      seconds of audio trained per second of wall time over ``--steps`` steps of the config's
             model and batch size (after 2 warm-up steps), fresh weights.
  decode     real-time factor (decode time / audio time) of greedy and beam-10 search on up to
             ``--limit`` dev utterances, batched by ``search.batch_size``; with fresh weights
             unless ``--trained EXP`` (fresh ones run every hypothesis to its length bound).
  breakdown  one training step against the bare LSTM kernels it runs (nn.LSTM / nn.LSTMCell of the
             same shapes, forward + backward, nothing else), and where the rest goes: attention,
             output layer + loss, optimizer, and the remainder (Python dispatch, masking, concats);
             then one beam-10 search of ``search.batch_size`` dev utterances with the config's CTC
             weight (no LM) split into listener, decoder steps (attention and the rest), CTC
             prefix scorer and the search's own bookkeeping.
  full       the recipe end to end: train the config on ``DATA`` into ``--exp`` (resumes), then
             beam-10 decode ``test``, ``test-unseen-voice``, ``test-prose`` and
             ``test-prose-unseen-voice`` where DATA has them, with the experiment's LM, without it,
             and with ``--lexicon``; prints wall time, WER and CER against the targets (<= 10%,
             25%, 15% and 25% WER).
  referee    pocketsphinx (its own US-English model, see benchmarks/referee.py) on ``DATA``'s
             ``--split`` manifests (default ``test``), WER and CER against the references: the
             figure to print beside ours (e.g. the real LJ Speech clips, where it reads ~25%).
  lm         the character LM of the config (``lm.order``, ``lm.discount``) on DATA's training
             transcripts plus ``lm.text`` and any ``--lm-text`` files: seconds to fit, n-grams and
             contexts, file size, seconds to load, and the process's peak memory before and
             after (run it alone, in its own process: the peak is the process's).
  words      for every decoding of ``--exp`` (``EXP/benchmark/*/hyps.jsonl`` and
             ``EXP/decode/*/hyps.jsonl``), the reference words grouped by how often DATA's training
             transcripts contain them (never, and then whether the experiment's LM text has them;
             1-4; 5-49; 50 or more times): each group's share of the words and of them missed
             (substituted or deleted). ``full`` prints the same after each of its decodings.
Peak memory (``resource.getrusage`` max RSS) is printed after every stage.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from speechattn.asr.ctc_prefix import CTCPrefixScorer
from speechattn.asr.data import ASRBatch, ASRDataset
from speechattn.asr.decode import beam_search, decode_dataset
from speechattn.asr.infer import run_decode
from speechattn.asr.loss import las_loss
from speechattn.asr.pretrained import load_asr
from speechattn.asr.recipe import ASRRecipeConfig, check_data_dir, fit_lm, lm_text_path
from speechattn.asr.scoring import score_hypotheses
from speechattn.asr.task import ASRTask
from speechattn.asr.training import build_task, train_asr
from speechattn.asr.wordlist import WordList
from speechattn.config import resolve_config
from speechattn.data.batching import BucketBatchSampler, spread
from speechattn.data.manifest import read_manifest, read_text_lines
from speechattn.metrics import missed_by_group
from speechattn.nn.encoder import reduced_lengths

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("train", "decode", "breakdown", "full", "referee", "lm", "words")
# the splits `full` decodes, and their WER targets (offline.yaml on the small corpus, beam 10)
# the offline corpus's grammar test sets and its prose ones (sentences of real English, #16)
WER_TARGETS = {"test": 10.0, "test-unseen-voice": 25.0, "test-prose": 15.0,
               "test-prose-unseen-voice": 25.0}  # fmt: skip


def peak_memory() -> str:
    return f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"


def timed(fn: Callable[[], object], repeats: int = 3) -> float:
    """Median wall seconds of ``fn`` over ``repeats`` runs (after one warm-up run)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def training_batches(task: ASRTask, max_frames: int, count: int) -> list[ASRBatch]:
    sampler = BucketBatchSampler(task.train_lengths(), max_frames, shuffle=True, seed=0)
    batches = iter(sampler)
    return [task.make_batch(next(batches)) for _ in range(min(count, len(sampler)))]


def stage_train(task: ASRTask, config: ASRRecipeConfig, steps: int) -> None:
    batches = training_batches(task, config.train.max_frames, steps + 2)
    model = task.model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    seconds, start = 0.0, 0.0
    for i, batch in enumerate(batches):
        if i == 2:  # the first steps pay for allocations and lazy initialisation
            start, seconds = time.perf_counter(), 0.0
        loss, _ = task.training_step(model, batch, step=0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seconds += batch.seconds
    elapsed = time.perf_counter() - start
    done = len(batches) - 2
    print(f"train: {seconds / elapsed:.1f} s of audio per second ({done} steps, "
          f"{elapsed / done:.2f} s/step, {seconds / done:.0f} s of audio per batch, "
          f"max_frames={config.train.max_frames}); {peak_memory()}")  # fmt: skip


def stage_decode(task: ASRTask, config: ASRRecipeConfig, limit: int, data: Path) -> None:
    dataset = task.valid_set
    subset = ASRDataset(spread(dataset.rows, limit), dataset.vocab, dataset.frontend, dataset.name)
    audio = sum(row["duration"] for row in subset.rows)
    model = task.model.eval()
    lm = None
    if config.lm.order > 0:  # the LM training would fit (transcripts + lm.text)
        train_manifest = check_data_dir(data, config.data)["train"]
        lm = fit_lm(config, train_manifest, dataset.vocab, lm_text_path(config, data))
    plain = dataclasses.replace(config.search, ctc_weight=0.0, lm_weight=0.0)
    settings = {
        "greedy": dataclasses.replace(plain, beam_size=1),
        "beam 10": dataclasses.replace(plain, beam_size=10),
        "beam 10 + the config's CTC and LM weights": dataclasses.replace(config.search, beam_size=10),
    }
    for name, search in settings.items():
        start = time.perf_counter()
        decoded = decode_dataset(model, subset, search, lm=lm)
        elapsed = time.perf_counter() - start
        print(f"decode {name} (ctc {search.ctc_weight}, lm {search.lm_weight}): RTF "
              f"{elapsed / audio:.4f} ({len(decoded)} utterances, {audio:.0f} s of audio, "
              f"batch {search.batch_size}); {peak_memory()}")  # fmt: skip


def _lstm_kernels(model: nn.Module, batch: ASRBatch) -> float:
    """Forward + backward seconds of bare LSTMs shaped like the model's, on this batch's shapes."""
    encoder, decoder = model.encoder, model.decoder
    batch_size, frames = batch.features.shape[:2]
    steps = batch.targets.shape[1]
    shapes = []
    for i, lstm in enumerate(encoder.layers):
        # halvings before layer i: the input ones (frame stacking), then one per pyramid layer
        halvings = encoder.config.input_halvings + min(i, encoder.config.pyramid)
        length = int(reduced_lengths(torch.tensor(frames), halvings))
        twin = nn.LSTM(lstm.input_size, lstm.hidden_size, batch_first=True, bidirectional=True)
        shapes.append((twin, torch.randn(batch_size, length, lstm.input_size)))
    cells = [
        nn.LSTMCell(c.input_size, c.hidden_size) for c in (*decoder.cells, *decoder.post_cells)
    ]
    hidden = cells[0].hidden_size
    # per step: the first cell's input, and what each later cell takes beside the previous h
    # (the context, for the post-attention cells)
    extra = [torch.randn(steps, batch_size, c.input_size - (hidden if k else 0)) for k, c in
             enumerate(cells)]  # fmt: skip

    def run() -> None:
        total = 0.0
        for lstm, x in shapes:
            total = total + lstm(x)[0].sum()
        states = [(torch.zeros(batch_size, hidden), torch.zeros(batch_size, hidden))] * len(cells)
        for u in range(steps):
            h = None
            for k, cell in enumerate(cells):
                x = extra[k][u] if h is None else torch.cat([h, extra[k][u]], dim=1)
                h, c = states[k] = cell(x, states[k])
            total = total + h.sum()
        total.backward()

    return timed(run)


def _attention_only(model: nn.Module, batch: ASRBatch) -> float:
    """Forward + backward seconds of the attention calls of one teacher-forced pass."""
    speech = model.encode(batch.features, batch.lengths)
    memory = speech.memory.detach().requires_grad_()
    queries = torch.randn(batch.targets.shape[1], memory.shape[0], model.decoder.config.hidden_dim)
    attention = model.decoder.attention

    def run() -> None:
        keys = attention.prepare(memory)
        state, total = attention.initial_state(memory), 0.0
        for query in queries:
            context, _, state = attention(query, memory, speech.mask, state, keys)
            total = total + context.sum()
        total.backward()

    return timed(run)


def stage_breakdown(task: ASRTask, config: ASRRecipeConfig) -> None:
    model = task.model.train()
    batch = max(
        training_batches(task, config.train.max_frames, 6), key=lambda b: b.features.numel()
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    outputs = {}

    def forward_backward() -> None:
        output = model(batch.features, batch.lengths, batch.targets)
        outputs["out"] = output
        loss, _ = las_loss(output, batch.targets, model.config.ctc_weight, 0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()

    def full_step() -> None:
        forward_backward()
        optimizer.step()

    step = timed(full_step)
    lstm = _lstm_kernels(model, batch)
    attention = _attention_only(model, batch)
    logits = outputs["out"].logits.detach().requires_grad_()
    head = timed(
        lambda: las_loss(outputs["out"]._replace(logits=logits), batch.targets)[0].backward()
    )
    classifier_in = torch.randn(*batch.targets.shape, model.classifier.in_features)
    head += timed(lambda: model.classifier(classifier_in).sum().backward())
    opt = timed(optimizer.step)
    rest = step - lstm - attention - head - opt
    shape = tuple(batch.features.shape)
    print(
        f"breakdown of one training step, batch (B, T, M) = {shape}, U = {batch.targets.shape[1]}:"
    )
    parts = {
        "bare LSTM kernels (same shapes)": lstm,
        "attention (all steps)": attention,
        "output layer + loss": head,
        "optimizer step": opt,
        "rest: Python dispatch per decoder step, masks, concats, embedding, reshapes": rest,
    }
    for name, value in parts.items():
        print(f"  {name:<76} {value:7.3f} s  {100 * value / step:5.1f}%")
    print(f"  {'training step':<76} {step:7.3f} s  = {step / lstm:.2f} x the bare LSTM kernels; "
          f"{peak_memory()}")  # fmt: skip
    _beam_breakdown(task, config)


class _Clock:
    """Wall seconds spent inside wrapped callables, and their calls, by name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, name: str, fn: Callable) -> Callable:
        self.seconds[name], self.calls[name] = 0.0, 0

        def clocked(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
                self.calls[name] += 1

        return clocked


def _beam_breakdown(task: ASRTask, config: ASRRecipeConfig) -> None:
    """One beam-10 search (the config's CTC weight, no LM) of the longest dev utterances, split
    by wrapping the listener, the decoder step, the attention and the CTC scorer with clocks."""
    model = task.model.eval()
    dataset = task.valid_set
    longest = sorted(range(len(dataset)), key=lambda i: -dataset.lengths[i])
    batch = dataset.batch(longest[: config.search.batch_size], stand_in=False)
    ctc_weight = config.search.ctc_weight if model.has_ctc else 0.0
    search = dataclasses.replace(config.search, beam_size=10, ctc_weight=ctc_weight, lm_weight=0.0)
    clock = _Clock()
    model.encode = clock.wrap("encode", model.encode)  # instance attributes shadow the methods
    model.step = clock.wrap("step", model.step)
    attention = model.decoder.attention
    attention.forward = clock.wrap("attention", attention.forward)
    score, advance = CTCPrefixScorer.score, CTCPrefixScorer.advance
    CTCPrefixScorer.score = clock.wrap("ctc score", score)
    CTCPrefixScorer.advance = clock.wrap("ctc advance", advance)
    try:
        with torch.no_grad():
            beam_search(model, batch.features, batch.lengths, search)  # warm-up
            for name in clock.seconds:
                clock.seconds[name], clock.calls[name] = 0.0, 0
            start = time.perf_counter()
            beam_search(model, batch.features, batch.lengths, search)
            total = time.perf_counter() - start
    finally:
        del model.encode, model.step, attention.forward
        CTCPrefixScorer.score, CTCPrefixScorer.advance = score, advance
    seconds = clock.seconds
    ctc = seconds["ctc score"] + seconds["ctc advance"]
    parts = {
        "listener (encode)": seconds["encode"],
        "decoder steps: attention": seconds["attention"],
        "decoder steps: LSTM cells, embedding, output layer": seconds["step"] - seconds["attention"],
        "CTC prefix scorer (score + advance)": ctc,
        "search: log-softmax, top-k, selection, finished hypotheses": (
            total - seconds["encode"] - seconds["step"] - ctc
        ),
    }
    print(f"breakdown of one beam-10 search (ctc {ctc_weight}, no LM), {len(batch.ids)} dev "
          f"utterances of up to {batch.features.shape[1]} frames, {clock.calls['step']} decoder "
          f"steps:")  # fmt: skip
    for name, value in parts.items():
        print(f"  {name:<76} {value:7.3f} s  {100 * value / total:5.1f}%")
    print(f"  {'beam search':<76} {total:7.3f} s; {peak_memory()}")


def stage_full(
    config_path: Path, overrides: list[str], data: Path, exp: Path, lexicon: Path | None = None
) -> None:
    config = resolve_config(ASRRecipeConfig, config_path, overrides)
    start = time.perf_counter()
    result = train_asr(config, data, exp)
    minutes = (time.perf_counter() - start) / 60
    print(f"full: trained to step {result.step} in {minutes:.1f} min this run "
          f"(best dev CER {result.best_metric}); {peak_memory()}")  # fmt: skip
    asr = load_asr(exp)
    search = dataclasses.replace(asr.config.search, beam_size=10)
    decodings = [("beam10", asr, search)]
    if asr.lm is not None:
        no_lm = dataclasses.replace(search, lm_weight=0.0)
        decodings.append(("beam10_no_lm", dataclasses.replace(asr, lm=None), no_lm))
    if lexicon is not None:
        words = WordList.load(lexicon, asr.vocab)
        decodings.append(("beam10_lexicon", dataclasses.replace(asr, words=words), search))
    word_band = word_bands(data, lm_text_path(asr.config, data))
    for split, target in WER_TARGETS.items():
        manifest = data / f"{split}.jsonl"
        if not manifest.is_file():
            continue
        rows = read_manifest(manifest)
        for name, recognizer, settings in decodings:
            out = exp / "benchmark" / f"{split}_{name}"
            record = run_decode(recognizer, rows, settings, out, plot=0,
                                name=str(manifest), progress=False)  # fmt: skip
            summary = score_hypotheses(out, record)
            wer, cer = 100 * summary["wer"], 100 * summary["cer"]
            verdict = "met" if wer <= target else "NOT met"
            print(f"full: {split:<18} {name:<15} WER {wer:5.2f}%  CER {cer:5.2f}%  "
                  f"({summary['utterances']} utterances, RTF {record['rtf']}, "
                  f"target <= {target:g}%: {verdict})")  # fmt: skip
            print_word_misses(f"{split}_{name}", out, word_band)


def word_bands(data: Path, lm_text: Path | None) -> Callable[[str], str]:
    """The group of a word by its count in DATA's training transcripts (see ``words``)."""
    counts = Counter(w for row in read_manifest(data / "train.jsonl") for w in row["text"].split())
    lm_words = {w for line in read_text_lines(lm_text) for w in line.split()} if lm_text else set()

    def band(word: str) -> str:
        count = counts[word]
        if count == 0:
            return "0x, in LM text" if word in lm_words else "0x, nowhere"
        return "1-4x" if count < 5 else "5-49x" if count < 50 else "50+x"

    return band


def print_word_misses(name: str, decoded: Path, band: Callable[[str], str]) -> None:
    rows = [r for r in read_manifest(decoded / "hyps.jsonl") if r.get("ref") is not None]
    groups = missed_by_group([r["ref"] for r in rows], [r["hyp"] for r in rows], band)
    total = sum(words for words, _ in groups.values())
    order = ["0x, nowhere", "0x, in LM text", "1-4x", "5-49x", "50+x"]
    parts = [f"{label} {100 * groups[label][0] / total:.1f}% of words, "
             f"{100 * groups[label][1] / groups[label][0]:.1f}% missed"
             for label in order if label in groups]  # fmt: skip
    print(f"words: {name:<33} {total} reference words by count in train.jsonl: {' | '.join(parts)}")


def stage_words(data: Path, exp: Path) -> None:
    config_path = exp / "config.yaml"
    if not config_path.is_file():
        raise SystemExit(f"words: {config_path} does not exist (pass --exp a trained experiment)")
    band = word_bands(data, lm_text_path(resolve_config(ASRRecipeConfig, config_path, []), data))
    decoded = sorted(p.parent for folder in ("benchmark", "decode")
                     for p in (exp / folder).glob("*/hyps.jsonl"))  # fmt: skip
    if not decoded:
        raise SystemExit(f"words: no {exp}/benchmark/*/hyps.jsonl or {exp}/decode/*/hyps.jsonl")
    for folder in decoded:
        print_word_misses(f"{folder.parent.name}/{folder.name}", folder, band)


def stage_lm(config: ASRRecipeConfig, data: Path, extra_text: list[Path], workdir: Path) -> None:
    from speechattn.asr.lm import CharNgramLM, fit_texts, read_texts
    from speechattn.text import Vocab

    texts_from = [p for p in [lm_text_path(config, data), *extra_text] if p is not None]
    texts = read_texts([data / "train.jsonl"], texts_from)
    vocab = Vocab.load(data / "vocab.json")
    print(f"lm: order {config.lm.order} on {len(texts)} sentences ({sum(map(len, texts)) / 1e6:.1f}M "
          f"characters: train.jsonl + {', '.join(map(str, texts_from)) or 'nothing else'}); "
          f"before fitting: {peak_memory()}")  # fmt: skip
    start = time.perf_counter()
    lm = fit_texts(texts, vocab, config.lm)
    fitted = time.perf_counter() - start
    path = lm.save(workdir / "bench_lm.json")
    table = (lm.num_contexts + 1) * len(vocab) * 4  # float32 log-probabilities
    print(f"lm: fitted in {fitted:.1f} s: {lm.num_ngrams} n-grams, {lm.num_contexts} contexts, "
          f"table {table / 2**20:.0f} MiB, file {path.stat().st_size / 2**20:.1f} MiB; "
          f"{peak_memory()}")  # fmt: skip
    del lm
    start = time.perf_counter()
    CharNgramLM.load(path, len(vocab))
    print(f"lm: loaded in {time.perf_counter() - start:.1f} s; {peak_memory()}")
    path.unlink()


def stage_referee(data: Path, splits: list[str]) -> None:
    from referee import make_recognizer, recognize  # benchmarks/referee.py

    from speechattn.audio import load_audio
    from speechattn.metrics import error_rates
    from speechattn.text import normalize_asr

    decoder = make_recognizer(None)
    for split in splits:
        rows = read_manifest(data / f"{split}.jsonl")
        start = time.perf_counter()
        hyps = [normalize_asr(recognize(decoder, *load_audio(row["audio"]))) for row in rows]
        rates = error_rates([row["text"] for row in rows], hyps)
        print(f"referee: pocketsphinx en-us on {split} ({len(rows)} utterances): "
              f"WER {100 * rates.wer:.2f}%  CER {100 * rates.cer:.2f}%  "
              f"({time.perf_counter() - start:.0f} s)")  # fmt: skip


def use_trained_weights(task: ASRTask, exp: Path) -> None:
    """Put ``exp``'s trained weights into ``task``'s model, or exit saying why they do not fit.

    Fresh weights decode to the length bound; a trained model's hypotheses end where the speech
    does, so its decoding RTF is the one a user sees."""
    try:
        trained = load_asr(exp)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"--trained: {error}")
    symbols = task.valid_set.vocab.symbols
    if trained.vocab.symbols != symbols:
        sys.exit(f"--trained {exp}: its vocabulary ({len(trained.vocab.symbols)} symbols) is not "
                 f"the data's ({len(symbols)}); pass the DATA it was trained on")  # fmt: skip
    try:
        task.model.load_state_dict(trained.model.state_dict())
    except RuntimeError as error:  # "Error(s) in loading state_dict for LAS:\n\t<what differs>"
        detail = str(error).splitlines()[-1].strip()
        sys.exit(f"--trained {exp}: its network is not --config's ({detail}); pass its config.yaml")
    print(f"weights: {exp} (trained), not fresh ones")


def prepare_corpus(size: str, workdir: Path) -> Path:
    """Build and prepare the offline corpus of ``size`` under ``workdir`` (idempotent)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("asr_prepare", ROOT / "recipes/asr/prepare.py")
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    data = workdir / f"asr_{size}"
    if not (data / "cmvn.json").is_file():
        code = prepare.main(["--offline-corpus", size, "--out", str(data), "--no-progress"])
        if code:
            raise SystemExit(code)
    return data


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="prepared ASR folder (manifests, vocab, cmvn)")
    source.add_argument(
        "--corpus",
        choices=["mini", "small", "medium"],
        help="build and prepare the offline corpus of this size under --workdir",
    )
    parser.add_argument("--workdir", type=Path, default=Path("exp/bench_asr"))
    parser.add_argument("--config", type=Path, default=ROOT / "recipes/asr/conf/offline.yaml")
    parser.add_argument(
        "--exp", type=Path, help="experiment folder for 'full' and 'words' (default WORKDIR/exp)"
    )
    parser.add_argument(
        "--trained", type=Path, metavar="EXP",
        help="decode and breakdown: this trained experiment's weights instead of fresh ones (its "
        "network must be --config's and its vocabulary DATA's)",
    )  # fmt: skip
    parser.add_argument(
        "--stages", nargs="+", choices=STAGES, default=["train", "decode", "breakdown"]
    )
    parser.add_argument("--steps", type=int, default=10, help="timed training steps")
    parser.add_argument("--limit", type=int, default=40, help="dev utterances decoded")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument(
        "--lexicon", type=Path, help="full: also decode with this word list (infer.py --lexicon)"
    )
    parser.add_argument("--split", nargs="+", default=["test"], help="referee: manifests to read")
    parser.add_argument(
        "--lm-text", type=Path, nargs="*", default=[], help="lm: more text files to fit on"
    )
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)  # key=value may come between options
    if args.threads:
        torch.set_num_threads(args.threads)
    data = args.data or prepare_corpus(args.corpus, args.workdir)
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads, config {args.config}, data {data}")
    if "full" in args.stages:
        exp = args.exp or args.workdir / "exp"
        stage_full(args.config, args.overrides, data, exp, args.lexicon)
    if "words" in args.stages:
        stage_words(data, args.exp or args.workdir / "exp")
    if "referee" in args.stages:
        stage_referee(data, args.split)
    if "lm" in args.stages:
        config = resolve_config(ASRRecipeConfig, args.config, args.overrides)
        args.workdir.mkdir(parents=True, exist_ok=True)
        stage_lm(config, data, args.lm_text, args.workdir)
    quick = [s for s in args.stages if s not in ("full", "referee", "lm", "words")]
    if quick:
        config = resolve_config(ASRRecipeConfig, args.config, args.overrides)
        torch.manual_seed(0)
        task = build_task(config, data)
        if args.trained:
            use_trained_weights(task, args.trained)
        params = sum(p.numel() for p in task.model.parameters())
        print(f"model: {params / 1e6:.2f}M parameters; {peak_memory()}")
        if "train" in quick:
            stage_train(task, config, args.steps)
        if "breakdown" in quick:
            stage_breakdown(task, config)
        if "decode" in quick:
            stage_decode(task, config, args.limit, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
