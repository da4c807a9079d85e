"""A cross-check the offline corpus did not make: other people's sentences, read by its voices.

Usage:
    python benchmarks/crosscheck.py --text ../shared/ljspeech-real/lm-text.txt --count 300 \
        --out data/crosscheck-lj
    python recipes/asr/infer.py --exp exp/asr_offline --manifest data/crosscheck-lj/train-voices.jsonl \
        --beam 10 --out exp/asr_offline/decode/crosscheck-lj-train-voices

Picks ``--count`` lines of ``--text`` (one sentence a line, printed form: digits, abbreviations)
by ``--seed``, keeping those of 4 to 25 words once spoken; the spoken text is
``normalize_tts`` of the line (numbers, ordinals and abbreviations spelled out) and the reference
is its ``A-Z '`` transcript, so the audio says exactly the reference. Each sentence is read twice:
by the offline corpus's training voices (``train-voices``) and by its unseen voices
(``unseen-voices``), the sentences spread over the voices in blocks as the corpus does, at the
corpus's 16 kHz. Writes ``OUT/<part>/<id>.flac`` and ``OUT/<part>.jsonl`` manifests (the rows
``recipes/asr/prepare.py`` writes: id, audio, duration, text, speaker) for ``infer.py``.

Not a test: the LJ Speech text lives in ``../shared``, which a user's clone does not have.
Re-running reuses the audio already made (each file is written under a temporary name first).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import soundfile as sf

from speechattn.data.manifest import read_text_lines, write_manifest
from speechattn.offline.corpus import ASR_SAMPLE_RATE, TRAIN_VOICES, UNSEEN_VOICES
from speechattn.offline.sentences import MAX_WORDS, to_transcript
from speechattn.offline.synth import RenderJob, render, require_engines
from speechattn.text import normalize_tts

PARTS = {"train-voices": (100, TRAIN_VOICES[:8]), "unseen-voices": (200, UNSEEN_VOICES[:2])}


def pick_sentences(lines: list[str], count: int, seed: int) -> list[tuple[str, str]]:
    """``count`` distinct (spoken text, transcript) pairs of 4 to MAX_WORDS words."""
    order = list(range(len(lines)))
    random.Random(seed).shuffle(order)
    chosen, seen = [], set()
    for index in order:
        spoken = normalize_tts(lines[index])
        transcript = to_transcript(spoken)
        if not 4 <= len(transcript.split()) <= MAX_WORDS or transcript in seen:
            continue
        seen.add(transcript)
        chosen.append((spoken, transcript))
        if len(chosen) == count:
            break
    return chosen


def build(text: Path, count: int, seed: int, out: Path) -> dict[str, Path]:
    require_engines({"espeak-ng", "flite"})
    sentences = pick_sentences(read_text_lines(text), count, seed)
    manifests = {}
    for part, (first_speaker, voices) in PARTS.items():
        rows = []
        per_voice = -(-len(sentences) // len(voices))
        for k, voice in enumerate(voices):
            speaker = first_speaker + k
            for index, (spoken, transcript) in enumerate(sentences[k * per_voice : (k + 1) * per_voice]):
                utt_id = f"{speaker}-9000-{index:04d}"
                path = out / part / f"{utt_id}.flac"
                if not path.is_file():
                    render(RenderJob(str(path), spoken, voice, voice.speed, ASR_SAMPLE_RATE))
                duration = round(sf.info(path).frames / ASR_SAMPLE_RATE, 4)
                rows.append({"id": utt_id, "audio": str(path.resolve()), "duration": duration,
                             "text": transcript, "speaker": speaker})  # fmt: skip
        manifests[part] = out / f"{part}.jsonl"
        write_manifest(manifests[part], rows)
        print(f"{manifests[part]}: {len(rows)} utterances, {len(voices)} voices, "
              f"{sum(r['duration'] for r in rows) / 60:.1f} min")  # fmt: skip
    return manifests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", type=Path, required=True, help="sentences, one a line")
    parser.add_argument("--count", type=int, default=300, help="sentences to read (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args(argv)
    build(args.text, args.count, args.seed, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
