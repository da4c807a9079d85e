"""Synthesize speech with a trained voice: WAVs, alignment PNGs and summary.json.

Usage:
    python recipes/tts/synthesize.py --exp exp/tts_offline --text "The quick brown fox." --out out/tts
    python recipes/tts/synthesize.py --exp exp/tts_offline --text-file sentences.txt --out out/tts
    python recipes/tts/synthesize.py --exp exp/tts_offline --text-file sentences.txt --out out/tts \\
        synthesis.inference.window=null synthesis.vocoder.n_iter=60 synthesis.inference.prenet_dropout=false

Logic: speechattn/tts/pretrained.py (load_tts), synthesize.py (synthesize) and infer.py (the command).
"""

import sys

from speechattn.tts.infer import main

if __name__ == "__main__":
    sys.exit(main())
