"""Fit a character n-gram LM for shallow fusion in beam search (optional; training writes one).

Usage:
    python recipes/asr/train_lm.py --vocab exp/asr_offline/vocab.json \\
        --manifest data/asr_small/train.jsonl --text more_sentences.txt --out exp/asr_offline/lm.json
    python recipes/asr/infer.py --exp exp/asr_offline --manifest data/asr_small/test.jsonl \\
        --out exp/asr_offline/decode_test --beam 10 --lm exp/asr_offline/lm.json --lm-weight 0.4

ASR training already fits one on its training transcripts (EXP/lm.json); infer.py uses it when
search.lm_weight > 0 (offline.yaml: 0.4).
"""

from speechattn.asr.lm import main

if __name__ == "__main__":
    raise SystemExit(main())
