"""Prepare TTS data: trimmed log-mels cached per utterance, mel statistics, vocab, manifests.

Usage:
    # the offline corpus (speechattn corpus --size small --out data/corpus_small):
    python recipes/tts/prepare.py --ljspeech-dir data/corpus_small --out data/tts_small
    # LJSpeech 1.1, downloaded (2.6 GB, resumable, checksum-verified) into data/downloads:
    python recipes/tts/prepare.py --download --out data/tts_lj workers=8
    # an LJSpeech already on disk, other settings:
    python recipes/tts/prepare.py --ljspeech-dir /corpora/LJSpeech-1.1 --out data/tts_lj num_dev=100

Re-running is cheap: cached mels are reused, manifests and statistics are rewritten.
Logic: speechattn/tts/prepare.py.
"""

import sys

from speechattn.tts.prepare import main

if __name__ == "__main__":
    sys.exit(main())
