"""Prepare ASR data: manifests, vocab.json, cmvn.json, features.json, skipped.tsv; stage 1 of 3.

Usage:
    # the offline corpus (synthesized with espeak-ng/flite, no download): build it, then prepare
    python recipes/asr/prepare.py --offline-corpus small --out data/asr_small
    python recipes/asr/prepare.py --offline-corpus mini --out data/asr_mini --stage prepare  # skip building
    # LibriSpeech, downloaded or already on disk
    python recipes/asr/prepare.py --subsets train-clean-100 dev-clean test-clean test-other \\
        --out data/libri100 --download
    python recipes/asr/prepare.py --subsets train-clean-100 dev-clean test-clean \\
        --out data/libri100 --librispeech-dir /corpora/LibriSpeech

Every option other than --offline-corpus/--stage goes to ``speechattn.asr.prepare.main``
(see ``--help`` there). With --offline-corpus SIZE the corpus is built in OUT/corpus and all its
splits are prepared (train, dev, test, test-unseen-voice, test-prose, test-prose-unseen-voice).
"""

import argparse
import sys
from pathlib import Path

from speechattn.asr import prepare
from speechattn.offline.corpus import SPLITS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--offline-corpus", choices=["mini", "small", "medium"])
    parser.add_argument("--stage", choices=["corpus", "prepare", "all"], default="all")
    parser.add_argument("--out", type=Path)
    args, rest = parser.parse_known_args(argv)
    if args.offline_corpus is None:
        return prepare.main([*rest, *(["--out", str(args.out)] if args.out else [])])
    if args.out is None:
        parser.error("--offline-corpus needs --out DIR")
    from speechattn.offline.corpus import build_corpus

    corpus = args.out / "corpus"
    if args.stage in ("corpus", "all"):
        build_corpus(corpus, size=args.offline_corpus)
    if args.stage in ("prepare", "all"):
        return prepare.main(
            ["--subsets", *SPLITS, "--librispeech-dir", str(corpus / "asr"),
             "--out", str(args.out), *rest]
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
