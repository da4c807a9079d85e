"""Decode and score with a trained recognizer (stage 3 of prepare -> train -> infer).

Usage:
    python recipes/asr/infer.py --exp exp/asr_offline --manifest data/asr_small/test.jsonl \\
        --out exp/asr_offline/decode_test_beam10 --beam 10 --plot 5
    python recipes/asr/infer.py --exp exp/asr_offline --manifest data/asr_small/test.jsonl \\
        --out exp/asr_offline/decode_test_beam10 --stages score      # re-score only
    python recipes/asr/infer.py --exp exp/asr_offline --audio a.wav b.flac --out /tmp/hyps

Writes OUT/hyp.txt, hyps.jsonl, decode.json, per_utt.tsv, per_utt.jsonl, summary.json (WER, CER,
S/D/I, mean alignment measures, RTF) and, with --plot N, OUT/alignments/<id>.png.
"""

from speechattn.asr.infer import main

if __name__ == "__main__":
    raise SystemExit(main())
