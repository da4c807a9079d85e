"""Train a Listen-Attend-Spell recognizer (stage 2 of prepare -> train -> infer).

Usage:
    python recipes/asr/train.py --config recipes/asr/conf/tiny.yaml --data data/asr_mini --exp exp/asr_tiny
    python recipes/asr/train.py --config recipes/asr/conf/offline.yaml --data data/asr_small \\
        --exp exp/asr_offline
    python recipes/asr/train.py --config recipes/asr/conf/librispeech100.yaml --data data/libri100 \\
        --exp exp/asr_libri100 train.max_steps=120000          # key=value overrides any config key
    torchrun --nproc_per_node 2 recipes/asr/train.py ...       # DDP, one process per GPU

Re-running the same command resumes from the newest checkpoint in --exp. The resolved config is
saved as EXP/config.yaml with EXP/vocab.json and EXP/cmvn.json; the best model (dev CER) as
EXP/best.pt; logs in EXP/log.jsonl and EXP/tensorboard/.
"""

from speechattn.asr.training import main

if __name__ == "__main__":
    raise SystemExit(main())
