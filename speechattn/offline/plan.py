"""The offline corpus's plan: sizes, voices, and which sentence each utterance speaks.

:func:`plan_corpus` decides every utterance (id, split, speaker, sentence, voice, speed) before any
audio is made, deterministically in the seed; :mod:`speechattn.offline.corpus` writes it (layout,
splits and sources are described there).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from speechattn.offline.prose import load_prose
from speechattn.offline.sentences import Sentence, generate_sentences
from speechattn.offline.synth import Voice

__all__ = [
    "SIZES",
    "SPLITS",
    "TRAIN_VOICES",
    "TTS_VOICE",
    "UNSEEN_VOICES",
    "AsrUtterance",
    "CorpusError",
    "CorpusPlan",
    "CorpusSize",
    "TtsUtterance",
    "plan_corpus",
    "resolve_size",
]

SPLITS = ("train", "dev", "test", "test-unseen-voice", "test-prose", "test-prose-unseen-voice")
SPEED_JITTER = 0.1  # each ASR utterance is spoken at the voice's speed times 1 +- this
TTS_CHAPTER_SIZE = 250  # rows per "OCnn" chapter of the TTS part


@dataclass(frozen=True)
class CorpusSize:
    """How big a corpus is: voices per role and utterances per voice."""

    name: str
    train_voices: int
    unseen_voices: int
    train_per_voice: int
    dev_per_voice: int
    test_per_voice: int
    tts_utterances: int
    tts_test: int
    chapter_size: int  # ASR utterances per chapter
    lm_sentences: int  # text-only grammar sentences in asr/lm-text.txt
    prose_share: float  # fraction of the train and dev sentences taken from the prose
    test_prose: int  # sentences of test-prose (and of test-prose-unseen-voice)
    lm_prose: int  # text-only prose sentences in asr/lm-text.txt, after the grammar ones


SIZES: dict[str, CorpusSize] = {
    s.name: s
    for s in (
        CorpusSize("mini", 3, 2, 12, 2, 2, 24, 4, chapter_size=8, lm_sentences=200,
                   prose_share=0.5, test_prose=4, lm_prose=100),
        CorpusSize("small", 8, 2, 190, 10, 10, 950, 50, chapter_size=50, lm_sentences=20000,
                   prose_share=0.5, test_prose=200, lm_prose=10000),
        CorpusSize("medium", 12, 3, 630, 25, 25, 4750, 150, chapter_size=100, lm_sentences=50000,
                   prose_share=0.5, test_prose=200, lm_prose=20000),
    )
}

# Training voices in order (a size takes the first N); speaker id = 100 + position.
TRAIN_VOICES: tuple[Voice, ...] = (
    Voice("espeak-ng", "en-us+m1", speed=1.0, pitch=45),
    Voice("flite", "slt", speed=1.0),
    Voice("espeak-ng", "en-gb+f2", speed=0.95, pitch=60),
    Voice("espeak-ng", "en-gb-scotland+m3", speed=1.05, pitch=40),
    Voice("flite", "rms", speed=0.95),
    Voice("espeak-ng", "en-029+f1", speed=0.9, pitch=55),
    Voice("espeak-ng", "en-gb-x-rp+m5", speed=1.1, pitch=50),
    Voice("flite", "kal16", speed=1.0),
    Voice("espeak-ng", "en-us+f3", speed=1.0, pitch=65),
    Voice("espeak-ng", "en-gb-x-gbclan+m6", speed=0.95, pitch=35),
    Voice("espeak-ng", "en+m7", speed=1.05, pitch=45),
    Voice("espeak-ng", "en-029+m2", speed=0.9, pitch=50),
)
# Voices never used in training: accents, variants and flite voice absent from TRAIN_VOICES.
# Speaker id = 200 + position.
UNSEEN_VOICES: tuple[Voice, ...] = (
    Voice("espeak-ng", "en-gb-x-gbcwmd+m4", speed=1.0, pitch=50),
    Voice("flite", "awb", speed=1.0),
    Voice("espeak-ng", "en-us-nyc+f4", speed=1.0, pitch=60),
)
TTS_VOICE = Voice("espeak-ng", "en-us", speed=0.9, pitch=50)


class CorpusError(ValueError):
    """The output directory or the request is unusable; the message says how to fix it."""


@dataclass(frozen=True)
class AsrUtterance:
    id: str
    split: str
    speaker: int
    chapter: int
    sentence: Sentence
    voice: Voice
    speed: float

    @property
    def path(self) -> str:
        """Audio path relative to the corpus root."""
        return f"asr/{self.split}/{self.speaker}/{self.chapter}/{self.id}.flac"


@dataclass(frozen=True)
class TtsUtterance:
    id: str
    sentence: Sentence
    test: bool

    @property
    def path(self) -> str:
        return f"tts/wavs/{self.id}.wav"


@dataclass(frozen=True)
class CorpusPlan:
    """Everything a build writes, decided before any audio is made."""

    size: CorpusSize
    seed: int
    speakers: dict[str, tuple[tuple[int, Voice], ...]]  # split -> (speaker id, voice)
    asr: tuple[AsrUtterance, ...]
    tts: tuple[TtsUtterance, ...]
    lm_text: tuple[str, ...]  # transcripts of the text-only sentences


def _blocks(items: list, parts: int) -> list[list]:
    """Split ``items`` into ``parts`` contiguous blocks whose sizes differ by at most one."""
    size, extra = divmod(len(items), parts)
    bounds = [k * size + min(k, extra) for k in range(parts + 1)]
    return [items[bounds[k] : bounds[k + 1]] for k in range(parts)]


def _split_utterances(
    split: str,
    speakers: tuple[tuple[int, Voice], ...],
    sentences: list[Sentence],
    chapter_size: int,
    next_chapter: int,
    rng: random.Random,
) -> tuple[list[AsrUtterance], int]:
    """Give each speaker a block of sentences in chapters; returns them and the next chapter id."""
    utterances = []
    for (speaker, voice), block in zip(speakers, _blocks(sentences, len(speakers))):
        for start in range(0, len(block), chapter_size):
            chapter, next_chapter = next_chapter, next_chapter + 1
            for index, sentence in enumerate(block[start : start + chapter_size]):
                speed = round(voice.speed * (1 + rng.uniform(-SPEED_JITTER, SPEED_JITTER)), 3)
                utt_id = f"{speaker}-{chapter}-{index:04d}"
                utt = AsrUtterance(utt_id, split, speaker, chapter, sentence, voice, speed)
                utterances.append(utt)
    return utterances, next_chapter


def _tts_utterances(sentences: list[Sentence], num_test: int) -> list[TtsUtterance]:
    step = len(sentences) / max(num_test, 1)
    held_out = {int((k + 0.5) * step) for k in range(num_test)}
    utterances = []
    for i, sentence in enumerate(sentences):
        chapter, index = divmod(i, TTS_CHAPTER_SIZE)
        utt_id = f"OC{chapter + 1:02d}-{index + 1:04d}"
        utterances.append(TtsUtterance(utt_id, sentence, i in held_out))
    return utterances


def resolve_size(size: str) -> CorpusSize:
    if size not in SIZES:
        raise CorpusError(f"unknown corpus size {size!r}; choose one of {', '.join(SIZES)}")
    spec = SIZES[size]
    if spec.train_voices > len(TRAIN_VOICES) or spec.unseen_voices > len(UNSEEN_VOICES):
        raise CorpusError(
            f"size {size!r} asks for more voices than TRAIN_VOICES/UNSEEN_VOICES hold"
        )
    return spec


def _prose_sentences(count: int, seed: int, grammar: set[str]) -> list[Sentence]:
    """The first ``count`` prose sentences of ``seed``'s order whose transcripts are not among the
    spoken ``grammar`` ones (so that no sentence is in two splits)."""
    prose = [s for s in load_prose(seed).sentences if s.transcript not in grammar]
    if len(prose) < count:
        raise CorpusError(f"the corpus needs {count} prose sentences; WordNet gave {len(prose)}")
    return prose[:count]


def _mixed(grammar: list[Sentence], prose: list[Sentence], rng: random.Random) -> list[Sentence]:
    """Both lists in one shuffled list, so that every speaker reads some of each."""
    mixed = grammar + prose
    rng.shuffle(mixed)
    return mixed


def plan_corpus(size: str = "mini", seed: int = 0) -> CorpusPlan:
    """Decide every utterance (id, sentence, voice, speed); deterministic in ``seed``."""
    spec = resolve_size(size)
    train = tuple((100 + k, v) for k, v in enumerate(TRAIN_VOICES[: spec.train_voices]))
    unseen = tuple((200 + j, v) for j, v in enumerate(UNSEEN_VOICES[: spec.unseen_voices]))
    num_train, num_dev, num_test = (
        spec.train_voices * n for n in (spec.train_per_voice, spec.dev_per_voice, spec.test_per_voice)
    )
    prose_train, prose_dev = (round(n * spec.prose_share) for n in (num_train, num_dev))
    # grammar: train, dev, test, TTS, then the LM text, so that the spoken sentences are the same
    # with or without it; prose: test-prose first (the same for every size), train, dev, LM text
    counts = [num_train - prose_train, num_dev - prose_dev, num_test, spec.tts_utterances]
    ends = [sum(counts[: k + 1]) for k in range(len(counts))]
    grammar = generate_sentences(ends[-1] + spec.lm_sentences, seed)
    known = {s.transcript for s in grammar[: ends[-1]]}
    prose_counts = [spec.test_prose, prose_train, prose_dev]
    prose_ends = [sum(prose_counts[: k + 1]) for k in range(len(prose_counts))]
    prose = _prose_sentences(prose_ends[-1] + spec.lm_prose, seed, known)
    mix = random.Random(f"mix-{seed}")
    test_prose = prose[: prose_ends[0]]
    by_split = {
        "train": (train, _mixed(grammar[: ends[0]], prose[prose_ends[0] : prose_ends[1]], mix)),
        "dev": (train, _mixed(grammar[ends[0] : ends[1]], prose[prose_ends[1] : prose_ends[2]], mix)),
        "test": (train, grammar[ends[1] : ends[2]]),
        "test-unseen-voice": (unseen, grammar[ends[1] : ends[2]]),
        "test-prose": (train, test_prose),
        "test-prose-unseen-voice": (unseen, test_prose),
    }
    rng = random.Random(f"speed-{seed}")
    asr: list[AsrUtterance] = []
    chapter = 1000
    for split, (speakers, split_sentences) in by_split.items():
        utterances, chapter = _split_utterances(
            split, speakers, split_sentences, spec.chapter_size, chapter, rng
        )
        asr += utterances
    tts = _tts_utterances(grammar[ends[2] : ends[3]], spec.tts_test)
    spoken_prose = {s.transcript for s in prose[: prose_ends[-1]]}
    lm_grammar = [s for s in grammar[ends[-1] :] if s.transcript not in spoken_prose]
    lm_text = tuple(s.transcript for s in lm_grammar + prose[prose_ends[-1] :])
    speakers = {split: spk for split, (spk, _) in by_split.items()}
    return CorpusPlan(spec, seed, speakers, tuple(asr), tuple(tts), lm_text)
