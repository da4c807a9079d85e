"""Train a Tacotron voice with the shared trainer.

Usage:
    python recipes/tts/train.py --config recipes/tts/conf/tiny.yaml --data data/tts_mini --exp exp/tts_tiny
    python recipes/tts/train.py --config recipes/tts/conf/offline.yaml --data data/tts_small --exp exp/tts_offline
    python recipes/tts/train.py --config recipes/tts/conf/ljspeech.yaml --data data/tts_lj --exp exp/tts_lj \\
        train.max_steps=150000
    tensorboard --logdir exp/tts_offline/tensorboard     # alignments, mels, Griffin-Lim audio

Re-running with the same --exp resumes from the newest checkpoint. Writes exp/config.yaml,
exp/vocab.json, exp/mel_stats.json, exp/features.json, exp/best.pt (lowest dev mel L1),
exp/checkpoints/, exp/log.jsonl. Logic: speechattn/tts/training.py and speechattn/tts/task.py.
"""

import sys

from speechattn.tts.training import main

if __name__ == "__main__":
    sys.exit(main())
