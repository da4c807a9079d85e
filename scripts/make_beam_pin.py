"""Write tests/data/beam_pin/: a tiny trained LAS, inputs, and what the searches decode from them.

``tests/test_beam_pin.py`` checks that greedy and beam search (with and without CTC prefix scoring
and the character LM) still give these hypotheses and scores, so that speed work on the search
cannot change its results unnoticed. Regenerate only when a change to the results is intended,
and say why in the commit:

    python scripts/make_beam_pin.py            # trains on 1 thread in about a minute

The task is synthetic: each character is a fixed random 8-dim pattern held for 8 frames, plus
noise. The model learns it from 48 strings; the pinned inputs are 4 of those strings and 8 new
ones under heavier noise, so that the searches meet competing hypotheses.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch

from speechattn.asr.decode import SearchConfig, beam_search, greedy_search
from speechattn.asr.lm import CharNgramLM
from speechattn.asr.loss import las_loss
from speechattn.asr.model import LAS, LASConfig
from speechattn.text import Vocab

CHARS = "abcdef "
FRAMES_PER_CHAR = 8
NUM_MELS = 8
# (name, search settings) pinned by the test
SEARCHES = {
    "beam4": SearchConfig(beam_size=4),
    "beam10": SearchConfig(beam_size=10),
    "beam10_ctc": SearchConfig(beam_size=10, ctc_weight=0.3),
    "beam10_ctc_lm": SearchConfig(beam_size=10, ctc_weight=0.3, lm_weight=0.5),
}


def strings(rng: random.Random, count: int) -> list[str]:
    words = ["".join(rng.choice(CHARS[:-1]) for _ in range(rng.randint(1, 4))) for _ in range(30)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(1, 3))) for _ in range(count)]


def render(texts: list[str], vocab: Vocab, patterns: torch.Tensor, noise: float, seed: int):
    """Texts -> features (B, T, M), lengths (B,), targets (B, U) ending in EOS."""
    generator = torch.Generator().manual_seed(seed)
    ids = [vocab.encode(t) for t in texts]
    lengths = torch.tensor([len(i) * FRAMES_PER_CHAR for i in ids])
    features = torch.zeros(len(ids), int(lengths.max()), NUM_MELS)
    targets = torch.zeros(len(ids), max(map(len, ids)) + 1, dtype=torch.long)
    for b, row in enumerate(ids):
        frames = patterns[row].repeat_interleave(FRAMES_PER_CHAR, dim=0)  # (T_b, M)
        frames = frames + noise * torch.randn(frames.shape, generator=generator)
        features[b, : len(frames)] = frames
        targets[b, : len(row) + 1] = torch.tensor([*row, vocab.eos_id])
    return features, lengths, targets


def lm_for(vocab: Vocab, texts: list[str]) -> CharNgramLM:
    return CharNgramLM.fit([vocab.encode(t) for t in texts], len(vocab), order=4, discount=0.7)


def hypotheses(model: LAS, features, lengths, lm: CharNgramLM) -> dict[str, list]:
    """What each search decodes: name -> [[tokens, score], ...] per input."""
    out = {"greedy": greedy_search(model, features, lengths)}
    for name, config in SEARCHES.items():
        out[name] = beam_search(model, features, lengths, config, lm=lm)
    return {name: [[h.tokens, h.score] for h in hyps] for name, hyps in out.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/data/beam_pin"))
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng = random.Random(0)
    vocab = Vocab(list(CHARS))
    patterns = torch.randn(len(vocab), NUM_MELS)
    train_texts = strings(rng, 48)
    features, lengths, targets = render(train_texts, vocab, patterns, noise=0.3, seed=1)
    model = LAS(LASConfig.tiny(num_mels=NUM_MELS, ctc_weight=0.3), len(vocab))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for step in range(args.steps):
        loss, logs = las_loss(model(features, lengths, targets), targets, ctc_weight=0.3)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step}: att_ce {logs['att_ce']:.3f} acc {logs['acc']:.3f}")
    model.eval()
    test_texts = train_texts[:4] + strings(random.Random(1), 8)
    test_features, test_lengths, _ = render(test_texts, vocab, patterns, noise=1.0, seed=2)
    lm = lm_for(vocab, train_texts)
    pinned = hypotheses(model, test_features, test_lengths, lm)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"model": model.state_dict(), "features": test_features, "lengths": test_lengths},
        args.out / "model.pt",
    )
    record = {"chars": CHARS, "lm_texts": train_texts, "texts": test_texts, "hypotheses": pinned}
    (args.out / "expected.json").write_text(json.dumps(record, indent=1) + "\n")
    for name, hyps in pinned.items():
        print(name, [vocab.decode(tokens) for tokens, _ in hyps])
    print("references", test_texts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
